-- want: limit: string of 2097152 bytes exceeds the limit (1048576)
local s = "x"
while true do s = s .. s end
