-- Parks a notification in the tenant's dead letters: its state becomes
-- 'dead' (redelivered copies are dropped), the request is kept for
-- ReplayDeadLetter, and dead letters past their retention are pruned.
--
-- KEYS[1] state key, KEYS[2] dead-letter index (zset id -> ms),
-- KEYS[3] requests (hash id -> NotificationRequested),
-- KEYS[4] details (hash id -> DeadLetter)
-- ARGV[1] notification id, ARGV[2] now (ms), ARGV[3] request bytes,
-- ARGV[4] detail bytes, ARGV[5] retention (ms), ARGV[6] most entries pruned per call
-- Returns the number pruned.
redis.call('SET', KEYS[1], 'dead', 'PX', ARGV[5])
redis.call('ZADD', KEYS[2], ARGV[2], ARGV[1])
redis.call('HSET', KEYS[3], ARGV[1], ARGV[3])
redis.call('HSET', KEYS[4], ARGV[1], ARGV[4])
local cutoff = tonumber(ARGV[2]) - tonumber(ARGV[5])
local old = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', cutoff, 'LIMIT', 0, ARGV[6])
for _, id in ipairs(old) do
  redis.call('ZREM', KEYS[2], id)
  redis.call('HDEL', KEYS[3], id)
  redis.call('HDEL', KEYS[4], id)
end
return #old
