-- Redeem an offer for an order, atomically: at most once per order, at most `limit`
-- times per person (0: no cap), at most `budget` times in all (0: no budget), and for
-- loyalty rewards never spending more points than were earned.
-- KEYS: orders hash (order -> person), stats hash (total and per-person fields), both in
--       the offer's slot (the caller notes the offer in the person's redeemed set).
-- ARGV: order id, person, limit, budget, points to spend, points earned,
--       mode ("redeem", or "retry": only an exact repeat of an earlier redemption),
--       period, cap scope ("period": the limit counts within the period; "lifetime"),
--       and the person's stats field names: count, points, period (see state/keys.py).
local order, person = ARGV[1], ARGV[2]
local limit, budget = tonumber(ARGV[3]), tonumber(ARGV[4])
local points, earned = tonumber(ARGV[5]), tonumber(ARGV[6])
local owner = redis.call('HGET', KEYS[1], order)
if owner then
  if owner == person then return 'duplicate' end
  return 'order_used'
end
if ARGV[7] == 'retry' then return 'not_eligible' end
local period, scope = ARGV[8], ARGV[9]
local count_field, points_field, period_field = ARGV[10], ARGV[11], ARGV[12]
local last = redis.call('HGET', KEYS[2], period_field) or ''
local last_period, last_count = string.match(last, '^(.*)|(%d+)$')
local in_period = (last_period == period) and tonumber(last_count) or 0
local used = in_period
if scope == 'lifetime' then used = tonumber(redis.call('HGET', KEYS[2], count_field)) or 0 end
if limit > 0 and used >= limit then return 'limit_reached' end
if budget > 0 and (tonumber(redis.call('HGET', KEYS[2], 'total')) or 0) >= budget then
  return 'budget_exhausted'
end
if points > 0 and (tonumber(redis.call('HGET', KEYS[2], points_field)) or 0) + points > earned then
  return 'insufficient_points'
end
redis.call('HSET', KEYS[1], order, person)
redis.call('HINCRBY', KEYS[2], 'total', 1)
redis.call('HINCRBY', KEYS[2], count_field, 1)
redis.call('HSET', KEYS[2], period_field, period .. '|' .. (in_period + 1))
if points > 0 then redis.call('HINCRBY', KEYS[2], points_field, points) end
return 'redeemed'
