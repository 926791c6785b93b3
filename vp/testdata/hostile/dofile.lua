-- want: runtime: dofile is not allowed in the sandbox
dofile("/etc/passwd")
