-- Drop at most ARGV[2] events older than ARGV[1] µs (server time), jobs with the oldest events
-- first; like PostgreSQL's cleanup statement, the batch counts events. A job's first event is
-- field ev0 of its hash (older than its list), the rest its list ev:<id>. Returns how many were
-- removed.
local cutoff, batch = now() - tonumber(ARGV[1]), tonumber(ARGV[2])
local n = 0
while n < batch do
  local ids = redis.call('ZRANGEBYSCORE', B .. 'evidx', '-inf', '(' .. N(cutoff), 'LIMIT', 0, 100)
  if #ids == 0 then break end
  for _, id in ipairs(ids) do
    if n >= batch then break end
    local oldest = nil -- the job's oldest event left, or nil
    local ev0 = redis.call('HGET', jk(id), 'ev0')
    if ev0 then
      if cjson.decode(ev0).created_at < cutoff then
        redis.call('HDEL', jk(id), 'ev0')
        n = n + 1
      else
        oldest = ev0
      end
    end
    local key = B .. 'ev:' .. id
    if not oldest and n < batch then
      local evs = redis.call('LRANGE', key, 0, batch - n - 1)
      local drop = 0
      while drop < #evs and cjson.decode(evs[drop + 1]).created_at < cutoff do drop = drop + 1 end
      n = n + drop
      oldest = redis.call('LINDEX', key, drop)
      if oldest then
        if drop > 0 then redis.call('LTRIM', key, drop, -1) end
      else
        redis.call('DEL', key)
      end
    elseif not oldest then
      oldest = redis.call('LINDEX', key, 0)
    end
    -- the new oldest event keeps evidx right (or the job has no events left)
    if oldest then
      redis.call('ZADD', B .. 'evidx', N(cjson.decode(oldest).created_at), id)
    else
      redis.call('ZREM', B .. 'evidx', id)
    end
  end
end
return n
