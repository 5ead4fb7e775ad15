-- Tierflow CRM: apply a batch of writes atomically, all checks first.
-- ARGV[1]: JSON batch (see store.rs `Batch`):
--   puts      [[key, set, member, json], ...]     plain records
--   needs     [[field, tier_key, tier_name], ...] tiers that must exist afterwards
--   customers [{id, key, owned, field, json, idx = [[key, class, field, value], ...]}]
--   events    ["tier gold", ...]
--   must      [[key, must_exist, kind, id], ...]  create/update preconditions
--   vlan_needs [[field, vlan_key, vid], ...]      VLANs that must exist afterwards
--   vlan_nets [{vid, field, ranges, nets = [[first, last, text, index], ...]}, ...]
--             VLANs written: their subnets may not overlap another VLAN's
-- ARGV[2]: customers set, ARGV[3]: ip-lens hash, ARGV[4]: events channel,
-- ARGV[5]: the VLAN subnets hash.
-- Returns {'ok', fresh} (fresh: how many plain records did not exist),
-- {'conflict', message}, {'missing', kind, id} or {'invalid', field, reason};
-- on anything but 'ok' nothing has been written.
local b = cjson.decode(ARGV[1])
local customers_set, lens, channel, vlan_nets = ARGV[2], ARGV[3], ARGV[4], ARGV[5]

for _, m in ipairs(b.must) do
  local exists = redis.call('EXISTS', m[1]) == 1
  if exists and not m[2] then
    return {'conflict', m[3] .. ' "' .. m[4] .. '" exists'}
  elseif m[2] and not exists then
    return {'missing', m[3], m[4]}
  end
end

local rewriting = {}
for _, c in ipairs(b.customers) do rewriting[c.id] = true end

local claimed = {}
for _, c in ipairs(b.customers) do
  for _, e in ipairs(c.idx) do
    local k = e[1]
    local other = claimed[k]
    if other and other ~= c.id then
      return {'conflict', c.field .. e[3] .. ': ' .. e[4] ..
        ' is also given to customer ' .. other .. ' in the same request'}
    end
    claimed[k] = c.id
    local owner = redis.call('GET', k)
    if owner and owner ~= c.id and not rewriting[owner] then
      return {'conflict', c.field .. e[3] .. ': ' .. e[4] ..
        ' already belongs to customer ' .. owner}
    end
  end
end

local putkeys = {}
for _, p in ipairs(b.puts) do putkeys[p[1]] = true end
for _, n in ipairs(b.needs) do
  if not putkeys[n[2]] and redis.call('EXISTS', n[2]) == 0 then
    return {'invalid', n[1], 'no tier named "' .. n[3] .. '"'}
  end
end

for _, n in ipairs(b.vlan_needs or {}) do
  if not putkeys[n[2]] and redis.call('EXISTS', n[2]) == 0 then
    return {'invalid', n[1], 'no VLAN ' .. n[3]}
  end
end

local written = b.vlan_nets or {}
if #written > 0 then
  local in_batch = {}
  for _, v in ipairs(written) do in_batch[v.vid] = true end
  local others = {}
  local all = redis.call('HGETALL', vlan_nets)
  for i = 1, #all, 2 do
    if not in_batch[all[i]] then
      for first, last in string.gmatch(all[i + 1], '(%d+)-(%d+)') do
        table.insert(others, {all[i], tonumber(first), tonumber(last)})
      end
    end
  end
  for _, v in ipairs(written) do
    for _, n in ipairs(v.nets) do table.insert(others, {v.vid, n[1], n[2]}) end
  end
  for _, v in ipairs(written) do
    for _, n in ipairs(v.nets) do
      for _, o in ipairs(others) do
        if o[1] ~= v.vid and n[1] <= o[3] and o[2] <= n[2] then
          return {'invalid', v.field .. 'gateways[' .. n[4] .. ']',
            'subnet ' .. n[3] .. ' overlaps a subnet of VLAN ' .. o[1]}
        end
      end
    end
  end
end

local fresh = 0
for _, p in ipairs(b.puts) do
  if redis.call('EXISTS', p[1]) == 0 then fresh = fresh + 1 end
end
for _, p in ipairs(b.puts) do
  redis.call('SET', p[1], p[4])
  if p[2] ~= '' then redis.call('SADD', p[2], p[3]) end
end
for _, v in ipairs(written) do
  if v.ranges ~= '' then
    redis.call('HSET', vlan_nets, v.vid, v.ranges)
  else
    redis.call('HDEL', vlan_nets, v.vid)
  end
end

-- Drop every old entry of every rewritten customer before adding new ones,
-- so entries can move between customers of the same batch.
for _, c in ipairs(b.customers) do
  local old = redis.call('HGETALL', c.owned)
  for i = 1, #old, 2 do
    if redis.call('GET', old[i]) == c.id then redis.call('DEL', old[i]) end
    if old[i + 1] ~= '' and redis.call('HINCRBY', lens, old[i + 1], -1) <= 0 then
      redis.call('HDEL', lens, old[i + 1])
    end
  end
  redis.call('DEL', c.owned)
end
for _, c in ipairs(b.customers) do
  for _, e in ipairs(c.idx) do
    redis.call('SET', e[1], c.id)
    redis.call('HSET', c.owned, e[1], e[2])
    if e[2] ~= '' then redis.call('HINCRBY', lens, e[2], 1) end
  end
  redis.call('SET', c.key, c.json)
  redis.call('SADD', customers_set, c.id)
end

for _, ev in ipairs(b.events) do redis.call('PUBLISH', channel, ev) end
return {'ok', tostring(fresh)}
