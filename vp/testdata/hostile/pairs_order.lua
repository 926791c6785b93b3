-- want: ok: byte char find format gmatch gsub len lower match rep reverse sub upper
local names = {}
for k in pairs(string) do names[#names + 1] = k end
return table.concat(names, " ")
