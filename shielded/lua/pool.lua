-- Owner predicate of the shielded pool notes (shielded/lua/pool.lua).
-- A pool note "shielded-pool:<issuer>:<symbol>" holds a token's shielded
-- supply. It may only change in a shielded transaction (extradata starting
-- with the header line below, which the instance accepts only with a
-- verified proof whose net amount and asset match the header), and only by
-- exactly that net amount:
--   fractal-shielded/1 <app> <pool> <issuer>:<symbol> <net> <args...>
local nl = string.find(extradata, "\n", 1, true)
if string.sub(extradata, 1, 19) ~= "fractal-shielded/1 " or not nl then
  error("pool notes change only in a shielded transaction with a proof", 0)
end
-- fields cuts s at every sep, empty fields included ("a::b" has three).
local function fields(s, sep)
  local f = {}
  for x in string.gmatch(s .. sep, "([^" .. sep .. "]*)" .. sep) do f[#f + 1] = x end
  return f
end
local f = fields(string.sub(extradata, 1, nl - 1), " ")
local app, pool, token, net = f[2], f[3], f[4], tonumber(f[5])
if pool ~= note.owner then
  error("the transaction's header names another pool", 0)
end
local function amount(n, what)
  local v = fields(n.value, ":")
  if n.application ~= app or n.key ~= "shielded-pool:" .. token or v[1] .. ":" .. v[2] ~= token then
    error(what .. " is not the " .. token .. " pool note of application " .. app, 0)
  end
  return tonumber(v[3])
end
local before, after = 0, 0
for i, n in ipairs(inputs) do
  if n.owner == pool then before = before + amount(n, "input " .. i) end
end
for i, n in ipairs(outputs) do
  if n.owner == pool then after = after + amount(n, "output " .. i) end
end
if after - before ~= net then
  error("the pool changes by " .. (after - before) .. " but the proof's net amount is " .. net, 0)
end
return true
