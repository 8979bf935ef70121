-- Schedules one survey (a resolved interaction) unless it is already known:
-- a redelivered or re-published resolved event schedules nothing twice.
-- KEYS[1] due: sorted set of interaction ids by due time (ms)
-- KEYS[2] job: hash of the survey to send
-- ARGV[1] due_ms, ARGV[2] interaction id, ARGV[3] member key,
-- ARGV[4] agent id, ARGV[5] queue id, ARGV[6] job lifetime (ms)
-- Returns 1 when scheduled, 0 when already known.
if redis.call('EXISTS', KEYS[2]) == 1 then
  return 0
end
redis.call('HSET', KEYS[2], 'member', ARGV[3], 'agent', ARGV[4], 'queue', ARGV[5], 'state', 'due')
redis.call('PEXPIRE', KEYS[2], ARGV[6])
redis.call('ZADD', KEYS[1], ARGV[1], ARGV[2])
return 1
