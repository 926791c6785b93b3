-- want: limit: call depth limit exceeded (200)
local function f() return f() + 1 end
while true do pcall(f) end
