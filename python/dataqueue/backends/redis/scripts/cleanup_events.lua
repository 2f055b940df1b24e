-- Drop events older than ARGV[1] µs (server time) from up to ARGV[2] jobs' event lists (oldest lists
-- first). Returns how many events were removed.
local cutoff, batch = now() - tonumber(ARGV[1]), tonumber(ARGV[2])
local n = 0
local ids = redis.call('ZRANGEBYSCORE', B .. 'evidx', '-inf', '(' .. N(cutoff), 'LIMIT', 0, batch)
for _, id in ipairs(ids) do
  local key = B .. 'ev:' .. id
  local evs = redis.call('LRANGE', key, 0, -1)
  local keep = #evs + 1
  for i, e in ipairs(evs) do
    if cjson.decode(e).created_at >= cutoff then
      keep = i
      break
    end
  end
  n = n + keep - 1
  if keep > #evs then
    redis.call('DEL', key)
    redis.call('ZREM', B .. 'evidx', id)
  else
    redis.call('LTRIM', key, keep - 1, -1)
    redis.call('ZADD', B .. 'evidx', N(cjson.decode(evs[keep]).created_at), id)
  end
end
return n
