-- want: ok: 
return string.rep("", 2^50)
