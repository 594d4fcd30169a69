--[[
Lists intents kept for longer than their creates can still be in flight (see next.lua): their callers
died, or their publish failed. Oldest first. Read-only: the reaper drops them with settle.lua once it has
published them. The age is measured on Redis's clock, the clock that stamped them.

KEYS[1]  the intents' sorted set
KEYS[2]  the intents' hash
ARGV[1]  the age in milliseconds an intent must have reached
ARGV[2]  at most this many

Returns a flat list: member, command JSON, member, command JSON, ...
]]
local now = redis.call('TIME')
local cutoff = now[1] * 1000 + math.floor(now[2] / 1000) - tonumber(ARGV[1])
local members = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', cutoff, 'LIMIT', 0, tonumber(ARGV[2]))
local found = {}
for _, member in ipairs(members) do
  local command = redis.call('HGET', KEYS[2], member)
  if command then
    found[#found + 1] = member
    found[#found + 1] = command
  end
end
return found
