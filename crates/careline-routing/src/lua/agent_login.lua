-- An agent session starts (or replaces the agent's previous one): the agent's
-- targets, languages and capacity are (re)loaded from configuration, and a
-- session that reconnects within the grace period keeps its assigned work.
--
-- ARGV[2] agent id     ARGV[3] session id
-- ARGV[4] targets, comma-separated (queues and overflow steps it may serve,
--         and its personal target "@<agent>")
-- ARGV[5] proficiency per target, comma-separated, same order as ARGV[4]
-- ARGV[6] languages, comma-separated     ARGV[7] capacity "voice,chat,email"
-- ARGV[8] initial state: 'available' | 'away'
-- Returns {'ok', ids of interactions the agent holds (offered or assigned)}.
local aid, session = ARGV[2], ARGV[3]
local key = agent_key(aid)
local prev = hgetall(key)
if prev then
  if prev.session and prev.session ~= session then
    redis.call('ZREM', P .. 'timers', 'hb|' .. aid .. '|' .. prev.session, 'grace|' .. aid .. '|' .. prev.session)
  end
  -- Leave every index of the old configuration before loading the new one.
  redis.call('HSET', key, 'online', '0')
  reindex_agent(aid)
end
local caps = split(ARGV[7])
local fields = {'session', session, 'online', '1', 'targets', ARGV[4], 'langs', ARGV[6],
  'profile', table.concat({ARGV[4], ARGV[5], ARGV[6], ARGV[7]}, '|'),
  'cap:voice', caps[1], 'cap:chat', caps[2], 'cap:email', caps[3],
  'state', ARGV[8], 'reason', '', 'state_since', NOW}
if prev == nil then
  for _, f in ipairs({'used:voice', 0, 'used:chat', 0, 'used:email', 0,
      'idle:voice', NOW, 'idle:chat', NOW, 'idle:email', NOW}) do
    fields[#fields + 1] = f
  end
end
local targets, profs = split(ARGV[4]), split(ARGV[5])
for i, target in ipairs(targets) do
  fields[#fields + 1] = 'prof:' .. target
  fields[#fields + 1] = profs[i]
end
redis.call('HSET', key, unpack(fields))
redis.call('SADD', P .. 'agents', aid)
redis.call('ZADD', P .. 'timers', NOW + setting_num('heartbeat_ttl_secs') * 1000, 'hb|' .. aid .. '|' .. session)
reindex_agent(aid)
emit_agent('logged_in', aid, {state = ARGV[8]})
if ARGV[8] == 'available' then match_agent(aid) end
local holds = redis.call('SMEMBERS', P .. 'holds:' .. aid)
return {'ok', holds}
