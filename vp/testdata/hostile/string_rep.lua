-- want: limit: exceeds the limit (1048576)
return string.rep("x", 2^30)
