-- Keeps an agent session alive for another heartbeat TTL.
--
-- ARGV[2] agent id   ARGV[3] session id
-- Returns {'ok'}.
local aid, session = ARGV[2], ARGV[3]
local a = redis.call('HMGET', agent_key(aid), 'session', 'online')
if a[1] ~= session or a[2] ~= '1' then
  return {'FAILED_PRECONDITION', 'agent session ended (heartbeats missed or a newer login replaced it); log in again'}
end
redis.call('ZADD', P .. 'timers', NOW + setting_num('heartbeat_ttl_secs') * 1000, 'hb|' .. aid .. '|' .. session)
return {'ok'}
