--[[
Seeds one counter from the store's highest number for it, without ever lowering it: creates the counter
when it is missing, and raises it when the store holds more than it says (Redis restarted and lost its
last increments). Increments by other processes between the adapter's seed read and this script are
kept, because a raise only goes up.

KEYS[1]  the counter hash (fields n, epoch, confirmed: see next.lua)
ARGV[1]  the epoch the caller numbers in
ARGV[2]  the seed: the store's highest stored number for this counter
ARGV[3]  '1' to take over a counter seeded in another epoch; only after the caller checked that its own
         epoch is the current one

Returns 1 when the counter is ready (seeded in this epoch and confirmed), 0 when it still needs
confirm.lua, -2 when it belongs to another epoch and ARGV[3] is not '1'.
]]
local state = redis.call('HMGET', KEYS[1], 'epoch', 'confirmed', 'n')
if not state[1] then
  redis.call('HSET', KEYS[1], 'n', ARGV[2], 'epoch', ARGV[1], 'confirmed', '0')
  return 0
end
local confirmed = state[2] == '1'
if state[1] ~= ARGV[1] then
  if ARGV[3] ~= '1' then return -2 end
  redis.call('HSET', KEYS[1], 'epoch', ARGV[1], 'confirmed', '0')
  confirmed = false
end
-- Compared as numbers, written as the caller's string: Lua would print a large double as 1e+15.
if tonumber(ARGV[2]) > tonumber(state[3]) then redis.call('HSET', KEYS[1], 'n', ARGV[2]) end
if confirmed then return 1 end
return 0
