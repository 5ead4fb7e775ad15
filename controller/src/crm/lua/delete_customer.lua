-- Tierflow CRM: delete a customer and every index entry it owns.
-- ARGV: record key, owned-entries hash, customers set, ip-lens hash,
--       events channel, id, event. Returns 1 if the record existed.
local key, owned, set, lens, channel, id, ev =
  ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5], ARGV[6], ARGV[7]
local old = redis.call('HGETALL', owned)
for i = 1, #old, 2 do
  if redis.call('GET', old[i]) == id then redis.call('DEL', old[i]) end
  if old[i + 1] ~= '' and redis.call('HINCRBY', lens, old[i + 1], -1) <= 0 then
    redis.call('HDEL', lens, old[i + 1])
  end
end
redis.call('DEL', owned)
redis.call('SREM', set, id)
local existed = redis.call('DEL', key)
if existed == 1 then redis.call('PUBLISH', channel, ev) end
return existed
