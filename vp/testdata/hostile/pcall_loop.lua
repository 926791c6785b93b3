-- want: gas: out of gas (limit 1000000)
for i = 1, 10 do pcall(function() while true do end end) end
return "escaped"
