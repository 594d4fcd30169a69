--[[
Marks a seeded counter as safe to number from. The adapter calls it after reading the epoch key and
finding its own epoch there, so the seed was written before any loss: a loss after that read also
deletes this counter, and then there is nothing to confirm.

KEYS[1]  the counter hash (fields n, epoch, confirmed: see next.lua)
ARGV[1]  the epoch the caller numbers in

Returns 1 once confirmed, -1 when the counter is missing, -2 when it belongs to another epoch.
]]
local epoch = redis.call('HGET', KEYS[1], 'epoch')
if not epoch then return -1 end
if epoch ~= ARGV[1] then return -2 end
redis.call('HSET', KEYS[1], 'confirmed', '1')
return 1
