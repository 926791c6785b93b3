-- want: gas: out of gas (limit 1000000)
-- a-a-a-…b backtracks through every way to split 5000 a's: steps run out
local s = string.rep("a", 5000)
return s:find(string.rep("a-", 8) .. "b")
