-- want: gas: out of gas (limit 1000000)
-- select('#', ...) moves all 10 000 values of ... each time, and pays for them
local t = {} for i = 1, 10000 do t[i] = i end
local function f(...) local n = 0 while true do n = n + select('#', ...) end end
f(unpack(t))
