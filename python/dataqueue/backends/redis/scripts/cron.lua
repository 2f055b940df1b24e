-- Cron schedules. ARGV[1] selects the operation:
-- 'add' (values JSON, name) → id, or error "DQ_CRON_EXISTS";
-- 'edit' (id, values JSON, clear JSON) → 1/0; 'status' (id, status) → 1/0; 'remove' (id) → 1/0;
-- 'fire' (id, expected next_run_at µs, new next_run_at µs or '') → 1 if a job was enqueued,
-- 0 if the occurrence was skipped (overlap), -1 if another caller already took it.
-- Values are strings already formatted by Python (times in µs).
local op = ARGV[1]
local t = now()
local function ck(id) return B .. 'cr:' .. id end
local function sync_due(id)
  local f = redis.call('HMGET', ck(id), 'status', 'next_run_at')
  if f[1] == 'active' and f[2] then
    redis.call('ZADD', B .. 'crdue', f[2], id)
  else
    redis.call('ZREM', B .. 'crdue', id)
  end
end
if op == 'add' then
  local name = ARGV[3]
  if redis.call('EXISTS', B .. 'crname:' .. name) == 1 then
    return redis.error_reply('DQ_CRON_EXISTS')
  end
  local id = N(redis.call('INCR', B .. 'cronid'))
  local h = { 'id', id, 'status', 'active', 'created_at', N(t), 'updated_at', N(t) }
  for k, v in pairs(cjson.decode(ARGV[2])) do
    h[#h + 1] = k
    h[#h + 1] = v
  end
  redis.call('HSET', ck(id), unpack(h))
  redis.call('SET', B .. 'crname:' .. name, id)
  redis.call('ZADD', B .. 'crons', id, id)
  sync_due(id)
  return id
end
local id = ARGV[2]
if redis.call('EXISTS', ck(id)) == 0 then return 0 end
if op == 'edit' then
  for k, v in pairs(cjson.decode(ARGV[3])) do redis.call('HSET', ck(id), k, v) end
  for _, k in ipairs(cjson.decode(ARGV[4])) do redis.call('HDEL', ck(id), k) end
  redis.call('HSET', ck(id), 'updated_at', N(t))
  sync_due(id)
  return 1
elseif op == 'status' then
  redis.call('HSET', ck(id), 'status', ARGV[3], 'updated_at', N(t))
  sync_due(id)
  return 1
elseif op == 'remove' then
  local name = redis.call('HGET', ck(id), 'schedule_name')
  if name then redis.call('DEL', B .. 'crname:' .. name) end
  redis.call('DEL', ck(id))
  redis.call('ZREM', B .. 'crons', id)
  redis.call('ZREM', B .. 'crdue', id)
  return 1
end
-- fire: compare-and-set on next_run_at makes each occurrence enqueue exactly once.
local c = redis.call('HGETALL', ck(id))
local f = {}
for i = 1, #c, 2 do f[c[i]] = c[i + 1] end
if f.status ~= 'active' or f.next_run_at ~= ARGV[3] or tonumber(f.next_run_at) > t then
  return -1
end
local enq = 0
local last = f.last_job_id and redis.call('HGET', jk(f.last_job_id), 'status')
if f.allow_overlap == '1' or not (last and ACTIVE[last]) then
  local jid = N(redis.call('INCR', B .. 'id'))
  local backoff = nil
  if f.retry_backoff then backoff = f.retry_backoff == '1' end
  insert_job(jid, {
    job_type = f.job_type, payload = f.payload, max_attempts = tonumber(f.max_attempts),
    priority = tonumber(f.priority), timeout_ms = f.timeout_ms and tonumber(f.timeout_ms),
    fk = f.force_kill_on_timeout == '1', tags = f.tags and cjson.decode(f.tags),
    retry_delay = f.retry_delay and tonumber(f.retry_delay), retry_backoff = backoff,
    retry_delay_max = f.retry_delay_max and tonumber(f.retry_delay_max),
    dlt = f.dead_letter_job_type }, nil)
  redis.call('HSET', ck(id), 'last_job_id', jid)
  enq = 1
end
redis.call('HSET', ck(id), 'last_enqueued_at', N(t), 'updated_at', N(t))
if ARGV[4] ~= '' then
  redis.call('HSET', ck(id), 'next_run_at', ARGV[4])
else
  redis.call('HDEL', ck(id), 'next_run_at')
end
sync_due(id)
wake()
return enq
