-- Creates an interaction, queues it and offers it to an agent if one is free.
--
-- ARGV[2] idempotency key      ARGV[3] request fingerprint
-- ARGV[4] new interaction id   ARGV[5] channel    ARGV[6] language
-- ARGV[7] queue id             ARGV[8] target     ARGV[9] priority band (0 urgent .. 3 low)
-- ARGV[10] urgent (0/1)        ARGV[11] member ref
-- ARGV[12] encoded InteractionContext            ARGV[13] after hours (0/1)
-- ARGV[14] idempotency window in seconds
-- ARGV[15] outbox bound: refused with UNAVAILABLE while this many events wait
-- ARGV[16] urgent reason: the phrase id found in its text, or ''
-- ARGV[17] most contacts that may wait in the queue (0: no cap; urgent ones pass)
-- ARGV[18] when the member first queued (ms; '' for now): its place in its band
-- Returns {'ok', id, queue position (0 once offered), replayed (0/1)}.
local idem_key = P .. 'idem:' .. ARGV[2]
-- Claims the key, or reads who holds it, in one command (Redis 7.0+).
local previous = redis.call('SET', idem_key, ARGV[4] .. '|' .. ARGV[3], 'NX', 'GET',
  'EX', ARGV[14])
if previous then
  local sep = string.find(previous, '|', 1, true)
  local id, fingerprint = string.sub(previous, 1, sep - 1), string.sub(previous, sep + 1)
  if fingerprint ~= ARGV[3] then
    return {'ALREADY_EXISTS', 'idempotency key was already used for a different request; use a new key for a new interaction'}
  end
  local ix = load_ix(id)
  local position = 0
  if ix and ix.state == 'queued' then position = queue_position(id, ix) end
  return {'ok', id, position, 1}
end

-- A replay still answers; only new work waits for the outbox to drain, and
-- leaves the key unspent.
local outbox_full = refuse_new_work_if_outbox_full(tonumber(ARGV[15]))
if outbox_full then
  redis.call('DEL', idem_key)
  return outbox_full
end
local max_waiting = tonumber(ARGV[17])
if max_waiting > 0 and ARGV[10] ~= '1' then
  local waiting = 0
  for _, ch in ipairs(CHANNELS) do
    for _, lang in ipairs(LANGUAGES) do
      waiting = waiting + redis.call('ZCARD', queue_key(ARGV[8], ch, lang))
    end
  end
  if waiting >= max_waiting then
    redis.call('DEL', idem_key)
    return {'QUEUE_FULL', waiting, max_waiting}
  end
end
local id = ARGV[4]
local band = tonumber(ARGV[9])
local qenq = math.min(tonumber(ARGV[18]) or NOW, NOW)
local ix = {ch = ARGV[5], lang = ARGV[6], queue = ARGV[7], target = ARGV[8], band = band,
  urgent = ARGV[10], member = ARGV[11], score = band * BAND + qenq, qenq = qenq, created = NOW,
  state = 'new', tp = TRACEPARENT}
-- Written with the interaction's first state (offered or queued): one HSET.
local fields = {'ch', ix.ch, 'lang', ix.lang, 'queue', ix.queue, 'band', ARGV[9],
  'member', ix.member, 'ctx', ARGV[12], 'created', NOW_S, 'qenq', int(qenq),
  'target', ix.target, 'score', int(ix.score)}
add_unless_default(fields, 'urgent', ix.urgent)
add_unless_default(fields, 'after_hours', ARGV[13])
add_unless_default(fields, 'urgent_reason', ARGV[16])
add_unless_default(fields, 'tp', TRACEPARENT)
redis.call('ZADD', P .. 'live', NOW_S, id)
emit_ix('created', ix, id)
-- Into an empty queue, a free agent takes it at once (its overflow and aging
-- clocks start only if it ever waits: see `requeue`). Behind others, it
-- joins the queue first: a free agent there (one who declined the others)
-- takes the best contact it may, so nobody is overtaken.
if redis.call('EXISTS', queue_key(ix.target, ix.ch, ix.lang)) == 0 then
  fields[#fields + 1] = 'timed'
  fields[#fields + 1] = '0'
  if match_interaction(id, ix, fields) then return {'ok', id, 0, 0} end
  fields[#fields] = '1'
  schedule_waiting_timers(id, ix)
  enqueue(id, ix, fields)
  return {'ok', id, queue_position(id, ix), 0}
end
schedule_waiting_timers(id, ix)
enqueue(id, ix, fields)
match_free_agents(ix)
if redis.call('HGET', ix_key(id), 'state') ~= 'queued' then return {'ok', id, 0, 0} end
return {'ok', id, queue_position(id, ix), 0}
