-- want: runtime: attempt to call a non-function object
local env = getfenv(0)
return env
