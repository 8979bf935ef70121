-- An agent rejects an offer: the interaction goes back to its original
-- position and to the next agent; this agent is not offered it again.
--
-- ARGV[2] offer id   ARGV[3] agent id
-- Returns {'ok', interaction id}.
local oid, aid = ARGV[2], ARGV[3]
local id, ix, err = pending_offer(oid, aid)
if err then return err end
redis.call('SADD', ix_key(id) .. ':declined', aid)
withdraw_offer(id, ix, 'offer_rejected', 'rejected')
requeue(id, ix, 'requeued', aid, 'rejected')
match_agent(aid)
return {'ok', id}
