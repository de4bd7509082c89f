-- Expiry for the keys that only serve a time window (prepended to the scripts that write
-- them, see state/scripts.py). Most visitors never come back, and without an expiry their
-- dedup ids and daily counts would stay in Redis for good although nothing reads them
-- once the window has passed. Expiry times are absolute, from what the keys hold (arrival
-- times, event days), so keys written by a replay that passes its own `now` and ends at
-- the present are left as live traffic would have left them.
-- A server must not evict these early: Redis runs with `maxmemory-policy noeviction`
-- (docs/operations.md), since a `volatile-*` policy would pick them first.
local DAY = 86400
-- Days of daily counts kept, today's included: segment rules read up to 90 (today and
-- the 89 before), churn features the 30 before today (models/churn.py).
local COUNTS_WINDOW = 91

-- Daily counts ("<type>:<day>" -> events): drops every count more than 90 days older
-- than the newest, of any type, and lets the hash go when its newest day leaves the
-- window (at once, for a backfill of old history). Called whenever a count is new, the
-- only time the newest day can move.
local function bound_counts(k)
  local fields, days, newest = redis.call('HKEYS', k), {}, nil
  for i, field in ipairs(fields) do
    local day = tonumber(string.match(field, ':(%d+)$'))
    days[i] = day
    if day and (not newest or day > newest) then newest = day end
  end
  if not newest then return end
  local old = {}
  for i, field in ipairs(fields) do
    if days[i] and days[i] <= newest - COUNTS_WINDOW then old[#old + 1] = field end
  end
  if #old > 0 then call_sliced('HDEL', k, old) end
  redis.call('EXPIREAT', k, (newest + COUNTS_WINDOW) * DAY)
end

-- Event-id dedup (`seen`, id -> arrival, and the `unlogged` marks beside it): both go
-- when their newest id leaves the dedup window, as every id in them would by then. The
-- newest is read rather than taken from the caller's clock: a replica whose clock is
-- behind must not shorten the window of an id another one stored. Scores written before
-- arrivals were whole seconds have fractions: EXPIREAT takes whole seconds.
local function bound_dedup(seen, unlogged, ttl)
  local newest = redis.call('ZRANGE', seen, -1, -1, 'WITHSCORES')[2]
  if not newest then return end
  local at = math.ceil(tonumber(newest) + ttl)
  redis.call('EXPIREAT', seen, at)
  redis.call('EXPIREAT', unlogged, at)
end
