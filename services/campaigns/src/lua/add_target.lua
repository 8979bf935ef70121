-- Adds one target to a campaign unless the campaign already has the member:
-- a retried or repeated batch adds nothing twice.
-- KEYS[1] target hash, KEYS[2] due set of its band (high or normal), KEYS[3] stats
-- ARGV[1] member key, ARGV[2] due_ms, ARGV[3] member_ref, ARGV[4] contact hint,
-- ARGV[5] language code, ARGV[6] priority name, ARGV[7] target lifetime (ms)
-- ARGV[8] when the member first queued (ms; 0: not a call-back)
-- Returns 1 when added, 0 when already known.
if redis.call('EXISTS', KEYS[1]) == 1 then
  return 0
end
redis.call('HSET', KEYS[1], 'member_ref', ARGV[3], 'hint', ARGV[4], 'language', ARGV[5],
  'priority', ARGV[6], 'state', 'due', 'attempt', 0, 'queued', ARGV[8])
redis.call('PEXPIRE', KEYS[1], ARGV[7])
redis.call('ZADD', KEYS[2], ARGV[2], ARGV[1])
redis.call('HINCRBY', KEYS[3], 'targets', 1)
return 1
