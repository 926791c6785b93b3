-- Lookup code for transfer.lua: the inputs are the state keys listed in
-- extradata after the first two fields ("<recipient> <amount> <key>...").
local keys = {}
local rest = string.match(extradata, "^[^ ]* [^ ]* (.*)$")
if rest then
  for k in string.gmatch(rest .. " ", "([^ ]*) ") do
    keys[#keys + 1] = k
  end
end
return keys
