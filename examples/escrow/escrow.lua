-- escrow: owner predicate that releases a note to a named party when a stated
-- condition holds.
--
-- The note's key is "escrow:<payer>:<payee>:<lock>:<payout>:<tag>": payer and
-- payee are X25519 public keys in standard base64, lock is the lower-case hex
-- SHA-256 of a secret or "-" for none, payout is the hex hash of the owner
-- predicate the released note must get (normally sig), tag is anything that
-- makes the key unique.
--
-- Spending input i requires output i (same position) to carry the same
-- application and value, the payout owner predicate, and a key that starts
-- with "<payee>:" (release) or "<payer>:" (refund):
--   release: the payer signed, or the secret is revealed (SHA-256 of the
--            transaction's extradata equals lock);
--   refund:  the payee signed (the payee gives the escrow up).
-- Creating an escrow note needs only a well-formed key.
local function iskey(s)
  return #s == 44 and string.find(s, "^[%w+/]+=$") ~= nil
end

-- The tag is the rest of the key: it may be empty or hold more colons.
local payer, payee, lock, payout = string.match(note.key, "^escrow:([^:]*):([^:]*):([^:]*):([^:]*):")
if not payer or not iskey(payer) or not iskey(payee)
    or #payout ~= 64 or not string.find(payout, "^%x+$")
    or (lock ~= "-" and (#lock ~= 64 or not string.find(lock, "^%x+$"))) then
  error("note key is not 'escrow:<payer>:<payee>:<lock>:<payout>:<tag>'", 0)
end
if role == "output" then
  return true
end

local function signed(key)
  for _, s in ipairs(signers) do
    if s == key then return true end
  end
  return false
end

local function hex(s)
  return (string.gsub(s, ".", function(c) return string.format("%02x", string.byte(c)) end))
end

local out = outputs[index]
if not out then
  error("escrow input " .. index .. " has no output " .. index, 0)
end
if out.application ~= note.application or out.value ~= note.value or out.owner ~= payout then
  error("output " .. index .. " does not carry the escrowed value to the payout predicate", 0)
end
if string.sub(out.key, 1, 45) == payee .. ":" then
  if signed(payer) then
    return true
  end
  if lock ~= "-" and hex(crypto.digest("sha256", extradata)) == lock then
    return true
  end
  error("release to the payee needs the payer's signature or the secret", 0)
end
if string.sub(out.key, 1, 45) == payer .. ":" then
  if signed(payee) then
    return true
  end
  error("refund to the payer needs the payee's signature", 0)
end
error("output " .. index .. " goes to neither payee nor payer", 0)
