-- One instance's heartbeat: renews its membership and its leadership, or
-- takes the leadership when nobody holds it.
-- KEYS[1] leader (string: instance id, with the lease as its expiry)
-- KEYS[2] term (counter: grows with every new leader; the switches'
--         OpenFlow generation_id)
-- KEYS[3] members (sorted set: instance id -> lease end, ms)
-- KEYS[4] info (hash: instance id -> JSON the instance describes itself with)
-- ARGV[1] instance id, ARGV[2] lease (ms), ARGV[3] the instance's JSON,
-- ARGV[4] the highest term the instance has seen (a Redis that lost its
-- data must not hand out a term the switches already saw: they would
-- refuse it as stale).
-- Redis's clock times the leases: the instances' clocks may differ.
-- Returns {leader id, term, 1 if this instance leads, the leader's JSON,
-- the number of members}.
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local lease = tonumber(ARGV[2])
redis.call('ZADD', KEYS[3], now + lease, ARGV[1])
redis.call('HSET', KEYS[4], ARGV[1], ARGV[3])
-- Instances whose lease ended are no longer members.
local gone = redis.call('ZRANGEBYSCORE', KEYS[3], '-inf', now)
for _, id in ipairs(gone) do
  redis.call('HDEL', KEYS[4], id)
end
redis.call('ZREMRANGEBYSCORE', KEYS[3], '-inf', now)
local members = redis.call('ZCARD', KEYS[3])
local cur = redis.call('GET', KEYS[1])
if cur == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], lease)
  return {cur, tonumber(redis.call('GET', KEYS[2]) or '0'), 1, ARGV[3], members}
elseif not cur then
  local term = redis.call('INCR', KEYS[2])
  local seen = tonumber(ARGV[4]) or 0
  if term <= seen then
    term = seen + 1
    redis.call('SET', KEYS[2], term)
  end
  redis.call('SET', KEYS[1], ARGV[1], 'PX', lease)
  return {ARGV[1], term, 1, ARGV[3], members}
end
return {cur, tonumber(redis.call('GET', KEYS[2]) or '0'), 0,
  redis.call('HGET', KEYS[4], cur) or '', members}
