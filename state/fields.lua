-- Helpers shared by the scripts that update a person's keys (prepended to them, see
-- state/scripts.py): long argument lists in slices, and the larger or the smaller of a
-- stored and a new time.
local SLICE = 1000 -- arguments per command: unpack() is bounded by the C stack

-- `command key args...` for a long list, a slice at a time, in order (slices keep pairs
-- together: SLICE is even). Returns table replies joined, and the last reply.
local function call_sliced(command, k, args)
  local replies, reply = {}, nil
  for i = 1, #args, SLICE do
    reply = redis.call(command, k, unpack(args, i, math.min(i + SLICE - 1, #args)))
    if type(reply) == 'table' then
      for _, value in ipairs(reply) do replies[#replies + 1] = value end
    end
  end
  return replies, reply
end

local function keep_max(k, field, value)
  local current = tonumber(redis.call('HGET', k, field))
  if not current or value > current then redis.call('HSET', k, field, value) return true end
  return false
end

local function keep_min(k, field, value)
  local current = tonumber(redis.call('HGET', k, field))
  if not current or value < current then redis.call('HSET', k, field, value) end
end
