-- want: ok: 2 9.223372036854776e+18 9007199254740991
return select('#', 2^60, 1e300) .. ' ' .. tostring(2^63) .. ' ' .. math.maxinteger
