-- Starts a tenant's `relayed` mark (see outbox_relayed.lua) where it has
-- none yet, so that routing scripts count waiting events from the settings
-- hash from the first create on: every event the outbox does not hold counts
-- as relayed.
--
-- KEYS[1] the tenant's settings hash   KEYS[2] its outbox
-- KEYS[3] its event sequence key of releases before the sequence moved into
--         the settings hash
if redis.call('HEXISTS', KEYS[1], 'relayed') == 1 then return 0 end
local seq = tonumber(redis.call('HGET', KEYS[1], 'seq')) or tonumber(redis.call('GET', KEYS[3])) or 0
redis.call('HSET', KEYS[1], 'relayed', math.max(0, seq - redis.call('XLEN', KEYS[2])))
return 1
