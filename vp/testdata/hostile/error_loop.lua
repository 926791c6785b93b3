-- want: gas: out of gas (limit 100000)
local function f() error("x") end
while true do pcall(f) end
