-- Claim up to ARGV[2] jobs for worker ARGV[1]: priority DESC then id ASC, across the ready sets
-- of the wanted types. ARGV[3]: lease (µs); ARGV[4]: group cap (0 = none); ARGV[5]: JSON list
-- of job types or '' for all. Blocked jobs are never in a ready set and a capped group shows
-- only its head, so nothing ahead of an eligible job can starve it.
-- Returns one JSON object (the job's hash) per claimed job: cheap for the client to parse.
local worker, limit, lease, cap = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
local t = now()

promote_due()

local types
if ARGV[5] == '' then
  types = redis.call('SMEMBERS', B .. 'rtypes')
else
  types = cjson.decode(ARGV[5])
end

local gcache = {}
local function gcount(g)
  if gcache[g] == nil then gcache[g] = tonumber(redis.call('HGET', B .. 'gact', g) or '0') end
  return gcache[g]
end

-- off[jt]: entries at the head of rdy:<jt> known to be capped groups for this call (caps only
-- fill up during a claim, so they stay skipped); head[jt]: the first claimable entry.
local off, head = {}, {}
local HEAD_FIELDS = { 'status', 'group_id', 'dep_drain', 'tags', 'attempts', 'max_attempts',
  'resume', 'started_at', 'lock_version' }
local function find_head(jt)
  head[jt] = nil
  local rk = B .. 'rdy:' .. jt
  local o = off[jt] or 0
  local width = 0 -- look at one entry first: usually the head is claimable
  while true do
    local e = redis.call('ZRANGE', rk, o, o + width, 'WITHSCORES')
    width = 15
    if #e == 0 then
      off[jt] = o
      if o == 0 then -- drop an emptied type
        redis.call('SREM', B .. 'rtypes', jt)
        RTYPES_SEEN[jt] = nil
      end
      return
    end
    local removed = false
    for i = 1, #e, 2 do
      local id = N(tonumber(e[i]))
      local f = fields(id, HEAD_FIELDS)
      local st = f.status
      if not (st == 'pending' or st == 'failed' or st == 'waiting') then
        ready_rem(id, jt, f.group_id) -- stale entry
        redis.call('HDEL', jk(id), 'loc')
        removed = true
      elseif st ~= 'waiting' and not f.resume
          and tonumber(f.attempts or '0') >= tonumber(f.max_attempts) then
        ready_rem(id, jt, f.group_id) -- no attempts left: never claimable
        redis.call('HDEL', jk(id), 'loc')
        removed = true
      elseif st == 'pending' and f.dep_drain and not drain_ok(f.dep_drain, f.tags) then
        ready_rem(id, jt, f.group_id) -- a tag drain filled up again: block it
        redis.call('SADD', B .. 'dwait:' .. f.dep_drain, id)
        redis.call('HSET', jk(id), 'loc', 'b')
        cnt_add('blocked:' .. jt, 1)
        removed = true
      elseif cap > 0 and f.group_id and gcount(f.group_id) >= cap then
        o = o + 1
      else
        off[jt] = o
        head[jt] = { score = tonumber(e[i + 1]), m = e[i], id = id, g = f.group_id, f = f }
        return
      end
      if removed then break end
    end
  end
end

local function claim_one(id, jt, g, f)
  local k = jk(id)
  ready_rem(id, jt, g)
  local h = { 'status', 'processing', 'updated_at', N(t), 'locked_by', worker,
    'locked_at', N(t), 'lease_expires_at', N(t + lease),
    'lock_version', N(tonumber(f.lock_version or '0') + 1) }
  local del = { 'loc', 'pending_reason' }
  if f.status == 'waiting' then
    del[3] = 'wait_until'
    del[4] = 'wait_token_id'
  elseif f.resume then
    del[3] = 'resume'
  else
    local a = tonumber(f.attempts or '0')
    if a > 0 then h[#h + 1] = 'last_retried_at'; h[#h + 1] = N(t) end
    h[#h + 1] = 'attempts'
    h[#h + 1] = N(a + 1)
  end
  if not f.started_at then h[#h + 1] = 'started_at'; h[#h + 1] = N(t) end
  redis.call('HSET', k, unpack(h))
  redis.call('HDEL', k, unpack(del))
  set_status(id, f.status, 'processing', true, jt)
  if g then redis.call('HINCRBY', B .. 'gact', g, 1) end
  redis.call('ZADD', B .. 'leases', N(t + lease), id)
  add_event(id, 'processing', nil)
end

for _, jt in ipairs(types) do find_head(jt) end
local out = {}
while #out < limit do
  local best, bt = nil, nil
  for _, jt in ipairs(types) do
    local h = head[jt]
    if h and (not best or h.score < best.score or (h.score == best.score and h.m < best.m)) then
      best, bt = h, jt
    end
  end
  if not best then break end
  if cap > 0 and best.g and gcount(best.g) >= cap then
    off[bt] = (off[bt] or 0) + 1 -- its group filled up during this claim
  else
    claim_one(best.id, bt, best.g, best.f)
    if best.g then gcache[best.g] = gcount(best.g) + 1 end
    local flat = redis.call('HGETALL', jk(best.id))
    local obj = {}
    for i = 1, #flat, 2 do obj[flat[i]] = flat[i + 1] end
    out[#out + 1] = cjson.encode(obj)
  end
  find_head(bt)
end
flush_counts()
return out
