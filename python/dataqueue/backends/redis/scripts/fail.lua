-- Apply a failure plan. ARGV: id, fenced ('1'/'0'), worker, lock_version, message,
-- reason ('' = none), retry delay in seconds ('' = terminal), dead-letter type ('' = none),
-- dead-letter payload JSON, error-history entry JSON.
-- Fenced: only the holder of (worker, lock_version) of a processing job; unfenced: a job at
-- lock_version in a status ACCEPTS_FAIL_UNFENCED lists.
-- Returns {applied, will_retry, dead_letter_id (0 = none)}.
local id = ARGV[1]
local f = fields(id, FAIL_FIELDS)
if (f.lock_version or '0') ~= ARGV[4] then return { 0, 0, 0 } end
if ARGV[2] == '1' then
  if not (ACCEPTS_FAIL[f.status] and f.locked_by == ARGV[3]) then return { 0, 0, 0 } end
elseif not ACCEPTS_FAIL_UNFENCED[f.status or ''] then
  return { 0, 0, 0 }
end
local plan = { msg = ARGV[5], reason = ARGV[6] ~= '' and ARGV[6] or nil,
  delay = ARGV[7] ~= '' and tonumber(ARGV[7]) or nil, dlq = ARGV[8] ~= '' and ARGV[8] or nil,
  envelope = ARGV[9], entry = ARGV[10] }
local will_retry, dl = do_fail(id, f, plan)
wake()
return { 1, will_retry and 1 or 0, dl or 0 }
