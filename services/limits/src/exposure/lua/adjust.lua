-- Add or release: moves the exposure of a customer and of its group by the same signed amount,
-- both or neither, with no rule checked. Refuses to create a half-profile on a cold key.
--
-- KEYS[1]  the customer's hash  {prefix}{<tag>}:customer:<customer_id>
-- KEYS[2]  the group's hash     {prefix}{<tag>}:group:<tag>  (used when the customer has a group)
-- ARGV[1]  the signed change, minor units, |change| <= 2^53-1 (checked by the caller)
-- ARGV[2]  the hash tag the keys were built with
-- ARGV[3]  the customer epoch the change was written under, or "" to move whatever is cached
-- ARGV[4]  the group epoch the change was written under, or ""
--          A level cached under another epoch was rebuilt after the change and already counts
--          it: it is left as it is (see `Fence` in model.rs).
--
-- Reply, every element a string:
--   {"COLD", customer_cold "1"/"0", group_cold "1"/"0"}
--   {"APPLIED", customer_exposure, group_exposure or ""}
--   {"ERROR", "RANGE", level, id}     an exposure would leave +-(2^53-1)
--   {"ERROR", "CORRUPT", key, detail} a field missing or not an integer
-- Every refusal happens before the first write.

local MAX_EXACT = 9007199254740991

-- The exposure of an existing hash as a number; nil when the hash does not exist; a refusal
-- reply (second result) when the hash exists without a usable exposure.
local function exposure_of(key)
  local text = redis.call('HGET', key, 'exposure')
  if not text then
    if redis.call('EXISTS', key) == 1 then
      return nil, { 'ERROR', 'CORRUPT', key, 'exposure is missing' }
    end
    return nil, nil
  end
  if not string.match(text, '^%-?%d+$') then
    return nil, { 'ERROR', 'CORRUPT', key, 'exposure is not an integer' }
  end
  return tonumber(text), nil
end

local function out_of_range(value)
  return value > MAX_EXACT or value < -MAX_EXACT
end

local change = tonumber(ARGV[1])
local tag = ARGV[2]

local exposure, refusal = exposure_of(KEYS[1])
if refusal ~= nil then
  return refusal
end
if exposure == nil then
  return { 'COLD', '1', '0' }
end
local group_id = redis.call('HGET', KEYS[1], 'group_id')
local group_exposure = nil
if group_id then
  if group_id ~= tag then
    return { 'ERROR', 'CORRUPT', KEYS[1], 'group_id ' .. group_id .. ' differs from the hash tag ' .. tag }
  end
  group_exposure, refusal = exposure_of(KEYS[2])
  if refusal ~= nil then
    return refusal
  end
  if group_exposure == nil then
    return { 'COLD', '0', '1' }
  end
end

-- Whether the level in `key` is to move: no expected epoch, or the one it is cached under.
local function admitted(key, expected)
  return expected == '' or redis.call('HGET', key, 'epoch') == expected
end

local move_customer = admitted(KEYS[1], ARGV[3])
local move_group = group_exposure ~= nil and admitted(KEYS[2], ARGV[4])

if move_customer and out_of_range(exposure + change) then
  return { 'ERROR', 'RANGE', 'customer', redis.call('HGET', KEYS[1], 'customer_id') or KEYS[1] }
end
if move_group and out_of_range(group_exposure + change) then
  return { 'ERROR', 'RANGE', 'group', group_id }
end

local customer_after = string.format('%.0f', exposure)
if move_customer then
  customer_after = string.format('%.0f', redis.call('HINCRBY', KEYS[1], 'exposure', ARGV[1]))
end
local group_after = ''
if group_exposure ~= nil then
  group_after = string.format('%.0f', group_exposure)
  if move_group then
    group_after = string.format('%.0f', redis.call('HINCRBY', KEYS[2], 'exposure', ARGV[1]))
  end
end
return { 'APPLIED', customer_after, group_after }
