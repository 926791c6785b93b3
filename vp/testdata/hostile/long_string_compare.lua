-- want: gas: out of gas (limit 1000000)
-- comparing two long strings reads them: each comparison pays by length
local a, b = string.rep("a", 1000000) .. "b", string.rep("a", 1000000) .. "c"
local n = 0
while true do if a < b then n = n + 1 end end
