-- want: gas: out of gas (limit 1000000)
-- a replacement function is metered like any Lua call
return string.gsub("abc", "%w", function(c) while true do end end)
