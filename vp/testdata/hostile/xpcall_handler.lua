-- want: gas: out of gas (limit 100000)
return xpcall(function() while true do end end, function(e) while true do end end)
