-- Tierflow CRM: a client's customer and promotion in one round trip.
-- KEYS[1]: the ip-lens hash; KEYS[2]: the promotion's key ('' for none);
-- KEYS[3..]: index keys in priority order (phone, exact address, then
-- prefixes longest first).
-- ARGV[1]: customer key prefix; ARGV[2]: '1' to return the length classes.
-- Returns {position of the matching index key among KEYS[3..] (0: none),
--          customer id, customer JSON, promotion JSON, {length classes}};
-- absent values are false (nil replies).
local pos, id, cust = 0, false, false
for i = 3, #KEYS do
  local v = redis.call('GET', KEYS[i])
  if v then
    pos, id = i - 2, v
    cust = redis.call('GET', ARGV[1] .. v)
    break
  end
end
local promo = false
if KEYS[2] ~= '' then promo = redis.call('GET', KEYS[2]) end
local classes = {}
if ARGV[2] == '1' then classes = redis.call('HKEYS', KEYS[1]) end
return {pos, id, cust, promo, classes}
