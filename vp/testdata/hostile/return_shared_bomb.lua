-- want: gas: out of gas (limit 1000000)
-- 22 tables, each holding the next twice: returned, it is 4 million values.
local t = {1}
for i = 1, 22 do t = {t, t} end
return t
