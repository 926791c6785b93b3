-- want: runtime: invalid format (width or precision too long)
return string.format("%999999d", 1)
