-- Tierflow CRM: delete a plain record (tier, promotion, service).
-- ARGV: record key, names set, name, events channel, event,
--       then for tiers only: policy key, default tier when no policy is
--       stored, promotions set, promotion key prefix.
-- A tier that the policy or a promotion names is not deleted.
-- Returns {'ok', existed} or {'conflict', message}.
local key, set, name, channel, ev = ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5]
if ARGV[6] then
  local default_tier = ARGV[7]
  local pol = redis.call('GET', ARGV[6])
  if pol then
    local ok, p = pcall(cjson.decode, pol)
    if ok and type(p) == 'table' and type(p.default_tier) == 'string' then
      default_tier = p.default_tier
    end
  end
  if default_tier == name then
    return {'conflict', 'tier ' .. name .. ' is the policy\'s default_tier'}
  end
  for _, code in ipairs(redis.call('SMEMBERS', ARGV[8])) do
    local j = redis.call('GET', ARGV[9] .. code)
    if j then
      local ok, p = pcall(cjson.decode, j)
      if ok and type(p) == 'table' and p.tier == name then
        return {'conflict', 'promotion ' .. code .. ' grants tier ' .. name}
      end
    end
  end
end
redis.call('SREM', set, name)
local existed = redis.call('DEL', key)
if existed == 1 then redis.call('PUBLISH', channel, ev) end
return {'ok', tostring(existed)}
