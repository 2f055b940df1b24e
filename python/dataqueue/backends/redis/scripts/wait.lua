-- Park a processing job (fenced): ARGV id, worker, lock_version, wait_until (µs or ''),
-- token ('T' .. id or 'N'), step_data JSON, waiting-event metadata JSON. Returns 1/0.
local id = ARGV[1]
local k = jk(id)
local f = fields(id, { 'status', 'locked_by', 'lock_version', 'group_id', 'job_type',
  'priority' })
if not (ACCEPTS_WAIT[f.status or ''] and f.locked_by == ARGV[2] and f.lock_version == ARGV[3]) then
  return 0
end
leave_processing(id, f.group_id)
redis.call('HDEL', k, 'locked_by', 'locked_at', 'wait_until', 'wait_token_id')
redis.call('HSET', k, 'step_data', ARGV[6])
set_status(id, 'processing', 'waiting', false, f.job_type)
local due = nil
if ARGV[4] ~= '' then
  due = tonumber(ARGV[4])
  redis.call('HSET', k, 'wait_until', ARGV[4])
end
if string.sub(ARGV[5], 1, 1) == 'T' then
  local token = string.sub(ARGV[5], 2)
  redis.call('HSET', k, 'wait_token_id', token)
  local ts = redis.call('HGET', B .. 'wp:' .. token, 'status')
  -- A token that finished before the job parked on it resumes the job at once; otherwise
  -- the job is one of the token's waiters (a token made by q.create_token has no job).
  if ts and ts ~= 'waiting' then
    due = now()
  else
    redis.call('SADD', B .. 'wpw:' .. token, id)
  end
end
if due then
  delay_add(id, due)
  redis.call('HSET', k, 'loc', 'd')
end
add_event(id, 'waiting', ARGV[7])
wake()
return 1
