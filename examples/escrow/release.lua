-- Calculation code: move every escrowed input note i to output i, keyed to
-- the payee, or to the payer when extradata is exactly "payer" (a refund),
-- with the escrow's payout owner predicate. The escrow predicate decides
-- whether this is allowed; for a release by secret, extradata is the secret.
local function split(s, sep)
  local parts, start = {}, 1
  while true do
    local i = string.find(s, sep, start, true)
    parts[#parts + 1] = string.sub(s, start, (i or 0) - 1)
    if not i then return parts end
    start = i + 1
  end
end

local out = {}
for i, n in ipairs(inputs) do
  local f = split(n.key, ":")
  if #f < 6 or f[1] ~= "escrow" then
    error("input " .. i .. " is not an escrow note", 0)
  end
  local payer, payee, payout = f[2], f[3], f[5]
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
