-- Edit pending jobs ARGV[4..]. ARGV[1]: JSON object of new values (payload as JSON text under
-- payload_json, run_at in µs); ARGV[2]: JSON list of fields to clear (run_at cleared = now);
-- ARGV[3]: the edited event's metadata.
-- run_at / priority changes move the job between the delayed and ready sets; tag changes
-- re-index it (and its tag-drain counts). Returns the ids edited.
local set = cjson.decode(ARGV[1])
local clear = cjson.decode(ARGV[2])
local meta = ARGV[3]
local clears = {}
for _, c in ipairs(clear) do clears[c] = true end
local SIMPLE = { max_attempts = 'n', timeout_ms = 'n', retry_delay = 'n', retry_delay_max = 'n',
  retry_backoff = 'b', dead_letter_job_type = 's' }
local out = {}
for i = 4, #ARGV do
  local id = ARGV[i]
  local k = jk(id)
  local f = fields(id, { 'status', 'loc', 'job_type', 'group_id', 'dep_drain', 'priority',
    'tags', 'run_at' })
  if f.status == 'pending' then
    local moved = false
    if set.payload_json then redis.call('HSET', k, 'payload', set.payload_json) end
    for name, kind in pairs(SIMPLE) do
      local v = set[name]
      if v ~= nil and v ~= cjson.null then
        if kind == 'n' then
          v = N(v)
        elseif kind == 'b' then
          v = v and '1' or '0'
        end
        redis.call('HSET', k, name, v)
      elseif clears[name] then
        redis.call('HDEL', k, name)
      end
    end
    if set.tags ~= nil or clears.tags then
      local old = f.tags and cjson.decode(f.tags) or {}
      if #old > 0 then
        drain_adjust(old, -1)
        for _, tg in ipairs(old) do redis.call('ZREM', B .. 'tag:' .. tg, id) end
      end
      if set.tags and #set.tags > 0 then
        f.tags = cjson.encode(set.tags)
        redis.call('HSET', k, 'tags', f.tags)
        for _, tg in ipairs(set.tags) do redis.call('ZADD', B .. 'tag:' .. tg, id, id) end
        drain_adjust(set.tags, 1)
      else
        f.tags = nil
        redis.call('HDEL', k, 'tags')
      end
      moved = true
    end
    if set.priority ~= nil then
      f.priority = N(set.priority)
      redis.call('HSET', k, 'priority', f.priority)
      moved = true
    end
    if set.run_at ~= nil or clears.run_at then
      f.run_at = set.run_at and N(set.run_at) or N(now())
      redis.call('HSET', k, 'run_at', f.run_at)
      moved = true
    end
    if moved then
      -- re-place so the ready/delayed/blocked sets reflect the new run_at, priority and tags
      unplace(id, f)
      try_release(id)
    end
    redis.call('HSET', k, 'updated_at', N(now()))
    add_event(id, 'edited', meta)
    out[#out + 1] = id
  end
end
wake()
return out
