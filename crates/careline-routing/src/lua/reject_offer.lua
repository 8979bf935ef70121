-- An agent rejects an offer: the interaction goes back to its original
-- position and to the next agent; this agent is not offered it again.
--
-- ARGV[2] offer id   ARGV[3] agent id
-- Returns {'ok', interaction id}.
local oid, aid = ARGV[2], ARGV[3]
local id = redis.call('GET', P .. 'offer:' .. oid)
if not id then return not_found('offer') end
local ix = load_ix(id)
if ix == nil or ix.agent ~= aid then return not_found('offer') end
if ix.offer ~= oid or ix.state ~= 'offered' then
  return {'FAILED_PRECONDITION', 'offer is no longer pending: it was answered, revoked or timed out'}
end
redis.call('SADD', ix_key(id) .. ':declined', aid)
withdraw_offer(id, ix, 'offer_rejected', 'rejected')
requeue(id, ix, 'requeued', aid, 'rejected')
match_agent(aid)
return {'ok', id}
