-- Jobs per (type, status) for dashboards, bounded: for each cell walk the smaller of type:<t>
-- and st:<status> from its NEWEST member (where active jobs are), checking membership in the
-- other, until cap+1 matches or 2*cap members were examined; then the count is a lower bound
-- (capped). Pending cells also count blocked jobs (placed 'b': waiting on prerequisites or a
-- drain) among the matches, and look up the type's oldest pending job in a few probes.
-- ARGV: cap, statuses... Returns flat rows: type, status, count, capped (0/1), blocked,
-- oldest pending created_at ('' if unknown).
local cap = tonumber(ARGV[1])
local budget = 2 * cap
local out = {}
for _, t in ipairs(redis.call('SMEMBERS', B .. 'types')) do
  local tk = B .. 'type:' .. t
  local tn = redis.call('ZCARD', tk)
  for i = 2, #ARGV do
    local st = ARGV[i]
    local sk = B .. 'st:' .. st
    local sn = tn > 0 and redis.call('ZCARD', sk) or 0
    if sn > 0 then
      local small, other, n = tk, sk, tn
      if sn < tn then small, other, n = sk, tk, sn end
      local count, blocked, seen, start = 0, 0, 0, 0
      while count <= cap and seen < budget and start < n do
        local ids = redis.call('ZREVRANGE', small, start, start + 499)
        if #ids == 0 then break end
        start = start + #ids
        for _, id in ipairs(ids) do
          seen = seen + 1
          if redis.call('ZSCORE', other, id) then
            count = count + 1
            if st == 'pending' and redis.call('HGET', jk(id), 'loc') == 'b' then
              blocked = blocked + 1
            end
            if count > cap then break end
          end
          if seen >= budget then break end
        end
      end
      if count > 0 then
        local capped = (count > cap or seen < n) and 1 or 0
        if count > cap then count = cap end
        local oldest = ''
        if st == 'pending' then
          -- ids grow with time: the oldest pending job of the type is the first match of an
          -- ascending walk of the smaller set; give up (unknown) after a few hundred probes.
          local probe = redis.call('ZRANGE', small, 0, 299)
          for _, id in ipairs(probe) do
            local f = redis.call('HMGET', jk(id), 'status', 'job_type', 'created_at')
            if f[1] == 'pending' and f[2] == t then
              oldest = f[3] or ''
              break
            end
          end
        end
        out[#out + 1] = t; out[#out + 1] = st; out[#out + 1] = count
        out[#out + 1] = capped; out[#out + 1] = blocked; out[#out + 1] = oldest
      end
    end
  end
end
return out
