-- want: runtime: setfenv is not allowed in the sandbox
setfenv(1, {})
