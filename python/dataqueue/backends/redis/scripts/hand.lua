-- Worker ARGV[1] stops claiming: its offer is withdrawn (see hand_off), and the jobs handed to
-- it that it never started go back to pending with the attempt their claim spent: ARGV[2], the
-- ones it received and kept, and those of its hand list (never received) except ARGV[3], the
-- ones it started since its last claim. Both are comma-separated "<id>:<lock_version>".
-- Returns how many jobs went back.
local worker = ARGV[1]
local started = {}
for e in string.gmatch(ARGV[3], '[^,]+') do started[e] = true end
local hk = B .. 'hl:' .. worker
local entries = redis.call('LRANGE', hk, 0, -1)
for e in string.gmatch(ARGV[2], '[^,]+') do entries[#entries + 1] = e end
redis.call('HDEL', B .. 'offers', worker)
redis.call('DEL', hk)
local n = 0
for _, e in ipairs(entries) do
  local id, lv = string.match(e, '^(%d+):(%d+)$')
  if id and not started[e] then
    started[e] = true -- listed twice: once is enough
    local f = fields(id, { 'status', 'locked_by', 'lock_version', 'locked_at', 'started_at',
      'group_id', 'job_type', 'priority', 'loc', 'dep_drain' })
    if f.status == 'processing' and f.locked_by == worker and f.lock_version == lv then
      local k = jk(id)
      redis.call('HINCRBY', k, 'attempts', -1)
      -- a first run's start was set by this claim: it did not start after all
      if f.started_at == f.locked_at then redis.call('HDEL', k, 'started_at') end
      leave_processing(id, f.group_id)
      redis.call('HINCRBY', k, 'lock_version', 1)
      set_status(id, 'processing', 'pending', false, f.job_type)
      place(id, f, nil)
      n = n + 1
    end
  end
end
wake()
return n
