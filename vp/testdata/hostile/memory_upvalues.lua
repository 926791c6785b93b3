-- want: limit: memory limit exceeded (4194304 bytes)
-- each closure keeps eight variables of its own
local all = {}
for j = 1, 1000 do
  local fs = {}
  all[j] = fs
  for i = 1, 10000 do
    local a, b, c, d, e, f, g, h = i, i, i, i, i, i, i, i
    fs[i] = function() return a + b + c + d + e + f + g + h end
  end
end
