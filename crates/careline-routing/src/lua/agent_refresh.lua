-- Applies a changed tenant configuration to a logged-in agent: its targets,
-- proficiencies, languages and capacity are replaced and its indexes rebuilt
-- (then it is offered waiting work it may now serve). An agent no longer in
-- the configuration has its session ended.
--
-- ARGV[2] agent id   ARGV[3] targets   ARGV[4] proficiency per target
-- ARGV[5] languages  ARGV[6] capacity "voice,chat,email" ('' when the agent
--                    is no longer configured)
-- Returns {'ok', 1 when the agent changed, else 0}.
local aid = ARGV[2]
local key = agent_key(aid)
local a = hgetall(key)
if a == nil or a.online ~= '1' then return {'ok', 0} end
if ARGV[6] == '' then
  end_session(aid, a.session, 'removed_from_configuration')
  return {'ok', 1}
end
local profile = table.concat({ARGV[3], ARGV[4], ARGV[5], ARGV[6]}, '|')
if a.profile == profile then return {'ok', 0} end
-- Leave every index of the old configuration before loading the new one.
redis.call('HSET', key, 'online', '0')
reindex_agent(aid)
local caps = split(ARGV[6])
local fields = {'online', '1', 'targets', ARGV[3], 'langs', ARGV[5], 'profile', profile,
  'cap:voice', caps[1], 'cap:chat', caps[2], 'cap:email', caps[3]}
local targets, profs = split(ARGV[3]), split(ARGV[4])
for i, target in ipairs(targets) do
  fields[#fields + 1] = 'prof:' .. target
  fields[#fields + 1] = profs[i]
end
redis.call('HSET', key, unpack(fields))
reindex_agent(aid)
if a.state == 'available' then match_agent(aid) end
return {'ok', 1}
