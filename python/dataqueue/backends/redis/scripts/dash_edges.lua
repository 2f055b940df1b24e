-- Downstream edges for the graph view: for each prerequisite id of ARGV[2..], its dependents
-- (rd:<id>) lowest id first, at most ARGV[1] edges in all. Returns flat pairs: prerequisite,
-- its dependents comma-separated (one string each: cheap for the client to parse).
local limit = tonumber(ARGV[1])
local out = {}
local n = 0
for i = 2, #ARGV do
  if n >= limit then break end
  local ids = redis.call('SORT', B .. 'rd:' .. ARGV[i], 'LIMIT', 0, limit - n)
  if #ids > 0 then
    out[#out + 1] = ARGV[i]; out[#out + 1] = table.concat(ids, ',')
    n = n + #ids
  end
end
return out
