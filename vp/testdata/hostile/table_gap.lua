-- want: limit: table has more than 10000 entries
local t = {}
t[1000000] = 1
