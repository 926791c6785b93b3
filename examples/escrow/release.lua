-- Calculation code: move every escrowed input note i to output i, keyed to
-- the payee, or to the payer when extradata is exactly "payer" (a refund),
-- with the escrow's payout owner predicate. The escrow predicate decides
-- whether this is allowed; for a release by secret, extradata is the secret.
local out = {}
for i, n in ipairs(inputs) do
  local payer, payee, payout = string.match(n.key, "^escrow:([^:]*):([^:]*):[^:]*:([^:]*):")
  if not payer then
    error("input " .. i .. " is not an escrow note", 0)
  end
  local to = payee
  if extradata == "payer" then
    to = payer
  end
  out[i] = {
    application = n.application, owner = payout,
    key = to .. ":" .. string.sub(txid, 1, 16) .. ":" .. i, value = n.value,
  }
end
return out
