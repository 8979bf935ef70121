-- Warm transfer of an assigned interaction: to a queue or an agent (same id,
-- notes travel with it), or to an external destination (ends the leg).
--
-- ARGV[2] interaction id   ARGV[3] current agent id
-- ARGV[4] 'queue' | 'agent' | 'external'
-- ARGV[5] queue id | agent id | external destination (stored, never emitted)
-- ARGV[6] encoded Note ('' for none)
-- Returns {'ok', interaction id}.
local id, aid, kind, to = ARGV[2], ARGV[3], ARGV[4], ARGV[5]
local ix, err = assigned_to(id, aid)
if err then return err end
add_note(id, ARGV[6])
finish_work(id, ix)
if kind == 'external' then
  redis.call('HSET', ix_key(id), 'ext_dest', to)
  close_interaction(id, 'transferred_external')
  emit_ix('transferred_external', ix, id, {agent = aid})
  return {'ok', id}
end
redis.call('DEL', ix_key(id) .. ':declined')
if kind == 'queue' then
  ix.queue = to
  ix.target = to
  -- The agent handing it over is not offered it straight back.
  redis.call('SADD', ix_key(id) .. ':declined', aid)
else
  ix.target = '@' .. to
end
ix.qenq = NOW
redis.call('HSET', ix_key(id), 'queue', ix.queue, 'qenq', NOW)
emit_ix('transferred', ix, id, {agent = aid, detail = kind .. ':' .. to})
enqueue(id, ix)
schedule_overflow(id, ix, ix.target)
match_interaction(id, ix)
return {'ok', id}
