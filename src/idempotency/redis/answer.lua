--[[
Ends a successful hold: the key answers the create's record from now on, for the guard's time-to-live.
Only the holder's own marker is replaced. A key found empty (the lease ran out and nobody took it) gets
the answer too: the create is durable, so its answer is true and spares the next caller a store lookup.

KEYS[1]  the key
ARGV[1]  the holder's pending marker
ARGV[2]  the answer's JSON
ARGV[3]  the time-to-live in milliseconds

Returns 1 when the holder's marker was replaced, 0 when the key was empty and now answers,
-1 when it holds someone else's marker or an answer (the lease was lost; left untouched).
]]
local found = redis.call('GET', KEYS[1])
if found and found ~= ARGV[1] then return -1 end
redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3])
if found then return 1 end
return 0
