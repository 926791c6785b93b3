-- want: gas: out of gas (limit 1000000)
-- 52 squarings a power: paid for, so the loop ends out of gas
local x = 0
while true do x = 1.0000001 ^ (2^53 - 1) end
