-- An agent accepts an offer: the interaction is assigned to it.
--
-- ARGV[2] offer id   ARGV[3] agent id
-- Returns {'ok', interaction id}.
local oid, aid = ARGV[2], ARGV[3]
local id, ix, err = pending_offer(oid, aid)
if err then return err end
if tonumber(ix.offer_deadline) < NOW then
  return {'FAILED_PRECONDITION', 'offer expired; the interaction goes back to its queue'}
end
forget_offer(oid, id, aid)
redis.call('HSET', ix_key(id), 'state', 'assigned', 'assigned_at', NOW, 'updated', NOW)
local cfg = target_config(ix.target)
local sl_secs = (cfg and cfg.sl) or 30
local hour_key = P .. 'sl:' .. ix.queue .. ':' .. math.floor(NOW / 3600000)
redis.call('HINCRBY', hour_key, 'answered', 1)
if NOW - tonumber(ix.created) <= sl_secs * 1000 then redis.call('HINCRBY', hour_key, 'within', 1) end
if ix.urgent == '1' then redis.call('HINCRBY', hour_key, 'urgent', 1) end
redis.call('EXPIRE', hour_key, 7200)
emit_ix('assigned', ix, id, {agent = aid, offer = oid})
return {'ok', id}
