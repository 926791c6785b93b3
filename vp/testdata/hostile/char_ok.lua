-- want: ok: AB
return string.char(65, 66.0)
