-- want: runtime: with key 'exit'
os.exit(1)
