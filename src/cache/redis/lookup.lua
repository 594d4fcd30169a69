--[[
Reads one cached view of a parent (an application, a chat) and, when it is missing, takes the lock to
fill it, so that of all the processes missing it at once only one reads the store.

KEYS[1]  the parent's cache hash:
           gen          the generation: absent until the first invalidation, then a random value that
                        every invalidation replaces (bump.lua)
           <view>       '+' and the view's JSON, or '-' and the server time (ms) until which "not stored"
                        holds
           lock:<view>  '<token>:<server time (ms) the lock lapses>' while a process fills <view>
ARGV[1]  the view's field
ARGV[2]  the caller's lock token
ARGV[3]  how long the lock lasts at most (ms): a holder that died only delays the others this long
ARGV[4]  time-to-live of the hash (ms), set when this call creates it: no entry outlives it

Returns {generation ('' when none), the view or false, 1 when the caller now holds the lock else 0}.
]]
local got = redis.call('HMGET', KEYS[1], 'gen', ARGV[1], 'lock:' .. ARGV[1])
local gen = got[1] or ''
local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
local view = got[2]
if view and (string.sub(view, 1, 1) == '+' or tonumber(string.sub(view, 2)) > now) then
  return {gen, view, 0}
end
if got[3] then
  local lapses = tonumber(string.match(got[3], ':(%d+)$'))
  if lapses and lapses > now then return {gen, false, 0} end
end
redis.call('HSET', KEYS[1], 'lock:' .. ARGV[1], ARGV[2] .. ':' .. string.format('%d', now + tonumber(ARGV[3])))
if redis.call('PTTL', KEYS[1]) < 0 then redis.call('PEXPIRE', KEYS[1], ARGV[4]) end
return {gen, false, 1}
