-- Removes a replayed dead letter, unless it was dead-lettered again since
-- (a newer version): that one must stay listed.
--
-- KEYS[1] dead-letter index, KEYS[2] requests, KEYS[3] details
-- ARGV[1] notification id, ARGV[2] the version revive.lua returned
-- Returns 1 if removed, 0 otherwise.
if redis.call('ZSCORE', KEYS[1], ARGV[1]) ~= ARGV[2] then
  return 0
end
redis.call('ZREM', KEYS[1], ARGV[1])
redis.call('HDEL', KEYS[2], ARGV[1])
redis.call('HDEL', KEYS[3], ARGV[1])
return 1
