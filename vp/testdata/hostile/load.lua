-- want: runtime: load is not allowed in the sandbox
return load("return 1")()
