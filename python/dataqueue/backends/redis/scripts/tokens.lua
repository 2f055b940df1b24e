-- Token operations. ARGV[1] selects: 'create' (id, job_id|'', timeout µs|'', tags JSON|'',
-- and from a handler the holder: worker, lock_version), 'complete' (id, 'S' .. output JSON or
-- 'N'), 'expire'. Returns 1/0, or a count for expire; 'create' returns the token's hash, or 0
-- when a holder is given and no longer holds the processing job (SPEC §10.2).
local op = ARGV[1]
local t = now()
if op == 'create' then
  local id, job, timeout, tags = ARGV[2], ARGV[3], ARGV[4], ARGV[5]
  if ARGV[6] then
    local f = fields(job, { 'status', 'locked_by', 'lock_version' })
    if not (f.status == 'processing' and f.locked_by == ARGV[6] and f.lock_version == ARGV[7]) then
      return 0
    end
  end
  local h = { 'id', id, 'status', 'waiting', 'created_at', N(t) }
  if job ~= '' then
    h[#h + 1] = 'job_id'; h[#h + 1] = job
    redis.call('SADD', B .. 'jwp:' .. job, id)
  end
  if timeout ~= '' then
    local at = N(t + tonumber(timeout))
    h[#h + 1] = 'timeout_at'; h[#h + 1] = at
    redis.call('ZADD', B .. 'wpto', at, id)
  end
  if tags ~= '' then h[#h + 1] = 'tags'; h[#h + 1] = tags end
  redis.call('HSET', B .. 'wp:' .. id, unpack(h))
  redis.call('ZADD', B .. 'wpall', N(t), id)
  return redis.call('HGETALL', B .. 'wp:' .. id)
elseif op == 'complete' then
  local id = ARGV[2]
  local key = B .. 'wp:' .. id
  local f = redis.call('HMGET', key, 'status', 'job_id')
  if f[1] ~= 'waiting' then return 0 end
  redis.call('HSET', key, 'status', 'completed', 'completed_at', N(t))
  if string.sub(ARGV[3], 1, 1) == 'S' then redis.call('HSET', key, 'output', string.sub(ARGV[3], 2)) end
  redis.call('ZREM', B .. 'wpto', id)
  resume_waiters(id, f[2])
  wake()
  return 1
else
  local n = 0
  for _, id in ipairs(redis.call('ZRANGEBYSCORE', B .. 'wpto', '-inf', N(t), 'LIMIT', 0, MAINTENANCE_CHUNK)) do
    local key = B .. 'wp:' .. id
    local f = redis.call('HMGET', key, 'status', 'job_id')
    redis.call('ZREM', B .. 'wpto', id)
    if f[1] == 'waiting' then
      redis.call('HSET', key, 'status', 'timed_out')
      resume_waiters(id, f[2])
      n = n + 1
    end
  end
  wake()
  return n
end
