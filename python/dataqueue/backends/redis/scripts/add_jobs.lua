-- Insert a batch of jobs atomically. ARGV[1]: JSON array of job specs (see insert_job),
-- ARGV[2]: the insertion order ('' = input order);
-- `deps` may hold batch placeholders -(k+1). Idempotency keys resolve to existing ids (also
-- within the batch). Unknown prerequisites → error reply "DQ_UNKNOWN_PREREQ <ids>", nothing
-- written. Returns {comma-separated ids, string of 1/0 created flags} (compact to parse).
-- Unique jobs (`uq` key, `ua` while active, `uf` for N µs): a key held by a job still in its
-- scope (kept on the holder: uq_active, uq_until) resolves to the holder, like an idempotency key.
local specs = cjson.decode(ARGV[1])
local ids, created, by_key, by_ukey = {}, {}, {}, {}
local fresh = 0
local function holds(holder)
  local f = fields(holder, { 'status', 'next_attempt_at', 'uq_active', 'uq_until' })
  if not f.status then return false end
  if f.uq_until and tonumber(f.uq_until) <= now() then return false end
  if f.uq_active and not (ACTIVE[f.status] or (f.status == 'failed' and f.next_attempt_at)) then
    return false
  end
  return true
end
for i, s in ipairs(specs) do
  local key = opt_str(s.ikey)
  local ukey = opt_str(s.uq)
  local hit = nil
  if key then
    hit = by_key[key] or redis.call('GET', B .. 'idem:' .. key)
  end
  if not hit and ukey then
    hit = by_ukey[ukey]
    if not hit then
      local holder = redis.call('GET', B .. 'uniq:' .. ukey)
      if holder and holds(holder) then hit = holder end
    end
  end
  if hit then
    ids[i] = hit
    created[i] = false
  else
    fresh = fresh + 1
    ids[i] = fresh
    created[i] = true
    if key then by_key[key] = { fresh } end
    if ukey then by_ukey[ukey] = { fresh } end
  end
end
-- by_key holds either an existing id (string) or {n} = the n-th fresh job of this batch.
for i = 1, #specs do
  if type(ids[i]) == 'table' then ids[i] = ids[i][1]; created[i] = 'dup' end
end
-- A placeholder that resolves to the entry itself (through an idempotency key) would make a
-- job its own prerequisite: refused, as the PostgreSQL backend does.
for i, s in ipairs(specs) do
  if s.deps and s.deps ~= cjson.null then
    for _, p in ipairs(s.deps) do
      if p < 0 and ids[-p] == ids[i] then
        return redis.error_reply('DQ_SELF_DEP ' .. (i - 1))
      end
    end
  end
end
-- Each prerequisite outside this batch's fresh jobs is read once: a missing one refuses the
-- batch; one already cancelled or failed for good is remembered, to cascade after the insert.
local missing, seen_pre, dead = {}, {}, {}
for i, s in ipairs(specs) do
  if created[i] == true and s.deps and s.deps ~= cjson.null then
    for _, p in ipairs(s.deps) do
      local pid = nil
      if p > 0 then pid = N(p) elseif created[-p] == false then pid = ids[-p] end
      if pid and not seen_pre[pid] then
        seen_pre[pid] = true
        local pf = fields(pid, { 'status', 'next_attempt_at' })
        if not pf.status then
          missing[#missing + 1] = pid
        elseif pf.status == 'cancelled' or (pf.status == 'failed' and not pf.next_attempt_at) then
          dead[#dead + 1] = pid
        end
      end
    end
  end
end
if #missing > 0 then
  return redis.error_reply('DQ_UNKNOWN_PREREQ ' .. table.concat(missing, ','))
end
local first = 0
if fresh > 0 then first = redis.call('INCRBY', B .. 'id', fresh) - fresh end
EV_BLOCK = math.max(fresh, 1)
-- Turn fresh ordinals into real ids.
local final = {}
for i = 1, #specs do
  if created[i] == true or created[i] == 'dup' then
    final[i] = N(first + ids[i])
  else
    final[i] = ids[i]
  end
end
-- Insert in the batch plan's topological order (ARGV[2], 0-based, from the Rust core) so every
-- prerequisite of the batch exists before its dependents; input order without placeholders.
local order = {}
if ARGV[2] and ARGV[2] ~= '' then
  for k, idx in ipairs(cjson.decode(ARGV[2])) do order[k] = idx + 1 end
else
  for i = 1, #specs do order[i] = i end
end
-- This batch's new jobs: a prerequisite among them is known to be unmet without reading it.
local fresh = {}
for i = 1, #specs do
  if created[i] == true then fresh[final[i]] = true end
end
for _, i in ipairs(order) do
  local s = specs[i]
  if created[i] == true then
    if s.deps and s.deps ~= cjson.null then
      local seen, out = {}, {}
      for _, p in ipairs(s.deps) do
        local r = p < 0 and tonumber(final[-p]) or p
        if not seen[r] then
          seen[r] = true
          out[#out + 1] = r
        end
      end
      s.deps = out
    end
    insert_job(final[i], s, nil, fresh)
    local ukey = opt_str(s.uq)
    if ukey then
      redis.call('SET', B .. 'uniq:' .. ukey, final[i])
      if s.ua then redis.call('HSET', jk(final[i]), 'uq_active', '1') end
      if s.uf and s.uf ~= cjson.null then
        redis.call('HSET', jk(final[i]), 'uq_until', N(now() + s.uf))
      end
    end
  end
end
-- Prerequisites already cancelled or failed for good: their new dependents can never run and
-- are cancelled at once, transitively (the cascade a prerequisite's end would have done).
for _, pid in ipairs(dead) do cascade(pid) end
wake()
local flags = {}
for i = 1, #specs do flags[i] = created[i] == true and '1' or '0' end
return { table.concat(final, ','), table.concat(flags) }
