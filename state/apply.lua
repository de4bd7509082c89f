-- Apply validated events to the persons they belong to: dedup, profile updates, cart,
-- ledger. Python turns each event into an "op" and resolves its person (see ingest.py);
-- this script only applies ops, so business rules stay in Python. Key templates arrive
-- in ARGV so that state/keys.py remains the only place key names are spelled.
-- Every key it touches carries the hash tag of a person in ARGV: on a Redis Cluster the
-- caller sends one call per hash slot, on a single server one call for the whole batch.
-- KEYS[1]: the first person's profile key (routes the call to its slot).
-- ARGV[1]: JSON {templates, link, visitor_prefix, now, dedup_ttl, recent_cap,
-- groups: [[person, [op...]]...]}.
-- A person's ops are tallied and written once per group (the profile's times and event
-- count, daily counts, recent list, dedup ids): most of a script's cost is the number of
-- commands it calls, not their size. Cart, wishlist and ledger updates stay per op, in
-- order, since they depend on one another, and such an op flushes the tally after it
-- (see `writes_directly`).
-- Returns, per op in order: {status, new_order, first_order[, customer]} where status is
-- 'fresh', 'dup', 'relog' (applied by an earlier attempt that failed before the stream
-- append; the order flags are that attempt's) or 'moved' (the visitor was linked to
-- `customer` meanwhile: nothing applied, the caller sends the op there).
local p = cjson.decode(ARGV[1])
local T = p.templates
local SLICE = 1000 -- arguments per command: unpack() is bounded by the C stack

local function keys_of(person)
  local k = {}
  for kind, template in pairs(T) do k[kind] = string.format(template, person) end
  return k
end

