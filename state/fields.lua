-- Helpers shared by the scripts that update a person's profile hash (prepended to them,
-- see state/scripts.py): keep the larger or the smaller of a stored and a new time.
local function keep_max(k, field, value)
  local current = tonumber(redis.call('HGET', k, field))
  if not current or value > current then redis.call('HSET', k, field, value) return true end
  return false
end

local function keep_min(k, field, value)
  local current = tonumber(redis.call('HGET', k, field))
  if not current or value < current then redis.call('HSET', k, field, value) end
end
