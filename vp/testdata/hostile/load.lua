-- want: runtime: attempt to call a non-function object
return load("return 1")()
