-- Claims and runs the tenant's due timers. Any replica may call it: a timer
-- is removed from the set and acted on in the same atomic step, so each runs
-- exactly once.
--
-- Timer members ("kind|args"):
--   offer|<offer id>|<ix id>         the offer deadline passed: agent marked away
--                                    ("missed"), interaction back at its position
--   wrap|<agent>|<channel>|<ix id>   wrap-up over: the capacity is released
--   pend|<ix id>                     pending follow-up due: back to agent or queue
--   ovf|<ix id>|<target>             overflow step of the target is due (for an
--                                    agent's personal target: back to its queue)
--   age|<ix id>                      priority aging step
--   hb|<agent>|<session>             no heartbeat within the TTL: session ends
--   grace|<agent>|<session>          reconnect grace over: assigned work requeued
--   rma|<agent>, rmi|<ix id>         match again: an earlier script hit the offer cap
--
-- ARGV[2] maximum timers to run
-- Returns {'ok', timers run, timers still due}.

local function on_offer_timeout(oid, id)
  -- Offers made before their timer named the interaction: through their key.
  id = id or redis.call('GET', P .. 'offer:' .. oid)
  if not id then return end
  local ix = load_ix(id)
  if ix == nil or ix.offer ~= oid or ix.state ~= 'offered' then return end
  local aid = ix.agent
  redis.call('SADD', ix_key(id) .. ':declined', aid)
  local akey = agent_key(aid)
  if redis.call('HGET', akey, 'state') == 'available' then
    redis.call('HSET', akey, 'state', 'away', 'reason', 'missed', 'state_since', NOW)
    emit_agent('state_changed', aid, {state = 'away', reason = 'missed'})
  end
  withdraw_offer(id, ix, 'offer_timed_out', 'timed_out')
  -- Away now: out of every channel's indexes, not only the offer's.
  reindex_agent(aid)
  requeue(id, ix, 'requeued', aid, 'timed_out')
end

local function on_pending_due(id)
  local ix = load_ix(id)
  if ix == nil or ix.state ~= 'pending' then return end
  if ix.pending_return == 'agent' and ix.agent ~= '' then
    ix.target = '@' .. ix.agent
  else
    ix.target = ix.queue
  end
  redis.call('DEL', ix_key(id) .. ':declined')
  ix.qenq = NOW
  redis.call('HSET', ix_key(id), 'qenq', NOW)
  schedule_overflow(id, ix, ix.target)
  requeue(id, ix, 'requeued', ix.agent, 'pending_due')
end

local function on_overflow(id, target)
  local ix = load_ix(id)
  if ix == nil or ix.target ~= target then return end
  if ix.state == 'offered' then
    -- Decide once the offer is answered or times out.
    redis.call('ZADD', P .. 'timers', NOW + 1000, 'ovf|' .. id .. '|' .. target)
    return
  end
  if ix.state ~= 'queued' then return end
  local next_target
  if string.sub(target, 1, 1) == '@' then
    next_target = ix.queue
  else
    local cfg = target_config(target)
    if cfg == nil or cfg.next == '' then return end
    next_target = cfg.next
  end
  local next_cfg = target_config(next_target)
  redis.call('ZREM', queue_key(ix.target, ix.ch, ix.lang), id)
  if next_cfg and next_cfg.queue ~= ix.queue then
    -- A move to another queue: its own overflow clock starts now.
    ix.queue = next_cfg.queue
    ix.qenq = NOW
    redis.call('HSET', ix_key(id), 'queue', ix.queue, 'qenq', NOW)
  end
  emit_ix('overflowed', ix, id, {detail = target .. '>' .. next_target})
  ix.target = next_target
  enqueue(id, ix)
  schedule_overflow(id, ix, next_target)
  match_interaction(id, ix)
end

local function on_aging(id)
  local ix = load_ix(id)
  if ix == nil or (ix.state ~= 'queued' and ix.state ~= 'offered') then return end
  local band = tonumber(ix.band)
  if band <= setting_num('aging_max_band') then return end
  local old_score = tonumber(ix.score)
  band = band - 1
  local score = band * BAND + (old_score % BAND)
  redis.call('HSET', ix_key(id), 'band', band, 'score', score)
  if ix.state == 'queued' then
    redis.call('ZADD', queue_key(ix.target, ix.ch, ix.lang), score, id)
  end
  ix.band = band
  schedule_aging(id, ix, NOW)
end

local function on_grace_over(aid, session)
  local a = load_agent(aid)
  if a == nil or a.session ~= session or a.online == '1' then return end
  for _, id in ipairs(redis.call('SMEMBERS', P .. 'holds:' .. aid)) do
    local ix = load_ix(id)
    redis.call('SREM', P .. 'holds:' .. aid, id)
    if ix and ix.state == 'assigned' and ix.agent == aid then
      redis.call('HSET', ix_key(id), 'disconnected', '1')
      release_capacity(aid, ix.ch)
      ix.target = ix.queue
      ix.qenq = NOW
      redis.call('HSET', ix_key(id), 'qenq', NOW)
      schedule_overflow(id, ix, ix.target)
      requeue(id, ix, 'requeued', aid, 'session_lost')
    end
  end
end

local due = redis.call('ZRANGEBYSCORE', P .. 'timers', '-inf', NOW, 'LIMIT', 0, tonumber(ARGV[2]))
for _, member in ipairs(due) do
  redis.call('ZREM', P .. 'timers', member)
  local f = split(string.gsub(member, '|', ','))
  local kind = f[1]
  if kind == 'offer' then
    on_offer_timeout(f[2], f[3])
  elseif kind == 'wrap' then
    release_capacity(f[2], f[3])
    match_agent(f[2])
  elseif kind == 'pend' then
    on_pending_due(f[2])
  elseif kind == 'ovf' then
    on_overflow(f[2], f[3])
  elseif kind == 'age' then
    on_aging(f[2])
  elseif kind == 'hb' then
    end_session(f[2], f[3], 'heartbeat_lost')
  elseif kind == 'grace' then
    on_grace_over(f[2], f[3])
  elseif kind == 'rma' then
    match_agent(f[2])
  elseif kind == 'rmi' then
    local ix = load_ix(f[2])
    if ix then match_interaction(f[2], ix) end
  end
end
local remaining = redis.call('ZCOUNT', P .. 'timers', '-inf', NOW)
return {'ok', #due, remaining}
