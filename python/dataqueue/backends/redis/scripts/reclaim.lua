-- Reclaim processing jobs whose lease expired, or with no sign of life for
-- max(ARGV[1] µs, timeout_ms): back to pending if attempts remain, else failed (worker_lost).
local t = now()
local maxage = tonumber(ARGV[1])
local cands, seen = {}, {}
for _, id in ipairs(redis.call('ZRANGEBYSCORE', B .. 'leases', '-inf', N(t))) do
  if not seen[id] then seen[id] = true; cands[#cands + 1] = id end
end
for _, id in ipairs(redis.call('ZRANGEBYSCORE', B .. 'locked', '-inf', N(t - maxage))) do
  if not seen[id] then seen[id] = true; cands[#cands + 1] = id end
end
local n = 0
for _, id in ipairs(cands) do
  local f = fields(id, FAIL_FIELDS)
  local g = fields(id, { 'lease_expires_at', 'timeout_ms', 'run_at' })
  if f.status ~= 'processing' then
    redis.call('ZREM', B .. 'leases', id)
    redis.call('ZREM', B .. 'locked', id)
  else
    local expired = g.lease_expires_at and tonumber(g.lease_expires_at) <= t
    local alive = tonumber(redis.call('ZSCORE', B .. 'locked', id) or t)
    local limit = math.max(maxage, tonumber(g.timeout_ms or '0') * 1000)
    if expired or alive <= t - limit then
      n = n + 1
      if tonumber(f.attempts or '0') < tonumber(f.max_attempts or '1') then
        leave_processing(id, f.group_id)
        redis.call('HDEL', jk(id), 'locked_by', 'locked_at')
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
