-- Claim up to ARGV[2] jobs for worker ARGV[1]: priority DESC then id ASC, across the ready sets
-- of the wanted types. ARGV[3]: lease (µs); ARGV[4]: group cap (0 = none); ARGV[5]: JSON list
-- of job types or '' for all. Blocked jobs are never in a ready set and a capped group shows
-- only its head, so nothing ahead of an eligible job can starve it.
-- Returns one JSON array of the claimed jobs' hashes (objects of strings), in claim order: one
-- bulk string and one parse for the client however many jobs it holds.
--
-- Per job this costs an HGETALL (the checks and the reply), one HSET (the claim's fields, and
-- loc 'h' in place of the ready set's 'r': no HDEL in the common case) and the event's RPUSH;
-- the index writes (ready set, status sets, leases) and the event ids are one command per
-- call, not per job.
local worker, limit, lease, cap = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
local t = now()
local ts, lease_at = N(t), N(t + lease)

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

local function hash_of(id)
  local flat = redis.call('HGETALL', jk(id))
  local h = {}
  for i = 1, #flat, 2 do h[flat[i]] = flat[i + 1] end
  return h
end

local out = {}
-- Per type: off[jt] counts the entries of rdy:<jt> before the cursor that stay in the set for
-- now (heads of groups at their cap, skipped for this call, and jobs this call claimed, whose
-- removal is one ZREM at the end: later[jt]); win[jt] holds entries read ahead from there,
-- at[jt] the next one to look at; head[jt] is the first claimable entry.
local off, win, at, head, later = {}, {}, {}, {}, {}

local function find_head(jt)
  head[jt] = nil
  local rk = B .. 'rdy:' .. jt
  while true do
    local e, p = win[jt], at[jt]
    if e == nil or p > #e then
      local o = off[jt] or 0
      local width = math.min(math.max(limit - #out, 1), 128)
      e = redis.call('ZRANGE', rk, o, o + width - 1, 'WITHSCORES')
      p = 1
      if #e == 0 then
        win[jt] = nil
        if o == 0 then -- drop an emptied type
          redis.call('SREM', B .. 'rtypes', jt)
          RTYPES_SEEN[jt] = nil
        end
        return
      end
      win[jt] = e
    end
    at[jt] = p + 2
    local id = N(tonumber(e[p]))
    local f = hash_of(id)
    local st = f.status
    local removed = true
    if not (st == 'pending' or st == 'failed' or st == 'waiting') then
      ready_rem(id, jt, f.group_id) -- stale entry
      redis.call('HDEL', jk(id), 'loc')
    elseif st ~= 'waiting' and not f.resume
        and tonumber(f.attempts or '0') >= tonumber(f.max_attempts) then
      ready_rem(id, jt, f.group_id) -- no attempts left: never claimable
      redis.call('HDEL', jk(id), 'loc')
    elseif st == 'pending' and f.dep_drain and not drain_ok(f.dep_drain, f.tags) then
      ready_rem(id, jt, f.group_id) -- a tag drain filled up again: block it
      redis.call('SADD', B .. 'dwait:' .. f.dep_drain, id)
      redis.call('HSET', jk(id), 'loc', 'b')
      cnt_add('blocked:' .. jt, 1)
    elseif cap > 0 and f.group_id and gcount(f.group_id) >= cap then
      off[jt] = (off[jt] or 0) + 1
      removed = false
    else
      head[jt] = { score = tonumber(e[p + 1]), m = e[p], id = id, g = f.group_id, f = f }
      return
    end
    -- Removing a grouped entry may put the group's next job into the set: read again.
    if removed and f.group_id then win[jt] = nil end
  end
end

local from = {}        -- from[old status]: ids leaving that status set
local claimed = {}     -- ids, in claim order
local del = {}         -- fields the job being claimed loses (reused: usually none)
local function drop(f, name)
  if f[name] then del[#del + 1] = name; f[name] = nil end
end
local function claim_one(id, m, jt, g, f)
  local k = jk(id)
  if g then
    ready_rem(id, jt, g) -- at once: it may promote the group's next job into the ready set
    win[jt] = nil
  else
    local l = later[jt]
    if l == nil then l = {}; later[jt] = l end
    l[#l + 1] = m
    off[jt] = (off[jt] or 0) + 1
  end
  local old = f.status
  local lv = N(tonumber(f.lock_version or '0') + 1)
  -- loc 'h' (held): in no ready, delayed or blocked set; written here rather than deleted
  local h = { 'status', 'processing', 'updated_at', ts, 'locked_by', worker,
    'locked_at', ts, 'lease_expires_at', lease_at, 'lock_version', lv, 'loc', 'h' }
  f.status, f.updated_at, f.locked_by, f.locked_at, f.lease_expires_at, f.lock_version =
    'processing', ts, worker, ts, lease_at, lv
  f.loc = nil -- internal: not part of the reply
  drop(f, 'pending_reason')
  if old == 'waiting' then
    drop(f, 'wait_until')
    drop(f, 'wait_token_id')
  elseif f.resume then
    drop(f, 'resume')
  else
    local a = tonumber(f.attempts or '0')
    if a > 0 then h[#h + 1] = 'last_retried_at'; h[#h + 1] = ts; f.last_retried_at = ts end
    f.attempts = N(a + 1)
    h[#h + 1] = 'attempts'
    h[#h + 1] = f.attempts
  end
  if not f.started_at then h[#h + 1] = 'started_at'; h[#h + 1] = ts; f.started_at = ts end
  redis.call('HSET', k, unpack(h))
  if #del > 0 then
    redis.call('HDEL', k, unpack(del))
    del = {}
  end
  local ids = from[old]
  if ids == nil then ids = {}; from[old] = ids end
  ids[#ids + 1] = id
  claimed[#claimed + 1] = id
  if COUNTED[old] then cnt_add(old .. ':' .. jt, -1) end
  -- what set_status does besides the status sets: a failed job becomes active again
  if not ACTIVE[old] and f.tags and has_drains() then drain_adjust(cjson.decode(f.tags), 1) end
  if g then redis.call('HINCRBY', B .. 'gact', g, 1) end
  return cjson.encode(f)
end

for _, jt in ipairs(types) do find_head(jt) end
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
    out[#out + 1] = claim_one(best.id, best.m, bt, best.g, best.f)
    if best.g then gcache[best.g] = gcount(best.g) + 1 end
  end
  find_head(bt)
end

if #claimed > 0 then
  for jt, members in pairs(later) do bulk('ZREM', B .. 'rdy:' .. jt, members) end
  for old, ids in pairs(from) do bulk('ZREM', B .. 'st:' .. old, ids) end
  local st, leases = {}, {}
  for i, id in ipairs(claimed) do
    st[2 * i - 1], st[2 * i] = id, id
    leases[2 * i - 1], leases[2 * i] = lease_at, id
  end
  bulk('ZADD', B .. 'st:processing', st)
  bulk('ZADD', B .. 'leases', leases)
  reserve_events(#claimed)
  for _, id in ipairs(claimed) do add_event(id, 'processing', nil) end
end
-- Short of the limit: the worker may now wait for wake-ups (see wake()).
if #out < limit then redis.call('SET', B .. 'idle', '1') end
flush_counts()
return '[' .. table.concat(out, ',') .. ']'
