-- want: gas: out of gas (limit 1000000)
return xpcall(function() while true do end end, function(e) while true do end end)
