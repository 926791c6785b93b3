-- want: limit: memory limit exceeded (4194304 bytes)
-- closures and the variables they keep are memory: 20 000 hold about 4 MB
local all = {}
for j = 1, 1000 do
  local fs = {}
  all[j] = fs
  for i = 1, 10000 do
    local x = i
    fs[i] = function() return x end
  end
end
