-- want: runtime: bad argument #1 to char (invalid value)
return string.char(-1)
