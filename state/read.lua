-- Read a visitor's person in one round trip: resolve the visitor -> customer link, then
-- read the asked-for kinds of the person's keys, some plain keys (extras), and some
-- hash fields that name the person (e.g. an offer's "p:<person>" redemption count).
-- KEYS[1]: the visitor's link key. ARGV[1]: visitor id. ARGV[2]: JSON {templates,
-- visitor_person, customer_person, kinds: [[kind, reader]...], extras: [key...],
-- fields: [[key, field template...]...]}.
-- Standalone Redis only: the person's keys are derived here, not declared (see README).
local p = cjson.decode(ARGV[2])
local linked = redis.call('GET', KEYS[1])
local person
if linked then person = string.format(p.customer_person, linked)
else person = string.format(p.visitor_person, ARGV[1]) end
local readers = {
  hash = function(k) return redis.call('HGETALL', k) end,
  list = function(k) return redis.call('LRANGE', k, 0, -1) end,
  set = function(k) return redis.call('SMEMBERS', k) end,
}
local values = {}
for i, pair in ipairs(p.kinds) do
  values[i] = readers[pair[2]](string.format(p.templates[pair[1]], person))
end
local extras = {}
for i, k in ipairs(p.extras) do extras[i] = redis.call('GET', k) or '' end
local fields = {}
for i, spec in ipairs(p.fields) do
  local names = {}
  for j = 2, #spec do names[j - 1] = string.format(spec[j], person) end
  local got = redis.call('HMGET', spec[1], unpack(names))
  for j = 1, #got do got[j] = got[j] or '' end
  fields[i] = got
end
return {person, values, extras, fields}
