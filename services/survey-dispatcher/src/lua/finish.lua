-- Settles a survey whose email was handed to notifications.
-- KEYS[1] job, KEYS[2] due
-- ARGV[1] interaction id, ARGV[2] settled-job lifetime (ms)
redis.call('HSET', KEYS[1], 'state', 'done', 'outcome', 'sent')
redis.call('PEXPIRE', KEYS[1], ARGV[2])
redis.call('ZREM', KEYS[2], ARGV[1])
return 1
