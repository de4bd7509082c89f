-- Apply validated events to the persons they belong to: dedup, profile updates, cart,
-- ledger. Python turns each event into an "op" and resolves its person (see ingest.py);
-- this script only applies ops, so business rules stay in Python. Key templates arrive
-- in ARGV so that state/keys.py remains the only place key names are spelled.
-- Every key it touches carries the hash tag of a person in ARGV: on a Redis Cluster the
-- caller sends one call per hash slot, on a single server one call for the whole batch.
-- KEYS[1]: the first person's profile key (routes the call to its slot).
-- ARGV[1]: JSON {templates, link, visitor_prefix, now, dedup_ttl, recent_cap, type_codes,
-- timed, groups: [[person, [op...]]...]}.
-- A person's ops are tallied and written once per group (the profile's times and event
-- count, daily counts, recent list, dedup ids): most of a script's cost is the number of
-- commands it calls, not their size. Cart, wishlist and ledger updates stay per op, in
-- order, since they depend on one another, and such an op flushes the tally after it
-- (see `writes_directly`).
-- Returns {codes, customers}: `codes` holds three characters per op in order, a status
-- and the op's two order flags (new order, first order; '0' or '1'). The status is 'f'
-- (fresh), 'd' (duplicate), 'r' (relog: applied by an earlier attempt that failed before
-- the stream append; the flags are that attempt's) or 'm' (moved: the visitor was linked
-- to a customer meanwhile; nothing applied, the caller sends the op there). `customers`
-- lists, per moved op in order, that customer. One string, rather than a table per op,
-- because building and parsing a thousand small replies cost more than the answer says.
local p = cjson.decode(ARGV[1])
local T = p.templates

-- A person's key names, each formatted when first used: most ops touch five kinds.
local KEYS_OF = {__index = function(k, kind)
  local name = string.format(T[kind], k[0])
  k[kind] = name
  return name
end}
local function keys_of(person) return setmetatable({[0] = person}, KEYS_OF) end

-- 'last:<type>' for the event types whose latest time the profile keeps (the ones a rule
-- reads: campaigns/person.py), built once per call.
local LAST = {}
for _, event_type in ipairs(p.timed) do LAST[event_type] = 'last:' .. event_type end

-- The order flags as digits, and the "unlogged" mark they make (flags|arrival).
local FLAGS = {[0] = {[0] = '00', '01'}, {[0] = '10', '11'}}
local MARKS = {}
for n = 0, 1 do
  MARKS[n] = {}
  for f = 0, 1 do MARKS[n][f] = FLAGS[n][f] .. '|' .. p.now end
end

-- What one group's ops add up to, written by `flush`: the earliest and latest event
-- times, the latest per event type, the event count, and daily counts by type then day.
-- (A customer's id is their person's: the profile does not repeat it.)
local function new_tally()
  return {events = 0, latest = {}, counts = {}, recent = {}, seen = {}, unlogged = {}}
end

-- Ids older than the dedup window leave both sets (`unlogged` is empty but for failures).
-- A mark is written with its id and the same arrival time, so while no id is old enough
-- to leave `seen`, no mark is either, and the marks are not read.
local function trim(k)
  local horizon = p.now - p.dedup_ttl
  if redis.call('ZREMRANGEBYSCORE', k.seen, '-inf', horizon) == 0 then return end
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
      known[id] = pending and ('r' .. string.sub(pending, 1, 2)) or 'd00'
    end
  end
  return known
end

