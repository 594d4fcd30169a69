--[[
Hands out the next number of one counter, or says why it cannot. It never invents a number: a counter
that is missing or not trusted yet is left to the adapter, which seeds it from the store.

KEYS[1]  the counter, a hash:
           n          the last number handed out
           epoch      the epoch it was seeded in (the value of the epoch key at that time)
           confirmed  '1' once a process checked, after seeding it, that this epoch was still current
ARGV[1]  the epoch the caller numbers in

Returns the number (>= 1), or
  -1  the counter does not exist: new, or lost with Redis's data
  -2  the counter was seeded in another epoch: Redis lost data and someone re-seeded it (the caller
      missed the loss), or it is a leftover seeded by a process that had missed it
  -3  seeded but not confirmed yet: the epoch may have ended between the seed and now
]]
local state = redis.call('HMGET', KEYS[1], 'epoch', 'confirmed')
if not state[1] then return -1 end
if state[1] ~= ARGV[1] then return -2 end
if state[2] ~= '1' then return -3 end
return redis.call('HINCRBY', KEYS[1], 'n', 1)
