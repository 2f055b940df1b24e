-- The latest finishes for dashboards, in one round trip: for each terminal status in ARGV[3..],
-- up to ARGV[2] jobs of fin:<status> finished at or after ARGV[1] (µs), newest first, with
-- their job type. Returns flat rows: status, id, finished_at (µs), job_type.
local since, limit = ARGV[1], tonumber(ARGV[2])
local out = {}
for i = 3, #ARGV do
  local st = ARGV[i]
  local rows = redis.call('ZREVRANGEBYSCORE', B .. 'fin:' .. st, '+inf', since, 'WITHSCORES',
    'LIMIT', 0, limit)
  for j = 1, #rows, 2 do
    local f = redis.call('HMGET', jk(rows[j]), 'job_type', 'status')
    if f[1] and f[2] == st then
      out[#out + 1] = st; out[#out + 1] = rows[j]; out[#out + 1] = rows[j + 1]
      out[#out + 1] = f[1]
    end
  end
end
return out
