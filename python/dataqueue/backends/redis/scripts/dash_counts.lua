-- Jobs per (type, status) for dashboards, from the counts the write scripts keep in cnt (see
-- "dashboard counts" in lib.lua): a read of that hash, a walk of the processing jobs (as many as
-- the workers run; at most PROCESSING_WALK, beyond that the cells are lower bounds) and at most
-- TYPE_PROBES probes for each type's oldest pending job. Completed = the rest of type:<type>.
-- ARGV: statuses... Returns flat rows: type, status, count, capped (0/1), blocked, oldest
-- pending created_at ('' if unknown); only non-zero cells.
local PROCESSING_WALK = 10000
local TYPE_PROBES = 200
local ck = B .. 'cnt'
-- A field of cnt is "<kind>:<type>" (kind: a counted status or 'blocked'); nil, nil for "_v".
local function cell(field) return string.match(field, '^(%l+):(.*)$') end

-- A queue written before the counts were kept: count once, from the status indexes.
if redis.call('HEXISTS', ck, '_v') == 0 then
  -- Types already named (cnt's fields, the legacy set) keep a pending:<type> field even when
  -- none of their jobs is counted, so a type whose jobs all completed stays listed.
  local acc = {}
  local old = redis.call('HKEYS', ck)
  for i = 1, #old do
    local _, t = cell(old[i])
    if t then acc['pending:' .. t] = 0 end
  end
  for _, t in ipairs(redis.call('SMEMBERS', B .. 'types')) do acc['pending:' .. t] = 0 end
  for st in pairs(COUNTED) do
    local sk = B .. 'st:' .. st
    local n = redis.call('ZCARD', sk)
    for start = 0, n - 1, 5000 do
      for _, id in ipairs(redis.call('ZRANGE', sk, start, start + 4999)) do
        local f = redis.call('HMGET', jk(id), 'job_type', 'loc')
        if f[1] then
          local c = st .. ':' .. f[1]
          acc[c] = (acc[c] or 0) + 1
          if st == 'pending' and f[2] == 'b' then
            c = 'blocked:' .. f[1]
            acc[c] = (acc[c] or 0) + 1
          end
        end
      end
    end
  end
  redis.call('DEL', ck)
  redis.call('HSET', ck, '_v', '1')
  for c, v in pairs(acc) do redis.call('HSET', ck, c, v) end
end

local want = {}
for i = 1, #ARGV do want[ARGV[i]] = true end
local cnt = {}
local flat = redis.call('HGETALL', ck)
for i = 1, #flat, 2 do
  local kind, t = cell(flat[i])
  if kind then
    cnt[t] = cnt[t] or {}
    cnt[t][kind] = math.max(0, tonumber(flat[i + 1]))
  end
end

local proc, pcapped = {}, 0
if want.processing or want.completed then
  local pk = B .. 'st:processing'
  local n = redis.call('ZCARD', pk)
  if n > PROCESSING_WALK then pcapped = 1; n = PROCESSING_WALK end
  for start = 0, n - 1, 1000 do
    for _, id in ipairs(redis.call('ZRANGE', pk, start, math.min(start + 999, n - 1))) do
      local t = redis.call('HGET', jk(id), 'job_type')
      if t then proc[t] = (proc[t] or 0) + 1 end
    end
  end
end

-- Ids grow with time, so a type's oldest pending job is its lowest id in st:pending: each type's
-- index is probed upward from the lowest pending id (older members are finished), a few
-- hundred members at most (then unknown).
local oldest = {}
if want.pending then
  local lo = redis.call('ZRANGE', B .. 'st:pending', 0, 0)[1]
  for t, c in pairs(cnt) do
    if (c.pending or 0) > 0 and lo then
      local ids = redis.call('ZRANGEBYSCORE', B .. 'type:' .. t, lo, '+inf', 'LIMIT', 0,
        TYPE_PROBES)
      for _, id in ipairs(ids) do
        local f = redis.call('HMGET', jk(id), 'status', 'created_at')
        if f[1] == 'pending' then
          oldest[t] = f[2] or ''
          break
        end
      end
    end
  end
end

-- Every type ever enqueued has a pending:<type> field (counts are never deleted); queues
-- written by earlier versions also keep the set `types`, which may name types cnt lacks.
local types = {}
for t in pairs(cnt) do types[#types + 1] = t end
for _, t in ipairs(redis.call('SMEMBERS', B .. 'types')) do
  if not cnt[t] then types[#types + 1] = t end
end
local out = {}
for _, t in ipairs(types) do
  local c = cnt[t] or {}
  local p = proc[t] or 0
  for i = 1, #ARGV do
    local st = ARGV[i]
    local n, capped = c[st] or 0, 0
    if st == 'processing' then
      n, capped = p, pcapped
    elseif st == 'completed' then
      n = redis.call('ZCARD', B .. 'type:' .. t) - p
      for s in pairs(COUNTED) do n = n - (c[s] or 0) end
      n, capped = math.max(0, n), pcapped
    end
    if n > 0 then
      out[#out + 1] = t; out[#out + 1] = st; out[#out + 1] = n; out[#out + 1] = capped
      out[#out + 1] = st == 'pending' and (c.blocked or 0) or 0
      out[#out + 1] = st == 'pending' and (oldest[t] or '') or ''
    end
  end
end
return out
