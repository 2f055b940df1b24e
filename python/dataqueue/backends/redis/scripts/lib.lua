-- Shared helpers, after the constants chunk rendered from dataqueue/lifecycle.py (ACTIVE,
-- ACCEPTS_*, MSG_*). The loader (python/.../redis/loader.py) puts them before each script's own
-- file (EVALSHA), or once before all of them as a function library (Redis 7 FCALL), each script
-- then a function of (KEYS, ARGV): either way every call starts with begin(KEYS), which resets
-- the per-call state below (a library's upvalues outlive its calls).
--
-- KEYS[1] is the queue's base key ("<prefix>{<tag>}:"); every key a script touches is built
-- from it, so all of them carry the queue's hash tag and live in one cluster slot.
-- Absent values are absent hash fields (never a sentinel string). Times are server time in
-- integer microseconds (redis TIME), formatted with N() so they never turn into 1e+15.

local B -- KEYS[1]
local NOW = nil
local WAKE = 0
local DWAKE = false -- the earliest delayed job changed (see wake())
local FIN = 0 -- jobs this script finished (completed, cancelled, failed for good)
local HAS_DRAINS = nil
local RTYPES_SEEN = {}

local function now()
  if not NOW then
    local t = redis.call('TIME')
    NOW = tonumber(t[1]) * 1000000 + tonumber(t[2])
  end
  return NOW
end

-- Integers (ids, µs times) print with '%d': glibc's '%.0f' goes through its arbitrary-precision
-- float printer, a few per cent of a claim's server CPU.
local function N(x)
  if x == math.floor(x) and x > -9e15 and x < 9e15 then return string.format('%d', x) end
  return string.format('%.0f', x)
end
local NOW_S = nil -- N(now()), formatted once per script
local function now_s()
  if not NOW_S then NOW_S = N(now()) end
  return NOW_S
end
local function jk(id) return B .. 'j:' .. id end
local function pad(id) return string.format('%016d', tonumber(id)) end
local function js(s) return cjson.encode(s) end

-- ISO 8601 (UTC, microseconds) from epoch microseconds; civil-from-days (H. Hinnant).
local function iso(us)
  local secs = math.floor(us / 1000000)
  local micro = us - secs * 1000000
  local days = math.floor(secs / 86400)
  local rem = secs - days * 86400
  local z = days + 719468
  local era = math.floor(z / 146097)
  local doe = z - era * 146097
  local yoe = math.floor((doe - math.floor(doe / 1460) + math.floor(doe / 36524)
    - math.floor(doe / 146096)) / 365)
  local y = yoe + era * 400
  local doy = doe - (365 * yoe + math.floor(yoe / 4) - math.floor(yoe / 100))
  local mp = math.floor((5 * doy + 2) / 153)
  local d = doy - math.floor((153 * mp + 2) / 5) + 1
  local m = mp < 10 and mp + 3 or mp - 9
  if m <= 2 then y = y + 1 end
  return string.format('%04d-%02d-%02dT%02d:%02d:%02d.%06d+00:00', y, m, d,
    math.floor(rem / 3600), math.floor((rem % 3600) / 60), rem % 60, micro)
end

-- HMGET into a table keyed by field name (absent fields stay nil).
local function fields(id, names)
  local v = redis.call('HMGET', jk(id), unpack(names))
  local t = {}
  for i, n in ipairs(names) do
    if v[i] then t[n] = v[i] end
  end
  return t
end

-- One command for many arguments (chunked: unpack is limited by the Lua stack). `args` of a
-- ZADD holds (score, member) pairs, so the chunk size is even.
local function bulk(cmd, key, args)
  for i = 1, #args, 1000 do
    redis.call(cmd, key, unpack(args, i, math.min(i + 999, #args)))
  end
end

-- Index entries that no script reads back in the call that writes them (all, type:<type>,
-- evidx), and st:pending / tag:<tag> for new jobs, are collected per key and written by
-- flush_later(): one ZADD per key and script instead of one per job. flush_counts() (so wake())
-- calls it, and so do the readers of st:* and tag:* in a script that may have inserted jobs
-- (set_status, register_drain), so no script sees its own inserts half-indexed.
local LATER = {}
local function zadd_later(key, score, member)
  local l = LATER[key]
  if l == nil then l = {}; LATER[key] = l end
  l[#l + 1] = score
  l[#l + 1] = member
end
local function flush_later()
  if next(LATER) == nil then return end
  for key, args in pairs(LATER) do bulk('ZADD', key, args) end
  LATER = {}
end

-- Event ids come from evid; a script writing many events reserves them in one block.
-- `first`: the job's first event (its insert), whose evidx entry can wait for flush_later().
local EV_NEXT, EV_LAST, EV_BLOCK = 1, 0, 1
local function add_event(id, etype, meta, first)
  if EV_NEXT > EV_LAST then
    EV_LAST = redis.call('INCRBY', B .. 'evid', EV_BLOCK)
    EV_NEXT = EV_LAST - EV_BLOCK + 1
    EV_BLOCK = 1
  end
  local eid = EV_NEXT
  EV_NEXT = EV_NEXT + 1
  local t = now_s()
  local len = redis.call('RPUSH', B .. 'ev:' .. id, '{"id":' .. N(eid) .. ',"job_id":' .. id
    .. ',"event_type":"' .. etype .. '","created_at":' .. t .. ',"metadata":'
    .. (meta or 'null') .. '}')
  -- evidx: job id → time of its oldest event (a list starts with its first push)
  if first then
    zadd_later(B .. 'evidx', t, id)
  elseif len == 1 then
    redis.call('ZADD', B .. 'evidx', t, id)
  end
end

-- -- dashboard counts ----------------------------------------------------------------------------
-- cnt (HASH): "<status>:<type>" → how many jobs of the type are in that status, for the COUNTED
-- statuses, and "blocked:<type>" → its pending jobs waiting on prerequisites or a tag drain (loc
-- 'b'); "_v" marks a hash kept since the queue's first job (else dash_counts rebuilds it once).
-- Processing jobs (as many as the workers run) are counted by walking st:processing and completed
-- ones as the rest of type:<type>, so a claim adds one HINCRBY per script and a completion none.
-- Changes are summed per script and written once, by flush_counts().
-- COUNTED: lifecycle.COUNTED_STATUSES (constants chunk)
local CNT = {}
local function cnt_add(field, d) CNT[field] = (CNT[field] or 0) + d end
local function flush_counts()
  flush_later()
  for f, d in pairs(CNT) do
    if d ~= 0 then redis.call('HINCRBY', B .. 'cnt', f, d) end
  end
  CNT = {}
end

-- The next `n` events get their ids from one INCRBY.
local function reserve_events(n)
  if EV_NEXT > EV_LAST then EV_BLOCK = math.max(n, 1) end
end

local hand_off -- defined below (it claims): wake() calls it

-- Tell idle workers (subscribed to the queue's wake channel) that a job may be claimable.
-- One message per script, however many jobs it made ready; every idle worker wakes, whatever
-- job types it handles.
-- Also writes the script's count changes: every script that changes a status calls it last.
-- Only when some worker waits for it: `idle` is set by a claim that came back short (and by
-- a new subscription, see wait_for_work), i.e. by a worker about to rely on wake-ups, and the
-- first message after it deletes it (every subscriber gets that message; a woken worker that
-- finds too little claims short again). Workers kept busy by a deep queue (a DAG releasing
-- dependents on every completion) are not woken for nothing. The message says whether the
-- earliest delayed job changed: when not (WAKE_READY), a waiter keeps the timer it armed.
local function wake()
  if WAKE > 0 then
    flush_later() -- a hand-off's claim moves jobs between the index sets
    -- Jobs handed to every waiting worker's free slots need no wake-up; anything else (a
    -- worker's slots filled, a job no offer may take, a new earliest delayed job) does.
    local quiet = hand_off()
    if (DWAKE or not quiet) and redis.call('GETDEL', B .. 'idle') then
      redis.call('PUBLISH', B .. 'wake', DWAKE and 'd' or WAKE_READY)
    end
  end
  -- wait_for_job listens here: one message per script, not per job.
  if FIN > 0 then redis.call('PUBLISH', B .. 'done', '1') end
  flush_counts()
end

-- -- tag drains --------------------------------------------------------------------------------
-- A drain is the sorted JSON list of the tags a job waits to drain. dcnt[drain] counts active
-- jobs (pending/processing/waiting) whose tags are a superset of it, kept exact on every status
-- change, so checking a drain is one HGET instead of a scan of every active job.

local function has_drains()
  if HAS_DRAINS == nil then HAS_DRAINS = redis.call('EXISTS', B .. 'dcnt') == 1 end
  return HAS_DRAINS
end

local function tagset(tags)
  local s = {}
  for _, t in ipairs(tags) do s[t] = true end
  return s
end

local function superset(set, tags)
  for _, t in ipairs(tags) do
    if not set[t] then return false end
  end
  return true
end

local function drain_key(tags)
  local c = {}
  for i, t in ipairs(tags) do c[i] = t end
  table.sort(c)
  return cjson.encode(c)
end

local function matching_drains(tags)
  local out, seen = {}, {}
  local set = tagset(tags)
  for _, t in ipairs(tags) do
    for _, d in ipairs(redis.call('SMEMBERS', B .. 'dbt:' .. t)) do
      if not seen[d] then
        seen[d] = true
        if superset(set, cjson.decode(d)) then out[#out + 1] = d end
      end
    end
  end
  return out
end

local function register_drain(d)
  if redis.call('HEXISTS', B .. 'dcnt', d) == 1 then return end
  flush_later() -- it counts from st:* and tag:*
  local tags = cjson.decode(d)
  local best, bestn = nil, nil
  for _, t in ipairs(tags) do
    local n = redis.call('ZCARD', B .. 'tag:' .. t)
    if not bestn or n < bestn then best, bestn = t, n end
  end
  -- Count once, from the smaller of: the jobs carrying the rarest tag, or the active jobs.
  local sources = { B .. 'tag:' .. best }
  local active = 0
  for st in pairs(ACTIVE) do active = active + redis.call('ZCARD', B .. 'st:' .. st) end
  if active < bestn then
    sources = { B .. 'st:pending', B .. 'st:processing', B .. 'st:waiting' }
  end
  local c = 0
  for _, src in ipairs(sources) do
    for _, id in ipairs(redis.call('ZRANGE', src, 0, -1)) do
      local f = redis.call('HMGET', jk(id), 'status', 'tags')
      if f[1] and ACTIVE[f[1]] and f[2] and superset(tagset(cjson.decode(f[2])), tags) then
        c = c + 1
      end
    end
  end
  redis.call('HSET', B .. 'dcnt', d, c)
  for _, t in ipairs(tags) do redis.call('SADD', B .. 'dbt:' .. t, d) end
  HAS_DRAINS = true
end

-- Is the drain clear for this (active) job? It may count itself.
local function drain_ok(drain, tags_json)
  local c = tonumber(redis.call('HGET', B .. 'dcnt', drain) or '0')
  if c <= 0 then return true end
  if c > 1 or not tags_json then return false end
  return superset(tagset(cjson.decode(tags_json)), cjson.decode(drain))
end

-- -- ready sets ---------------------------------------------------------------------------------
-- rdy:<type> orders by (-priority, zero-padded id): exact priority-then-FIFO for any int32
-- priority. A grouped job sits in grdy:<type>:<group>; only each group's head is in rdy:<type>,
-- so a capped group costs the claimer one skipped entry, however many jobs it holds.

local function gkey(jt, g) return B .. 'grdy:' .. #jt .. ':' .. jt .. ':' .. g end

local function ready_add(id, jt, g, prio)
  local m = pad(id)
  local score = N(-tonumber(prio or 0))
  local rk = B .. 'rdy:' .. jt
  if g then
    local gk = gkey(jt, g)
    local old = redis.call('ZRANGE', gk, 0, 0)[1]
    redis.call('ZADD', gk, score, m)
    local new = redis.call('ZRANGE', gk, 0, 0, 'WITHSCORES')
    if new[1] ~= old then
      if old then redis.call('ZREM', rk, old) end
      redis.call('ZADD', rk, new[2], new[1])
    end
  else
    redis.call('ZADD', rk, score, m)
  end
  if not RTYPES_SEEN[jt] then
    redis.call('SADD', B .. 'rtypes', jt)
    RTYPES_SEEN[jt] = true
  end
  WAKE = WAKE + 1
end

local function ready_rem(id, jt, g)
  local m = pad(id)
  local rk = B .. 'rdy:' .. jt
  if g then
    local gk = gkey(jt, g)
    local head = redis.call('ZRANGE', gk, 0, 0)[1]
    redis.call('ZREM', gk, m)
    if head == m then
      redis.call('ZREM', rk, m)
      local new = redis.call('ZRANGE', gk, 0, 0, 'WITHSCORES')
      if new[1] then redis.call('ZADD', rk, new[2], new[1]) end
    end
  else
    redis.call('ZREM', rk, m)
  end
  -- rtypes may keep a type whose ready set just emptied: the claim script drops it lazily.
end

-- Where a not-running job sits: loc r = ready set, d = delayed zset, b = blocked; h = held
-- (claimed: in none of them; written by the claim's HSET instead of an HDEL of loc) and an
-- absent loc mean the same.
local PLACE_FIELDS = { 'loc', 'job_type', 'group_id', 'dep_drain', 'priority' }

local function unplace(id, f)
  if f.loc == 'r' then
    ready_rem(id, f.job_type, f.group_id)
  elseif f.loc == 'd' then
    redis.call('ZREM', B .. 'delayed', id)
  elseif f.loc == 'b' then
    if f.dep_drain then redis.call('SREM', B .. 'dwait:' .. f.dep_drain, id) end
    cnt_add('blocked:' .. f.job_type, -1)
  end
  if f.loc then redis.call('HDEL', jk(id), 'loc') end
  f.loc = nil
end

-- Delay job `id` until `at`. Idle workers sleep until the earliest delayed job: a new earliest
-- one wakes them (the script's wake()) so that they re-arm their timers.
local function delay_add(id, at)
  local head = redis.call('ZRANGE', B .. 'delayed', 0, 0, 'WITHSCORES')
  if head[2] == nil or at < tonumber(head[2]) then
    WAKE = WAKE + 1
    DWAKE = true
  end
  redis.call('ZADD', B .. 'delayed', N(at), id)
end

-- Put a runnable job where claimers find it: delayed until `at`, else ready now.
local function place(id, f, at)
  if f.loc == 'b' then cnt_add('blocked:' .. f.job_type, -1) end
  if at and at > now() then
    delay_add(id, at)
    redis.call('HSET', jk(id), 'loc', 'd')
  else
    ready_add(id, f.job_type, f.group_id, f.priority)
    redis.call('HSET', jk(id), 'loc', 'r')
  end
end

-- A pending job that waits (prerequisites, a tag drain): in no claim set, counted as blocked
-- once.
local function mark_blocked(id, f)
  if f.loc ~= 'b' then
    redis.call('HSET', jk(id), 'loc', 'b')
    cnt_add('blocked:' .. f.job_type, 1)
  end
end

-- A pending, blocked job whose prerequisites may now be met: move it to ready/delayed.
local function try_release(w)
  local f = fields(w, { 'status', 'unmet', 'dep_drain', 'tags', 'run_at', 'job_type',
    'group_id', 'priority', 'loc' })
  if f.status ~= 'pending' then
    if f.dep_drain then redis.call('SREM', B .. 'dwait:' .. f.dep_drain, w) end
    return
  end
  if f.loc == 'r' or f.loc == 'd' then return end
  if tonumber(f.unmet or '0') > 0 then
    mark_blocked(w, f)
    return
  end
  if f.dep_drain then
    if not drain_ok(f.dep_drain, f.tags) then
      redis.call('SADD', B .. 'dwait:' .. f.dep_drain, w)
      mark_blocked(w, f)
      return
    end
    redis.call('SREM', B .. 'dwait:' .. f.dep_drain, w)
  end
  place(w, f, tonumber(f.run_at))
end

-- Completing the jobs `done` (ids) releases their dependents: each one's unmet count drops by
-- how many of its prerequisites are among them (one HINCRBY, whatever the dependent's status:
-- only a pending job waits on it), and a pending job left with none is placed as try_release
-- does, from one HMGET. It keeps unmet '0' (as good as absent) instead of paying an HDEL.
-- Ungrouped jobs made ready go into their ready set in one ZADD per type.
local RELEASE_FIELDS = { 'status', 'dep_drain', 'tags', 'run_at', 'job_type', 'group_id',
  'priority', 'loc' }
local function release_dependents(done)
  local rd = {}
  for i, id in ipairs(done) do rd[i] = B .. 'rd:' .. id end
  -- One EXISTS tells whether any of these jobs has dependents (usually none).
  if redis.call('EXISTS', unpack(rd)) == 0 then return end
  local hits, order = {}, {}
  for i = 1, #rd do
    for _, d in ipairs(redis.call('SMEMBERS', rd[i])) do
      local c = hits[d]
      if c then
        hits[d] = c + 1
      else
        hits[d] = 1
        order[#order + 1] = d
      end
    end
  end
  local ready = {} -- rdy:<type> -> (score, member) pairs
  for _, d in ipairs(order) do
    local k = jk(d)
    if redis.call('HINCRBY', k, 'unmet', -hits[d]) <= 0 then
      local f = fields(d, RELEASE_FIELDS)
      local jt = f.job_type
      if f.status ~= 'pending' or f.loc == 'r' or f.loc == 'd' then
        if f.status then redis.call('HDEL', k, 'unmet') else redis.call('DEL', k) end
      elseif f.dep_drain and not drain_ok(f.dep_drain, f.tags) then
        redis.call('SADD', B .. 'dwait:' .. f.dep_drain, d)
        if f.loc ~= 'b' then
          redis.call('HSET', k, 'loc', 'b')
          cnt_add('blocked:' .. jt, 1)
        end
      else
        if f.dep_drain then redis.call('SREM', B .. 'dwait:' .. f.dep_drain, d) end
        if f.loc == 'b' then cnt_add('blocked:' .. jt, -1) end
        local at = tonumber(f.run_at)
        if at and at > now() then
          delay_add(d, at)
          redis.call('HSET', k, 'loc', 'd')
        else
          if f.group_id then
            ready_add(d, jt, f.group_id, f.priority)
          else
            local rk = B .. 'rdy:' .. jt
            local l = ready[rk]
            if l == nil then
              l = {}
              ready[rk] = l
              if not RTYPES_SEEN[jt] then
                redis.call('SADD', B .. 'rtypes', jt)
                RTYPES_SEEN[jt] = true
              end
            end
            l[#l + 1] = N(-tonumber(f.priority or 0))
            l[#l + 1] = pad(d)
            WAKE = WAKE + 1
          end
          redis.call('HSET', k, 'loc', 'r')
        end
      end
    end
  end
  for rk, args in pairs(ready) do bulk('ZADD', rk, args) end
end

local function drain_adjust(tags, delta)
  if not has_drains() then return end
  for _, d in ipairs(matching_drains(tags)) do
    local c = redis.call('HINCRBY', B .. 'dcnt', d, delta)
    if delta < 0 and c <= 1 then
      for _, w in ipairs(redis.call('SMEMBERS', B .. 'dwait:' .. d)) do try_release(w) end
    end
  end
end

-- Move a job between statuses, keeping the status index and the drain counts exact.
-- `hash_done`: the caller already wrote status and updated_at in its own HSET; `jt`: the job's
-- type if the caller knows it (else read when a count changes).
local function set_status(id, old, new, hash_done, jt)
  flush_later() -- a job inserted by this script may be moving out of st:pending
  local k = jk(id)
  if new == 'completed' or new == 'cancelled' then FIN = FIN + 1 end
  if COUNTED[old] or COUNTED[new] then
    jt = jt or redis.call('HGET', k, 'job_type')
    if COUNTED[old] then cnt_add(old .. ':' .. jt, -1) end
    if COUNTED[new] then cnt_add(new .. ':' .. jt, 1) end
  end
  if old then redis.call('ZREM', B .. 'st:' .. old, id) end
  redis.call('ZADD', B .. 'st:' .. new, id, id)
  if not hash_done then redis.call('HSET', k, 'status', new, 'updated_at', now_s()) end
  if (ACTIVE[old] or false) ~= (ACTIVE[new] or false) and has_drains() then
    local tj = redis.call('HGET', k, 'tags')
    if tj then drain_adjust(cjson.decode(tj), ACTIVE[new] and 1 or -1) end
  end
end

local function gact_dec(g)
  if g then
    local c = redis.call('HINCRBY', B .. 'gact', g, -1)
    if c <= 0 then redis.call('HDEL', B .. 'gact', g) end
    WAKE = WAKE + 1
  end
end

local LOCK_FIELDS = { 'lease_expires_at', 'locked_by', 'locked_at', 'beat_at' }
-- `hash_done`: the caller deletes LOCK_FIELDS itself (merged into its own HDEL).
local function leave_processing(id, g, hash_done)
  gact_dec(g)
  redis.call('ZREM', B .. 'leases', id)
  if not hash_done then redis.call('HDEL', jk(id), unpack(LOCK_FIELDS)) end
end

-- -- insert -------------------------------------------------------------------------------------

local function opt_num(v) if v ~= nil and v ~= cjson.null then return N(v) end return nil end
local function opt_str(v) if v ~= nil and v ~= cjson.null then return v end return nil end
local function opt_bool(v)
  if v == true then return '1' elseif v == false then return '0' end
  return nil
end

-- The added event's metadata, built by one concatenation; `deps_json`, `tags_json`: the JSON the
-- job's hash stores (nil when none). JT_JSON: job type → its JSON string, per call.
local JT_JSON = {}
local function added_meta(s, deps_json, tags_json)
  local jt = JT_JSON[s.job_type]
  if not jt then
    jt = js(s.job_type)
    JT_JSON[s.job_type] = jt
  end
  local dtags = s.dtags and #s.dtags > 0
  local dep = ''
  if deps_json or dtags then
    dep = ',"depends_on":{"job_ids":' .. (deps_json or '[]') .. ',"tags":'
      .. (dtags and js(s.dtags) or '[]') .. '}'
  end
  return '{"job_type":' .. jt .. ',"payload":' .. s.payload .. ',"tags":' .. (tags_json or 'null')
    .. ',"idempotency_key":' .. (opt_str(s.ikey) and js(s.ikey) or 'null') .. dep .. '}'
end

-- Write a new pending job. `s`: job_type, payload (JSON text), max_attempts, priority,
-- run_at (µs), timeout_ms, fk, tags, ikey, retry_delay, retry_backoff, retry_delay_max, dlt,
-- gid, gtier, deps (resolved ids), dtags. `meta`: the added event's metadata (default built).
-- Defaults (attempts 0, lock_version 0, force_kill false) are absent fields.
-- `fresh`: ids this script inserted (pending, so unmet prerequisites without reading them).
local function insert_job(id, s, meta, fresh)
  local k = jk(id)
  local t = now()
  local ts = now_s()
  local run_at = (s.run_at ~= nil and s.run_at ~= cjson.null) and s.run_at or t
  local prio = (s.priority ~= nil and s.priority ~= cjson.null) and s.priority or DEFAULT_PRIORITY
  local h = { 'id', id, 'job_type', s.job_type, 'payload', s.payload, 'status', 'pending',
    'created_at', ts, 'updated_at', ts, 'run_at', run_at == t and ts or N(run_at),
    'priority', N(prio),
    'max_attempts', N(s.max_attempts or DEFAULT_MAX_ATTEMPTS) }
  local n = #h
  if s.fk == true then h[n + 1] = 'force_kill_on_timeout'; h[n + 2] = '1'; n = n + 2 end
  local v = opt_num(s.timeout_ms)
  if v then h[n + 1] = 'timeout_ms'; h[n + 2] = v; n = n + 2 end
  local tags = (s.tags and s.tags ~= cjson.null and #s.tags > 0) and s.tags or nil
  local tags_json = tags and cjson.encode(tags) or nil
  if tags_json then h[n + 1] = 'tags'; h[n + 2] = tags_json; n = n + 2 end
  local ikey = opt_str(s.ikey)
  if ikey then h[n + 1] = 'idempotency_key'; h[n + 2] = ikey; n = n + 2 end
  v = opt_num(s.retry_delay)
  if v then h[n + 1] = 'retry_delay'; h[n + 2] = v; n = n + 2 end
  v = opt_bool(s.retry_backoff)
  if v then h[n + 1] = 'retry_backoff'; h[n + 2] = v; n = n + 2 end
  v = opt_num(s.retry_delay_max)
  if v then h[n + 1] = 'retry_delay_max'; h[n + 2] = v; n = n + 2 end
  v = opt_str(s.dlt)
  if v then h[n + 1] = 'dead_letter_job_type'; h[n + 2] = v; n = n + 2 end
  local g = opt_str(s.gid)
  if g then h[n + 1] = 'group_id'; h[n + 2] = g; n = n + 2 end
  v = opt_str(s.gtier)
  if v then h[n + 1] = 'group_tier'; h[n + 2] = v; n = n + 2 end
  local deps = (s.deps and s.deps ~= cjson.null and #s.deps > 0) and s.deps or nil
  local deps_json = nil
  local unmet = 0
  if deps then
    deps_json = cjson.encode(deps)
    h[n + 1] = 'depends_on_job_ids'; h[n + 2] = deps_json; n = n + 2
    for _, p in ipairs(deps) do
      local pid = N(p)
      if (fresh and fresh[pid]) or redis.call('HGET', jk(pid), 'status') ~= 'completed' then
        unmet = unmet + 1
      end
      -- every edge, met or not: the graph view reads rd:<p> until cleanup deletes p
      redis.call('SADD', B .. 'rd:' .. pid, id)
    end
    if unmet > 0 then h[n + 1] = 'unmet'; h[n + 2] = N(unmet); n = n + 2 end
  end
  local dtags = (s.dtags and s.dtags ~= cjson.null and #s.dtags > 0) and s.dtags or nil
  local drain = nil
  if dtags then
    drain = drain_key(dtags)
    h[n + 1] = 'depends_on_tags'; h[n + 2] = cjson.encode(dtags)
    h[n + 3] = 'dep_drain'; h[n + 4] = drain; n = n + 4
    register_drain(drain)
    redis.call('SADD', B .. 'dj:' .. drain, id)
  end
  -- Count the job in the drains it belongs to before deciding whether its own drain is clear.
  zadd_later(B .. 'st:pending', id, id)
  if tags then
    for _, tg in ipairs(tags) do zadd_later(B .. 'tag:' .. tg, id, id) end
    if has_drains() then drain_adjust(tags, 1) end
  end
  local loc
  if unmet > 0 then
    loc = 'b'
  elseif drain and not drain_ok(drain, tags_json) then
    redis.call('SADD', B .. 'dwait:' .. drain, id)
    loc = 'b'
  elseif run_at > t then
    delay_add(id, run_at)
    loc = 'd'
  else
    ready_add(id, s.job_type, g, prio)
    loc = 'r'
  end
  h[n + 1] = 'loc'; h[n + 2] = loc
  cnt_add('pending:' .. s.job_type, 1)
  if loc == 'b' then cnt_add('blocked:' .. s.job_type, 1) end
  -- The queue's first job: no job predates the counts, so they are exact from here on.
  if id == '1' then redis.call('HSET', B .. 'cnt', '_v', '1') end
  redis.call('HSET', k, unpack(h))
  zadd_later(B .. 'all', id, id)
  zadd_later(B .. 'type:' .. s.job_type, id, id)
  if ikey then redis.call('SET', B .. 'idem:' .. ikey, id) end
  add_event(id, 'added', meta or added_meta(s, deps_json, tags_json), true)
end

-- -- cancellation and cascade -------------------------------------------------------------------

local function cancel_one(id, old, meta)
  local k = jk(id)
  local f = fields(id, PLACE_FIELDS)
  unplace(id, f)
  redis.call('HDEL', k, 'wait_until', 'wait_token_id', 'resume')
  redis.call('HSET', k, 'last_cancelled_at', now_s())
  set_status(id, old, 'cancelled', false, f.job_type)
  if f.dep_drain then redis.call('SREM', B .. 'dj:' .. f.dep_drain, id) end
  redis.call('ZADD', B .. 'fin:cancelled', now_s(), id)
  add_event(id, 'cancelled', meta)
end

-- Cancel, transitively, every pending/waiting job depending on `root` (by id or by a drain
-- of tags it carries). Returns how many were cancelled.
local function cascade(root)
  root = tostring(root)
  local meta = '{"root_job_id":' .. root .. ',"dependency_cascade":true}'
  local frontier = { root }
  local n = 0
  while #frontier > 0 do
    local nxt = {}
    for _, p in ipairs(frontier) do
      -- rd:<p> stays (the graph view reads it) until cleanup deletes p.
      local deps = redis.call('SMEMBERS', B .. 'rd:' .. p)
      local tj = redis.call('HGET', jk(p), 'tags')
      if tj and has_drains() then
        for _, d in ipairs(matching_drains(cjson.decode(tj))) do
          for _, x in ipairs(redis.call('SMEMBERS', B .. 'dj:' .. d)) do deps[#deps + 1] = x end
        end
      end
      for _, d in ipairs(deps) do
        if d ~= root then
          local st = redis.call('HGET', jk(d), 'status')
          if st == 'pending' or st == 'waiting' then
            cancel_one(d, st, meta)
            n = n + 1
            nxt[#nxt + 1] = d
          end
        end
      end
    end
    frontier = nxt
  end
  return n
end

-- -- failure ------------------------------------------------------------------------------------

local FAIL_FIELDS = { 'status', 'locked_by', 'lock_version', 'attempts', 'max_attempts',
  'group_id', 'job_type', 'dead_letter_job_type', 'payload', 'error_history', 'dep_drain',
  'loc', 'priority' }

-- Apply a failure plan to job `id` (fields `f`, status `f.status`). The plan was decided by
-- dataqueue/lifecycle.py: p.msg, p.reason (or nil), p.delay (seconds, nil = terminal),
-- p.dlq (dead-letter job type or nil), p.envelope (its payload JSON), p.entry (the
-- error-history entry as a JSON object, without its timestamp).
-- Returns will_retry (bool), dead-letter id (or nil).
local function do_fail(id, f, p)
  local k = jk(id)
  local t = now()
  local will_retry = p.delay ~= nil
  local entry = string.sub(p.entry, 1, -2) .. (p.entry == '{}' and '' or ',')
    .. '"timestamp":"' .. iso(t) .. '"}'
  local errs = f.error_history
  if not errs or errs == '[]' then
    errs = '[' .. entry .. ']'
  else
    errs = string.sub(errs, 1, -2) .. ',' .. entry .. ']'
  end
  redis.call('HSET', k, 'error_history', errs, 'last_failed_at', N(t))
  if p.reason then
    redis.call('HSET', k, 'failure_reason', p.reason)
  else
    redis.call('HDEL', k, 'failure_reason')
  end
  if f.status == 'processing' then
    leave_processing(id, f.group_id)
  else
    unplace(id, f)
  end
  redis.call('HDEL', k, 'resume', 'wait_until', 'wait_token_id')
  set_status(id, f.status, 'failed', false, f.job_type)
  local dl = nil
  if will_retry then
    local at = t + math.floor(p.delay * 1000000)
    redis.call('HSET', k, 'next_attempt_at', N(at))
    place(id, f, at)
  else
    redis.call('HDEL', k, 'next_attempt_at')
    redis.call('ZADD', B .. 'fin:failed', N(t), id)
    FIN = FIN + 1
    if f.dep_drain then redis.call('SREM', B .. 'dj:' .. f.dep_drain, id) end
    if p.dlq then
      dl = redis.call('INCR', B .. 'id')
      insert_job(N(dl), { job_type = p.dlq, payload = p.envelope,
        max_attempts = DEAD_LETTER_MAX_ATTEMPTS, priority = DEFAULT_PRIORITY },
        '{"job_type":' .. js(p.dlq) .. ',"source_job_id":' .. id .. ',"source_job_type":'
        .. js(f.job_type) .. '}')
      redis.call('HSET', k, 'dead_lettered_at', N(t), 'dead_letter_job_id', N(dl))
    end
    cascade(id)
  end
  add_event(id, 'failed', '{"message":' .. js(p.msg) .. ',"failure_reason":'
    .. (p.reason and js(p.reason) or 'null') .. ',"dead_letter_job_id":'
    .. (dl and N(dl) or 'null') .. ',"will_retry":' .. (will_retry and 'true' or 'false') .. '}')
  return will_retry, dl
end

-- Move due delayed jobs (run_at reached, retry due, time wait over) into the ready sets.
local function promote_due()
  local due = redis.call('ZRANGEBYSCORE', B .. 'delayed', '-inf', now_s(),
    'LIMIT', 0, MAINTENANCE_CHUNK)
  for _, id in ipairs(due) do
    redis.call('ZREM', B .. 'delayed', id)
    local f = fields(id, { 'status', 'job_type', 'group_id', 'priority', 'loc' })
    local st = f.status
    if f.loc == 'd' and (st == 'pending' or st == 'failed' or st == 'waiting') then
      ready_add(id, f.job_type, f.group_id, f.priority)
      redis.call('HSET', jk(id), 'loc', 'r')
    end
  end
  return #due
end

-- -- claiming ------------------------------------------------------------------------------------

local function hash_of(id)
  local flat = redis.call('HGETALL', jk(id))
  local h = {}
  for i = 1, #flat, 2 do h[flat[i]] = flat[i + 1] end
  return h
end

-- Claim up to `limit` ready jobs of `types` for `worker`: priority DESC then id ASC, across the
-- types' ready sets. `lease` in µs; `cap`: the group cap (0 = none). Blocked jobs are never in
-- a ready set and a capped group shows only its head, so nothing ahead of an eligible job can
-- starve it. Returns the claimed jobs' hashes as JSON objects, in claim order.
-- `hand` (a hand-off, see hand_off): a job whose claim would spend no attempt (a resumed
-- wait) is left for an ordinary claim, and the third result says so; the second lists the
-- claimed jobs as "<id>:<lock_version>".
--
-- Per job this costs an HGETALL (the checks and the reply), one HSET (the claim's fields, and
-- loc 'h' in place of the ready set's 'r': no HDEL in the common case) and the event's RPUSH;
-- the index writes (ready set, status sets, leases) and the event ids are one command per
-- call, not per job.
local function claim_batch(worker, limit, lease, cap, types, hand)
  if limit <= 0 then return {}, {}, false end
  local ts, lease_at = now_s(), N(now() + lease)
  local left = false
  local gcache = {}
  local function gcount(g)
    if gcache[g] == nil then gcache[g] = tonumber(redis.call('HGET', B .. 'gact', g) or '0') end
    return gcache[g]
  end

  local out = {}
  -- Per type: off[jt] counts the entries of rdy:<jt> before the cursor that stay in the set
  -- for now (heads of groups at their cap or left for a claim, skipped for this call, and jobs
  -- this call claimed, whose removal is one ZREM at the end: later[jt]); win[jt] holds entries
  -- read ahead from there, at[jt] the next one to look at; head[jt] is the first claimable one.
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
      elseif (cap > 0 and f.group_id and gcount(f.group_id) >= cap)
          or (hand and (st == 'waiting' or f.resume)) then
        if hand then left = true end
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
  local entries = {}     -- a hand-off's "<id>:<lock_version>" of each job
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
    if hand then entries[#entries + 1] = id .. ':' .. lv end
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
  return out, entries, left
end

-- The types a claim looks at: its own list (JSON), or '' for every type with ready jobs.
local function claim_types(arg)
  if arg == '' then return redis.call('SMEMBERS', B .. 'rtypes') end
  return cjson.decode(arg)
end

-- -- hand-offs ----------------------------------------------------------------------------------
-- A worker whose claim came back short offers its free slots (claim.lua: the offers hash)
-- until the offer expires or its next claim. A script that makes jobs ready claims them for
-- the offers at once and publishes them on each worker's hand channel: the worker starts them
-- without a claim round trip. Only a worker subscribed to its channel is handed anything: a
-- dead one's connection is gone, and its offer with it. Each handed job is also listed in
-- hl:<worker>, which the worker's next claim reads, so a message lost with its connection
-- loses no job. A worker that stops gives back what it was handed and did not start (hand.lua),
-- with the attempts their claim spent.
local OFFER = '^(%d+)|(%d+)|(%d+)|(%d+)|(.*)$'

-- The offer a claim leaves: its free slots, lease, cap, expiry and types (the claim's args).
local function offer_text(slots, lease, cap, ttl, types)
  return N(slots) .. '|' .. N(lease) .. '|' .. N(cap) .. '|' .. N(now() + ttl) .. '|' .. types
end

hand_off = function()
  local offers = redis.call('HGETALL', B .. 'offers')
  if #offers == 0 then return false end
  local quiet = true
  -- Types a short hand-off claim found nothing more of: later offers skip them, so a script
  -- costs one claim per type with ready jobs, however many workers wait.
  local drained, every = {}, nil
  for i = 1, #offers, 2 do
    local w = offers[i]
    local slots, lease, cap, exp, types = string.match(offers[i + 1], OFFER)
    slots, lease, cap = tonumber(slots), tonumber(lease), tonumber(cap)
    if not slots or tonumber(exp) <= now() then
      redis.call('HDEL', B .. 'offers', w)
    elseif slots > 0 then
      local wanted = {}
      if types == '' then every = every or claim_types('') end
      for _, jt in ipairs(types == '' and every or claim_types(types)) do
        if not drained[jt] then wanted[#wanted + 1] = jt end
      end
      if #wanted == 0 then
        -- nothing of its types is left to hand
      elseif redis.call('PUBSUB', 'NUMSUB', B .. 'hand:' .. w)[2] == 0 then
        redis.call('HDEL', B .. 'offers', w) -- nobody listens: the worker is gone
      else
        local out, entries, left = claim_batch(w, slots, lease, cap, wanted, true)
        if left then quiet = false end
        if #out < slots and not left and cap == 0 then
          for _, jt in ipairs(wanted) do drained[jt] = true end
        end
        if #out > 0 then
          local hk = B .. 'hl:' .. w
          redis.call('RPUSH', hk, unpack(entries))
          redis.call('PEXPIRE', hk, math.floor(lease / 1000))
          -- 'F': the offer filled, so more may be ready: the worker's next claim asks the store
          local filled = (#out == slots or left) and 'F' or 'S'
          redis.call('PUBLISH', B .. 'hand:' .. w, filled .. '[' .. table.concat(out, ',') .. ']')
          -- kept at 0 slots when filled: its completions free them again (offer_freed)
          redis.call('HSET', B .. 'offers', w,
            N(slots - #out) .. '|' .. N(lease) .. '|' .. N(cap) .. '|' .. exp .. '|' .. types)
          if #out == slots then quiet = false end -- more may be ready than it could take
        end
      end
    end
  end
  return quiet
end

-- `worker` finished `n` of its jobs: their slots are free again, for its offer if it has one
-- (a claim's offer counts the slots free when it was made).
local function offer_freed(worker, n)
  local o = redis.call('HGET', B .. 'offers', worker)
  if o then
    local slots, rest = string.match(o, '^(%d+)(|.*)$')
    redis.call('HSET', B .. 'offers', worker, N(tonumber(slots) + n) .. rest)
  end
end


-- Resume a job parked on a token: back to pending without spending an attempt on the claim.
local function resume_from_token(job_id, token_id)
  local f = fields(job_id, { 'status', 'wait_token_id', 'job_type', 'group_id', 'priority' })
  if f.status == 'waiting' and f.wait_token_id == token_id then
    redis.call('HDEL', jk(job_id), 'wait_token_id', 'wait_until')
    redis.call('HSET', jk(job_id), 'resume', '1')
    set_status(job_id, 'waiting', 'pending', false, f.job_type)
    place(job_id, f, nil)
    return true
  end
  return false
end

-- Resume every job parked on token `token_id`: the job it was made by (`bound`, or nil) and
-- the waiters registered when they parked (wait.lua).
local function resume_waiters(token_id, bound)
  if bound then resume_from_token(bound, token_id) end
  local key = B .. 'wpw:' .. token_id
  for _, job in ipairs(redis.call('SMEMBERS', key)) do
    if job ~= bound then resume_from_token(job, token_id) end
  end
  redis.call('DEL', key)
end

-- The start of every call: the queue's base key, and fresh per-call state.
local function begin(keys)
  B = keys[1]
  NOW, NOW_S, WAKE, DWAKE, FIN, HAS_DRAINS = nil, nil, 0, false, 0, nil
  RTYPES_SEEN, LATER, CNT, JT_JSON = {}, {}, {}, {}
  EV_NEXT, EV_LAST, EV_BLOCK = 1, 0, 1
end
