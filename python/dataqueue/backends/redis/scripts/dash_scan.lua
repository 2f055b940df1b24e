-- One step of the dashboard's jobs-table walk, on the server (a page of redis-py replies costs
-- far more than the walk): up to ARGV[3] ids of index B .. ARGV[1], newest first, below
-- ARGV[2] ('+inf' or '(<id>'), pre-filtered by what is exact here — statuses ARGV[4] (comma
-- list, '' = any), job type ARGV[5] ('T' .. type, '' = any), created_at range [ARGV[6], ARGV[7])
-- in µs ('' = open), ARGV[8] = '1': has an error (its last message is returned); it stops once
-- ARGV[9] rows passed. The caller applies the rest of the filter (tags, priority, run_at, the
-- error text) to what comes back, and continues after the last id walked.
-- Returns one JSON array: [ids walked, last id walked ('' if none), 1 if the index ended, rows],
-- each row [id, status, job_type, priority, run_at, tags, created_at, last error message]
-- (absent fields null).
local idx, hi, take = B .. ARGV[1], ARGV[2], tonumber(ARGV[3])
local statuses = nil
if ARGV[4] ~= '' then
  statuses = {}
  for st in string.gmatch(ARGV[4], '[^,]+') do statuses[st] = true end
end
local jt = ARGV[5] ~= '' and string.sub(ARGV[5], 2) or nil
local lo = ARGV[6] ~= '' and tonumber(ARGV[6]) or nil
local up = ARGV[7] ~= '' and tonumber(ARGV[7]) or nil
local need_error = ARGV[8] == '1'
local want_rows = tonumber(ARGV[9])
local NAMES = { 'status', 'job_type', 'priority', 'run_at', 'tags', 'created_at' }
if need_error then NAMES[7] = 'error_history' end
local rows = {}
local walked, last, ended = 0, nil, 0
local null = cjson.null
local function v(x) if x then return x end return null end
while walked < take and #rows < want_rows do
  local want = math.min(500, take - walked)
  local ids = redis.call('ZREVRANGEBYSCORE', idx, hi, '-inf', 'LIMIT', 0, want)
  if #ids < want then ended = 1 end
  if #ids == 0 then break end
  for _, id in ipairs(ids) do
    walked = walked + 1
    last = id
    local f = redis.call('HMGET', jk(id), unpack(NAMES))
    local ok = f[1] and (not statuses or statuses[f[1]]) and (not jt or f[2] == jt)
    if ok and (lo or up) then
      local c = tonumber(f[6] or '')
      ok = c and (not lo or c >= lo) and (not up or c < up)
    end
    local msg = null
    if ok and need_error then
      ok = false
      if f[7] then
        local h = cjson.decode(f[7])
        local e = h[#h]
        if type(e) == 'table' and e.message ~= nil and e.message ~= cjson.null then
          msg = type(e.message) == 'string' and e.message or cjson.encode(e.message)
          ok = true
        end
      end
    end
    if ok then
      rows[#rows + 1] = { id, f[1], f[2], v(f[3]), v(f[4]), v(f[5]), v(f[6]), msg }
      if #rows >= want_rows then break end
    end
  end
  if #rows >= want_rows then
    if last ~= ids[#ids] then ended = 0 end -- stopped inside the step: more may follow
    break
  end
  hi = '(' .. last
  if ended == 1 then break end
end
local rows_json = #rows > 0 and cjson.encode(rows) or '[]'
return '[' .. walked .. ',' .. cjson.encode(last or '') .. ',' .. ended .. ',' .. rows_json .. ']'
