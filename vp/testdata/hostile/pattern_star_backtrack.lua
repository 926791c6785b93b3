-- want: gas: out of gas (limit 1000000)
-- (a*)(a*)(a*)…b: the classic catastrophic pattern, pcall cannot help
local s = string.rep("a", 5000)
return pcall(string.match, s, string.rep("(a*)", 10) .. "b")
