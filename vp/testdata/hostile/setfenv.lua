-- want: runtime: attempt to call a non-function object
setfenv(1, {})
