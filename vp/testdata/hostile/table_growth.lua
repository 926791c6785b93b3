-- want: limit: table has more than 10000 entries
local t = {}
local i = 1
while true do t[i] = i; i = i + 1 end
