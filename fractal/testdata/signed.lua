-- Owner predicate: a note may be spent only when the key in its value
-- signed the transaction; creating such a note needs no signature.
if role ~= "input" then return true end
for _, s in ipairs(signers) do
  if s == note.value then return true end
end
return false
