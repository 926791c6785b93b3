-- want: gas: out of gas (limit 1000000)
local s = string.rep("a", 5000)
return s:find(".-.-.-.-.-b")
