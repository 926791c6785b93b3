-- want: runtime: number outside ±(2^53−1)
return string.sub("abc", 2^63)
