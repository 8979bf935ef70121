-- Resolves an assigned (or pending) interaction; the agent's capacity on the
-- channel stays held for the wrap-up time.
--
-- ARGV[2] interaction id   ARGV[3] agent id   ARGV[4] disposition
-- ARGV[5] outcome tags, comma-separated        ARGV[6] encoded Note ('' for none)
-- ARGV[7] the note's text, for the member's history
-- Returns {'ok', interaction id}.
local id, aid = ARGV[2], ARGV[3]
local ix = load_ix(id)
if ix and ix.state == 'pending' and ix.agent == aid then
  redis.call('ZREM', P .. 'timers', 'pend|' .. id)
else
  local err
  ix, err = assigned_to(id, aid)
  if err then return err end
  finish_work(id, ix)
end
add_note(id, ARGV[6])
redis.call('HSET', ix_key(id), 'disposition', ARGV[4], 'tags', ARGV[5])
close_interaction(id, 'resolved')
-- The member's history, newest first, for the agents of their next contacts
-- (RoutingStore::member_history): ids, outcome and the resolution note, never
-- a body or transcript; each entry carries when it stops counting.
local history_count = tonumber(SETTINGS.member_history_count) or 0
local history_secs = tonumber(SETTINGS.member_history_secs) or 0
if ix.member ~= '' and history_count > 0 and history_secs > 0 then
  local key = P .. 'member:' .. ix.member
  redis.call('LPUSH', key, cjson.encode({id = id, at = NOW, until_ms = NOW + history_secs * 1000,
    ch = ix.ch, queue = ix.queue, disposition = ARGV[4], tags = ARGV[5], agent = aid,
    note = ARGV[7]}))
  redis.call('LTRIM', key, 0, history_count - 1)
  redis.call('EXPIRE', key, history_secs)
end
emit_ix('resolved', ix, id, {agent = aid, detail = ARGV[4], tags = ARGV[5]})
return {'ok', id}
