-- Keeps an agent session alive for another heartbeat TTL, and says what the
-- agent holds so the session can re-send anything its client missed.
--
-- ARGV[2] agent id   ARGV[3] session id
-- Returns {'ok', {interaction id, offer id (pending, or accepted once assigned),
-- 'offered' | 'assigned', ...}}.
local aid, session = ARGV[2], ARGV[3]
local a = redis.call('HMGET', agent_key(aid), 'session', 'online')
if a[1] ~= session or a[2] ~= '1' then
  return {'FAILED_PRECONDITION', 'agent session ended (heartbeats missed or a newer login replaced it); log in again'}
end
redis.call('ZADD', P .. 'timers', NOW + setting_num('heartbeat_ttl_secs') * 1000, 'hb|' .. aid .. '|' .. session)
local held = {}
for _, id in ipairs(redis.call('SMEMBERS', P .. 'holds:' .. aid)) do
  local ix = redis.call('HMGET', ix_key(id), 'state', 'agent', 'offer')
  if ix[2] == aid and (ix[1] == 'offered' or ix[1] == 'assigned') then
    held[#held + 1] = id
    held[#held + 1] = ix[3]
    held[#held + 1] = ix[1]
  end
end
return {'ok', held}
