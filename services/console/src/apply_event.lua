-- Applies one event of the log to a tenant's KPIs, at most once per event id.
--
-- KEYS[1]  the tenant's KPI key prefix, "kpi:{<tenant>}:" (one Cluster slot)
-- ARGV[1]  event id                ARGV[2]  kind (created, assigned, resolved, ...,
--                                           'state' for an agent state change, or
--                                           'add' for counts the caller worked out:
--                                           survey answers, quality reviews)
-- ARGV[3]  occurred at (ms)        ARGV[4]  interaction id ('' for agent events)
-- ARGV[5]  queue id                ARGV[6]  agent id
-- ARGV[7]  opaque member ref       ARGV[8]  channel (voice, chat, email)
-- ARGV[9]  outcome tags, comma-separated
-- ARGV[10] the queue's service level threshold (ms)
-- ARGV[11] short-abandon threshold (ms)
-- ARGV[12] first-contact resolution window (ms)
-- ARGV[13] how long seen ids and per-contact pairing state are kept (secs)
-- ARGV[14] the event's periods, comma-separated "<q|h|d>:<start ms>"
-- ARGV[15] the state change's entry in the agent's history,
--          "<sequence, 20 digits>|<state>" ("available", "away:<reason>",
--          "offline")                                                  ('state' only)
-- ARGV[16] the agent history's version the caller read ('' none)      ('state' only)
-- ARGV[17] what the change adds to agent time, lines of
--          "<period>\t<state>\t<signed ms>"                           ('state' only)
-- ARGV[18] how long KPI periods are kept (secs)
-- ARGV[19] longest wrap-up matched to a resolution (ms)
-- ARGV[20] what the event adds to its queue's and agent's periods, lines of
--          "<field>\t<n>"                                              ('add' only)
--
-- Events may arrive in any order (redelivery, replicas, a replay) and every
-- measure comes out the same:
-- - both ends of a measure (creation and answer, answer and resolution) are
--   stored on the contact and the measure is counted, once, by whichever end
--   comes second;
-- - an agent's state changes form a history ordered by time; the caller
--   computes, from the neighbours of the new change, the time it moves from
--   one state to another, and the script applies it only if the history has
--   not changed since (else {'retry'});
-- - a resolution's wrap-up ends at the agent's first capacity release on the
--   channel after it; a release that arrives late corrects it.
--
-- Returns {'dup'} for an event already applied, {'retry'} when the agent's
-- history changed since the caller read it, else {'ok', name, value, ...}:
-- what was added to the tenant's totals (for the Prometheus counters).

local P = KEYS[1]
local EVENT_ID, KIND, AT = ARGV[1], ARGV[2], tonumber(ARGV[3])
local IX, QUEUE, AGENT, MEMBER, CH = ARGV[4], ARGV[5], ARGV[6], ARGV[7], ARGV[8]
local SL_MS, SHORT_MS, FCR_MS = tonumber(ARGV[10]), tonumber(ARGV[11]), tonumber(ARGV[12])
local KEEP_SECS, KPI_KEEP_SECS = tonumber(ARGV[13]), tonumber(ARGV[18])
local MAX_WRAP_MS = tonumber(ARGV[19])
-- Resolutions a late capacity release may correct.
local MAX_WRAP_MATCHES = 64
-- Earlier resolutions of one member a new contact marks as repeats at most.
local MAX_REPEAT_MARKS = 64
local BUCKETS = ARGV[14]

local seen_key = P .. 'seen:' .. EVENT_ID
if redis.call('EXISTS', seen_key) == 1 then return {'dup'} end

-- Integers as text: tostring() would write large numbers as 1.7e+12.
local function int(n) return string.format('%d', n) end

