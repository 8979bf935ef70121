-- Starts the attempt of a claimed target, or settles or defers it first:
-- opted out or reached recently (by any campaign) -> settled without a
-- contact; in an open interaction -> back to due after ARGV[3] without using
-- an attempt. A target claimed again after its lease ran out keeps its
-- attempt number (the router's idempotency key makes it the same interaction).
-- KEYS[1] target, KEYS[2] active, KEYS[3] due (normal band), KEYS[4] opt-out,
-- KEYS[5] reached, KEYS[6] open interactions (set), KEYS[7] stats
-- ARGV[1] member key, ARGV[2] now_ms, ARGV[3] defer_ms, ARGV[4] settled lifetime (ms)
-- A target claimed again while 'active' whose attempt had started ('started',
-- set by the service) ran out of its lease without a result: counted as
-- f:lease_expired, and flagged in the reply.
-- Returns {'start', attempt, member_ref, hint, language, priority, queued since,
-- lease expired (0/1)} or {why}.
local function settle(outcome)
  redis.call('HSET', KEYS[1], 'state', 'done', 'outcome', outcome)
  redis.call('PEXPIRE', KEYS[1], ARGV[4])
  redis.call('ZREM', KEYS[2], ARGV[1])
  redis.call('HINCRBY', KEYS[7], 'r:' .. outcome, 1)
  return {outcome}
end
local t = redis.call('HMGET', KEYS[1], 'state', 'attempt', 'member_ref', 'hint', 'language',
  'priority', 'queued', 'started')
if not t[1] or t[1] == 'done' then
  redis.call('ZREM', KEYS[2], ARGV[1])
  return {'gone'}
end
if redis.call('EXISTS', KEYS[4]) == 1 then
  return settle('suppressed_opted_out')
end
if redis.call('EXISTS', KEYS[5]) == 1 then
  return settle('suppressed_reached_recently')
end
local attempt = tonumber(t[2])
local expired = '0'
if t[1] == 'active' and t[8] == '1' then
  expired = '1'
  redis.call('HSET', KEYS[1], 'started', 0)
  redis.call('HINCRBY', KEYS[7], 'f:lease_expired', 1)
end
if t[1] ~= 'active' then
  if redis.call('SCARD', KEYS[6]) > 0 then
    redis.call('ZREM', KEYS[2], ARGV[1])
    redis.call('ZADD', KEYS[3], tonumber(ARGV[2]) + tonumber(ARGV[3]), ARGV[1])
    redis.call('HINCRBY', KEYS[7], 'r:deferred_open_interaction', 1)
    return {'deferred'}
  end
  attempt = attempt + 1
  redis.call('HSET', KEYS[1], 'state', 'active', 'attempt', attempt, 'started', 0)
  redis.call('HINCRBY', KEYS[7], 'attempts', 1)
end
return {'start', tostring(attempt), t[3], t[4], t[5], t[6], t[7] or '0', expired}
