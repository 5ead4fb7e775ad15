-- An instance that stops: gives up its leadership (if it holds it) and
-- its membership, so a survivor takes over at once rather than after the
-- lease. KEYS as in lead.lua; ARGV[1] instance id.
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('DEL', KEYS[1])
end
redis.call('ZREM', KEYS[3], ARGV[1])
redis.call('HDEL', KEYS[4], ARGV[1])
return 1
