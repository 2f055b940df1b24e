-- failed/processing → pending with a fresh attempt budget. ARGV: id. Returns 1/0.
local id = ARGV[1]
local k = jk(id)
local f = fields(id, { 'status', 'group_id', 'job_type', 'priority', 'loc', 'dep_drain',
  'run_at' })
if not ACCEPTS_RETRY[f.status or ''] then return 0 end
if f.status == 'processing' then
  leave_processing(id, f.group_id)
else
  unplace(id, f)
  redis.call('ZREM', B .. 'fin:failed', id)
end
redis.call('HDEL', k, 'locked_by', 'locked_at', 'next_attempt_at', 'resume')
redis.call('HSET', k, 'attempts', '0', 'last_retried_at', N(now()))
-- a worker still running the old attempt is fenced off, as on PostgreSQL
redis.call('HINCRBY', k, 'lock_version', 1)
set_status(id, f.status, 'pending', false, f.job_type)
if f.dep_drain then redis.call('SADD', B .. 'dj:' .. f.dep_drain, id) end
try_release(id)
add_event(id, 'retried', nil)
wake()
return 1
