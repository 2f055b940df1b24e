-- Complete jobs, fenced by (worker, lock_version). ARGV: groups of four
-- (id, worker, lock_version, output) where output is 'K' (keep) or 'S' .. JSON.
-- Completion releases dependents whose last prerequisite this was. Returns 1/0 per item.
local res = {}
local t = now()
for i = 1, #ARGV, 4 do
  local id, worker, lv, out = ARGV[i], ARGV[i + 1], ARGV[i + 2], ARGV[i + 3]
  local k = jk(id)
  local f = fields(id, { 'status', 'locked_by', 'lock_version', 'group_id', 'dep_drain' })
  if f.status == 'processing' and f.locked_by == worker and f.lock_version == lv then
    if string.sub(out, 1, 1) == 'S' then
      redis.call('HSET', k, 'completed_at', N(t), 'status', 'completed', 'updated_at', N(t),
        'output', string.sub(out, 2))
    else
      redis.call('HSET', k, 'completed_at', N(t), 'status', 'completed', 'updated_at', N(t))
    end
    redis.call('HDEL', k, 'step_data', 'wait_until', 'wait_token_id', unpack(LOCK_FIELDS))
    leave_processing(id, f.group_id, true)
    set_status(id, 'processing', 'completed', true)
    if f.dep_drain then redis.call('SREM', B .. 'dj:' .. f.dep_drain, id) end
    redis.call('ZADD', B .. 'fin:completed', N(t), id)
    add_event(id, 'completed', nil)
    local deps = redis.call('SMEMBERS', B .. 'rd:' .. id)
    for _, d in ipairs(deps) do
      if redis.call('HGET', jk(d), 'status') == 'pending' then
        local u = redis.call('HINCRBY', jk(d), 'unmet', -1)
        if u <= 0 then
          redis.call('HDEL', jk(d), 'unmet')
          try_release(d)
        end
      end
    end
    res[#res + 1] = 1
  else
    res[#res + 1] = 0
  end
end
wake()
return res
