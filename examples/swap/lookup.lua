-- Lookup code of a swap: the two notes whose state keys extradata lists
-- ("<state key> <state key>").
local a, b = string.match(extradata, "^(%S+) (%S+)$")
if not a then
  error("extradata is not '<state key> <state key>'", 0)
end
return { a, b }
