-- Calculation code: send part of the input token notes (all of one token) to a
-- recipient and the change back to the sender, signers[1].
-- extradata: "<recipient key> <amount> <input state key>..." (lookup.lua
-- reads the state keys)
-- Outputs: "<recipient>:<tag>:1" with the amount, and, when there is change,
-- "<sender>:<tag>:2" with the rest; both keep the inputs' application, owner
-- predicate and token. tag is the first 16 hex digits of SHA-256(key ‖ 0x00 ‖
-- value) of the first input, so a sender can declare the exact output keys as
-- write constraints (transfers to one recipient then do not conflict). The
-- token predicate checks the sums.
-- fields splits s at every sep (one character that is not magic in a
-- pattern), keeping empty fields: fields("a::b", ":") is {"a", "", "b"}.
local function fields(s, sep)
  local t = {}
  for f in string.gmatch(s .. sep, "([^" .. sep .. "]*)" .. sep) do
    t[#t + 1] = f
  end
  return t
end

local args = fields(extradata, " ")
local to, amount = args[1], tonumber(args[2])
if not amount then
  error("extradata does not start with '<recipient> <amount>'", 0)
end
if #inputs == 0 then
  error("no input notes", 0)
end
local first = inputs[1]
local token = fields(first.value, ":")
local total = 0
for i, n in ipairs(inputs) do
  local v = fields(n.value, ":")
  if v[1] ~= token[1] or v[2] ~= token[2] then
    error("input " .. i .. " is another token", 0)
  end
  total = total + tonumber(v[3])
end
local digest = string.sub(crypto.digest("sha256", first.key .. "\0" .. first.value), 1, 8)
local tag = string.gsub(digest, ".", function(c) return string.format("%02x", string.byte(c)) end)
local prefix = token[1] .. ":" .. token[2] .. ":"
local out = { {
  application = first.application, owner = first.owner,
  key = to .. ":" .. tag .. ":1", value = prefix .. amount,
} }
if total > amount then
  out[2] = {
    application = first.application, owner = first.owner,
    key = signers[1] .. ":" .. tag .. ":2", value = prefix .. (total - amount),
  }
end
return out
