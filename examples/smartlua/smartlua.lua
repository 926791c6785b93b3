-- smartlua: application predicate for notes holding a Smart Lua state.
--
-- A note of this application holds one chain: its key names the chain, its
-- value is a Smart Lua record (transition, signatures, serialized state; see
-- docs/formats/smartlua.md). Spending such a note is accepted only when the
-- transaction creates, under the same key, a note holding the verified
-- successor state; a created note with no spent one must hold a verified
-- initial state. The host function smartlua_check(prev, next) checks the
-- signatures and re-executes the transition. Because the instance lets a
-- note be spent once, a chain on an instance cannot fork.
if role ~= "application" then
  return true
end
local function mine(list, what)
  local byKey = {}
  for _, n in ipairs(list) do
    if n.application == application then
      if byKey[n.key] then
        error("two " .. what .. " notes for chain " .. n.key, 0)
      end
      byKey[n.key] = n
    end
  end
  return byKey
end
local spent, created = mine(inputs, "spent"), mine(outputs, "created")
for key, n in pairs(spent) do
  local o = created[key]
  if not o then
    error("chain " .. key .. " spent without its successor state", 0)
  end
  smartlua_check(n.value, o.value)
end
for key, o in pairs(created) do
  if not spent[key] then
    smartlua_check(nil, o.value)
  end
end
return true
