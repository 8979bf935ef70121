-- A token bucket (GCRA) shared by every replica: one call takes one token.
-- Stands alone (no prelude): it declares its one key and touches no other.
--
-- KEYS[1] the bucket (under the tenant's prefix)
-- ARGV[1] tokens a second   ARGV[2] tokens saved up for a burst
-- Returns 0 when the call may go ahead, else the microseconds until one may.
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local interval = 1000000 / tonumber(ARGV[1])
local tolerance = interval * tonumber(ARGV[2])
local tat = tonumber(redis.call('GET', KEYS[1])) or now
if tat < now then tat = now end
local next_tat = tat + interval
local wait = next_tat - tolerance - now
if wait > 0 then return math.ceil(wait) end
redis.call('SET', KEYS[1], string.format('%.0f', next_tat),
  'PX', math.ceil((next_tat - now) / 1000) + 1)
return 0
