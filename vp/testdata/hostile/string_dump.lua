-- want: runtime: attempt to call a non-function object
return string.dump(print)
