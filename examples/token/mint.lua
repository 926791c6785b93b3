-- Calculation code: the issuer (signers[1]) mints one token note.
-- extradata: "<application hex> <owner hex> <recipient key> <symbol> <amount>"
-- The note's key is "<recipient>:<first 16 hex digits of txid>:m", so every
-- mint lands on a fresh key.
local f, start = {}, 1
while true do
  local i = string.find(extradata, " ", start, true)
  f[#f + 1] = string.sub(extradata, start, (i or 0) - 1)
  if not i then break end
  start = i + 1
end
if #f ~= 5 then
  error("extradata is not '<application> <owner> <recipient> <symbol> <amount>'", 0)
end
return { {
  application = f[1],
  owner = f[2],
  key = f[3] .. ":" .. string.sub(txid, 1, 16) .. ":m",
  value = signers[1] .. ":" .. f[4] .. ":" .. f[5],
} }
