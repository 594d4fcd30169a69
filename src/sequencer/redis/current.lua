--[[
Reads the last number handed out by one counter, under the same checks as next.lua: a caller must not
trust a counter it would not number from.

KEYS[1]  the counter hash (fields n, epoch, confirmed: see next.lua)
ARGV[1]  the epoch the caller numbers in

Returns the last number (>= 0), or -1 missing, -2 another epoch, -3 not confirmed (as next.lua).
]]
local state = redis.call('HMGET', KEYS[1], 'epoch', 'confirmed', 'n')
if not state[1] then return -1 end
if state[1] ~= ARGV[1] then return -2 end
if state[2] ~= '1' then return -3 end
return tonumber(state[3])
