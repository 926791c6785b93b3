-- want: gas: out of gas (limit 1000000)
-- arithmetic reads a string operand as a number, whole, every time
local s = string.rep(" ", 1000000) .. "1"
local n = 0
while true do n = n + s end
