-- want: gas: out of gas (limit 100000)
while true do end
