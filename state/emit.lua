-- Emit a journey step once: mark its message id as sent, append it to the outbox and drop
-- it from the schedule, all or nothing. A worker that dies after this and retries finds
-- the mark and only finishes the clean-up.
-- A frequency cap counts the person's messages over the last week (0: no cap); a step
-- over the cap is dropped, not sent later.
-- KEYS: sent marker, outbox stream, due zset, the person's pending set, the person's
--       sent-times zset. ARGV: schedule member, marker ttl seconds, now, weekly cap,
--       message id, then outbox field/value pairs.
local member, now, cap, id = ARGV[1], tonumber(ARGV[3]), tonumber(ARGV[4]), ARGV[5]
local outcome = 0
-- A step cancelled since it was read (a purchase voided the cart reminder) is not sent.
if not redis.call('ZSCORE', KEYS[3], member) then return 0 end
if redis.call('EXISTS', KEYS[1]) == 0 then
  redis.call('ZREMRANGEBYSCORE', KEYS[5], '-inf', now - 7 * 86400)
  if cap > 0 and redis.call('ZCARD', KEYS[5]) >= cap then
    outcome = -1
  else
    redis.call('SET', KEYS[1], '1', 'EX', tonumber(ARGV[2]))
    local fields = {}
    for i = 6, #ARGV do fields[#fields + 1] = ARGV[i] end
    redis.call('XADD', KEYS[2], '*', unpack(fields))
    if cap > 0 then redis.call('ZADD', KEYS[5], now, id) end
    outcome = 1
  end
end
redis.call('ZREM', KEYS[3], member)
redis.call('SREM', KEYS[4], member)
return outcome
