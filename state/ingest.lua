-- Apply a batch of validated events atomically: dedup, identity linking, profile updates,
-- stream append. Python turns each event into an "op" (see ingest.py beside it); this
-- script only applies ops, so business rules stay in Python. Key templates arrive in
-- ARGV so that state/keys.py remains the only place key names are spelled.
local p = cjson.decode(ARGV[1])
local T = p.templates

local function key(kind, person) return string.format(T[kind], person) end

local function keep_max(k, field, value)
  local current = tonumber(redis.call('HGET', k, field))
  if not current or value > current then redis.call('HSET', k, field, value) return true end
  return false
end

local function keep_min(k, field, value)
  local current = tonumber(redis.call('HGET', k, field))
  if not current or value < current then redis.call('HSET', k, field, value) end
end

-- An interaction entry is "type\titem\tts"; its time is the last field.
local function entry_time(entry) return tonumber(string.match(entry, '\t([^\t]*)$')) or 0 end

-- Both lists are newest first; keep the newest `cap` of the two, newest first.
local function merge_list(kind, from, to, cap)
  local incoming = redis.call('LRANGE', key(kind, from), 0, -1)
  if #incoming == 0 then return end
  local merged = redis.call('LRANGE', key(kind, to), 0, -1)
  for _, entry in ipairs(incoming) do table.insert(merged, entry) end
  table.sort(merged, function(a, b) return entry_time(a) > entry_time(b) end)
  redis.call('DEL', key(kind, to))
  for i = 1, math.min(#merged, cap) do redis.call('RPUSH', key(kind, to), merged[i]) end
end

-- 'YYYY-MM' of a unix time in UTC: the month every buyer set is filed under (the
-- dashboard names months with campaigns.retention.month_of, the same calendar).
local function month_of(ts)
  local z = math.floor(ts / 86400) + 719468
  local era = math.floor(z / 146097)
  local doe = z - era * 146097
  local yoe = math.floor((doe - math.floor(doe / 1460) + math.floor(doe / 36524)
    - math.floor(doe / 146096)) / 365)
  local doy = doe - (365 * yoe + math.floor(yoe / 4) - math.floor(yoe / 100))
  local mp = math.floor((5 * doy + 2) / 153)
  local m = mp < 10 and mp + 3 or mp - 9
  local y = yoe + era * 400 + (m <= 2 and 1 or 0)
  return string.format('%04d-%02d', y, m)
end

-- The earliest month among a ledger's entries ("value|ts[|R]"), or nil.
local function first_month(entries)
  local first
  for i = 2, #entries, 2 do
    local ts = tonumber(string.match(entries[i], '^[^|]*|([^|]*)'))
    if ts and (not first or ts < first) then first = ts end
  end
  return first and month_of(first)
end

-- The visitor's months of buying become the customer's, and the customer is new in the
-- month of the earlier of the two first orders: retention never counts one person twice.
local function merge_buyer_months(from, to, from_orders)
  if #from_orders == 0 then return end
  for i = 2, #from_orders, 2 do
    local ts = tonumber(string.match(from_orders[i], '^[^|]*|([^|]*)'))
    if ts then
      local buyers = string.format(p.buyers, month_of(ts))
      if redis.call('SREM', buyers, from) == 1 then redis.call('SADD', buyers, to) end
    end
  end
  local from_first = first_month(from_orders)
  redis.call('SREM', string.format(p.new_buyers, from_first), from)
  local to_first = first_month(redis.call('HGETALL', key('orders', to)))
  if to_first and to_first <= from_first then return end
  if to_first then redis.call('SREM', string.format(p.new_buyers, to_first), to) end
  redis.call('SADD', string.format(p.new_buyers, from_first), to)
end

-- Fold an anonymous visitor's state into the customer it turned out to be.
local function merge(from, to)
  merge_list('recent', from, to, p.recent_cap)
  merge_list('touches', from, to, p.touches_cap)
  local cart = redis.call('HGETALL', key('cart', from))
  for i = 1, #cart, 2 do redis.call('HINCRBY', key('cart', to), cart[i], cart[i + 1]) end
  for _, kind in ipairs({'wishlist', 'purchased'}) do
    if redis.call('EXISTS', key(kind, from)) == 1 then
      redis.call('SUNIONSTORE', key(kind, to), key(kind, to), key(kind, from))
    end
  end
  -- An order both sides recorded counts once: orders are keyed by order id.
  local orders = redis.call('HGETALL', key('orders', from))
  merge_buyer_months(from, to, orders)
  for i = 1, #orders, 2 do redis.call('HSETNX', key('orders', to), orders[i], orders[i + 1]) end
  local counts = redis.call('HGETALL', key('counts', from))
  for i = 1, #counts, 2 do redis.call('HINCRBY', key('counts', to), counts[i], counts[i + 1]) end
  -- Offer redemptions follow the visitor into the customer, so caps and spent points hold.
  for _, offer in ipairs(redis.call('SMEMBERS', key('redeemed', from))) do
    local stats = string.format(p.offer_stats, offer)
    local F = p.stat_fields
    for _, name in ipairs({'count', 'points'}) do
      local moved = tonumber(redis.call('HGET', stats, string.format(F[name], from))) or 0
      if moved > 0 then redis.call('HINCRBY', stats, string.format(F[name], to), moved) end
    end
    local period = redis.call('HGET', stats, string.format(F.period, from))
    if period then redis.call('HSETNX', stats, string.format(F.period, to), period) end
    redis.call('HDEL', stats, string.format(F.count, from), string.format(F.points, from),
      string.format(F.period, from))
    redis.call('SADD', key('redeemed', to), offer)
  end
  -- The visitor leaves its segments; the customer's are recomputed after this request.
  for _, name in ipairs(redis.call('SMEMBERS', key('segments', from))) do
    redis.call('SREM', string.format(p.segment, name), from)
  end
  local flat = redis.call('HGETALL', key('profile', from))
  local old = {}
  for i = 1, #flat, 2 do old[flat[i]] = flat[i + 1] end
  local target = key('profile', to)
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
  for kind, _ in pairs(T) do
    if kind ~= 'visitors' then redis.call('DEL', key(kind, from)) end
  end
  redis.call('SREM', p.people, from)
end

local function resolve_person(op)
  local link = string.format(p.link, op.visitor)
  local linked = redis.call('GET', link)
  if not op.customer then
    if linked then return string.format(p.customer_person, linked) end
    return string.format(p.visitor_person, op.visitor)
  end
  local person = string.format(p.customer_person, op.customer)
  if linked ~= op.customer then
    if not linked then merge(string.format(p.visitor_person, op.visitor), person)
    else
      -- The visitor moves to another customer: the old one no longer reaches it.
      redis.call('SREM', key('visitors', string.format(p.customer_person, linked)), op.visitor)
    end
    redis.call('SET', link, op.customer)
    redis.call('SADD', key('visitors', person), op.visitor)
  end
  return person
end

-- Set by apply: whether the op recorded an order the ledger did not hold yet.
local new_order = 0

local function apply(op, person)
  local profile = key('profile', person)
  redis.call('SADD', p.people, person)
  keep_min(profile, 'first_seen', op.ts)
  keep_max(profile, 'last_seen', op.ts)
  keep_max(profile, 'last:' .. op.type, op.ts)
  redis.call('HINCRBY', profile, 'events', 1)
  -- Daily counts per event type for windowed segment rules; the day that just fell out
  -- of the 90-day window is dropped, so the hash stays bounded.
  redis.call('HINCRBY', key('counts', person), op.type .. ':' .. op.day, 1)
  redis.call('HDEL', key('counts', person), op.type .. ':' .. (op.day - 91))
  if op.customer then redis.call('HSET', profile, 'customer_id', op.customer) end
  if op.recent then
    for _, entry in ipairs(op.recent) do redis.call('LPUSH', key('recent', person), entry) end
    redis.call('LTRIM', key('recent', person), 0, p.recent_cap - 1)
  end
  if op.cart_add then
    for item, quantity in pairs(op.cart_add) do redis.call('HINCRBY', key('cart', person), item, quantity) end
  end
  if op.cart_remove then
    for item, quantity in pairs(op.cart_remove) do
      if redis.call('HINCRBY', key('cart', person), item, -quantity) <= 0 then
        redis.call('HDEL', key('cart', person), item)
      end
    end
  end
  if op.wishlist then
    for _, item in ipairs(op.wishlist) do redis.call('SADD', key('wishlist', person), item) end
  end
  if op.purchase then
    for _, item in ipairs(op.purchase.items) do
      redis.call('SADD', key('purchased', person), item)
      redis.call('HDEL', key('cart', person), item)
    end
    -- The orders hash (order id -> value) is the ledger: lifetime value and order count
    -- are read from it, so a repeated order id never counts twice.
    local entry = op.purchase.value .. '|' .. op.ts
    if redis.call('HSETNX', key('orders', person), op.purchase.order_key, entry) == 1 then
      if keep_max(profile, 'last_order_at', op.ts) then
        redis.call('HSET', profile, 'last_order_id', op.purchase.order_key)
      end
      -- Retention counts: the month's buyers, its first-time buyers, orders and revenue.
      local month = month_of(op.ts)
      redis.call('SADD', string.format(p.buyers, month), person)
      if redis.call('HLEN', key('orders', person)) == 1 then
        redis.call('SADD', string.format(p.new_buyers, month), person)
      end
      redis.call('HINCRBY', string.format(p.month_totals, month), 'orders', 1)
      redis.call('HINCRBYFLOAT', string.format(p.month_totals, month), 'revenue', op.purchase.value)
      new_order = 1
    end
  end
  if op.returned then
    -- A return marks its order in the ledger: its value and points no longer count.
    local entry = redis.call('HGET', key('orders', person), op.returned)
    if entry and not string.find(entry, '|R', 1, true) then
      redis.call('HSET', key('orders', person), op.returned, entry .. '|R')
    end
  end
  if op.profile then
    for field, value in pairs(op.profile) do redis.call('HSET', profile, field, value) end
  end
  if op.referrer and op.referrer ~= op.customer then
    -- A referee counts once per referrer, however often they sign up. The referee
    -- keeps the referrer's id, so erasing them can take them out of that set.
    local referrer = string.format(p.customer_person, op.referrer)
    if redis.call('SADD', key('referred', referrer), person) == 1 then
      redis.call('HINCRBY', key('profile', referrer), 'referrals', 1)
    end
    redis.call('HSETNX', profile, 'referred_by', op.referrer)
  end
end

-- Per op, the person it was stored under ('' for a duplicate) and whether it added an
-- order, so that the caller can credit attribution for fresh events only.
local accepted, duplicates = 0, 0
local persons, new_orders = {}, {}
for i, op in ipairs(p.ops) do
  local fresh = true
  if op.event_id then
    fresh = redis.call('SET', string.format(p.dedup, op.event_id), '1', 'NX', 'EX', p.dedup_ttl)
  end
  new_order = 0
  if fresh then
    accepted = accepted + 1
    local person = resolve_person(op)
    apply(op, person)
    redis.call('XADD', p.stream, 'MAXLEN', '~', p.stream_max_len, '*', 'person', person, 'event', op.record)
    persons[i] = person
  else
    duplicates = duplicates + 1
    persons[i] = ''
  end
  new_orders[i] = new_order
end
return {accepted, duplicates, persons, new_orders}
