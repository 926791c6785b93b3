-- want: runtime: rawset is not allowed in the sandbox
rawset(string, "rep", nil)
