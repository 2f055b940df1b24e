-- Complete jobs, fenced by (worker, lock_version). ARGV[1]: a JSON array of items
-- [id, worker, lock_version, output] (all strings) where output is 'K' (keep) or 'S' .. JSON:
-- one argument however many items (the client encodes one string instead of four per job).
-- Completion releases dependents whose last prerequisite this was. Returns 1/0 per item.
--
-- Per job this costs the fence's HMGET, an HSET, an HDEL and the event's RPUSH; the index
-- writes (leases, status sets, finished index), the event ids and the check for dependents
-- are one command per call, and so is the update of each worker's offer (hand-offs).
local res = {}
local ts = now_s()
local READ = { 'status', 'locked_by', 'lock_version', 'group_id', 'dep_drain', 'tags' }
local done = {}
local freed = {} -- worker → jobs of it completed here
for _, item in ipairs(cjson.decode(ARGV[1])) do
  local id, worker, lv, out = item[1], item[2], item[3], item[4]
  local k = jk(id)
  local f = fields(id, READ)
  if f.status == 'processing' and f.locked_by == worker and f.lock_version == lv then
    if string.sub(out, 1, 1) == 'S' then
      redis.call('HSET', k, 'completed_at', ts, 'status', 'completed', 'updated_at', ts,
        'output', string.sub(out, 2))
    else
      redis.call('HSET', k, 'completed_at', ts, 'status', 'completed', 'updated_at', ts)
    end
    redis.call('HDEL', k, 'step_data', 'wait_until', 'wait_token_id', unpack(LOCK_FIELDS))
    gact_dec(f.group_id)
    FIN = FIN + 1
    -- what set_status does besides the status sets: the job is no longer active
    if f.tags and has_drains() then drain_adjust(cjson.decode(f.tags), -1) end
    if f.dep_drain then redis.call('SREM', B .. 'dj:' .. f.dep_drain, id) end
    done[#done + 1] = id
    freed[worker] = (freed[worker] or 0) + 1
    res[#res + 1] = 1
  else
    res[#res + 1] = 0
  end
end
if #done > 0 then
  local st, fin = {}, {}
  for i, id in ipairs(done) do
    st[2 * i - 1], st[2 * i] = id, id
    fin[2 * i - 1], fin[2 * i] = ts, id
  end
  bulk('ZREM', B .. 'leases', done)
  bulk('ZREM', B .. 'st:processing', done)
  bulk('ZADD', B .. 'st:completed', st)
  bulk('ZADD', B .. 'fin:completed', fin)
  reserve_events(#done)
  for _, id in ipairs(done) do add_event(id, 'completed', nil) end
  release_dependents(done)
  for w, n in pairs(freed) do offer_freed(w, n) end
end
wake()
return res
