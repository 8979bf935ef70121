-- Acknowledges and deletes outbox entries JetStream stored, and raises the
-- tenant's `relayed` mark: the sequence number of the last event published.
-- Routing scripts count the events still waiting as `seq - relayed` (one
-- field of the settings hash they read anyway) instead of measuring the
-- stream. With several relays the mark is a little ahead or behind by what
-- other replicas hold in flight; the outbox bound is far larger than that.
--
-- KEYS[1] the tenant's outbox   KEYS[2] its settings hash
-- ARGV[1] consumer group        ARGV[2] sequence number of the last event published
-- ARGV[3..] entry ids
local ids = {}
for i = 3, #ARGV do ids[#ids + 1] = ARGV[i] end
redis.call('XACK', KEYS[1], ARGV[1], unpack(ids))
redis.call('XDEL', KEYS[1], unpack(ids))
-- A deleted tenant's settings are not brought back by a late relay.
if redis.call('EXISTS', KEYS[2]) == 1 then
  local relayed = tonumber(redis.call('HGET', KEYS[2], 'relayed')) or 0
  if tonumber(ARGV[2]) > relayed then redis.call('HSET', KEYS[2], 'relayed', ARGV[2]) end
end
return 1
