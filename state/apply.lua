-- Apply validated events to the persons they belong to: dedup, profile updates, cart,
-- ledger. Python turns each event into an "op" and resolves its person (see ingest.py);
-- this script only applies ops, so business rules stay in Python. Key templates arrive
-- in ARGV so that state/keys.py remains the only place key names are spelled.
-- Every key it touches carries the hash tag of a person in ARGV: on a Redis Cluster the
-- caller sends one call per hash slot, on a single server one call for the whole batch.
-- KEYS[1]: the first person's profile key (routes the call to its slot).
-- ARGV[1]: JSON {templates, link, visitor_prefix, now, dedup_ttl, recent_cap,
-- groups: [[person, [op...]]...]}.
-- Returns, per op in order: {status, new_order, first_order[, customer]} where status is
-- 'fresh', 'dup', 'relog' (applied by an earlier attempt that failed before the stream
-- append; the order flags are that attempt's) or 'moved' (the visitor was linked to
-- `customer` meanwhile: nothing applied, the caller sends the op there).
local p = cjson.decode(ARGV[1])
local T = p.templates

local function key(kind, person) return string.format(T[kind], person) end

-- Whether the event was seen: a person's event ids live in a zset scored by arrival,
-- trimmed to the dedup window. An id still in `unlogged` (id -> "<new order><first
-- order>|<arrival>") was applied but never reached the stream: the caller appends it,
-- and counts its order, this time.
local function seen(op, person)
  if not op.event_id then return nil end
  if not redis.call('ZSCORE', key('seen', person), op.event_id) then return nil end
  local pending = redis.call('HGET', key('unlogged', person), op.event_id)
  if pending then
    return {'relog', tonumber(string.sub(pending, 1, 1)), tonumber(string.sub(pending, 2, 2))}
  end
  return {'dup', 0, 0}
end

local function remember(op, person, new_order, first_order)
  if not op.event_id then return end
  redis.call('ZADD', key('seen', person), p.now, op.event_id)
  redis.call('HSET', key('unlogged', person), op.event_id, new_order .. first_order .. '|' .. p.now)
end

-- Ids older than the dedup window leave both sets (`unlogged` is empty but for failures).
local function trim(person)
  local horizon = p.now - p.dedup_ttl
  redis.call('ZREMRANGEBYSCORE', key('seen', person), '-inf', horizon)
  local pending = redis.call('HGETALL', key('unlogged', person))
  for i = 1, #pending, 2 do
    if tonumber(string.match(pending[i + 1], '|(.*)$')) < horizon then
      redis.call('HDEL', key('unlogged', person), pending[i])
    end
  end
end

-- Returns whether the op recorded an order the ledger did not hold yet, and whether
-- that order is the person's first.
local function apply(op, person)
  local profile = key('profile', person)
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
  local new_order, first_order = 0, 0
  if op.purchase then
    for _, item in ipairs(op.purchase.items) do
      redis.call('SADD', key('purchased', person), item)
      redis.call('HDEL', key('cart', person), item)
    end
    -- The orders hash (order id -> "value|ts[|R]") is the ledger: lifetime value and
    -- order count are read from it, so a repeated order id never counts twice.
    local entry = op.purchase.value .. '|' .. op.ts
    if redis.call('HSETNX', key('orders', person), op.purchase.order_key, entry) == 1 then
      if keep_max(profile, 'last_order_at', op.ts) then
        redis.call('HSET', profile, 'last_order_id', op.purchase.order_key)
      end
      new_order = 1
      if redis.call('HLEN', key('orders', person)) == 1 then first_order = 1 end
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
  -- The referee keeps the referrer's id, so erasing them can take them out of the
  -- referrer's set (which the caller updates in the referrer's own slot).
  if op.referrer and op.referrer ~= op.customer then
    redis.call('HSETNX', profile, 'referred_by', op.referrer)
  end
  return new_order, first_order
end

-- The customer an anonymous person's visitor was linked to since the caller read its
-- link (a sign-in in another request): its events belong there now.
local function moved_to(person)
  local prefix = p.visitor_prefix
  if string.sub(person, 1, #prefix) ~= prefix then return nil end
  return redis.call('GET', string.format(p.link, string.sub(person, #prefix + 1)))
end

local out = {}
for _, group in ipairs(p.groups) do
  local person, ops = group[1], group[2]
  local customer = moved_to(person)
  if customer then
    for _ = 1, #ops do out[#out + 1] = {'moved', 0, 0, customer} end
  else
    trim(person)
    for _, op in ipairs(ops) do
      local known = seen(op, person)
      if known then
        out[#out + 1] = known
      else
        local new_order, first_order = apply(op, person)
        remember(op, person, new_order, first_order)
        out[#out + 1] = {'fresh', new_order, first_order}
      end
    end
  end
end
return out
