-- want: runtime: cannot change the metatable of a library table
setmetatable(string, {__index = function() return 1 end})
