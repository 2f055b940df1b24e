-- Record a failure. ARGV: id, fenced ('1'/'0'), worker, lock_version, message,
-- reason ('' = none; reasons are fixed enum names), retry delay (s).
-- Returns {applied, will_retry, dead_letter_id (0 = none)}.
local id = ARGV[1]
local f = fields(id, FAIL_FIELDS)
if ARGV[2] == '1' then
  if not (f.status == 'processing' and f.locked_by == ARGV[3] and f.lock_version == ARGV[4]) then
    return { 0, 0, 0 }
  end
elseif not (f.status == 'processing' or f.status == 'pending') then
  return { 0, 0, 0 }
end
local reason = ARGV[6] ~= '' and ARGV[6] or nil
local will_retry, dl = do_fail(id, f, ARGV[5], reason, tonumber(ARGV[7]))
wake()
return { 1, will_retry and 1 or 0, dl or 0 }
