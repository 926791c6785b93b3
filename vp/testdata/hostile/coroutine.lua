-- want: runtime: with key 'create'
local co = coroutine.create(function() while true do end end)
coroutine.resume(co)
