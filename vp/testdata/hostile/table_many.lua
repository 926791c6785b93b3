-- want: limit: memory limit exceeded (4194304 bytes)
local proto = {}
for j = 1, 100 do proto[j] = j end
local all = {}
for i = 1, 100000 do all[i] = {unpack(proto)} end
