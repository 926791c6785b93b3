-- implementation populates `signers` global variable as an array of public keys

-- sum of initial balances must fit in 64-bit signed integer
local balances = {
  ['HbaGF7h9gqcVvwq+l219m7trwOIk44wuDZpQDSclpCE='] = 10,
  ['Ifni9gFFvIBsyXRJTMSFKPnUJIU+lPpcm+Fn6ixtkTw='] = 10,
  ['ByRn704GWnhgkjZ2/kYBl77oS7cTWNQQxrx6JTt+4FM='] = 10,
}

function transfer(target, amount)
    assert(#signers == 1)
    local source = signers[1]
    assert(source ~= target)
    local source_bal = balances[source]
    assert(source_bal ~= nil)

    local target_bal = balances[target]
    assert(target_bal ~= nil)

    assert(math.type(amount) == 'integer')
    assert(source_bal >= amount)

    balances[source] = source_bal - amount
    balances[target] = target_bal + amount
end
