--[[
Drops intents whose commands reached the queue (see next.lua).

KEYS[1]  the intents' sorted set
KEYS[2]  the intents' hash
ARGV     the members to drop ('<counter key>#<number>')

Returns how many of them were still kept.
]]
redis.call('HDEL', KEYS[2], unpack(ARGV))
return redis.call('ZREM', KEYS[1], unpack(ARGV))
