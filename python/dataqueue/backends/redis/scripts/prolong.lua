-- Extend the lease of a job the caller holds (fenced). ARGV id, worker, lock_version, lease µs.
local id = ARGV[1]
local f = fields(id, { 'status', 'locked_by', 'lock_version' })
if not (f.status == 'processing' and f.locked_by == ARGV[2] and f.lock_version == ARGV[3]) then
  return 0
end
local t = now()
local exp = N(t + tonumber(ARGV[4]))
redis.call('HSET', jk(id), 'locked_at', N(t), 'lease_expires_at', exp, 'updated_at', N(t))
redis.call('ZADD', B .. 'leases', exp, id)
add_event(id, 'prolonged', nil)
return 1
