-- want: gas: out of gas (limit 1000000)
repeat local x = 1 until false
