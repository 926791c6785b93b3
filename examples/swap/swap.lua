-- Calculation code of a swap: two notes change hands whole. Each note's
-- owner is the key at the start of its key ("<owner>:..."), as the sig
-- predicate reads it; the first note goes to the second note's owner and
-- the second to the first's, each keeping its application, owner predicate
-- and value, under "<new owner>:<first 16 hex digits of txid>:s". Each
-- note's application predicate checks its own rules (the token's: inputs
-- equal outputs, per token); each input's owner predicate (sig) asks for
-- its owner's signature, so both parties sign the one transaction.
if #inputs ~= 2 then
  error("a swap takes two notes", 0)
end
local function owner(n)
  local o = string.match(n.key, "^([%w+/]+=):")
  if not o then
    error("note key does not start with '<owner public key>:'", 0)
  end
  return o
end
local a, b = inputs[1], inputs[2]
local tag = string.sub(txid, 1, 16)
return {
  { application = a.application, owner = a.owner, key = owner(b) .. ":" .. tag .. ":s", value = a.value },
  { application = b.application, owner = b.owner, key = owner(a) .. ":" .. tag .. ":s", value = b.value },
}
