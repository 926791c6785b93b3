-- want: limit: exceeds the limit (1048576)
return ("ab"):rep(1e8, ",")
