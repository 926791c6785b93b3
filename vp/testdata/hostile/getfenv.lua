-- want: runtime: getfenv is not allowed in the sandbox
local env = getfenv(0)
return env
