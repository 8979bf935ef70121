-- Gives up a claim after a temporary failure, so the retry (on any replica)
-- can claim it; a claim that is no longer ours is left alone.
--
-- KEYS[1] the notification's state key
-- ARGV[1] claim token
-- Returns 1 if released, 0 otherwise.
if redis.call('GET', KEYS[1]) == 'claimed:' .. ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
