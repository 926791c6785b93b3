-- sig: owner predicate "spent only with the owner's signature".
--
-- The owner is the X25519 public key, in standard base64 (44 characters), at
-- the start of the note's key, followed by ":". Creating such a note needs
-- only a well-formed key (so no value is sent to a key nobody holds by a
-- typo); spending it needs the owner among the transaction's signers, whose
-- signatures the host has already verified.
local owner = string.sub(note.key, 1, 44)
local function malformed()
  return string.sub(note.key, 45, 45) ~= ":" or not string.find(owner, "^[%w+/]+=$")
end
if role ~= "output" then
  -- A signer is a well-formed key, so an owner among them needs no pattern
  -- check (patterns are the costly part of this predicate).
  if string.sub(note.key, 45, 45) == ":" then
    for _, s in ipairs(signers) do
      if s == owner then
        return true
      end
    end
  end
  if malformed() then
    error("note key does not start with '<owner public key>:'", 0)
  end
  error("owner " .. owner .. " has not signed", 0)
end
if malformed() then
  error("note key does not start with '<owner public key>:'", 0)
end
return true
