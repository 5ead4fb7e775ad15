-- Tierflow CRM: delete a VLAN, unless a port carries it.
-- ARGV: VLAN key, VLANs set, vid, events channel, event, ports set,
--       port key prefix, VLAN subnets hash, whether ports are checked ('1').
-- Returns {'ok', existed} or {'conflict', message}.
local key, set, vid, channel, ev = ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5]
local ports, prefix, nets, check = ARGV[6], ARGV[7], ARGV[8], ARGV[9]
local n = tonumber(vid)
if check == '1' then
  for _, name in ipairs(redis.call('SMEMBERS', ports)) do
    local j = redis.call('GET', prefix .. name)
    if j then
      local ok, p = pcall(cjson.decode, j)
      if ok and type(p) == 'table' then
        local uses = p.native_vlan == n
        if type(p.tagged_vlans) == 'table' then
          for _, t in ipairs(p.tagged_vlans) do
            if t == n then uses = true end
          end
        end
        if uses then
          return {'conflict', 'VLAN ' .. vid .. ' is carried by port ' .. name}
        end
      end
    end
  end
end
redis.call('SREM', set, vid)
redis.call('HDEL', nets, vid)
local existed = redis.call('DEL', key)
if existed == 1 then redis.call('PUBLISH', channel, ev) end
return {'ok', tostring(existed)}
