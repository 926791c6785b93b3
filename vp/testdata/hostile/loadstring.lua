-- want: runtime: loadstring is not allowed in the sandbox
return loadstring("return 1")()
