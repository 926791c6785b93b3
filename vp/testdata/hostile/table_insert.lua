-- want: limit: table has more than 10000 entries
local t = {}
while true do table.insert(t, 1) end
