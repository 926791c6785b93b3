-- want: limit: memory limit exceeded (4194304 bytes)
-- raising a long message builds a new string each time (its position prefixed)
local s = string.rep("x", 1000000)
while true do pcall(error, s) end
