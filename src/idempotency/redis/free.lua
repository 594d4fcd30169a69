--[[
Ends a failed hold (or one whose answer turned out to be stored already): the key is free again, but
only if the caller still holds it. Deleting a marker that is not ours would let a third caller in
beside the holder that took the key after our lease ran out.

KEYS[1]  the key
ARGV[1]  the holder's pending marker

Returns 1 when the marker was deleted, 0 when the key was empty (the lease ran out),
-1 when it holds someone else's marker or an answer (the lease was lost; left untouched).
]]
local found = redis.call('GET', KEYS[1])
if not found then return 0 end
if found ~= ARGV[1] then return -1 end
redis.call('DEL', KEYS[1])
return 1
