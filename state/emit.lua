-- Claim a journey step's message for sending, in the person's slot: at most once per
-- message id, within the person's weekly cap. The caller then appends the message to the
-- outbox and drops the step from the schedule; a message stays in `sending` until that
-- is done, so a worker that dies in between sends it on its retry rather than never
-- (the outbox is at-least-once; consumers keep the message id).
-- KEYS[1]: the person's pending steps set. ARGV[1]: JSON {member, id, now, cap,
-- sent_ttl, keys: {sent, sending, messages}}.
-- Returns 1 (send it), 0 (cancelled or sent before) or -1 (over the weekly cap).
local p = cjson.decode(ARGV[1])
local K = p.keys
-- A step cancelled since it was read (a purchase voided the cart reminder) is not sent.
if redis.call('SISMEMBER', KEYS[1], p.member) == 0 then return 0 end
if redis.call('SISMEMBER', K.sending, p.id) == 1 then return 1 end
redis.call('ZREMRANGEBYSCORE', K.sent, '-inf', p.now - p.sent_ttl)
if redis.call('ZSCORE', K.sent, p.id) then return 0 end
redis.call('ZREMRANGEBYSCORE', K.messages, '-inf', p.now - 7 * 86400)
if p.cap > 0 and redis.call('ZCARD', K.messages) >= p.cap then return -1 end
redis.call('ZADD', K.sent, p.now, p.id)
redis.call('SADD', K.sending, p.id)
if p.cap > 0 then redis.call('ZADD', K.messages, p.now, p.id) end
return 1
