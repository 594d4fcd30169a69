--[[
Hands out the next number of one counter, or says why it cannot. It never invents a number: a counter
that is missing or not trusted yet is left to the adapter, which seeds it from the store. With an intent
(the create about to be published under the number), it also keeps the intent until settle.lua drops it,
in this same step: a caller that dies before its publish was confirmed cannot leave the number unused,
because overdue.lua hands the intent to the reaper.

KEYS[1]  the counter, a hash:
           n          the last number handed out
           epoch      the epoch it was seeded in (the value of the epoch key at that time)
           confirmed  '1' once a process checked, after seeding it, that this epoch was still current
KEYS[2]  optional: the intents' sorted set (member '<KEYS[1]>#<number>', score: when kept, in ms)
KEYS[3]  optional, with KEYS[2]: the intents' hash (same member -> the command's JSON, number 0)
ARGV[1]  the epoch the caller numbers in
ARGV[2]  with KEYS[2]: the intent's JSON

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
local n = redis.call('HINCRBY', KEYS[1], 'n', 1)
if KEYS[2] then
  local now = redis.call('TIME')
  local member = KEYS[1] .. '#' .. n
  redis.call('ZADD', KEYS[2], now[1] * 1000 + math.floor(now[2] / 1000), member)
  redis.call('HSET', KEYS[3], member, ARGV[2])
end
return n
