-- want: ok: 2
-- a set of 200 000 bytes compiles once into a bitmap; matching stays one step a byte
local set = "[" .. string.rep("a-z", 66666) .. "]"
return tostring((string.find("1abc", set)))
