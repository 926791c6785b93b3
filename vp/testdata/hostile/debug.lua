-- want: runtime: with key 'getregistry'
debug.getregistry()