local OUT = {'ok'}
local function report(name, value)
  OUT[#OUT + 1] = name
  OUT[#OUT + 1] = int(value)
end

local function scopes(queue, agent)
  local s = {'t'}
  if queue ~= nil and queue ~= '' then s[#s + 1] = 'q:' .. queue end
  if agent ~= nil and agent ~= '' then s[#s + 1] = 'a:' .. agent end
  return s
end

-- Period keys this run has already made sure of.
local KNOWN = {}

-- Adds `n` to `field` of every scope's period in `buckets` (a comma list). A
-- period's key is indexed (and given its lifetime) once, when it is first written.
local function add(scope_list, buckets, field, n)
  if n == 0 then return end
  for bucket in string.gmatch(buckets, '[^,]+') do
    local period, start = string.match(bucket, '^(%a):(%-?%d+)$')
    for _, scope in ipairs(scope_list) do
      local key = P .. 'k:' .. scope .. ':' .. bucket
      redis.call('HINCRBY', key, field, int(n))
      if not KNOWN[key] then
        KNOWN[key] = true
        if redis.call('EXPIRE', key, KPI_KEEP_SECS, 'NX') == 1 then
          local index = P .. 'i:' .. scope .. ':' .. period
          redis.call('ZADD', index, start, start)
          redis.call('ZREMRANGEBYSCORE', index, '-inf', '(' .. int(tonumber(start) - KPI_KEEP_SECS * 1000))
          redis.call('EXPIRE', index, KPI_KEEP_SECS)
        end
      end
    end
  end
end

local ix_key = P .. 'ix:' .. IX
local function ix_get(field) return redis.call('HGET', ix_key, field) end
local function ix_set(...) redis.call('HSET', ix_key, ...) end

-- Adds (sign 1) or takes back (sign -1) the measures of the contact's first
-- answer: speed of answer, service level and queue time, in the answer's periods.
local function answer_measures(sign)
  local wait = math.max(0, tonumber(ix_get('a')) - tonumber(ix_get('c')))
  local s = scopes(ix_get('aq'), ix_get('aa'))
  local buckets = ix_get('ab')
  add(s, buckets, 'answered_timed', sign)
  add(s, buckets, 'asa_ms', sign * wait)
  add(s, buckets, 'queue_n', sign)
  add(s, buckets, 'queue_ms', sign * wait)
  local met = wait <= tonumber(ix_get('asl'))
  if met then add(s, buckets, 'sl_met', sign) end
  return wait, met
end

-- Counts the answer's measures once creation and first answer are both known.
local function try_count_answer(correction)
  if not ix_get('c') or not ix_get('a') or ix_get('a_done') then return end
  ix_set('a_done', '1')
  local wait, met = answer_measures(1)
  -- Prometheus counters only count what is seen first; corrections are in the KPIs.
  if not correction then
    report('asa_ms', wait)
    if met then report('sl_met', 1) end
  end
end

-- Abandonment: short or not, and its queue time, once creation is known.
local function try_count_abandon()
  local created, left = tonumber(ix_get('c')), tonumber(ix_get('x'))
  if created == nil or left == nil or ix_get('x_done') then return end
  ix_set('x_done', '1')
  local wait = math.max(0, left - created)
  local s = scopes(ix_get('xq'), nil)
  local buckets = ix_get('xb')
  add(s, buckets, 'queue_n', 1)
  add(s, buckets, 'queue_ms', wait)
  if wait < SHORT_MS then
    add(s, buckets, 'abandoned_short', 1)
    report('abandoned_short', 1)
  end
end

-- Handle time: the resolving agent's assignment to the resolution.
local function try_count_handle()
  local resolved, agent = tonumber(ix_get('r')), ix_get('ra')
  if resolved == nil or agent == nil or ix_get('r_done') then return end
  local assigned = tonumber(ix_get('g:' .. agent))
  if assigned == nil then return end
  ix_set('r_done', '1')
  local handle = math.max(0, resolved - assigned)
  local s = scopes(ix_get('rq'), agent)
  add(s, ix_get('rb'), 'handled', 1)
  add(s, ix_get('rb'), 'handle_ms', handle)
  report('handle_ms', handle)
end

-- First-contact resolution: a resolved contact whose member opened another
-- contact within the window is a repeat, counted in the resolution's periods.
local function mark_repeat(id)
  local key = P .. 'ix:' .. id
  if redis.call('HSETNX', key, 'rep', '1') == 0 then return end
  local q, a, b = unpack(redis.call('HMGET', key, 'rq', 'ra', 'rb'))
  if b then
    add(scopes(q, a), b, 'repeats', 1)
    report('repeats', 1)
  end
end

local function wrap_keys()
  local suffix = AGENT .. ':' .. CH
  return P .. 'wr:' .. suffix, P .. 'wc:' .. suffix
end

-- The wrap-up of resolution `id` ends at `released_at`, unless an earlier
-- release already ended it; a later one it was ended at is corrected.
local function set_wrap(id, released_at)
  local key = P .. 'ix:' .. id
  local resolved, ended, q, a, b = unpack(redis.call('HMGET', key, 'r', 'wm', 'rq', 'ra', 'rb'))
  resolved, ended = tonumber(resolved), tonumber(ended)
  if resolved == nil or b == nil or released_at < resolved then return end
  local s = scopes(q, a)
  if ended == nil then
    add(s, b, 'wrapped', 1)
    add(s, b, 'wrap_ms', released_at - resolved)
  elseif released_at < ended then
    add(s, b, 'wrap_ms', released_at - ended)
  else
    return
  end
  redis.call('HSET', key, 'wm', int(released_at))
end

local function member_keys()
  return P .. 'm:' .. MEMBER .. ':new', P .. 'm:' .. MEMBER .. ':res'
end

local function touch(key, secs) redis.call('EXPIRE', key, secs) end

if KIND == 'created' then
  if redis.call('HSETNX', ix_key, 'c', int(AT)) == 1 then
    add(scopes(QUEUE, nil), BUCKETS, 'created', 1)
    report('created', 1)
    if MEMBER ~= '' then
      local new_key, res_key = member_keys()
      redis.call('ZADD', new_key, int(AT), IX)
      touch(new_key, math.floor(FCR_MS / 1000) + KEEP_SECS)
      for _, id in ipairs(redis.call('ZRANGEBYSCORE', res_key, int(AT - FCR_MS), '(' .. int(AT), 'LIMIT', 0, MAX_REPEAT_MARKS)) do
        if id ~= IX then mark_repeat(id) end
      end
    end
    try_count_answer(false)
    try_count_abandon()
  end
elseif KIND == 'offered' then
  if AGENT ~= '' then
    redis.call('HINCRBY', P .. 'ag:' .. AGENT, 'load:' .. CH, 1)
  end
elseif KIND == 'assigned' then
  -- The first answer is the earliest assignment, whatever order they arrive in.
  local first = tonumber(ix_get('a'))
  if first == nil or AT < first then
    if first ~= nil then
      add(scopes(ix_get('aq'), ix_get('aa')), ix_get('ab'), 'answered', -1)
      if ix_get('a_done') then
        answer_measures(-1)
        redis.call('HDEL', ix_key, 'a_done')
      end
    else
      report('answered', 1)
    end
    ix_set('a', int(AT), 'ab', BUCKETS, 'aq', QUEUE, 'aa', AGENT, 'asl', int(SL_MS))
    add(scopes(QUEUE, AGENT), BUCKETS, 'answered', 1)
    try_count_answer(first ~= nil)
  end
  -- Handle time runs from the resolving agent's earliest assignment.
  local assigned_field = 'g:' .. AGENT
  local earliest = tonumber(ix_get(assigned_field))
  if earliest == nil or AT < earliest then
    ix_set(assigned_field, int(AT))
    if earliest ~= nil and ix_get('r_done') and ix_get('ra') == AGENT then
      add(scopes(ix_get('rq'), AGENT), ix_get('rb'), 'handle_ms', earliest - AT)
    end
  end
  try_count_handle()
elseif KIND == 'abandoned' then
  if redis.call('HSETNX', ix_key, 'x', int(AT)) == 1 then
    ix_set('xb', BUCKETS, 'xq', QUEUE)
    add(scopes(QUEUE, nil), BUCKETS, 'abandoned', 1)
    report('abandoned', 1)
    try_count_abandon()
  end
elseif KIND == 'resolved' then
  if redis.call('HSETNX', ix_key, 'r', int(AT)) == 1 then
    ix_set('rb', BUCKETS, 'rq', QUEUE, 'ra', AGENT)
    local s = scopes(QUEUE, AGENT)
    add(s, BUCKETS, 'resolved', 1)
    report('resolved', 1)
    for tag in string.gmatch(ARGV[9], '[^,]+') do add(s, BUCKETS, 'outcome:' .. tag, 1) end
    -- Wrap-up runs from here until the agent's capacity on the channel is released.
    if AGENT ~= '' and CH ~= '' then
      local resolved_key, released_key = wrap_keys()
      redis.call('ZADD', resolved_key, int(AT), IX)
      touch(resolved_key, KEEP_SECS)
      local release = redis.call('ZRANGEBYSCORE', released_key, int(AT), int(AT + MAX_WRAP_MS), 'WITHSCORES', 'LIMIT', 0, 1)
      if #release == 2 then set_wrap(IX, tonumber(release[2])) end
    end
    try_count_handle()
    if MEMBER ~= '' then
      local new_key, res_key = member_keys()
      redis.call('ZADD', res_key, int(AT), IX)
      touch(res_key, math.floor(FCR_MS / 1000) + KEEP_SECS)
      -- One later contact other than this one is enough.
      for _, id in ipairs(redis.call('ZRANGEBYSCORE', new_key, '(' .. int(AT), int(AT + FCR_MS), 'LIMIT', 0, 2)) do
        if id ~= IX then mark_repeat(IX) break end
      end
    end
  end
elseif KIND == 'transferred' then
  add(scopes(QUEUE, AGENT), BUCKETS, 'transferred', 1)
  report('transferred', 1)
elseif KIND == 'offer_timed_out' then
  add(scopes(QUEUE, AGENT), BUCKETS, 'offer_timeouts', 1)
  report('offer_timeouts', 1)
elseif KIND == 'capacity_released' then
  redis.call('HINCRBY', P .. 'ag:' .. AGENT, 'load:' .. CH, -1)
  local resolved_key, released_key = wrap_keys()
  redis.call('ZADD', released_key, int(AT), EVENT_ID)
  touch(released_key, KEEP_SECS)
  for _, id in ipairs(redis.call('ZRANGEBYSCORE', resolved_key, int(AT - MAX_WRAP_MS), int(AT), 'LIMIT', 0, MAX_WRAP_MATCHES)) do
    set_wrap(id, AT)
  end
elseif KIND == 'add' then
  -- Survey answers and quality reviews count in the periods they were made,
  -- for the contact's queue and agent. Per-criterion fields (with a ':') stay
  -- out of the Prometheus counters: their names come from tenant config.
  local s = scopes(QUEUE, AGENT)
  for field, n in string.gmatch(ARGV[20], '([^\t\n]+)\t(%-?%d+)') do
    add(s, BUCKETS, field, tonumber(n))
    if not string.find(field, ':', 1, true) then report(field, tonumber(n)) end
  end
elseif KIND == 'state' then
  local agent_key = P .. 'ag:' .. AGENT
  local history_key = P .. 'sh:' .. AGENT
  if (redis.call('HGET', agent_key, 'ver') or '') ~= ARGV[16] then return {'retry'} end
  redis.call('SADD', P .. 'agents', AGENT)
  redis.call('ZADD', history_key, int(AT), ARGV[15])
  redis.call('ZREMRANGEBYSCORE', history_key, '-inf', '(' .. int(AT - KEEP_SECS * 1000))
  touch(history_key, KEEP_SECS)
  redis.call('HINCRBY', agent_key, 'ver', 1)
  for bucket, state, ms in string.gmatch(ARGV[17], '([^\t\n]+)\t([^\t\n]+)\t(%-?%d+)') do
    add(scopes(nil, AGENT), bucket, 'st:' .. state, tonumber(ms))
  end
  -- The floor view shows the latest change.
  local latest = redis.call('ZRANGE', history_key, -1, -1, 'WITHSCORES')
  local state = string.match(latest[1], '^%d+|(.*)$')
  local reason = string.match(state, '^away:(.*)$') or ''
  redis.call('HSET', agent_key, 'st', string.match(state, '^[^:]*'), 'reason', reason, 'since', latest[2])
end

if IX ~= '' then redis.call('EXPIRE', ix_key, KEEP_SECS) end
redis.call('SET', seen_key, '1', 'EX', KEEP_SECS)
return OUT
