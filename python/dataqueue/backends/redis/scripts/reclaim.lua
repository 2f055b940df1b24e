-- Reclaim processing jobs whose lease expired, or with no sign of life (claim, prolong or
-- heartbeat) for max(ARGV[1] µs, timeout_ms): back to pending if attempts remain, else failed
-- (worker_lost). `leases` holds every processing job, a set bounded by the workers' concurrency.
local t = now()
local maxage = tonumber(ARGV[1])
local n = 0
for _, id in ipairs(redis.call('ZRANGE', B .. 'leases', 0, -1)) do
  local f = fields(id, FAIL_FIELDS)
  local g = fields(id, { 'lease_expires_at', 'timeout_ms', 'locked_at', 'beat_at' })
  if f.status ~= 'processing' then
    redis.call('ZREM', B .. 'leases', id)
  else
    local expired = g.lease_expires_at and tonumber(g.lease_expires_at) <= t
    local alive = math.max(tonumber(g.locked_at or t), tonumber(g.beat_at or 0))
    local limit = math.max(maxage, tonumber(g.timeout_ms or '0') * 1000)
    if expired or alive <= t - limit then
      n = n + 1
      if tonumber(f.attempts or '0') < tonumber(f.max_attempts or '1') then
        leave_processing(id, f.group_id)
        set_status(id, 'processing', 'pending')
        place(id, f, nil)
      else
        do_fail(id, f, 'worker lost: the job was reclaimed after its lease expired with no '
          .. 'attempts left', 'worker_lost', 0)
      end
    end
  end
end
wake()
return n
