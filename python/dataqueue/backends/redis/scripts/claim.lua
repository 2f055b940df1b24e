-- Claim up to ARGV[2] jobs for worker ARGV[1] (see claim_batch). ARGV[3]: lease (µs); ARGV[4]:
-- group cap (0 = none); ARGV[5]: JSON list of job types or '' for all; ARGV[6]: how long the
-- slots this claim leaves free are offered to hand-offs (µs; 0 = no offer).
-- Jobs handed to the worker that it has not received (their message lost) come first.
-- Returns one JSON array of the claimed jobs' hashes (objects of strings), in claim order: one
-- bulk string and one parse for the client however many jobs it holds.
local worker, limit, lease, cap = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
local ttl = tonumber(ARGV[6] or '0')

promote_due()

local out = {}
if ttl > 0 then
  -- ARGV[7]: the handed jobs the worker started since its last claim (comma-separated)
  local started = {}
  for e in string.gmatch(ARGV[7] or '', '[^,]+') do started[e] = true end
  local hk = B .. 'hl:' .. worker
  local entries = redis.call('LRANGE', hk, 0, -1)
  if #entries > 0 then
    redis.call('DEL', hk)
    for _, e in ipairs(entries) do
      local id, lv = string.match(e, '^(%d+):(%d+)$')
      if not started[e] then
        started[e] = true
        local f = hash_of(id)
        if f.status == 'processing' and f.locked_by == worker and f.lock_version == lv then
          f.loc = nil
          out[#out + 1] = cjson.encode(f)
        end
      end
    end
  end
end

local got = claim_batch(worker, limit - #out, lease, cap, claim_types(ARGV[5]), false)
for _, j in ipairs(got) do out[#out + 1] = j end
-- Short of the limit: the worker may now wait for wake-ups (see wake()) and hand-offs.
if #out < limit then
  redis.call('SET', B .. 'idle', '1')
  if ttl > 0 then
    redis.call('HSET', B .. 'offers', worker, offer_text(limit - #out, lease, cap, ttl, ARGV[5]))
  end
elseif ttl > 0 then
  redis.call('HDEL', B .. 'offers', worker)
end
flush_counts()
return '[' .. table.concat(out, ',') .. ']'
