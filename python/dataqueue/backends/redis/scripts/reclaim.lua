-- Find processing jobs whose lease expired, or with no sign of life (claim, prolong or
-- heartbeat) for max(ARGV[1] µs, timeout_ms); return their ids (at most ARGV[2]). The
-- decision (requeue or fail) is taken in Python (dataqueue/maintenance_async.py).
-- `leases` holds every processing job, a set bounded by the workers' concurrency.
local t = now()
local maxage = tonumber(ARGV[1])
local limit = tonumber(ARGV[2])
local out = {}
for _, id in ipairs(redis.call('ZRANGE', B .. 'leases', 0, -1)) do
  local g = fields(id, { 'status', 'lease_expires_at', 'timeout_ms', 'locked_at', 'beat_at' })
  if g.status ~= 'processing' then
    redis.call('ZREM', B .. 'leases', id)
  elseif #out < limit then
    local expired = g.lease_expires_at and tonumber(g.lease_expires_at) <= t
    local alive = math.max(tonumber(g.locked_at or t), tonumber(g.beat_at or 0))
    local age = math.max(maxage, tonumber(g.timeout_ms or '0') * 1000)
    if expired or alive <= t - age then out[#out + 1] = id end
  end
end
return out
