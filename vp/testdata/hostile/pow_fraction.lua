-- want: runtime: non-integer exponent is not supported (results would differ across machines)
local e = 1
for i = 1, 10 do e = e / 3 end
return 1.5 ^ e
