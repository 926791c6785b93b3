-- want: gas: out of gas (limit 1000000)
-- a long string used as a key is hashed at every lookup, which pays by length
local k = string.rep("k", 1000000)
local t = {[k] = 1}
local n = 0
while true do n = n + t[k] end
