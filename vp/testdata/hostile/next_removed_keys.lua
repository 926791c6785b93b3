-- want: gas: out of gas (limit 1000000)
-- next walks past every key removed from a table; each call pays for them
local t = {}
for i = 1, 9999 do t["k" .. i] = i end
for i = 1, 9998 do t["k" .. i] = nil end
while true do local k = next(t) end
