-- Lookup code of every shielded transaction (shielded/lua/lookup.lua).
-- extradata starts with the line
--   fractal-shielded/1 <app> <pool> <issuer>:<symbol> <net> <args...>
-- A shielded transfer (net = 0) has no inputs. Otherwise the inputs are the
-- pool note of the token when it is live, then, when shielding (net > 0),
-- the sender's token notes named by state key in args.
local nl = string.find(extradata, "\n", 1, true)
if not nl then error("extradata has no shielded header line", 0) end
-- The header line's fields, empty ones included ("a  b" has three).
local f = {}
for x in string.gmatch(string.sub(extradata, 1, nl - 1) .. " ", "([^ ]*) ") do f[#f + 1] = x end
local net = tonumber(f[5])
if net == 0 then return {} end
local key = string.gsub("shielded-pool:" .. f[4], ".", function(c) return string.format("%02x", string.byte(c)) end)
local pool = "/" .. f[2] .. "/" .. f[3] .. "/" .. key
local keys = {}
if get(pool) then keys[1] = pool end
if net > 0 then
  for i = 6, #f do keys[#keys + 1] = f[i] end
end
return keys
