-- want: gas: out of gas (limit 1000000)
local function f() error("x") end
while true do pcall(f) end
