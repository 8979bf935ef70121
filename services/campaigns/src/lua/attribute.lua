-- Adds a resolved interaction's disposition and outcome tags to its
-- campaign's figures once: a redelivered resolved event counts nothing twice.
-- KEYS[1] counted marker (interaction), KEYS[2] campaign stats
-- ARGV[1] marker lifetime (ms), ARGV[2] disposition (may be empty), ARGV[3..] outcome tags
-- Returns 1 when counted, 0 when counted before.
if not redis.call('SET', KEYS[1], '1', 'NX', 'PX', ARGV[1]) then
  return 0
end
if ARGV[2] ~= '' then
  redis.call('HINCRBY', KEYS[2], 'd:' .. ARGV[2], 1)
end
for i = 3, #ARGV do
  redis.call('HINCRBY', KEYS[2], 'o:' .. ARGV[i], 1)
end
return 1