-- Returns whether the op recorded an order the ledger did not hold yet, and whether
-- that order is the person's first.
local function apply(op, k, tally)
  local ts, event_type = op.ts, op.type
  if not tally.first or ts < tally.first then tally.first = ts end
  local latest = tally.latest[event_type]
  if not latest or ts > latest then tally.latest[event_type] = ts end
  tally.events = tally.events + 1
  -- Daily counts per event type, for windowed segment rules (see `flush`).
  local days = tally.counts[event_type]
  if not days then
    days = {}
    tally.counts[event_type] = days
  end
  days[op.day] = (days[op.day] or 0) + 1
  local profile = k.profile
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
    unlogged[#unlogged + 1] = MARKS[new_order][first_order]
  end
  return new_order, first_order
end

-- Whether the op writes keys beyond the tally (cart, wishlist, ledger, profile fields).
-- Such an op flushes the tally right after it: should a later op fail, Redis keeps what
-- the script wrote so far, and an op whose writes landed must be marked seen with them,
-- or its retry would apply them twice. Ops that only add to the tally land together, or
-- not at all and are applied afresh on the retry.
local function writes_directly(op)
  return op.cart_add or op.cart_remove or op.wishlist or op.purchase
    or op.returned or op.profile or op.referrer
end

-- The profile's times a tally moves and the values it would write: `first_seen` keeps
-- the smaller of its value and the stored one, every other the larger.
local function profile_times(tally)
  local fields, values = {'first_seen', 'last_seen'}, {tally.first, 0}
  for event_type, ts in pairs(tally.latest) do
    if ts > values[2] then values[2] = ts end
    if LAST[event_type] then
      fields[#fields + 1] = LAST[event_type]
      values[#values + 1] = ts
    end
  end
  return fields, values
end

-- Adds a tally's daily counts (type -> day -> events) in one read and one write. A count
-- that is new (a first event of its type that day) may move the newest day, so the hash
-- is bounded to its window again then (`bound_counts`, windows.lua).
local function write_counts(k, counts)
  local fields, added = {}, {}
  for event_type, days in pairs(counts) do
    for day, n in pairs(days) do
      fields[#fields + 1] = event_type .. ':' .. day
      added[#added + 1] = n
    end
  end
  local stored = call_sliced('HMGET', k.counts, fields)
  local updates, any_new = {}, false
  for i, field in ipairs(fields) do
    local count = tonumber(stored[i])
    updates[#updates + 1] = field
    updates[#updates + 1] = (count or 0) + added[i]
    if not count then any_new = true end
  end
  call_sliced('HSET', k.counts, updates)
  if any_new then bound_counts(k.counts) end
end

-- The recent lists this call has brought to pairs already: a person whose ops write
-- directly flushes more than once, and the list needs looking at only the first time.
local converted = {}

-- Writes the tally (with the dedup marks of its ops) and returns a fresh one.
local function flush(k, tally)
  if tally.events == 0 then return tally end
  local fields, values = profile_times(tally)
  -- The event count is read beside the times and written with them.
  local stored = redis.call('HMGET', k.profile, 'events', unpack(fields))
  local changed = {'events', (tonumber(stored[1]) or 0) + tally.events}
  for i, field in ipairs(fields) do
    local value, current = values[i], tonumber(stored[i + 1])
    local better = not current or (i == 1 and value < current) or (i > 1 and value > current)
    if better then
      changed[#changed + 1] = field
      changed[#changed + 1] = value
    end
  end
  call_sliced('HSET', k.profile, changed)
  write_counts(k, tally.counts)
  if #tally.recent > 0 then
    -- Two elements an interaction (recent.lua).
    if not converted[k.recent] then
      convert_recent(k.recent, p.type_codes)
      converted[k.recent] = true
    end
    local _, length = call_sliced('LPUSH', k.recent, tally.recent)
    if length > 2 * p.recent_cap then redis.call('LTRIM', k.recent, 0, 2 * p.recent_cap - 1) end
  end
  if #tally.seen > 0 then
    call_sliced('ZADD', k.seen, tally.seen)
    call_sliced('HSET', k.unlogged, tally.unlogged)
  end
  return new_tally()
end

-- The customer an anonymous person's visitor was linked to since the caller read its
-- link (a sign-in in another request): its events belong there now.
local function moved_to(person)
  local prefix = p.visitor_prefix
  if string.sub(person, 1, #prefix) ~= prefix then return nil end
  return redis.call('GET', string.format(p.link, string.sub(person, #prefix + 1)))
end

local codes, customers = {}, {}
for _, group in ipairs(p.groups) do
  local person, ops = group[1], group[2]
  local customer = moved_to(person)
  if customer then
    for _ = 1, #ops do
      codes[#codes + 1] = 'm00'
      customers[#customers + 1] = customer
    end
  else
    local k = keys_of(person)
    trim(k)
    local known = stored_before(k, ops)
    local tally = new_tally()
    local applied = {} -- ids this call answered for: a repeat within the batch is a duplicate
    local stored_ids = false
    for _, op in ipairs(ops) do
      local id = op.event_id
      if id and applied[id] then
        codes[#codes + 1] = 'd00'
      elseif id and known[id] then
        codes[#codes + 1] = known[id]
        applied[id] = true
      else
        local new_order, first_order = apply(op, k, tally)
        if writes_directly(op) then tally = flush(k, tally) end
        if id then
          applied[id] = true
          stored_ids = true
        end
        codes[#codes + 1] = 'f' .. FLAGS[new_order][first_order]
      end
    end
    flush(k, tally)
    if stored_ids then bound_dedup(k.seen, k.unlogged, p.dedup_ttl) end
  end
end
return {table.concat(codes), customers}
