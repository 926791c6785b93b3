-- reward: application predicate of block reward notes (decision 143).
--
-- A reward note's value is a decimal amount from 1 to 999999999999999. Only
-- the host mints reward notes, in a block's reward transaction, where no
-- predicate runs. Any other transaction may move and split them but never
-- create more than it spends: the outputs of this application sum to at most
-- its inputs.
local function sum(list, what)
  local total = 0
  for i, n in ipairs(list) do
    if n.application == application then
      if #n.value > 15 or not string.find(n.value, "^[1-9][0-9]*$") then
        error(what .. " " .. i .. ": value is not an amount", 0)
      end
      total = total + tonumber(n.value)
    end
  end
  return total
end

local ins, outs = sum(inputs, "input"), sum(outputs, "output")
if outs > ins then
  error("reward notes: outputs exceed inputs by " .. (outs - ins) .. "; only a block's reward transaction mints them", 0)
end
return true
