-- want: gas: out of gas (limit 1000000)
-- a refused power is caught, but each try still pays
local function f() return 2 ^ 0.1 end
while true do pcall(f) end
