-- Calculation code: send part of the input token notes (all of one token) to a
-- recipient and the change back to the sender, signers[1].
-- extradata: "<recipient key> <amount> <input state key>..." (lookup.lua
-- reads the state keys)
-- Outputs: "<recipient>:<txid16>:1" with the amount, and, when there is
-- change, "<sender>:<txid16>:2" with the rest; both keep the inputs'
-- application, owner predicate and token. The token predicate checks the sums.
local to, amount = string.match(extradata, "^(%S+) (%d+)")
if not to then
  error("extradata does not start with '<recipient> <amount>'", 0)
end
amount = tonumber(amount)
if #inputs == 0 then
  error("no input notes", 0)
end
local first = inputs[1]
local issuer, symbol = string.match(first.value, "^([^:]+):([^:]+):")
local total = 0
for i, n in ipairs(inputs) do
  local iss, sym, v = string.match(n.value, "^([^:]+):([^:]+):(%d+)$")
  if iss ~= issuer or sym ~= symbol then
    error("input " .. i .. " is another token", 0)
  end
  total = total + tonumber(v)
end
local tag = string.sub(txid, 1, 16)
local out = { {
  application = first.application, owner = first.owner,
  key = to .. ":" .. tag .. ":1", value = issuer .. ":" .. symbol .. ":" .. amount,
} }
if total > amount then
  out[2] = {
    application = first.application, owner = first.owner,
    key = signers[1] .. ":" .. tag .. ":2", value = issuer .. ":" .. symbol .. ":" .. (total - amount),
  }
end
return out
