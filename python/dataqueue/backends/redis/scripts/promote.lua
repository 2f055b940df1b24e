-- Move due delayed jobs into the ready sets and wake idle workers (wait_for_work calls this
-- when the nearest delayed job is due, so a busy worker does not see it as due again and
-- again). Returns how many entries were due.
local n = promote_due()
wake()
return n
