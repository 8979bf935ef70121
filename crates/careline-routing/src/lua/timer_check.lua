-- When the tenant's next timer is due, and whether its routing settings are
-- still there (Redis restarted empty). Read-only, and on the clock of the
-- Redis node that owns the tenant. Stands alone (no prelude): it runs for
-- every tenant on the worker's slow sweep and must stay cheap.
--
-- KEYS[1] the tenant's timers (sorted set, score = due time in ms)
-- KEYS[2] the tenant's settings hash
-- Returns {settings exist (0/1), ms until the next timer is due (0 if due
-- now), or -1 if there is none}.

local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local settings = redis.call('EXISTS', KEYS[2])
local first = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
if first[2] == nil then
  return {settings, -1}
end
local due_in = tonumber(first[2]) - now
if due_in < 0 then due_in = 0 end
return {settings, math.floor(due_in)}
