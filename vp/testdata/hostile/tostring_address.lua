-- want: ok: table function function: builtin
return tostring({}) .. " " .. tostring(function() end) .. " " .. tostring(print)
