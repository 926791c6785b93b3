-- want: runtime: invalid option '%v' to 'format'
return string.format("%v", 1)
