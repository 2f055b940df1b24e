-- The latest finishes for dashboards, in one round trip: the newest ARGV[2] entries at or after
-- ARGV[1] (µs) across fin:<status> for the terminal statuses ARGV[3..], merged by finish time;
-- only those are read (job type). Returns flat rows: status, id, finished_at (µs), job_type.
local since, limit = ARGV[1], tonumber(ARGV[2])
local cand = {}
for i = 3, #ARGV do
  local st = ARGV[i]
  local rows = redis.call('ZREVRANGEBYSCORE', B .. 'fin:' .. st, '+inf', since, 'WITHSCORES',
    'LIMIT', 0, limit)
  for j = 1, #rows, 2 do
    cand[#cand + 1] = { st, rows[j], rows[j + 1], tonumber(rows[j + 1]), tonumber(rows[j]) }
  end
end
table.sort(cand, function(a, b)
  if a[4] ~= b[4] then return a[4] > b[4] end
  return a[5] > b[5]
end)
local out = {}
for k = 1, math.min(#cand, limit) do
  local c = cand[k]
  local f = redis.call('HMGET', jk(c[2]), 'job_type', 'status')
  if f[1] and f[2] == c[1] then
    out[#out + 1] = c[1]; out[#out + 1] = c[2]; out[#out + 1] = c[3]; out[#out + 1] = f[1]
  end
end
return out
