-- Calculation code: the issuer (signers[1]) mints one token note.
-- extradata: "<application hex> <owner hex> <recipient key> <symbol> <amount>"
-- The note's key is "<recipient>:<first 16 hex digits of txid>:m", so every
-- mint lands on a fresh key.
local application, owner, recipient, symbol, amount =
  string.match(extradata, "^([^ ]*) ([^ ]*) ([^ ]*) ([^ ]*) ([^ ]*)$")
if not application then
  error("extradata is not '<application> <owner> <recipient> <symbol> <amount>'", 0)
end
return { {
  application = application,
  owner = owner,
  key = recipient .. ":" .. string.sub(txid, 1, 16) .. ":m",
  value = signers[1] .. ":" .. symbol .. ":" .. amount,
} }
