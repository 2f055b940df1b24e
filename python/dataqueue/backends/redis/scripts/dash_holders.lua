-- The active jobs (pending/processing/waiting) whose tags include every tag of ARGV[4..] — the
-- holders of a tag drain on those tags — oldest first, at most ARGV[2] of them, skipping job
-- ARGV[1] ('' = none). Walks the rarest tag's index from the oldest active job's id (older
-- members are finished), examining at most ARGV[3] members.
local exclude, limit, budget = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3])
local want = {}
for i = 4, #ARGV do want[#want + 1] = ARGV[i] end
local best, bestn = nil, nil
for _, t in ipairs(want) do
  local n = redis.call('ZCARD', B .. 'tag:' .. t)
  if not bestn or n < bestn then best, bestn = t, n end
end
local out = {}
if not best or bestn == 0 then return out end
local lo = nil
for st in pairs(ACTIVE) do
  local first = redis.call('ZRANGE', B .. 'st:' .. st, 0, 0)[1]
  if first and (not lo or tonumber(first) < lo) then lo = tonumber(first) end
end
if not lo then return out end
local key, from, seen = B .. 'tag:' .. best, N(lo), 0
while #out < limit and seen < budget do
  local ids = redis.call('ZRANGEBYSCORE', key, from, '+inf', 'LIMIT', 0,
    math.min(500, budget - seen))
  if #ids == 0 then break end
  seen = seen + #ids
  from = '(' .. ids[#ids]
  for _, id in ipairs(ids) do
    if id ~= exclude then
      local f = redis.call('HMGET', jk(id), 'status', 'tags')
      if f[1] and ACTIVE[f[1]] and f[2] and superset(tagset(cjson.decode(f[2])), want) then
        out[#out + 1] = id
        if #out >= limit then break end
      end
    end
  end
end
return out
