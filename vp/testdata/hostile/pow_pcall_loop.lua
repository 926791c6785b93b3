-- want: gas: out of gas (limit 100000)
-- a refused power is caught, but each try still pays
while true do pcall(function() return 2 ^ 0.1 end) end
