-- want: limit: memory limit exceeded (4194304 bytes)
-- a key that is not an array index makes a hash part of its own
local all = {}
for j = 1, 1000 do
  local ts = {}
  all[j] = ts
  for i = 1, 10000 do ts[i] = {[i + 0.5] = i} end
end
