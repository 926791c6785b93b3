-- Lookup code for transfer.lua: the inputs are the state keys listed in
-- extradata after the first two fields ("<recipient> <amount> <key>...").
local keys, start, field = {}, 1, 0
while true do
  local i = string.find(extradata, " ", start, true)
  field = field + 1
  if field > 2 then
    keys[#keys + 1] = string.sub(extradata, start, (i or 0) - 1)
  end
  if not i then break end
  start = i + 1
end
return keys
