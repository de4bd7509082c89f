-- A person's recent list holds two elements an interaction (state/interactions.py):
-- "<letter><item>", then its time in whole seconds. A list written before holds one
-- "<type>\t<item>\t<seconds>" string an interaction; it is rewritten as pairs the first
-- time it is written again, since the cap counts elements and a list of both kinds
-- would hold more than the cap. `codes` maps a type's name to its letter.

-- An older entry as its pair, or nil if it is not one.
local function as_pair(entry, codes)
  local stored, item, ts = string.match(entry, '^([^\t]*)\t([^\t]*)\t([^\t]*)$')
  if not stored then return nil end
  return {(codes[stored] or stored) .. item, math.floor(tonumber(ts) or 0)}
end

-- Rewrites the list as pairs when its oldest element is an older entry (older entries
-- are always the oldest: a list is converted before anything is pushed onto it).
local function convert_recent(key, codes)
  local oldest = redis.call('LINDEX', key, -1)
  if not oldest or not string.find(oldest, '\t', 1, true) then return end
  local converted = {}
  for _, element in ipairs(redis.call('LRANGE', key, 0, -1)) do
    local pair = string.find(element, '\t', 1, true) and as_pair(element, codes) or {element}
    for _, part in ipairs(pair) do converted[#converted + 1] = part end
  end
  redis.call('DEL', key)
  call_sliced('RPUSH', key, converted)
end
