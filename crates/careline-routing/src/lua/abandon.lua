-- The member left before being served: a queued, offered or pending
-- interaction ends; a pending offer is revoked and its agent freed.
--
-- ARGV[2] interaction id
-- Returns {'ok', interaction id}.
local id = ARGV[2]
local ix = load_ix(id)
if ix == nil then return not_found('interaction') end
if ix.state == 'queued' then
  redis.call('ZREM', queue_key(ix.target, ix.ch, ix.lang), id)
elseif ix.state == 'offered' then
  local aid = ix.agent
  withdraw_offer(id, ix, 'offer_revoked', 'abandoned')
  match_agent(aid)
elseif ix.state == 'pending' then
  redis.call('ZREM', P .. 'timers', 'pend|' .. id)
else
  return {'FAILED_PRECONDITION', 'interaction is ' .. ix.state ..
    '; only queued, offered or pending interactions can be abandoned (resolve an assigned one)'}
end
close_interaction(id, 'abandoned')
emit_ix('abandoned', ix, id)
return {'ok', id}
