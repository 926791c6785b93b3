-- want: limit: memory limit exceeded (4194304 bytes)
-- a table given one string key by a store holds a map sized for 32 keys
local all = {}
for j = 1, 1000 do
  local ts = {}
  all[j] = ts
  for i = 1, 10000 do
    local t = {}
    t.k = i
    ts[i] = t
  end
end
