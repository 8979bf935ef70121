-- An agent changes state: available, away (with a reason) or offline (ends
-- the session as a lost connection would).
--
-- ARGV[2] agent id   ARGV[3] session id   ARGV[4] 'available' | 'away' | 'offline'
-- ARGV[5] reason
-- Returns {'ok'}.
local aid, session, state, reason = ARGV[2], ARGV[3], ARGV[4], ARGV[5]
local key = agent_key(aid)
local a = hgetall(key)
if a == nil or a.session ~= session or a.online ~= '1' then
  return {'FAILED_PRECONDITION', 'agent session is no longer active; log in again'}
end
if state == 'offline' then
  end_session(aid, session, reason ~= '' and reason or 'logged_out')
  return {'ok'}
end
redis.call('HSET', key, 'state', state, 'reason', reason, 'state_since', NOW)
if state == 'available' and a.state ~= 'available' then
  -- Idle from now on the channels it has no work on.
  for _, ch in ipairs(CHANNELS) do
    if (tonumber(a['used:' .. ch]) or 0) == 0 then redis.call('HSET', key, 'idle:' .. ch, NOW) end
  end
end
reindex_agent(aid)
emit_agent('state_changed', aid, {state = state, reason = reason})
if state == 'available' then match_agent(aid) end
return {'ok'}
