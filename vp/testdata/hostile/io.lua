-- want: runtime: with key 'open'
io.open("/etc/passwd")
