-- want: runtime: attempt to index a boolean value
local mt = getmetatable("")
mt.__index = {}
