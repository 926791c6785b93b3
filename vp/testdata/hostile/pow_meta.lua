-- want: runtime: cannot perform pow operation between table and number
local t = setmetatable({}, {__pow = function() while true do end end})
return t ^ 2
