-- Small single-job updates that must not resurrect a deleted job. ARGV[1] selects:
-- 'set' (id, field, value): progress / output / step_data;
-- 'reason' (reason, ids...): pending_reason on those of the ids still pending.
if ARGV[1] == 'set' then
  if redis.call('EXISTS', jk(ARGV[2])) == 0 then return 0 end
  redis.call('HSET', jk(ARGV[2]), ARGV[3], ARGV[4], 'updated_at', N(now()))
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
