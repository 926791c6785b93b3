-- want: runtime: attempt to call a non-function object
return loadstring("return 1")()
