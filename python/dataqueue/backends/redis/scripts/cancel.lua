-- Cancel pending (and, if ARGV[1] == '1', waiting) jobs ARGV[2..], cascading to dependents.
-- Returns the ids actually cancelled (cascaded ones not included).
local out = {}
for i = 2, #ARGV do
  local id = ARGV[i]
  local st = redis.call('HGET', jk(id), 'status')
  if st == 'pending' or (st == 'waiting' and ARGV[1] == '1') then
    cancel_one(id, st, nil)
    cascade(id)
    out[#out + 1] = id
  end
end
wake()
return out
