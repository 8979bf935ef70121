-- Deletes one batch of the keys of a deleted tenant (`careline config delete`):
-- every key carrying the tenant's hash tag, whichever service wrote it
-- (routing `cl:`, `email:`, `chat:`, ...). Standalone, without the prelude.
-- The keys are found by SCAN, not declared: they all share KEYS[1]'s slot, so
-- on a Redis Cluster the script runs on the node that holds every one of them.
--
-- KEYS[1]: the tenant's routing prefix (routes the script to its slot)
-- ARGV[1]: the SCAN cursor ("0" to start)
-- ARGV[2]: the MATCH pattern, `*{<tenant>}*`
-- Returns {next cursor ("0" when done), keys deleted}.
local page = redis.call('SCAN', ARGV[1], 'MATCH', ARGV[2], 'COUNT', 1000)
for _, key in ipairs(page[2]) do
  redis.call('UNLINK', key)
end
return {page[1], #page[2]}
