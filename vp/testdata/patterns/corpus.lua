-- Pattern corpus, run by Lua 5.1 itself (lua5.1 corpus.lua > lua51.txt) and by
-- the sandbox (pattern_test.go); the two outputs must be the same, line for line.
local cases = {
  {"hello world", "o"}, {"hello world", "l+"}, {"hello world", "(h)(e)"},
  {"hello world", "^(%a+)"}, {"hello world", "(%a+)$"}, {"hello world", "%s"},
  {"hello world", "()ll()"}, {"hello world", "o", 6}, {"hello world", "o", -3},
  {"hello world", "", 20}, {"hello world", "", -20}, {"", ""}, {"", "a*"},
  {"abc", ""}, {"abc", "x*"}, {"abc", "^"}, {"abc", "$"}, {"abc", "^$"}, {"", "^$"},
  {"aaa", "a-"}, {"aaa", "a-$"}, {"aaa", "^a-b"}, {"aaab", "a-b"}, {"aaab", "a*b"},
  {"aaab", "a?a?b"}, {"ab", "a?b?c?"}, {"xyz", "y?z"}, {"  key = value  ", "^%s*(%w+)%s*=%s*(%w+)%s*$"},
  {"THE (quick) fox", "%((%a+)%)"}, {"f(a(b)c)d", "%b()"}, {"((x)", "%b()"}, {"[[x]]", "%b[]"},
  {"''a'b'", "%b''"}, {"THE (quick) fox", "%f[%a]%a+"}, {"THE (quick) fox", "%f[%A]"},
  {"hello", "%f[%z]"}, {"hello", "%f[%l]"}, {"x1y22z333", "%d+"}, {"x1y22z333", "(%d)(%d)%2"},
  {"abcabc", "(abc)%1"}, {"abab", "(a)(b)%1%2"}, {"aa", "(a*)%1"}, {"a.b-c", "[%.%-]"},
  {"a]b", "[]]"}, {"a^b", "[%^]"}, {"a^b", "[^^]+"}, {"a-b", "[a-]+"}, {"a-b", "[-a]+"},
  {"az09AZ", "[a-z0-9]+"}, {"az09AZ", "[^a-z]+"}, {"zebra", "[%a-z]+"}, {"x-z", "[%a-z]+"},
  {"tab\there", "%c"}, {"a,b;c", "%p"}, {"MiXeD", "%u+"}, {"MiXeD", "%l+"}, {"dead beef", "%x+"},
  {"a\0b", "%z"}, {"a\0b", "[%z]"}, {"a\0b", "%Z+"}, {"under_score", "[%w_]+"}, {"123abc", "^%d+"},
  {"a+b", "a+b"}, {"a+b", "a%+b"}, {"a.b", "a.b"}, {"a$b", "a$b"}, {"a$", "a%$"}, {"a*b", "a*%*b"},
  {"(x)", "()"}, {"abc", "()(b)()"}, {"abc", "(()b())"}, {"abc", "((a)(b)(c))"},
  {"one two  three", "(%S+)%s*"}, {"k1=v1, k2=v2", "(%w+)=(%w+)"}, {"aaa", "^a"}, {"^aaa", "^a"},
  {"a.b.c", "%."}, {"a.b.c", "[^.]+"}, {"x = 12.5e3", "%d+%.?%d*e?%d*"}, {"abc", ".-b"},
  {"abc", ".-"}, {"abcabc", ".-c"}, {"<a><b>", "<(.-)>"}, {"<a><b>", "<(.*)>"}, {"banana", "(an)+"},
  {"banana", "an+"}, {"banana", "a(n?)a"}, {"Hello", "%a%a?%a?"}, {"aaa", "a?a?a?a?a"},
  {"\255\128x", "[\128-\255]+"}, {"\255\128x", "%W+"}, {"CamelCaseWord", "%u%l*"}, {"x", "[x-]"},
  {"a", "[%]]"}, {"]", "[%]]"}, {"%", "%%"}, {"100%", "%d+%%"}, {"abc", "[b-a]"}, {"abc", "[a-a]"},
  {"00ab", "()%1"}, {"0", "[0-0-0]"}, {"-", "[0-0-0]"}, {"0", "[0-%0]"}, {"0", "[]--0]"}, {"a-b", "[^]-]+"},
}
local function show(v)
  if type(v) ~= "string" then return tostring(v) end
  local out = {}
  for i = 1, #v do
    local b = string.byte(v, i)
    if b >= 32 and b < 127 and b ~= 92 then out[#out + 1] = string.sub(v, i, i) else out[#out + 1] = "\\" .. b end
  end
  return '"' .. table.concat(out) .. '"'
end
local function line(label, ok, ...)
  local parts = {label}
  if not ok then
    parts[#parts + 1] = "error"
  else
    local n = select("#", ...)
    parts[#parts + 1] = n
    for i = 1, n do parts[#parts + 1] = show((select(i, ...))) end
  end
  print(table.concat(parts, " "))
end
local tbl = setmetatable({a = "A", ab = 12, hello = false}, {__index = function(t, k) if k == "l" then return "L" end end})
for i, c in ipairs(cases) do
  local s, p, init = c[1], c[2], c[3]
  local tag = i .. " " .. show(s) .. " " .. show(p)
  line(tag .. " find", pcall(string.find, s, p, init))
  line(tag .. " match", pcall(string.match, s, p, init))
  local all = {}
  local ok, err = pcall(function() for a, b in string.gmatch(s, p) do all[#all + 1] = show(a) .. "," .. show(b) end end)
  line(tag .. " gmatch", ok, table.concat(all, " "))
  line(tag .. " gsub", pcall(string.gsub, s, p, "<%0|%1>"))
  line(tag .. " gsub1", pcall(string.gsub, s, p, "[%%%1]", 1))
  line(tag .. " gsubt", pcall(string.gsub, s, p, tbl))
  line(tag .. " gsubf", pcall(string.gsub, s, p, function(a, b) if a == "o" then return nil end return "{" .. tostring(a) .. ":" .. tostring(b) .. "}" end))
end
