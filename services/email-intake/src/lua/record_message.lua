-- Records one message of an email thread in one step: Message-ID ->
-- interaction, the message in the thread, and the thread's meta (member
-- address, subject, References). While the interaction is open the keys never
-- expire; once it has ended, its ended mark holds when its bodies expire and
-- the keys expire then, so a message recorded late cannot outlive the thread.
--
-- KEYS[1] msg key (Message-ID -> interaction)   KEYS[2] thread hash
-- KEYS[3] meta hash   KEYS[4] ended mark (unix ms the thread expires at)
-- ARGV[1] interaction id   ARGV[2] thread field (digest of the Message-ID)
-- ARGV[3] encoded EmailMessage   ARGV[4] Message-ID   ARGV[5] subject
-- ARGV[6] member address ('' keeps the stored one)   ARGV[7] most References kept
-- Returns 1.
local refs = {}
for id in string.gmatch(redis.call('HGET', KEYS[3], 'references') or '', '%S+') do
  table.insert(refs, id)
end
local known = false
for _, id in ipairs(refs) do
  if id == ARGV[4] then known = true end
end
if not known then
  table.insert(refs, ARGV[4])
  -- Keep the root and the latest (RFC 5322 3.6.4 allows trimming the middle).
  if #refs > tonumber(ARGV[7]) then table.remove(refs, 2) end
end
redis.call('SET', KEYS[1], ARGV[1])
redis.call('HSET', KEYS[2], ARGV[2], ARGV[3])
redis.call('HSET', KEYS[3], 'references', table.concat(refs, ' '))
redis.call('HSETNX', KEYS[3], 'subject', ARGV[5])
if ARGV[6] ~= '' then redis.call('HSET', KEYS[3], 'member', ARGV[6]) end
local expire_at_ms = redis.call('GET', KEYS[4])
for i = 1, 3 do
  if expire_at_ms then
    redis.call('PEXPIREAT', KEYS[i], expire_at_ms)
  else
    redis.call('PERSIST', KEYS[i])
  end
end
return 1
