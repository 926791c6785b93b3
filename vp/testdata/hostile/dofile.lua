-- want: runtime: attempt to call a non-function object
dofile("/etc/passwd")
