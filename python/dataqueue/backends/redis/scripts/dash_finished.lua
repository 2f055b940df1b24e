-- The latest finishes for dashboards, in one round trip: the newest ARGV[2] entries at or after
-- ARGV[1] (µs) across fin:<status> for the terminal statuses ARGV[3..], merged by finish time
-- (each index is already in order: a merge, no sort); only those are read (job type). Returns
-- one JSON array of [status, id, finished_at (µs), job_type] rows, all strings (one bulk string
-- is far cheaper for the client to parse than a reply of many).
local since, limit = ARGV[1], tonumber(ARGV[2])
local lists, pos = {}, {}
for i = 3, #ARGV do
  local rows = redis.call('ZREVRANGEBYSCORE', B .. 'fin:' .. ARGV[i], '+inf', since, 'WITHSCORES',
    'LIMIT', 0, limit)
  lists[#lists + 1] = { st = ARGV[i], rows = rows }
  pos[#lists] = 1
end
local out = {}
local taken = 0
while taken < limit do
  local best, bs, bid = nil, nil, nil
  for k, l in ipairs(lists) do
    local p = pos[k]
    if p < #l.rows then
      local s, id = tonumber(l.rows[p + 1]), tonumber(l.rows[p])
      if not best or s > bs or (s == bs and id > bid) then best, bs, bid = k, s, id end
    end
  end
  if not best then break end
  local l, p = lists[best], pos[best]
  pos[best] = p + 2
  taken = taken + 1
  local f = redis.call('HMGET', jk(l.rows[p]), 'job_type', 'status')
  if f[1] and f[2] == l.st then out[#out + 1] = { l.st, l.rows[p], l.rows[p + 1], f[1] } end
end
if #out == 0 then return '[]' end
return cjson.encode(out)
