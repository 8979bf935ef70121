-- Claims the surveys due by now for one replica: each is pushed past a lease,
-- so other replicas skip it until the lease ends (a replica that dies
-- mid-send leaves it to be claimed again).
-- KEYS[1] due: sorted set of interaction ids by due time (ms)
-- ARGV[1] now_ms, ARGV[2] lease_ms, ARGV[3] most ids to claim
-- Returns the claimed interaction ids.
local ids = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, tonumber(ARGV[3]))
local leased = tonumber(ARGV[1]) + tonumber(ARGV[2])
for _, id in ipairs(ids) do
  redis.call('ZADD', KEYS[1], leased, id)
end
return ids
