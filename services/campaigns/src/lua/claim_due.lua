-- Claims a campaign's targets due now for one replica, within its pacing, in
-- one step: every replica runs it, and a target leaves the due sets for the
-- active set exactly once, so it is attempted at most once per attempt.
-- Claims whose lease ran out (the replica died before the attempt started or
-- was reported) go back to the due set first, keeping their attempt number.
-- KEYS[1] due (high band), KEYS[2] due (normal band), KEYS[3] active
-- (member key -> lease end ms), KEYS[4] started-this-hour counter
-- ARGV[1] now_ms, ARGV[2] lease_ms, ARGV[3] most in progress, ARGV[4] most
-- per hour, ARGV[5] most to claim now, ARGV[6] counter lifetime (ms)
-- Returns the claimed member keys.
local now = tonumber(ARGV[1])
local expired = redis.call('ZRANGEBYSCORE', KEYS[3], '-inf', now, 'LIMIT', 0, tonumber(ARGV[5]))
for _, member in ipairs(expired) do
  redis.call('ZREM', KEYS[3], member)
  redis.call('ZADD', KEYS[1], now, member)
end
local started = tonumber(redis.call('GET', KEYS[4]) or '0')
local room = math.min(tonumber(ARGV[3]) - redis.call('ZCARD', KEYS[3]),
  tonumber(ARGV[4]) - started, tonumber(ARGV[5]))
if room <= 0 then
  return {}
end
local claimed = {}
for i = 1, 2 do
  if #claimed < room then
    local due = redis.call('ZRANGEBYSCORE', KEYS[i], '-inf', now, 'LIMIT', 0, room - #claimed)
    for _, member in ipairs(due) do
      redis.call('ZREM', KEYS[i], member)
      redis.call('ZADD', KEYS[3], now + tonumber(ARGV[2]), member)
      claimed[#claimed + 1] = member
    end
  end
end
if #claimed > 0 then
  redis.call('INCRBY', KEYS[4], #claimed)
  redis.call('PEXPIRE', KEYS[4], ARGV[6])
end
return claimed
