-- want: gas: out of gas (limit 1000000)
-- every gmatch step is charged: a long subject with a backtracking pattern
local n = 0
for w in string.gmatch(string.rep("a", 60000), "a-a-a-b") do n = n + 1 end
return n
