--[[
Takes an idempotency key for one holder, unless it is taken or answered already. One step, so two
processes can never both take it.

KEYS[1]  the key: absent (free), a pending marker 'pending:<token>' (held), or the answer's JSON
ARGV[1]  the caller's pending marker
ARGV[2]  the lease in milliseconds: a holder that never releases (its process died) loses the key then

Returns nil when the caller now holds the key, otherwise the value found (a marker or an answer).
]]
local found = redis.call('GET', KEYS[1])
if found then return found end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
return nil
