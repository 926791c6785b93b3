-- token: application predicate of a fungible token.
--
-- A token note's value is "<issuer>:<symbol>:<amount>": the issuer's X25519
-- public key in standard base64 (44 characters), a symbol of 1 to 16 of A-Z and
-- 0-9, and a decimal amount from 1 to 999999999999999. A token is the pair
-- issuer:symbol. For every token among this transaction's notes of this
-- application, the input amounts must sum to the output amounts, unless the
-- token's issuer signed the transaction (the issuer mints and burns).
local MAX = 9007199254740991 -- 2^53 - 1: sums stay exact below it

local function signed(key)
  for _, s in ipairs(signers) do
    if s == key then return true end
  end
  return false
end

-- parse reads a note's value. The character classes hold no ":", so the
-- value matches only with exactly three fields.
local function parse(n, where)
  local issuer, symbol, amount = string.match(n.value, "^([%w+/]+=):([A-Z0-9]+):([0-9]+)$")
  if not issuer or #issuer ~= 44 or #symbol > 16 or #amount > 15 then
    error(where .. ": value is not <issuer>:<symbol>:<amount>", 0)
  end
  local value = tonumber(amount)
  if value < 1 then
    error(where .. ": amount must be at least 1", 0)
  end
  return issuer .. ":" .. symbol, issuer, value
end

local tokens, order = {}, {}
local function add(list, side, what)
  for i, n in ipairs(list) do
    if n.application == application then
      local token, issuer, value = parse(n, what .. " " .. i)
      local t = tokens[token]
      if not t then
        t = { issuer = issuer, inputs = 0, outputs = 0 }
        tokens[token] = t
        order[#order + 1] = token
      end
      t[side] = t[side] + value
      if t[side] > MAX then
        error(token .. ": " .. side .. " sum to more than 2^53-1", 0)
      end
    end
  end
end

add(inputs, "inputs", "input")
add(outputs, "outputs", "output")
for _, token in ipairs(order) do
  local t = tokens[token]
  if t.outputs > t.inputs and not signed(t.issuer) then
    error(token .. ": outputs exceed inputs by " .. (t.outputs - t.inputs) .. " and the issuer has not signed", 0)
  end
  if t.outputs < t.inputs and not signed(t.issuer) then
    error(token .. ": inputs exceed outputs by " .. (t.inputs - t.outputs) .. " and the issuer has not signed", 0)
  end
end
return true
