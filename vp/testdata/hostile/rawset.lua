-- want: runtime: attempt to call a non-function object
rawset(string, "rep", nil)
