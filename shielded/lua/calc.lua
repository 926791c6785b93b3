-- Calculation code of every shielded transaction (shielded/lua/calc.lua).
-- Header line: fractal-shielded/1 <app> <pool> <issuer>:<symbol> <net> <args...>
-- The pool note "shielded-pool:<issuer>:<symbol>" (owner <pool>) holds the
-- token's shielded supply; it grows by net. net > 0 (shield): the token
-- notes in inputs pay net, the change goes to "<signers[1]>:<tag>:2".
-- net < 0 (unshield, args "<recipient key> <recipient owner>"): -net goes to
-- "<recipient>:<tag>:1". net = 0: no transparent notes at all. tag is the
-- first 16 hex digits of txid.
-- fields cuts s at every sep, empty fields included ("a::b" has three).
local function fields(s, sep)
  local f = {}
  for x in string.gmatch(s .. sep, "([^" .. sep .. "]*)" .. sep) do f[#f + 1] = x end
  return f
end
local f = fields(string.sub(extradata, 1, string.find(extradata, "\n", 1, true) - 1), " ")
local app, pool, token, net = f[2], f[3], f[4], tonumber(f[5])
local poolIn, userIn, firstUser = 0, 0, nil
for i, n in ipairs(inputs) do
  local v = fields(n.value, ":")
  if n.application ~= app or v[1] .. ":" .. v[2] ~= token then
    error("input " .. i .. " is not a " .. token .. " note of application " .. app, 0)
  end
  if n.owner == pool then
    poolIn = poolIn + tonumber(v[3])
  else
    userIn = userIn + tonumber(v[3])
    firstUser = firstUser or n
  end
end
local poolOut = poolIn + net
if poolOut < 0 then
  error("the pool holds " .. poolIn .. " " .. token .. ", cannot unshield " .. -net, 0)
end
local out, tag = {}, string.sub(txid, 1, 16)
if poolOut > 0 then
  out[1] = { application = app, owner = pool, key = "shielded-pool:" .. token, value = token .. ":" .. poolOut }
end
if net > 0 then
  if userIn < net then
    error("the transparent inputs hold " .. userIn .. " " .. token .. ", cannot shield " .. net, 0)
  end
  if userIn > net then
    out[#out + 1] = { application = app, owner = firstUser.owner, key = signers[1] .. ":" .. tag .. ":2",
      value = token .. ":" .. (userIn - net) }
  end
elseif userIn > 0 then
  error("only a shield spends transparent token notes", 0)
elseif net < 0 then
  if #f ~= 7 then error("an unshield names '<recipient key> <recipient owner>'", 0) end
  out[#out + 1] = { application = app, owner = f[7], key = f[6] .. ":" .. tag .. ":1", value = token .. ":" .. -net }
end
return out
