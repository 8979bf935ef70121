-- Resolves an assigned (or pending) interaction; the agent's capacity on the
-- channel stays held for the wrap-up time.
--
-- ARGV[2] interaction id   ARGV[3] agent id   ARGV[4] disposition
-- ARGV[5] outcome tags, comma-separated        ARGV[6] encoded Note ('' for none)
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
emit_ix('resolved', ix, id, {agent = aid, detail = ARGV[4], tags = ARGV[5]})
return {'ok', id}
