-- want: gas: out of gas (limit 1000000)
while true do end
