-- want: runtime: bad argument #2 to char (invalid value)
return string.char(65, 256)
