--[[
Invalidates every cached view of a parent, after a write to it committed: the hash is replaced by one
holding only a new generation, so the views (and locks) go, and a fill by a reader that looked before
(and may have read the store before the write) is refused by fill.lua.

KEYS[1]  the parent's cache hash (see lookup.lua)
ARGV[1]  the new generation: random, so never one a reader may still hold
ARGV[2]  time-to-live of the hash (ms)

Returns 1.
]]
redis.call('DEL', KEYS[1])
redis.call('HSET', KEYS[1], 'gen', ARGV[1])
redis.call('PEXPIRE', KEYS[1], ARGV[2])
return 1
