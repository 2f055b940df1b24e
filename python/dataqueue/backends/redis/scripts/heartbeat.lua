-- Renew the leases of a worker's in-flight jobs. ARGV: worker, lease µs, ids...
local t = now()
local exp = N(t + tonumber(ARGV[2]))
local n = 0
for i = 3, #ARGV do
  local id = ARGV[i]
  local f = fields(id, { 'status', 'locked_by' })
  if f.status == 'processing' and f.locked_by == ARGV[1] then
    -- beat_at: a sign of life for reclaim's age safety net
    redis.call('HSET', jk(id), 'lease_expires_at', exp, 'beat_at', N(t))
    redis.call('ZADD', B .. 'leases', exp, id)
    n = n + 1
  end
end
return n
