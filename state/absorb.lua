-- Fold an anonymous visitor's state (read from the visitor's slot by the caller) into the
-- customer it turned out to be. Every key here is in the customer's slot.
-- Idempotent: the visitor joining the customer's visitor set is the guard, so a merge
-- retried after a failure folds nothing twice.
-- KEYS[1]: the customer's profile key. ARGV[1]: JSON {templates, visitor, person,
-- recent_cap, touches_cap, dedup_ttl, type_codes, state: {kind: value}} where hashes and
-- zsets are flat lists.
-- Returns the customer's ledger after the fold, as a flat list.
local p = cjson.decode(ARGV[1])
local T = p.templates
local to, s = p.person, p.state

local function key(kind) return string.format(T[kind], to) end

-- A list's entries as {elements, time}. An entry is one "...\tts" string (a touch, or a
-- recent interaction written before the pairs, then made a pair when `codes` is given),
-- or an item element followed by its time element (recent.lua); a lone item, whose time
-- a trim took, is dropped.
local function entries_of(list, codes)
  local found, i = {}, 1
  while i <= #list do
    local tabbed = string.match(list[i], '\t([^\t]*)$')
    local following = list[i + 1]
    if tabbed then
      local pair = codes and as_pair(list[i], codes)
      found[#found + 1] = {pair or {list[i]}, tonumber(tabbed) or 0}
      i = i + 1
    elseif following and not string.find(following, '\t', 1, true) then
      found[#found + 1] = {{list[i], following}, tonumber(following) or 0}
      i = i + 2
    else
      i = i + 1
    end
  end
  return found
end

-- Both lists are newest first; keep the newest `cap` entries of the two, newest first.
-- Entries of one second keep their order within their own list, the customer's ahead of
-- the visitor's: entries carry whole seconds, and table.sort is not stable.
local function merge_list(kind, incoming, cap, codes)
  if #incoming == 0 then return end
  local merged = {}
  for source, list in ipairs({redis.call('LRANGE', key(kind), 0, -1), incoming}) do
    for position, entry in ipairs(entries_of(list, codes)) do
      merged[#merged + 1] = {entry[1], entry[2], source, position}
    end
  end
  table.sort(merged, function(a, b)
    if a[2] ~= b[2] then return a[2] > b[2] end
    if a[3] ~= b[3] then return a[3] < b[3] end
    return a[4] < b[4]
  end)
  redis.call('DEL', key(kind))
  for i = 1, math.min(#merged, cap) do redis.call('RPUSH', key(kind), unpack(merged[i][1])) end
end

if redis.call('SADD', key('visitors'), p.visitor) == 0 then
  return redis.call('HGETALL', key('orders'))
end

merge_list('recent', s.recent, p.recent_cap, p.type_codes)
merge_list('touches', s.touches, p.touches_cap)
for i = 1, #s.cart, 2 do redis.call('HINCRBY', key('cart'), s.cart[i], s.cart[i + 1]) end
for _, kind in ipairs({'wishlist', 'purchased', 'redeemed'}) do
  for _, member in ipairs(s[kind]) do redis.call('SADD', key(kind), member) end
end
-- An order both sides recorded counts once: orders are keyed by order id.
for i = 1, #s.orders, 2 do redis.call('HSETNX', key('orders'), s.orders[i], s.orders[i + 1]) end
for i = 1, #s.counts, 2 do redis.call('HINCRBY', key('counts'), s.counts[i], s.counts[i + 1]) end
if #s.counts > 0 then bound_counts(key('counts')) end
-- A retry of one of the visitor's events is still recognised once it names the customer,
-- and one the stream never got is appended then. An id the customer holds already keeps
-- the customer's state: a mark comes along only with its id, and with the id's time, so
-- it leaves the dedup window with it (apply.lua's trim relies on that).
local moved = {}
for i = 1, #s.seen, 2 do
  if redis.call('ZADD', key('seen'), 'NX', s.seen[i + 1], s.seen[i]) == 1 then moved[s.seen[i]] = true end
end
for i = 1, #s.unlogged, 2 do
  if moved[s.unlogged[i]] then redis.call('HSETNX', key('unlogged'), s.unlogged[i], s.unlogged[i + 1]) end
end
-- The customer's ids now expire with the newest of either side's.
if next(moved) then bound_dedup(key('seen'), key('unlogged'), p.dedup_ttl) end

local old = {}
for i = 1, #s.profile, 2 do old[s.profile[i]] = s.profile[i + 1] end
local target = key('profile')
for field, value in pairs(old) do
  if field == 'events' or field == 'referrals' then redis.call('HINCRBY', target, field, value)
  elseif field == 'first_seen' then keep_min(target, field, tonumber(value))
  elseif field == 'last_seen' or string.sub(field, 1, 5) == 'last:' then
    keep_max(target, field, tonumber(value))
  elseif field == 'last_order_at' then
    if keep_max(target, field, tonumber(value)) and old.last_order_id then
      redis.call('HSET', target, 'last_order_id', old.last_order_id)
    end
  elseif field ~= 'last_order_id' then redis.call('HSETNX', target, field, value)
  end
end
return redis.call('HGETALL', key('orders'))
