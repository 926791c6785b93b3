-- want: limit: exceeds the limit (1048576)
local t = {}
for i = 1, 1000 do t[i] = string.rep("x", 1000) end
return table.concat(t, table.concat(t))
