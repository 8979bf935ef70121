-- The routing library's shared part: constants, state and helpers of every
-- routing function (each script file is one function's body; see
-- scripts.rs). Redis loads the library once (FUNCTION LOAD), so the helpers
-- below are defined once, not on every call; what belongs to one call is
-- set by `begin` when the call starts.
--
-- KEYS[1]  the tenant's key prefix, "cl:{<tenant>}:" (the hash tag puts all of
--          a tenant's keys in one Redis Cluster slot)
-- ARGV[1]  W3C traceparent of the calling request ("" when none), stored with
--          each emitted event (`tp`) so the relay can link the request; a
--          create also keeps it in the interaction (`tp`), and every event of
--          the interaction carries that one (`ctp`): the contact's trace
-- ARGV[2..] the operation's own arguments
--
-- Everything a script does happens atomically. No script scans all agents or
-- all interactions: it pops from and pushes to per-target indexes.

-- The call's keys and arguments, the tenant's key prefix and the request's
-- traceparent (see `run`).
local KEYS, ARGV, P, TRACEPARENT

-- Index entries a match reads per round trip while it skips agents who
-- declined the interaction, or interactions the agent declined...
local SCAN_PAGE = 16
-- ... and how many it may skip in all before giving up (a bounded scan: only
-- entries that declined, or were declined, are ever skipped).
local MAX_DECLINED_SKIP = 512
-- Priority bands are 10^13 apart; the rest of a score is milliseconds.
local BAND = 10000000000000
local CHANNELS = {'voice', 'chat', 'email'}
local LANGUAGES = {'en', 'es'}
-- Bounds the work of one script: a freed agent or a batch of timers makes at
-- most this many offers; anything left is matched by the next event.
local MAX_OFFERS_PER_SCRIPT = 64
-- Closed interactions stay readable this long unless the tenant sets
-- routing.history_retention_days (settings `history_secs`).
local CLOSED_TTL_SECS = 7 * 24 * 3600
local B32 = '0123456789abcdefghjkmnpqrstvwxyz' -- Crockford, as careline-domain ids

local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
-- The call's clock, read once when it starts, and as Redis receives it.
local NOW, NOW_S

-- A whole number as an argument for Redis. Redis formats a Lua number
-- argument with "%.17g", thousands of instructions each; "%d" costs a
-- fraction of that. Strings pass as they are.
local function int(n)
  if type(n) == 'string' then return n end
  return string.format('%d', n)
end

local function ix_key(id) return P .. 'ix:' .. id end
local function agent_key(id) return P .. 'agent:' .. id end
local function queue_key(target, ch, lang) return P .. 'q:' .. target .. ':' .. ch .. ':' .. lang end
local function agent_index_key(target, ch, lang) return P .. 'aq:' .. target .. ':' .. ch .. ':' .. lang end

local function hgetall(key)
  local flat = redis.call('HGETALL', key)
  if #flat == 0 then return nil end
  local t = {}
  for i = 1, #flat, 2 do t[flat[i]] = flat[i + 1] end
  return t
end

local function split(csv)
  local out = {}
  if csv == nil then return out end
  for part in string.gmatch(csv, '[^,]+') do out[#out + 1] = part end
  return out
end

-- The tenant's routing settings, read when the call starts (`begin`).
local SETTINGS
-- Settings already read and checked, by tenant key prefix: {digest, settings}.
-- The library lives as long as the primary's Lua state, so a call reads only
-- what changes between calls (the sequence, `relayed`) and the digest
-- `sync_tenant` writes with the rest; it reads the whole hash again when the
-- digest differs or is missing (settings written by an older release).
local SETTINGS_CACHE = {}
local SETTINGS_CACHED = 0
-- Tenants whose settings are kept before the cache starts over.
local SETTINGS_CACHE_MAX = 10000
-- Every number a call may read, checked before any write: a call must never
-- fail half-way and leave a half-changed interaction behind.
local NUMERIC_SETTINGS = {'offer_timeout:voice', 'offer_timeout:chat', 'offer_timeout:email',
  'wrap_up_secs', 'heartbeat_ttl_secs', 'reconnect_grace_secs', 'aging_after_secs',
  'aging_max_band', 'personal_fallback_secs'}

local function setting_num(name) return tonumber(SETTINGS[name]) end

-- The fields of an agent's hash that routing reads (not its proficiencies,
-- unless the tenant routes to the most skilled, nor its pending offers,
-- `o:<offer id>`, as many as its capacity, which HGETALL would copy too) as
-- a table, from their values in the order of the HMGET that reads them. One
-- constructor sizes the table once; filled field by field, it grew five
-- times, about 2% of a create's instructions.
local function agent_from_values(v)
  return {state = v[1], online = v[2], session = v[3], targets = v[4], langs = v[5],
    ['used:voice'] = v[6], ['used:chat'] = v[7], ['used:email'] = v[8],
    ['cap:voice'] = v[9], ['cap:chat'] = v[10], ['cap:email'] = v[11],
    ['idle:voice'] = v[12], ['idle:chat'] = v[13], ['idle:email'] = v[14],
    ['offered:voice'] = v[15], ['offered:chat'] = v[16], ['offered:email'] = v[17],
    ['idx:voice'] = v[18], ['idx:chat'] = v[19], ['idx:email'] = v[20]}
