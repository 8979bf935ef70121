-- Decides one claimed survey in one step, so replicas, redeliveries and
-- races count each member once per window: opted out, no contact address or
-- throttled -> settled without an email; else the member's window starts now
-- (kept on a retry of the same interaction) and the link's record is made.
-- KEYS[1] job, KEYS[2] due, KEYS[3] throttle (member), KEYS[4] opt-out (member),
-- KEYS[5] contact (member), KEYS[6] sent (interaction)
-- ARGV[1] now_ms, ARGV[2] window_ms, ARGV[3] interaction id,
-- ARGV[4] throttle lifetime (ms), ARGV[5] sent-record lifetime (ms),
-- ARGV[6] settled-job lifetime (ms)
-- Returns {outcome} or {'send', address, language, agent}.
local function settle(outcome)
  redis.call('HSET', KEYS[1], 'state', 'done', 'outcome', outcome)
  redis.call('PEXPIRE', KEYS[1], ARGV[6])
  redis.call('ZREM', KEYS[2], ARGV[3])
  return {outcome}
end
local job = redis.call('HMGET', KEYS[1], 'state', 'agent', 'queue')
if not job[1] then
  redis.call('ZREM', KEYS[2], ARGV[3])
  return {'gone'}
end
if job[1] == 'done' then
  redis.call('ZREM', KEYS[2], ARGV[3])
  return {'done'}
end
if redis.call('EXISTS', KEYS[4]) == 1 then
  return settle('opted_out')
end
local contact = redis.call('HMGET', KEYS[5], 'address', 'language')
if not contact[1] then
  return settle('no_contact')
end
local now = tonumber(ARGV[1])
local last = redis.call('GET', KEYS[3])
local same = false
if last then
  local sep = string.find(last, ':', 1, true)
  local sent_at = tonumber(string.sub(last, 1, sep - 1))
  same = string.sub(last, sep + 1) == ARGV[3]
  if not same and now - sent_at < tonumber(ARGV[2]) then
    return settle('throttled')
  end
end
if not same then
  redis.call('SET', KEYS[3], now .. ':' .. ARGV[3], 'PX', ARGV[4])
end
redis.call('HSET', KEYS[6], 'agent', job[2], 'queue', job[3])
redis.call('PEXPIRE', KEYS[6], ARGV[5])
return {'send', contact[1], contact[2] or '', job[2]}
