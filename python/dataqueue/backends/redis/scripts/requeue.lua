-- Reclaim: processing jobs back to pending (the consumed attempt stays consumed), each fenced
-- by its lock version. ARGV: pairs (id, lock_version). Returns how many moved.
local n = 0
for i = 1, #ARGV, 2 do
  local id = ARGV[i]
  local f = fields(id, { 'status', 'lock_version', 'group_id', 'job_type', 'priority', 'loc',
    'dep_drain' })
  if ACCEPTS_RECLAIM[f.status or ''] and (f.lock_version or '0') == ARGV[i + 1] then
    leave_processing(id, f.group_id)
    redis.call('HINCRBY', jk(id), 'lock_version', 1)
    set_status(id, 'processing', 'pending', false, f.job_type)
    place(id, f, nil)
    n = n + 1
  end
end
wake()
return n
