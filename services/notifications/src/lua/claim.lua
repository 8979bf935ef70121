-- Claims one notification for sending (SET NX semantics), unless it was
-- sent or dead-lettered already, or another replica holds a live claim.
--
-- KEYS[1] the notification's state key
-- ARGV[1] claim token (unique per attempt), ARGV[2] claim lifetime (ms)
-- Returns {'claimed'}, {'sent'}, {'dead'} or {'held', remaining ms}.
local state = redis.call('GET', KEYS[1])
if not state then
  redis.call('SET', KEYS[1], 'claimed:' .. ARGV[1], 'PX', ARGV[2])
  return {'claimed'}
end
if state == 'sent' or state == 'dead' then
  return {state}
end
return {'held', redis.call('PTTL', KEYS[1])}
