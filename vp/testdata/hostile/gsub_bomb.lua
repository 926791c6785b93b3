-- want: limit: exceeds the limit (1048576)
local s = string.rep("a", 60000)
return s:gsub("", s)