-- `command key args...` for a long list, a slice at a time, in order (slices keep pairs
-- together: SLICE is even).
local function call_sliced(command, k, args)
  local replies = {}
  for i = 1, #args, SLICE do
    local reply = redis.call(command, k, unpack(args, i, math.min(i + SLICE - 1, #args)))
    if type(reply) == 'table' then
      for _, value in ipairs(reply) do replies[#replies + 1] = value end
    end
  end
  return replies
end

-- What one group's ops add up to, written by `flush` (`customer`: the customer id the
-- latest op named).
-- `drops` (daily counts gone out of the window) and `pushed` (the recent list grew) carry
-- over from flush to flush: they are settled once, at the group's last flush.
local function new_tally(carried)
  carried = carried or {drops = {}, pushed = false}
  return {times = {}, events = 0, counts = {}, recent = {}, seen = {}, unlogged = {},
          drops = carried.drops, pushed = carried.pushed}
end

local function note_time(tally, field, value, keep)
  local current = tally.times[field]
  if not current or keep(value, current[1]) then tally.times[field] = {value, keep} end
end
local function earlier(a, b) return a < b end
local function later(a, b) return a > b end

-- Ids older than the dedup window leave both sets (`unlogged` is empty but for failures).
local function trim(k)
  local horizon = p.now - p.dedup_ttl
  redis.call('ZREMRANGEBYSCORE', k.seen, '-inf', horizon)
  local pending = redis.call('HGETALL', k.unlogged)
  for i = 1, #pending, 2 do
    if tonumber(string.match(pending[i + 1], '|(.*)$')) < horizon then
      redis.call('HDEL', k.unlogged, pending[i])
    end
  end
end

-- Which of the group's event ids were stored before: a person's ids live in a zset
-- scored by arrival. An id still in `unlogged` (id -> "<new order><first order>|<arrival>")
-- was applied but never reached the stream: the caller appends it, and counts its
-- order, this time ('relog'); any other is a duplicate.
local function stored_before(k, ops)
  local ids = {}
  for _, op in ipairs(ops) do
    if op.event_id then ids[#ids + 1] = op.event_id end
  end
  local known = {}
  if #ids == 0 then return known end
  local scores = call_sliced('ZMSCORE', k.seen, ids)
  for i, id in ipairs(ids) do
    if scores[i] then
      local pending = redis.call('HGET', k.unlogged, id)
      if pending then
        known[id] = {'relog', tonumber(string.sub(pending, 1, 1)), tonumber(string.sub(pending, 2, 2))}
      else
        known[id] = {'dup', 0, 0}
      end
    end
  end
  return known
end

-- Returns whether the op recorded an order the ledger did not hold yet, and whether
-- that order is the person's first.
local function apply(op, k, tally)
  note_time(tally, 'first_seen', op.ts, earlier)
  note_time(tally, 'last_seen', op.ts, later)
  note_time(tally, 'last:' .. op.type, op.ts, later)
  tally.events = tally.events + 1
  -- Daily counts per event type for windowed segment rules; the day that just fell out
  -- of the 90-day window is dropped, so the hash stays bounded.
  local day = op.type .. ':' .. op.day
  tally.counts[day] = (tally.counts[day] or 0) + 1
  tally.drops[op.type .. ':' .. (op.day - 91)] = true
  local profile = k.profile
  if op.customer then tally.customer = op.customer end
  if op.recent then
    for _, entry in ipairs(op.recent) do tally.recent[#tally.recent + 1] = entry end
  end
  if op.cart_add then
    for item, quantity in pairs(op.cart_add) do redis.call('HINCRBY', k.cart, item, quantity) end
  end
  if op.cart_remove then
    for item, quantity in pairs(op.cart_remove) do
      if redis.call('HINCRBY', k.cart, item, -quantity) <= 0 then
        redis.call('HDEL', k.cart, item)
      end
    end
  end
  if op.wishlist then
    for _, item in ipairs(op.wishlist) do redis.call('SADD', k.wishlist, item) end
  end
  local new_order, first_order = 0, 0
  if op.purchase then
    for _, item in ipairs(op.purchase.items) do
      redis.call('SADD', k.purchased, item)
      redis.call('HDEL', k.cart, item)
    end
    -- The orders hash (order id -> "value|ts[|R]") is the ledger: lifetime value and
    -- order count are read from it, so a repeated order id never counts twice.
    local entry = op.purchase.value .. '|' .. op.ts
    if redis.call('HSETNX', k.orders, op.purchase.order_key, entry) == 1 then
      if keep_max(profile, 'last_order_at', op.ts) then
        redis.call('HSET', profile, 'last_order_id', op.purchase.order_key)
      end
      new_order = 1
      if redis.call('HLEN', k.orders) == 1 then first_order = 1 end
    end
  end
  if op.returned then
    -- A return marks its order in the ledger: its value and points no longer count.
    local entry = redis.call('HGET', k.orders, op.returned)
    if entry and not string.find(entry, '|R', 1, true) then
      redis.call('HSET', k.orders, op.returned, entry .. '|R')
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
  if op.event_id then
    local seen, unlogged = tally.seen, tally.unlogged
    seen[#seen + 1] = p.now
    seen[#seen + 1] = op.event_id
    unlogged[#unlogged + 1] = op.event_id
    unlogged[#unlogged + 1] = new_order .. first_order .. '|' .. p.now
  end
  return new_order, first_order
end

-- Whether the op writes keys beyond the tally (cart, wishlist, ledger, profile fields;
-- the customer id is tallied, since most of a signed-in customer's events name it).
-- Such an op flushes the tally right after it: should a later op fail, Redis keeps what
-- the script wrote so far, and an op whose writes landed must be marked seen with them,
-- or its retry would apply them twice. Ops that only add to the tally land together, or
-- not at all and are applied afresh on the retry.
local function writes_directly(op)
  return op.cart_add or op.cart_remove or op.wishlist or op.purchase
    or op.returned or op.profile or op.referrer
end

-- Writes the tally (with the dedup marks of its ops) and returns a fresh one; the last
-- flush of a group also drops stale daily counts and trims the recent list.
local function flush(k, tally, last)
  if tally.events > 0 then
    local fields = {}
    for field in pairs(tally.times) do fields[#fields + 1] = field end
    local stored = redis.call('HMGET', k.profile, unpack(fields))
    local changed = {}
    for i, field in ipairs(fields) do
      local value, keep = tally.times[field][1], tally.times[field][2]
      local current = tonumber(stored[i])
      if not current or keep(value, current) then
        changed[#changed + 1] = field
        changed[#changed + 1] = value
      end
    end
    if tally.customer then
      changed[#changed + 1] = 'customer_id'
      changed[#changed + 1] = tally.customer
    end
    if #changed > 0 then call_sliced('HSET', k.profile, changed) end
    redis.call('HINCRBY', k.profile, 'events', tally.events)
    for field, n in pairs(tally.counts) do redis.call('HINCRBY', k.counts, field, n) end
    if #tally.recent > 0 then
      call_sliced('LPUSH', k.recent, tally.recent)
      tally.pushed = true
    end
    if #tally.seen > 0 then
      call_sliced('ZADD', k.seen, tally.seen)
      call_sliced('HSET', k.unlogged, tally.unlogged)
    end
  end
  if last then
    local drops = {}
    for field in pairs(tally.drops) do drops[#drops + 1] = field end
    call_sliced('HDEL', k.counts, drops)
    if tally.pushed then redis.call('LTRIM', k.recent, 0, p.recent_cap - 1) end
  end
  return new_tally(tally)
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
    local k = keys_of(person)
    trim(k)
    local known = stored_before(k, ops)
    local tally = new_tally()
    local applied = {} -- ids this call answered for: a repeat within the batch is a duplicate
    for _, op in ipairs(ops) do
      local id = op.event_id
      if id and applied[id] then
        out[#out + 1] = {'dup', 0, 0}
      elseif id and known[id] then
        out[#out + 1] = known[id]
        applied[id] = true
      else
        local new_order, first_order = apply(op, k, tally)
        if writes_directly(op) then tally = flush(k, tally, false) end
        if id then applied[id] = true end
        out[#out + 1] = {'fresh', new_order, first_order}
      end
    end
    flush(k, tally, true)
  end
end
return out
