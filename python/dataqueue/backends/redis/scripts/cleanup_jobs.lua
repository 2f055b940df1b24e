-- Delete up to ARGV[2] terminal jobs whose status is one of ARGV[3..] and that finished more
-- than ARGV[1] µs ago (server time), with their indexes, events, idempotency key and tokens.
-- Returns how many were deleted.
local cutoff, batch = N(now() - tonumber(ARGV[1])), tonumber(ARGV[2])
local n = 0
for i = 3, #ARGV do
  local st = ARGV[i]
  local ids = redis.call('ZRANGEBYSCORE', B .. 'fin:' .. st, '-inf', '(' .. cutoff, 'LIMIT', 0,
    batch - n)
  for _, id in ipairs(ids) do
    local f = fields(id, { 'status', 'job_type', 'tags', 'idempotency_key',
      'depends_on_job_ids' })
    redis.call('ZREM', B .. 'fin:' .. st, id)
    if f.status == st then
      redis.call('ZREM', B .. 'st:' .. st, id)
      redis.call('ZREM', B .. 'all', id)
      if f.job_type then
        redis.call('ZREM', B .. 'type:' .. f.job_type, id)
        if COUNTED[st] then cnt_add(st .. ':' .. f.job_type, -1) end
      end
      if f.depends_on_job_ids then
        for _, p in ipairs(cjson.decode(f.depends_on_job_ids)) do
          redis.call('SREM', B .. 'rd:' .. N(p), id)
        end
      end
      if f.tags then
        for _, tg in ipairs(cjson.decode(f.tags)) do redis.call('ZREM', B .. 'tag:' .. tg, id) end
      end
      if f.idempotency_key and redis.call('GET', B .. 'idem:' .. f.idempotency_key) == id then
        redis.call('DEL', B .. 'idem:' .. f.idempotency_key)
      end
      for _, wp in ipairs(redis.call('SMEMBERS', B .. 'jwp:' .. id)) do
        redis.call('DEL', B .. 'wp:' .. wp)
        redis.call('ZREM', B .. 'wpto', wp)
        redis.call('ZREM', B .. 'wpall', wp)
      end
      redis.call('DEL', jk(id), B .. 'ev:' .. id, B .. 'rd:' .. id, B .. 'jwp:' .. id)
      redis.call('ZREM', B .. 'evidx', id)
      n = n + 1
    end
  end
  if n >= batch then break end
end
flush_counts()
-- Orphaned tokens: finished standalone tokens older than the cutoff, and tokens whose job is
-- gone.
local olds = redis.call('ZRANGEBYSCORE', B .. 'wpall', '-inf', '(' .. cutoff, 'LIMIT', 0, batch)
for _, wp in ipairs(olds) do
  local f = redis.call('HMGET', B .. 'wp:' .. wp, 'status', 'job_id')
  local orphan = (not f[1]) or (f[2] and redis.call('EXISTS', jk(f[2])) == 0)
    or ((not f[2]) and f[1] ~= 'waiting')
  if orphan then
    redis.call('DEL', B .. 'wp:' .. wp)
    redis.call('ZREM', B .. 'wpto', wp)
    redis.call('ZREM', B .. 'wpall', wp)
  end
end
return n
