-- want: runtime: pattern too complex
-- 300 nested optional items: the matcher's recursion is bounded at 200
local s = string.rep("a", 300)
return string.match(s, string.rep("a?", 300))
