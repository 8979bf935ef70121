-- Keeps an agent session alive for another heartbeat TTL, and says what the
-- agent holds so the session can re-send anything its client missed. Stands
-- alone (no prelude: it emits no event and changes no routing state, it only
-- moves the session's deadline): every online agent sends one every few
-- seconds, and thousands may arrive together.
--
-- KEYS[1] the agent's hash           KEYS[2] the tenant's timers
-- KEYS[3] the tenant's settings      KEYS[4] what the agent holds (set of ids)
-- ARGV[1] the tenant's key prefix (the held interactions' keys start with it)
-- ARGV[2] agent id   ARGV[3] session id
-- Returns {'ok', {interaction id, offer id (pending, or accepted once assigned),
-- 'offered' | 'assigned', ...}}.
local aid, session = ARGV[2], ARGV[3]
local a = redis.call('HMGET', KEYS[1], 'session', 'online')
if a[1] ~= session or a[2] ~= '1' then
  return {'FAILED_PRECONDITION', 'agent session ended (heartbeats missed or a newer login replaced it); log in again'}
end
local ttl = tonumber(redis.call('HGET', KEYS[3], 'heartbeat_ttl_secs'))
if ttl == nil then
  return {'UNAVAILABLE', 'tenant routing settings are not loaded yet (the tenant was applied moments ago); retry shortly'}
end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZADD', KEYS[2], now + ttl * 1000, 'hb|' .. aid .. '|' .. session)
local held = {}
for _, id in ipairs(redis.call('SMEMBERS', KEYS[4])) do
  local ix = redis.call('HMGET', ARGV[1] .. 'ix:' .. id, 'state', 'agent', 'offer')
  if ix[2] == aid and (ix[1] == 'offered' or ix[1] == 'assigned') then
    held[#held + 1] = id
    held[#held + 1] = ix[3]
    held[#held + 1] = ix[1]
  end
end
return {'ok', held}
