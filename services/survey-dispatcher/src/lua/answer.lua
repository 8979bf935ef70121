-- Records a member's answer once: a second submit of the same survey (a
-- replayed link, a double click, two tabs) stores nothing.
-- KEYS[1] sent (interaction), KEYS[2] answer (interaction), KEYS[3] answers index
-- ARGV[1] now_ms, ARGV[2] interaction id, ARGV[3] recommend, ARGV[4] hire_agent,
-- ARGV[5] ease, ARGV[6] comment, ARGV[7] answer lifetime (ms),
-- ARGV[8] index entries older than this (ms) are dropped
-- Returns {'ok', queue, agent}, {'already'} or {'unknown'} (no survey was sent).
local sent = redis.call('HMGET', KEYS[1], 'queue', 'agent', 'answered')
if not sent[1] then
  return {'unknown'}
end
if sent[3] then
  return {'already'}
end
redis.call('HSET', KEYS[1], 'answered', ARGV[1])
redis.call('HSET', KEYS[2], 'queue', sent[1], 'agent', sent[2], 'recommend', ARGV[3],
  'hire_agent', ARGV[4], 'ease', ARGV[5], 'comment', ARGV[6], 'answered_at', ARGV[1])
redis.call('PEXPIRE', KEYS[2], ARGV[7])
redis.call('ZADD', KEYS[3], ARGV[1],
  ARGV[2] .. '|' .. sent[1] .. '|' .. sent[2] .. '|' .. ARGV[3] .. '|' .. ARGV[4] .. '|' .. ARGV[5])
redis.call('ZREMRANGEBYSCORE', KEYS[3], '-inf', '(' .. ARGV[8])
return {'ok', sent[1], sent[2]}
