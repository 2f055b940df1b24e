-- Many jobs' hashes in one reply: for each id of ARGV, its hash as one JSON object of strings
-- ('' when the job does not exist). One bulk string per job costs the client far less to parse
-- than an HGETALL reply per job.
local out = {}
for i, id in ipairs(ARGV) do
  local flat = redis.call('HGETALL', jk(id))
  if #flat == 0 then
    out[i] = ''
  else
    local obj = {}
    for k = 1, #flat, 2 do obj[flat[k]] = flat[k + 1] end
    out[i] = cjson.encode(obj)
  end
end
return out
