-- Lookup code for transfer.lua: the inputs are the state keys listed in
-- extradata after the first two fields ("<recipient> <amount> <key>...").
local keys, i = {}, 0
for word in string.gmatch(extradata, "%S+") do
  i = i + 1
  if i > 2 then
    keys[#keys + 1] = word
  end
end
return keys
