-- want: runtime: cannot change a protected metatable
setmetatable(_G, {})
