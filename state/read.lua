-- Read the asked-for kinds of one person's keys in one call. In "visitor" mode the person
-- is an anonymous visitor whose link to a customer is checked first: a linked visitor
-- gets back only the customer id, and the caller reads the customer (another slot).
-- KEYS[1]: a key in the person's slot (the link key in "visitor" mode). ARGV[1]: the
-- person; ARGV[2]: "visitor" or "person"; ARGV[3]: JSON {templates, kinds: [[kind, reader]]}.
-- Returns {linked customer id or '', values per kind}.
if ARGV[2] == 'visitor' then
  local linked = redis.call('GET', KEYS[1])
  if linked then return {linked, {}} end
end
local p = cjson.decode(ARGV[3])
local readers = {
  hash = function(k) return redis.call('HGETALL', k) end,
  list = function(k) return redis.call('LRANGE', k, 0, -1) end,
  set = function(k) return redis.call('SMEMBERS', k) end,
  zset = function(k) return redis.call('ZRANGE', k, 0, -1, 'WITHSCORES') end,
}
local values = {}
for i, pair in ipairs(p.kinds) do
  values[i] = readers[pair[2]](string.format(p.templates[pair[1]], ARGV[1]))
end
return {'', values}
