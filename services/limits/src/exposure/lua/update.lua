-- Update: changes profile fields of a cached hash without touching exposure or epoch, and
-- never creates a hash that is not there (a half-profile would look warm).
--
-- KEYS[1]  the customer's or group's hash
-- ARGV[1]  n, the number of field/value pairs to set
-- ARGV[2 .. 1+2n]  field, value, field, value, ...
-- ARGV[2+2n ..]    fields to delete (optional fields cleared)
--
-- Reply: 1 updated, 0 not cached.

if redis.call('EXISTS', KEYS[1]) == 0 then
  return 0
end
local pairs_to_set = tonumber(ARGV[1])
for i = 0, pairs_to_set - 1 do
  redis.call('HSET', KEYS[1], ARGV[2 + 2 * i], ARGV[3 + 2 * i])
end
for i = 2 + 2 * pairs_to_set, #ARGV do
  redis.call('HDEL', KEYS[1], ARGV[i])
end
return 1