end
-- Those field names in HMGET order, taken from the constructor above on first
-- use (loading the library may not call Lua's standard functions).
local AGENT_FIELDS
local function agent_fields()
  if AGENT_FIELDS == nil then
    local place = agent_from_values(setmetatable({}, {__index = function(_, i) return i end}))
    AGENT_FIELDS = {}
    for name, i in pairs(place) do AGENT_FIELDS[i] = name end
  end
  return AGENT_FIELDS
end

-- The agent's routing fields (nil when it has none).
local function load_agent(aid)
  if SETTINGS.strategy == 'most_skilled' then return hgetall(agent_key(aid)) end
  local a = agent_from_values(redis.call('HMGET', agent_key(aid), unpack(agent_fields())))
  if next(a) == nil then return nil end
  return a
end

-- The tenant's event sequence, read when the call starts (see `begin`), and
-- whether it still lives in the key of releases before it moved.
local SEQ, SEQ_KEY_TO_MOVE

-- Events the script emitted, appended to the tenant's outbox when it ends
-- (`flush_events`, run after every script body) as one entry of up to
-- `EVENTS_PER_ENTRY` events (field `events`: a JSON array of their fields;
-- one value crosses into Redis instead of one per field, which cost twice as
-- much), numbered from `seq` on. The relay publishes them on NATS.
-- The outbox is never trimmed: an entry leaves it only once relayed or
-- dead-lettered (see `refuse_new_work_if_outbox_full` for its bound). The
-- entry id XADD assigns (time-based, replicated as an effect) makes the event
-- ids, so ids stay unique when Redis loses data and `seq` restarts.
local EVENTS = {}
-- Bounds an entry's size (a timer batch may emit hundreds of events).
local EVENTS_PER_ENTRY = 32

local function emit(fields)
  EVENTS[#EVENTS + 1] = fields
end

-- The sequence number the next emitted event will get.
local function next_event_number() return SEQ + #EVENTS + 1 end

local function flush_events()
  if #EVENTS == 0 then return end
  for first = 1, #EVENTS, EVENTS_PER_ENTRY do
    local last = math.min(first + EVENTS_PER_ENTRY - 1, #EVENTS)
    local entry = EVENTS
    if first ~= 1 or last ~= #EVENTS then entry = {unpack(EVENTS, first, last)} end
    redis.call('XADD', P .. 'outbox', '*', 'seq', int(SEQ + first), 'at', NOW_S, 'tp', TRACEPARENT,
      'events', cjson.encode(entry))
  end
  SEQ = SEQ + #EVENTS
  redis.call('HSET', P .. 'settings', 'seq', int(SEQ))
  if SEQ_KEY_TO_MOVE then
    redis.call('DEL', P .. 'seq')
    SEQ_KEY_TO_MOVE = false
  end
  EVENTS = {}
end

-- Backpressure instead of loss: while `max_events` or more events wait in the
-- outbox (NATS unreachable), new work is refused before anything is written.
-- Only creates call this; answers to existing work must still go through.
-- What waits is the sequence minus what the relays last reported published
-- (`relayed`, see relay.rs); before a relay ever did, the outbox is counted.
local function refuse_new_work_if_outbox_full(max_events)
  local relayed = tonumber(SETTINGS.relayed)
  local waiting
  if relayed then
    waiting = math.max(0, SEQ - relayed)
  else
    waiting = redis.call('XLEN', P .. 'outbox')
  end
  if waiting >= max_events then
    return {'UNAVAILABLE', 'events are not reaching NATS: ' .. waiting ..
      ' events wait in the outbox; new contacts are refused until it drains; retry shortly'}
  end
  return nil
end

local function emit_ix(kind, ix, id, extra)
  local f = {entity = 'interaction', kind = kind, ix = id, queue = ix.queue, ch = ix.ch,
    band = int(ix.band), urgent = ix.urgent, member = ix.member, ctp = ix.tp}
  if extra then for k, v in pairs(extra) do f[k] = v end end
  emit(f)
end

local function emit_agent(kind, aid, extra)
  local f = {entity = 'agent', kind = kind, agent = aid}
  if extra then for k, v in pairs(extra) do f[k] = v end end
  emit(f)
end

-- Agents ------------------------------------------------------------------

local function used_total(a)
  return (tonumber(a['used:voice']) or 0) + (tonumber(a['used:chat']) or 0) + (tonumber(a['used:email']) or 0)
end

-- Whether the agent can take one more interaction on `ch` right now.
local function agent_free(a, ch)
  if a == nil or a.state ~= 'available' or a.online ~= '1' then return false end
  local used = tonumber(a['used:' .. ch]) or 0
  if used >= (tonumber(a['cap:' .. ch]) or 0) then return false end
  if SETTINGS.voice_exclusive == '1' then
    if ch == 'voice' and used_total(a) > 0 then return false end
    if ch ~= 'voice' and (tonumber(a['used:voice']) or 0) > 0 then return false end
  end
  return true
end

-- Per channel, when the agent last got work there (or became free of it):
-- longest idle orders by it; round robin by the order of the last offer.
local function agent_score(a, target, ch)
  local strategy = SETTINGS.strategy
  if strategy == 'round_robin' then return tonumber(a['offered:' .. ch]) or 0 end
  local idle = tonumber(a['idle:' .. ch]) or 0
  if strategy == 'most_skilled' then
    local prof = tonumber(a['prof:' .. target]) or 1
    return (10 - prof) * BAND + idle
  end
  return idle
end

local function is_personal(target) return string.sub(target, 1, 1) == '@' end

-- Puts the agent into, or takes it out of, the indexes of `channels` (every
-- channel when nil). Personal targets have no index: the agent is checked
-- directly. `idx:<ch>` remembers whether the agent is in a channel's indexes
-- so leaving them costs nothing when it is not. `loaded` is the agent's hash
-- when the caller already holds it (kept up to date in place).
local function reindex_agent(aid, channels, loaded)
  local key = agent_key(aid)
  local a = loaded or load_agent(aid)
  if a == nil then return end
  local targets = split(a.targets)
  local langs = split(a.langs)
  for _, ch in ipairs(channels or CHANNELS) do
    local free = agent_free(a, ch)
    if free or a['idx:' .. ch] == '1' then
      for _, target in ipairs(targets) do
        if not is_personal(target) then
          for _, lang in ipairs(langs) do
            local index = agent_index_key(target, ch, lang)
            if free then
              redis.call('ZADD', index, int(agent_score(a, target, ch)), aid)
            else
              redis.call('ZREM', index, aid)
            end
          end
        end
      end
      local flag = free and '1' or '0'
      if a['idx:' .. ch] ~= flag then
        redis.call('HSET', key, 'idx:' .. ch, flag)
        a['idx:' .. ch] = flag
      end
    end
  end
end

-- The channels whose availability changes when work on `ch` starts or ends:
-- `ch` itself, and with exclusive voice the others when voice, or the first
-- or last other work, is involved.
local function affected_channels(a, ch)
  if SETTINGS.voice_exclusive ~= '1' then return {ch} end
  if ch == 'voice' then return CHANNELS end
  local others = used_total(a) - (tonumber(a['used:voice']) or 0)
  if others <= 1 then return {ch, 'voice'} end
  return {ch}
end

-- Gives back one unit of the agent's capacity on `ch`.
local function release_capacity(aid, ch)
  local key = agent_key(aid)
  local used = tonumber(redis.call('HINCRBY', key, 'used:' .. ch, -1))
  if used <= 0 then redis.call('HSET', key, 'used:' .. ch, '0', 'idle:' .. ch, NOW_S) end
  local a = load_agent(aid)
  emit_agent('capacity_released', aid, {ch = ch})
  reindex_agent(aid, affected_channels(a, ch))
end

-- Interactions and queues ---------------------------------------------------

local function target_config(target)
  -- "<next target>|<after secs from queue entry>|<service level secs>|<queue>"
  local raw = redis.call('HGET', P .. 'targets', target)
  if not raw then return nil end
  local parts = {}
  for part in string.gmatch(raw .. '|', '([^|]*)|') do parts[#parts + 1] = part end
  return {next = parts[1], after = tonumber(parts[2]) or 0, sl = tonumber(parts[3]) or 30, queue = parts[4]}
end

-- Schedules the next overflow step of `target`; an interaction waiting for
-- one agent (transfer to an agent, follow-up returning to it) falls back to
-- its queue after `personal_fallback_secs`.
local function schedule_overflow(id, ix, target)
  if is_personal(target) then
    local due = NOW + setting_num('personal_fallback_secs') * 1000
    redis.call('ZADD', P .. 'timers', due, 'ovf|' .. id .. '|' .. target)
    return
  end
  local cfg = target_config(target)
  if cfg and cfg.next ~= '' and cfg.after > 0 then
    local due = (tonumber(ix.qenq) or NOW) + cfg.after * 1000
    redis.call('ZADD', P .. 'timers', due, 'ovf|' .. id .. '|' .. target)
  end
end

-- Appends field `name` to `fields` (a flat list of fields and values)
-- unless `value` is a default ('' or '0'): readers take a missing field as
-- its default, and each field costs a hash write thousands of instructions.
local function add_unless_default(fields, name, value)
  if value ~= '' and value ~= '0' then
    fields[#fields + 1] = name
    fields[#fields + 1] = value
  end
end

-- `fields` and the pairs of `extra` (a flat list of fields and values, or
-- nil) in one list: a new interaction's fields join its first HSET. The
-- list is `extra`, which the caller gives up: the shorter `fields` is
-- appended to the longer list, which then grows once at most.
local function with_extra(fields, extra)
  if extra == nil then return fields end
  for _, v in ipairs(fields) do extra[#extra + 1] = v end
  return extra
end

-- Puts a waiting interaction into its target's queue at `score`; `extra`
-- fields are written with its state.
local function enqueue(id, ix, extra)
  local key = queue_key(ix.target, ix.ch, ix.lang)
  local score = int(ix.score)
  redis.call('ZADD', key, score, id)
  redis.call('SADD', P .. 'waiting', key)
  redis.call('HSET', ix_key(id), unpack(with_extra({'state', 'queued', 'target', ix.target,
    'score', score, 'agent', '', 'offer', '', 'offer_deadline', '0', 'updated', NOW_S}, extra)))
  ix.state = 'queued'
end

local function queue_position(id, ix)
  local rank = redis.call('ZRANK', queue_key(ix.target, ix.ch, ix.lang), id)
  if rank then return rank + 1 end
  return 0
end

-- Offers this call made (see `can_offer_more`).
local OFFERS_MADE = 0

-- `n` in `width` base32 digits, most significant first. Digits are gathered
-- in a table and joined once: a string built digit by digit costs one new
-- string per digit.
local function base32(n, width)
  local digits = {}
  for i = width, 1, -1 do
    local d = n % 32
    digits[i] = string.sub(B32, d + 1, d + 1)
    n = (n - d) / 32
    if n == 0 then
      for j = i - 1, 1, -1 do digits[j] = '0' end
      break
    end
  end
  return table.concat(digits)
end
-- The time part of the offer ids this script makes (at most one clock read).
local NOW_B32 = nil

-- The timer of an offer's deadline (`offer|<offer id>|<interaction id>`).
local function offer_timer(oid, id) return 'offer|' .. oid .. '|' .. id end

-- Ends a pending offer's bookkeeping: its deadline and the agent's pointer
-- to it. Offers made before the pointer lived in the agent's hash have a
-- timer without the interaction id, and a key `offer:<id>` that expires.
local function forget_offer(oid, id, aid)
  redis.call('ZREM', P .. 'timers', offer_timer(oid, id), 'offer|' .. oid)
  redis.call('HDEL', agent_key(aid), 'o:' .. oid)
end

-- Offers interaction `id` to agent `aid` (both known to be eligible; `a` is
-- the agent's hash, updated in place); `extra` fields are written with the
-- interaction's state. The agent's score rises (it just got work): it is
-- re-scored at once only in the indexes of this interaction's target (one
-- per language: the next contacts of that target meet it first, whatever
-- their language; re-scoring one language only cost more in repairs than it
-- saved with mixed languages); its entries in its other targets' indexes now
-- score it too low and are re-scored when a match reaches them
-- (`first_free_agent`), which costs a few commands then instead of one per
-- index on every offer. The offer is found from its id through the agent's
-- hash (`o:<offer id>`), written with the agent's side of it.
local function make_offer(id, ix, aid, a, extra)
  OFFERS_MADE = OFFERS_MADE + 1
  -- The sequence number of this offer's 'offered' event (nothing is emitted
  -- before it below) orders round robin and makes the offer id: "of_" + 26
  -- base32 chars (time, then the number).
  local count = next_event_number()
  NOW_B32 = NOW_B32 or base32(NOW, 10)
  local oid = 'of_' .. NOW_B32 .. base32(count, 16)
  local timeout = setting_num('offer_timeout:' .. ix.ch)
  local deadline = int(NOW + timeout * 1000)
  if ix.state == 'queued' then redis.call('ZREM', queue_key(ix.target, ix.ch, ix.lang), id) end
  redis.call('HSET', ix_key(id), unpack(with_extra({'state', 'offered', 'agent', aid,
    'offer', oid, 'offer_deadline', deadline, 'offered_at', NOW_S, 'updated', NOW_S}, extra)))
  ix.state = 'offered'
  ix.agent = aid
  ix.offer = oid
  a['used:' .. ix.ch] = int((tonumber(a['used:' .. ix.ch]) or 0) + 1)
  -- A counter, not the clock: offers in the same millisecond still rotate.
  a['offered:' .. ix.ch] = int(count)
  a['idle:' .. ix.ch] = NOW_S
  redis.call('HSET', agent_key(aid), 'used:' .. ix.ch, a['used:' .. ix.ch],
    'offered:' .. ix.ch, a['offered:' .. ix.ch], 'idle:' .. ix.ch, NOW_S, 'o:' .. oid, id)
  redis.call('SADD', P .. 'holds:' .. aid, id)
  redis.call('ZADD', P .. 'timers', deadline, offer_timer(oid, id))
  emit_ix('offered', ix, id, {agent = aid, offer = oid, detail = deadline})
  -- Still free on this channel: re-scored lazily (above). Channels the offer
  -- closed (voice, under exclusive voice) are left at once.
  local still_free = agent_free(a, ix.ch)
  local closed = {}
  for _, ch in ipairs(affected_channels(a, ix.ch)) do
    if ch ~= ix.ch or not still_free then closed[#closed + 1] = ch end
  end
  if #closed > 0 then reindex_agent(aid, closed, a) end
  if still_free and not is_personal(ix.target) then
    local score = int(agent_score(a, ix.target, ix.ch))
    for _, lang in ipairs(split(a.langs)) do
      redis.call('ZADD', agent_index_key(ix.target, ix.ch, lang), score, aid)
    end
  end
  return oid
end

local function can_offer_more() return OFFERS_MADE < MAX_OFFERS_PER_SCRIPT end

-- The offer cap stopped this script before it was done: the next timer run
-- matches the agent ('rma') or the interaction ('rmi') again, so no free
-- agent stays idle while work waits.
local function rematch_later(kind, id)
  redis.call('ZADD', P .. 'timers', NOW_S, kind .. '|' .. id)
end

local function declined_by(id, aid)
  return redis.call('SISMEMBER', ix_key(id) .. ':declined', aid) == 1
end

-- The first free agent in `index` (of `target` and `ch`) who has not declined
-- interaction `id`, with its hash; a new interaction (`fresh`) has declines
-- to check. Entries are repaired on the way: an agent no longer free leaves
-- the index, one scored before its last offer (see `make_offer`) is
-- re-scored. Scores only ever rise, so a head whose score is current is the
-- longest idle.
local function first_free_agent(index, id, ch, target, fresh)
  local start = 0
  -- The head is nearly always the one: read it alone first (each entry read
  -- costs its score's formatting), then whole pages while skipping.
  local size = 1
  while start < MAX_DECLINED_SKIP do
    local page = redis.call('ZRANGE', index, start, start + size - 1, 'WITHSCORES')
    if #page == 0 then return nil end
    local repaired = false
    for i = 1, #page, 2 do
      local aid = page[i]
      if fresh or not declined_by(id, aid) then
        local a = load_agent(aid)
        if not agent_free(a, ch) then
          reindex_agent(aid)
        else
          local score = agent_score(a, target, ch)
          if score == tonumber(page[i + 1]) then return aid, a end
          redis.call('ZADD', index, int(score), aid)
        end
        -- The page moved under us: read it again from the same place.
        repaired = true
        break
      end
      start = start + 1
    end
    if not repaired then
      if #page < 2 * size then return nil end
      size = SCAN_PAGE
    end
  end
  return nil
end

-- Looks for an agent for a queued interaction; returns the offer id or nil.
-- `ix.state` is 'queued', or 'new' for an interaction being created (it
-- only joins its queue if no agent takes it at once; its fields, `extra`,
-- are written with the offer).
local function match_interaction(id, ix, extra)
  if ix.state ~= 'queued' and ix.state ~= 'new' then return nil end
  if not can_offer_more() then
    if ix.state == 'queued' then rematch_later('rmi', id) end
    return nil
  end
  if is_personal(ix.target) then
    local aid = string.sub(ix.target, 2)
    local a = load_agent(aid)
    if agent_free(a, ix.ch) and string.find(',' .. a.langs .. ',', ',' .. ix.lang .. ',', 1, true)
      and not declined_by(id, aid) then
      return make_offer(id, ix, aid, a, extra)
    end
    return nil
  end
  local aid, a = first_free_agent(agent_index_key(ix.target, ix.ch, ix.lang), id, ix.ch,
    ix.target, ix.state == 'new')
  if aid then return make_offer(id, ix, aid, a, extra) end
  return nil
end

-- The best entry of queue `key` that agent `aid` has not declined, if its
-- score beats `best_score`; `empty` when the queue has nothing at all.
local function best_undeclined(key, aid, best_score)
  local start = 0
  while start < MAX_DECLINED_SKIP do
    local page = redis.call('ZRANGE', key, start, start + SCAN_PAGE - 1, 'WITHSCORES')
    if #page == 0 then return nil, nil, start == 0 end
    for i = 1, #page, 2 do
      local score = tonumber(page[i + 1])
      if best_score ~= nil and score >= best_score then return nil end
      if not declined_by(page[i], aid) then return page[i], score end
    end
    start = start + SCAN_PAGE
  end
  return nil
end

-- Offers the best waiting interactions to a freed agent, while it has room.
-- Only queues in the tenant's `waiting` set (queues that had work; emptied
-- ones are dropped from it here) are looked at.
local function match_agent(aid)
  if not can_offer_more() then
    rematch_later('rma', aid)
    return
  end
  local a = load_agent(aid)
  if a == nil then return end
  local waiting = {}
  for _, key in ipairs(redis.call('SMEMBERS', P .. 'waiting')) do waiting[key] = true end
  if next(waiting) == nil then return end
  while true do
    if not can_offer_more() then
      rematch_later('rma', aid)
      return
    end
    local best_id, best_score
    for _, ch in ipairs(CHANNELS) do
      if agent_free(a, ch) then
        for _, target in ipairs(split(a.targets)) do
          for _, lang in ipairs(split(a.langs)) do
            local key = queue_key(target, ch, lang)
            if waiting[key] then
              local id, score, empty = best_undeclined(key, aid, best_score)
              if empty then
                redis.call('SREM', P .. 'waiting', key)
                waiting[key] = nil
              elseif id then
                best_id, best_score = id, score
              end
            end
          end
        end
      end
    end
    if best_id == nil then return end
    local ix = hgetall(ix_key(best_id))
    make_offer(best_id, ix, aid, a)
  end
end

-- Offers work to the free agents of `ix`'s queue index, each taking the best
-- waiting contact it has not declined (used when a new contact arrives
-- behind others: it must not jump ahead of them).
local function match_free_agents(ix)
  local index = agent_index_key(ix.target, ix.ch, ix.lang)
  for _, aid in ipairs(redis.call('ZRANGE', index, 0, SCAN_PAGE - 1)) do
    if agent_free(load_agent(aid), ix.ch) then
      match_agent(aid)
    else
      reindex_agent(aid)
    end
  end
end

-- Withdraws a pending offer: the agent gets its capacity back. `reason`
-- ("rejected", "timed_out", "abandoned", "session_lost") goes in the event.
local function withdraw_offer(id, ix, kind, reason)
  local aid = ix.agent
  forget_offer(ix.offer, id, aid)
  redis.call('SREM', P .. 'holds:' .. aid, id)
  emit_ix(kind, ix, id, {agent = aid, offer = ix.offer, detail = reason})
  release_capacity(aid, ix.ch)
end

-- Ends the assigned agent's work on `id`: capacity is held for wrap-up.
local function finish_work(id, ix)
  local aid = ix.agent
  redis.call('SREM', P .. 'holds:' .. aid, id)
  local wrap = setting_num('wrap_up_secs')
  if wrap > 0 then
    redis.call('ZADD', P .. 'timers', NOW + wrap * 1000, 'wrap|' .. aid .. '|' .. ix.ch .. '|' .. id)
  else
    release_capacity(aid, ix.ch)
    match_agent(aid)
  end
end

local function close_interaction(id, state)
  redis.call('HSET', ix_key(id), 'state', state, 'updated', NOW_S)
  redis.call('ZREM', P .. 'live', id)
  redis.call('ZADD', P .. 'closed', NOW_S, id)
  redis.call('ZREMRANGEBYRANK', P .. 'closed', 0, -100001)
  local ttl = tonumber(SETTINGS.history_secs) or CLOSED_TTL_SECS
  for _, suffix in ipairs({'', ':declined', ':notes'}) do
    redis.call('EXPIRE', ix_key(id) .. suffix, ttl)
  end
end

local function load_ix(id)
  local ix = hgetall(ix_key(id))
  return ix
end

local function not_found(what) return {'NOT_FOUND', what .. ' not found'} end

-- The interaction of a pending offer made to `aid`, or an error reply. An
-- offer made to another agent is not found (its existence is not revealed).
local function pending_offer(oid, aid)
  local id = redis.call('HGET', agent_key(aid), 'o:' .. oid) or redis.call('GET', P .. 'offer:' .. oid)
  if not id then return nil, nil, not_found('offer') end
  local ix = load_ix(id)
  if ix == nil or ix.agent ~= aid then return nil, nil, not_found('offer') end
  if ix.offer ~= oid or ix.state ~= 'offered' then
    return nil, nil, {'FAILED_PRECONDITION', 'offer is no longer pending: it was answered, revoked or timed out'}
  end
  return id, ix, nil
end

-- Schedules the next aging step, `aging_after_secs` after `from_ms`.
local function schedule_aging(id, ix, from_ms)
  local after = setting_num('aging_after_secs') or 0
  if after > 0 and tonumber(ix.band) > setting_num('aging_max_band') then
    redis.call('ZADD', P .. 'timers', from_ms + after * 1000, 'age|' .. id)
  end
end

-- Starts the overflow and aging clocks of a new interaction. One offered at
-- once when created (`timed` '0') has none until it first waits: they count
-- from its creation all the same.
local function schedule_waiting_timers(id, ix)
  schedule_overflow(id, ix, ix.target)
  schedule_aging(id, ix, tonumber(ix.created) or NOW)
end

-- Puts an interaction back in line at its original score and looks for an
-- agent at once.
local function requeue(id, ix, kind, aid, reason)
  local extra = nil
  if ix.timed == '0' then
    schedule_waiting_timers(id, ix)
    ix.timed = '1'
    extra = {'timed', '1'}
  end
  enqueue(id, ix, extra)
  emit_ix(kind, ix, id, {agent = aid, detail = reason})
  match_interaction(id, ix)
end

-- Ends an agent's session: pending offers go back to the queue at once;
-- assigned work waits `reconnect_grace_secs` for the agent to come back.
local function end_session(aid, session, reason)
  local key = agent_key(aid)
  local a = load_agent(aid)
  if a == nil or a.session ~= session or a.online ~= '1' then return end
  redis.call('HSET', key, 'online', '0', 'state', 'offline', 'reason', reason, 'state_since', NOW)
  redis.call('ZREM', P .. 'timers', 'hb|' .. aid .. '|' .. session)
  reindex_agent(aid)
  local waiting_for_agent = false
  for _, id in ipairs(redis.call('SMEMBERS', P .. 'holds:' .. aid)) do
    local ix = load_ix(id)
    if ix and ix.state == 'offered' and ix.agent == aid then
      withdraw_offer(id, ix, 'offer_revoked', 'session_lost')
      requeue(id, ix, 'requeued', aid, 'session_lost')
    elseif ix and ix.state == 'assigned' and ix.agent == aid then
      waiting_for_agent = true
    else
      redis.call('SREM', P .. 'holds:' .. aid, id)
    end
  end
  if waiting_for_agent then
    redis.call('ZADD', P .. 'timers', NOW + setting_num('reconnect_grace_secs') * 1000, 'grace|' .. aid .. '|' .. session)
  end
  emit_agent('logged_out', aid, {state = 'offline', reason = reason})
end

-- The holder of an assigned interaction, or an error reply.
local function assigned_to(id, aid)
  local ix = load_ix(id)
  if ix == nil then return nil, not_found('interaction') end
  if ix.state ~= 'assigned' or ix.agent ~= aid then
    return nil, {'FAILED_PRECONDITION', 'interaction is ' .. ix.state ..
      (ix.agent ~= '' and ix.agent ~= aid and ' and held by another agent' or '') ..
      '; only its assigned agent can do this'}
  end
  return ix, nil
end

local function add_note(id, note)
  if note ~= nil and note ~= '' then redis.call('RPUSH', ix_key(id) .. ':notes', note) end
end

-- Calls -----------------------------------------------------------------------

-- The tenant's settings, or nil and the refusal when they are not usable:
-- kept ones while their digest holds, else read and checked.
local function read_settings()
  local head = redis.call('HMGET', P .. 'settings', 'digest', 'seq', 'relayed')
  local cached = SETTINGS_CACHE[P]
  if head[1] and cached and cached.digest == head[1] then
    cached.settings.seq = head[2] or nil
    cached.settings.relayed = head[3] or nil
    return cached.settings
  end
  local settings = hgetall(P .. 'settings')
  if settings == nil then
    return nil, {'SETTINGS_MISSING', 'tenant routing settings are not loaded yet (the tenant was applied moments ago); retry shortly'}
  end
  for _, name in ipairs(NUMERIC_SETTINGS) do
    if tonumber(settings[name]) == nil then
      return nil, {'SETTINGS_MISSING', 'tenant routing settings are incomplete (' .. name ..
        '); they are rewritten from configuration shortly, retry'}
    end
  end
  if settings.digest then
    if cached == nil then
      if SETTINGS_CACHED >= SETTINGS_CACHE_MAX then SETTINGS_CACHE, SETTINGS_CACHED = {}, 0 end
      SETTINGS_CACHED = SETTINGS_CACHED + 1
    end
    SETTINGS_CACHE[P] = {digest = settings.digest, settings = settings}
  end
  return settings
end

-- Starts a call: its keys, arguments and clock, and the tenant's settings
-- and event sequence. Returns the refusal when the settings are not usable.
local function begin(keys, args)
  KEYS, ARGV = keys, args
  P, TRACEPARENT = KEYS[1], ARGV[1]
  NOW = now_ms()
  NOW_S = int(NOW)
  NOW_B32 = nil
  EVENTS = {}
  OFFERS_MADE = 0
  local refused
  SETTINGS, refused = read_settings()
  if refused then return refused end
  -- The tenant's event sequence: how many events its calls have emitted. It
  -- lives in the settings hash (`seq`), so the one read of the settings also
  -- tells a call the number of its first event (an offer id is made from it)
  -- and, with `relayed`, how many events wait in the outbox. Releases before
  -- it was a key of its own (`seq`): moved on the first write.
  SEQ = tonumber(SETTINGS.seq)
  SEQ_KEY_TO_MOVE = SEQ == nil
  if SEQ_KEY_TO_MOVE then SEQ = tonumber(redis.call('GET', P .. 'seq')) or 0 end
  return nil
end

-- Runs one routing function's body as a call: whatever it returns, the
-- events it emitted are appended to the outbox after it.
local function run(keys, args, body)
  local refused = begin(keys, args)
  if refused then return refused end
  local reply = body()
  flush_events()
  return reply
end
