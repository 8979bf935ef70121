-- Records the result of a target's attempt once: a retry goes back to the
-- due set at its time, anything else settles the target; `reached` also
-- suppresses the member for every campaign of the tenant for a while.
-- KEYS[1] target, KEYS[2] active, KEYS[3] due (normal band), KEYS[4] reached, KEYS[5] stats
-- ARGV[1] member key, ARGV[2] attempt it is for, ARGV[3] result, ARGV[4] next
-- due ms (0: settle), ARGV[5] outcome when settled, ARGV[6] reached
-- suppression (ms), ARGV[7] settled lifetime (ms)
-- Returns {'due'}, {'done'} or {'no_attempt'}.
local t = redis.call('HMGET', KEYS[1], 'state', 'attempt')
if t[1] ~= 'active' or t[2] ~= ARGV[2] then
  return {'no_attempt'}
end
redis.call('ZREM', KEYS[2], ARGV[1])
redis.call('HINCRBY', KEYS[5], 'r:' .. ARGV[3], 1)
if ARGV[3] == 'reached' then
  redis.call('SET', KEYS[4], '1', 'PX', ARGV[6])
end
if tonumber(ARGV[4]) > 0 then
  redis.call('HSET', KEYS[1], 'state', 'due')
  redis.call('ZADD', KEYS[3], ARGV[4], ARGV[1])
  return {'due'}
end
redis.call('HSET', KEYS[1], 'state', 'done', 'outcome', ARGV[5])
redis.call('PEXPIRE', KEYS[1], ARGV[7])
return {'done'}
