-- want: gas: out of gas (limit 100000)
repeat local x = 1 until false
