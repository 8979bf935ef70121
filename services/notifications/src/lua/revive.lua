-- Makes a dead letter sendable again: its state is cleared so the replayed
-- request can be claimed. The entry stays listed until forget.lua removes it
-- (after the replay is published), so a failed publish loses nothing.
--
-- KEYS[1] state key, KEYS[2] dead-letter index, KEYS[3] requests
-- ARGV[1] notification id
-- Returns {version, request bytes}, or nil when it is not a dead letter.
local version = redis.call('ZSCORE', KEYS[2], ARGV[1])
if not version then
  return nil
end
local request = redis.call('HGET', KEYS[3], ARGV[1])
if redis.call('GET', KEYS[1]) == 'dead' then
  redis.call('DEL', KEYS[1])
end
return {version, request}
