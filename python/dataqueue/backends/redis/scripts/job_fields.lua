-- Small single-job updates that must not resurrect a deleted job. ARGV[1] selects:
-- 'set' (id, worker, lock_version, field, value): progress / output / step_data, fenced like
-- an outcome (SPEC §10.2): only the worker holding this attempt of the processing job may
-- write; a stale worker's write changes nothing and returns 0;
-- 'reason' (reason, ids...): pending_reason on those of the ids still pending.
if ARGV[1] == 'set' then
  local f = fields(ARGV[2], { 'status', 'locked_by', 'lock_version' })
  if not (f.status == 'processing' and f.locked_by == ARGV[3] and f.lock_version == ARGV[4]) then
    return 0
  end
  redis.call('HSET', jk(ARGV[2]), ARGV[5], ARGV[6], 'updated_at', N(now()))
  return 1
end
local n = 0
for i = 3, #ARGV do
  if redis.call('HGET', jk(ARGV[i]), 'status') == 'pending' then
    redis.call('HSET', jk(ARGV[i]), 'pending_reason', ARGV[2])
    n = n + 1
  end
end
return n
