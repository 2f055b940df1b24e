-- Drop at most ARGV[2] events older than ARGV[1] µs (server time), oldest event lists first;
-- like PostgreSQL's cleanup statement, the batch counts events. Returns how many were removed.
local cutoff, batch = now() - tonumber(ARGV[1]), tonumber(ARGV[2])
local n = 0
while n < batch do
  local ids = redis.call('ZRANGEBYSCORE', B .. 'evidx', '-inf', '(' .. N(cutoff), 'LIMIT', 0, 100)
  if #ids == 0 then break end
  for _, id in ipairs(ids) do
    if n >= batch then break end
    local key = B .. 'ev:' .. id
    local room = batch - n
    local evs = redis.call('LRANGE', key, 0, room - 1)
    local drop = 0
    while drop < #evs and cjson.decode(evs[drop + 1]).created_at < cutoff do drop = drop + 1 end
    n = n + drop
    -- the new oldest event keeps evidx right (or the list is gone)
    local head = redis.call('LINDEX', key, drop)
    if head then
      if drop > 0 then redis.call('LTRIM', key, drop, -1) end
      redis.call('ZADD', B .. 'evidx', N(cjson.decode(head).created_at), id)
    else
      redis.call('DEL', key)
      redis.call('ZREM', B .. 'evidx', id)
    end
  end
end
return n
