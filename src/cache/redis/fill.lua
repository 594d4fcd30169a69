--[[
Stores a view the caller read from the store, unless the parent was invalidated since the caller looked
(the generation is no longer the one lookup.lua returned: a write committed meanwhile, and the caller may
have read the store before it); and releases the caller's lock either way.

KEYS[1]  the parent's cache hash (see lookup.lua)
ARGV[1]  the generation lookup.lua returned to the caller ('' for none)
ARGV[2]  the view's field
ARGV[3]  '+' and the view's JSON; '-' and for how long (ms) "not stored" may be answered; '' to release
         the lock only
ARGV[4]  the caller's lock token
ARGV[5]  time-to-live of the hash (ms), set when this call creates it

Returns 1 when the view was stored, 0 when not.
]]
local lock = 'lock:' .. ARGV[2]
local held = redis.call('HGET', KEYS[1], lock)
if held and string.sub(held, 1, string.len(ARGV[4]) + 1) == ARGV[4] .. ':' then
  redis.call('HDEL', KEYS[1], lock)
end
if ARGV[3] == '' or (redis.call('HGET', KEYS[1], 'gen') or '') ~= ARGV[1] then return 0 end
local view = ARGV[3]
if string.sub(view, 1, 1) == '-' then
  local time = redis.call('TIME')
  local now = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
  view = '-' .. string.format('%d', now + tonumber(string.sub(view, 2)))
end
redis.call('HSET', KEYS[1], ARGV[2], view)
if redis.call('PTTL', KEYS[1]) < 0 then redis.call('PEXPIRE', KEYS[1], ARGV[5]) end
return 1
