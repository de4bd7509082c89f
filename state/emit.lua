-- Emit a journey step once: mark its message id as sent, append it to the outbox and drop
-- it from the schedule, all or nothing. A worker that dies after this and retries finds
-- the mark and only finishes the clean-up.
-- KEYS: sent marker, outbox stream, due zset, the person's pending set.
-- ARGV: schedule member, marker ttl seconds, then outbox field/value pairs.
local first = redis.call('SET', KEYS[1], '1', 'NX', 'EX', tonumber(ARGV[2]))
if first then
  local fields = {}
  for i = 3, #ARGV do fields[#fields + 1] = ARGV[i] end
  redis.call('XADD', KEYS[2], '*', unpack(fields))
end
redis.call('ZREM', KEYS[3], ARGV[1])
redis.call('SREM', KEYS[4], ARGV[1])
if first then return 1 end
return 0
