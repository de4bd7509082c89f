-- Expiry for the keys that only serve a time window (prepended to the scripts that write
-- them, see state/scripts.py). Most visitors never come back, and without an expiry their
-- dedup ids and daily counts would stay in Redis for good although nothing reads them
-- once the window has passed. Expiry times are absolute and taken from the script's own
-- clock (`now`, event days), so a replay that passes its own `now` ages keys as live
-- traffic would.
local DAY = 86400
local COUNTS_WINDOW = 91 -- days: segment rules read up to 90 days back, churn features 90

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
  for i = 1, #old, 1000 do -- unpack() is bounded by the C stack
    redis.call('HDEL', k, unpack(old, i, math.min(i + 999, #old)))
  end
  redis.call('EXPIREAT', k, (newest + COUNTS_WINDOW) * DAY)
end

-- Event-id dedup (`seen`, id -> arrival, and the `unlogged` marks beside it): both go
-- when their newest id leaves the dedup window, as every id in them would by then.
local function bound_dedup(seen, unlogged, newest_arrival, ttl)
  local at = newest_arrival + ttl
  redis.call('EXPIREAT', seen, at)
  redis.call('EXPIREAT', unlogged, at)
end
