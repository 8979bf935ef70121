-- Parks an assigned interaction awaiting follow-up until a time; then it
-- returns to the same agent or to its queue (see run_timers.lua).
--
-- ARGV[2] interaction id   ARGV[3] agent id   ARGV[4] until (ms)
-- ARGV[5] 'agent' | 'queue'                   ARGV[6] encoded Note ('' for none)
-- Returns {'ok', interaction id}.
local id, aid, until_ms = ARGV[2], ARGV[3], tonumber(ARGV[4])
local ix, err = assigned_to(id, aid)
if err then return err end
add_note(id, ARGV[6])
finish_work(id, ix)
redis.call('HSET', ix_key(id), 'state', 'pending', 'pending_until', until_ms, 'pending_return', ARGV[5],
  'offer', '', 'updated', NOW)
redis.call('ZADD', P .. 'timers', until_ms, 'pend|' .. id)
emit_ix('pending', ix, id, {agent = aid, detail = tostring(until_ms)})
return {'ok', id}
