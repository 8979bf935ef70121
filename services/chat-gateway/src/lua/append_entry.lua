-- Appends one entry to a chat transcript, at most once per client id, and
-- keeps the chat's keys for the tenant's retention after this last entry.
--
-- KEYS[1] transcript stream   chat:{t}:log:<interaction id>
-- KEYS[2] client ids (hash)   chat:{t}:cids:<interaction id>  client id -> entry id
-- KEYS[3] chat meta (hash)    chat:{t}:meta:<interaction id>
-- ARGV[1] client id ('' : never deduplicated)
-- ARGV[2] retention, ms
-- ARGV[3] most entries a transcript may hold
-- ARGV[4] kind: message | assigned | closed
-- ARGV[5..] field, value pairs of the entry
-- Returns {1, id} appended; {0, id} that client id was appended before (id of the
-- first); {-1, 'missing'} no such chat; {-1, 'closed'} the chat is over;
-- {-1, 'full'} the transcript holds the most entries allowed.
if redis.call('EXISTS', KEYS[3]) == 0 then return {-1, 'missing'} end
local client_id = ARGV[1]
if client_id ~= '' then
  local seen = redis.call('HGET', KEYS[2], client_id)
  if seen then return {0, seen} end
end
if redis.call('HGET', KEYS[3], 'state') == 'closed' then return {-1, 'closed'} end
local kind = ARGV[4]
if kind == 'message' and redis.call('XLEN', KEYS[1]) >= tonumber(ARGV[3]) then
  return {-1, 'full'}
end
local fields = {'kind', kind}
local agent_id, agent_first_name, reason = nil, '', ''
for i = 5, #ARGV, 2 do
  fields[#fields + 1] = ARGV[i]
  fields[#fields + 1] = ARGV[i + 1]
  if ARGV[i] == 'agent_id' then agent_id = ARGV[i + 1] end
  if ARGV[i] == 'agent_first_name' then agent_first_name = ARGV[i + 1] end
  if ARGV[i] == 'reason' then reason = ARGV[i + 1] end
end
local id = redis.call('XADD', KEYS[1], '*', unpack(fields))
if client_id ~= '' then redis.call('HSET', KEYS[2], client_id, id) end
if kind == 'closed' then redis.call('HSET', KEYS[3], 'state', 'closed', 'closed_reason', reason) end
if kind == 'assigned' and agent_id then
  redis.call('HSET', KEYS[3], 'agent_id', agent_id, 'agent_first_name', agent_first_name)
end
local ttl = tonumber(ARGV[2])
for i = 1, 3 do redis.call('PEXPIRE', KEYS[i], ttl) end
return {1, id}
