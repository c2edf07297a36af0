-- Authorize: the rules, the limit checks and the reservation at customer and group level in
-- one atomic step. Mirrors `rules::evaluate` in Rust; tests/exposure_cache.rs checks that both
-- give the same decisions.
--
-- KEYS[1]  the customer's hash  {prefix}{<tag>}:customer:<customer_id>
-- KEYS[2]  the group's hash     {prefix}{<tag>}:group:<tag>  (read only when the customer has
--          a group; declared always so the script never touches an undeclared key)
-- ARGV[1]  amount, minor units, 1 .. 2^53-1 (checked by the caller)
-- ARGV[2]  now, unix seconds, within +-(2^53-1) (checked by the caller)
-- ARGV[3]  "1": reserve when approved; "0": what-if
-- ARGV[4]  the hash tag the keys were built with (the group id, or the customer id)
-- ARGV[5]  the ISO 4217 code of the amount's currency
--
-- Reply, every element a string:
--   {"COLD", customer_cold "1"/"0", group_cold "1"/"0"}
--   {"DECIDED", outcome, reasons joined by ",", reserved "1"/"0", exposure_after,
--    limit or "", epoch, group_id or "", group_limit or "", group_exposure_after or "",
--    group_epoch or ""}
--   {"ERROR", "CURRENCY", limit_currency, ""}  the order is not in the limit's currency
--   {"ERROR", "RANGE", level, id}     the amount would take an exposure beyond 2^53-1
--   {"ERROR", "CORRUPT", key, detail} a field missing or not a number
-- Refusals are replies, not Redis errors: Redis appends script details to raised errors, and
-- a reply keeps the id exact. Every refusal happens before the first write.
--
-- Numbers are Lua 5.1 doubles: exact because every amount, limit and exposure stays within
-- 2^53-1 and the tolerance band is computed without an inexact product (see `band`). The
-- reservation itself uses HINCRBY, which is exact 64-bit integer arithmetic in Redis.

local MAX_EXACT = 9007199254740991

local function read_hash(key)
  local flat = redis.call('HGETALL', key)
  if #flat == 0 then
    return nil
  end
  local fields = {}
  for i = 1, #flat, 2 do
    fields[flat[i]] = flat[i + 1]
  end
  return fields
end

-- Refusals travel as a table through `error` to the `pcall` at the bottom, which returns them.
local function refuse(code, subject, detail)
  error({ refusal = { 'ERROR', code, subject, detail } })
end

local function corrupt(key, detail)
  refuse('CORRUPT', key, detail)
end

-- An exposure must be an integer HINCRBY can add to; checked before any write so that a
-- failing HINCRBY can never leave one level moved and the other not.
local function exposure_of(fields, key)
  local text = fields['exposure']
  if text == nil then
    corrupt(key, 'exposure is missing')
  end
  if not string.match(text, '^%-?%d+$') then
    corrupt(key, 'exposure is not an integer')
  end
  return tonumber(text)
end

-- An optional numeric field: nil when absent.
local function optional_number(fields, name, key)
  local text = fields[name]
  if text == nil then
    return nil
  end
  local value = tonumber(text)
  if value == nil then
    corrupt(key, name .. ' is not a number')
  end
  return value
end

local function required_number(fields, name, key)
  local value = optional_number(fields, name, key)
  if value == nil then
    corrupt(key, name .. ' is missing')
  end
  return value
end

-- The limit amount (as number and as stored text) when it may be used at `now`: expiry exactly
-- at now means expired.
local function valid_limit(fields, key, now)
  local amount = optional_number(fields, 'limit_amount', key)
  if amount == nil then
    return nil, nil
  end
  local valid_until = optional_number(fields, 'limit_valid_until', key)
  if valid_until ~= nil and valid_until <= now then
    return nil, nil
  end
  return amount, fields['limit_amount']
end

-- floor(limit * (10000 + tolerance) / 10000) for 0 <= limit <= 2^53-1, computed as
-- limit + whole * tolerance + floor(rest * tolerance / 10000) with limit = whole * 10000 + rest:
-- every term is exact while the band is below 2^53 (rest * tolerance < 2^47); above, rounding
-- is monotone and the result stays above any exact exposure it is compared with.
local function band(limit, tolerance)
  local rest = math.fmod(limit, 10000)
  local whole = (limit - rest) / 10000
  return limit + whole * tolerance + math.floor(rest * tolerance / 10000)
end

local function authorize()
  local amount = tonumber(ARGV[1])
  local now = tonumber(ARGV[2])
  local reserve = ARGV[3] == '1'
  local tag = ARGV[4]

  local customer = read_hash(KEYS[1])
  if customer == nil then
    return { 'COLD', '1', '0' }
  end
  local group_id = customer['group_id']
  local group = nil
  if group_id ~= nil then
    if group_id ~= tag then
      corrupt(KEYS[1], 'group_id ' .. group_id .. ' differs from the hash tag ' .. tag)
    end
    group = read_hash(KEYS[2])
    if group == nil then
      return { 'COLD', '0', '1' }
    end
  end

  local limit_currency = customer['limit_currency']
  if limit_currency ~= nil and limit_currency ~= ARGV[5] then
    refuse('CURRENCY', limit_currency, '')
  end

  local exposure = exposure_of(customer, KEYS[1])
  if exposure + amount > MAX_EXACT then
    refuse('RANGE', 'customer', customer['customer_id'] or KEYS[1])
  end
  local group_exposure = nil
  if group ~= nil then
    group_exposure = exposure_of(group, KEYS[2])
    if group_exposure + amount > MAX_EXACT then
      refuse('RANGE', 'group', group_id)
    end
  end

  local OUTCOMES = { 'APPROVED', 'REFERRED', 'DECLINED' }
  local APPROVED, REFERRED, DECLINED = 1, 2, 3
  local outcome = APPROVED
  local reasons = {}
  local function flag(reason, severity)
    reasons[#reasons + 1] = reason
    if severity > outcome then
      outcome = severity
    end
  end
  local function check_limit(reason, current, limit, tolerance)
    local total = current + amount
    if total > limit then
      if total <= band(limit, tolerance) then
        flag(reason, REFERRED)
      else
        flag(reason, DECLINED)
      end
    end
  end

  if customer['status'] ~= 'ACTIVE' then
    flag('CUSTOMER_INACTIVE', DECLINED)
  end
  local limit, limit_text = valid_limit(customer, KEYS[1], now)
  if limit == nil then
    flag('NO_VALID_LIMIT', REFERRED)
  end
  if customer['blocked'] == '1' then
    flag('CREDIT_BLOCK', REFERRED)
  end
  if required_number(customer, 'oldest_overdue_days', KEYS[1])
      > required_number(customer, 'overdue_tolerance_days', KEYS[1]) then
    flag('OVERDUE', REFERRED)
  end
  if customer['rating_required'] == '1' then
    local rating_valid_until = optional_number(customer, 'rating_valid_until', KEYS[1])
    if rating_valid_until == nil or rating_valid_until <= now then
      flag('RATING_STALE', REFERRED)
    end
  end
  local order_cap = optional_number(customer, 'order_cap', KEYS[1])
  if order_cap ~= nil and amount > order_cap then
    flag('ORDER_AMOUNT_LIMIT', REFERRED)
  end
  if limit ~= nil then
    check_limit('LIMIT_EXCEEDED', exposure, limit, required_number(customer, 'tolerance_bps', KEYS[1]))
  end
  local group_limit, group_limit_text = nil, nil
  if group ~= nil then
    group_limit, group_limit_text = valid_limit(group, KEYS[2], now)
    if group_limit ~= nil then
      check_limit('GROUP_LIMIT_EXCEEDED', group_exposure, group_limit,
        required_number(group, 'tolerance_bps', KEYS[2]))
    end
  end

  local exposure_after = customer['exposure']
  local group_exposure_after = group ~= nil and group['exposure'] or ''
  local reserved = '0'
  if outcome == APPROVED and reserve then
    exposure_after = string.format('%.0f', redis.call('HINCRBY', KEYS[1], 'exposure', ARGV[1]))
    if group ~= nil then
      group_exposure_after = string.format('%.0f', redis.call('HINCRBY', KEYS[2], 'exposure', ARGV[1]))
    end
    reserved = '1'
  end

  return {
    'DECIDED',
    OUTCOMES[outcome],
    table.concat(reasons, ','),
    reserved,
    exposure_after,
    limit_text or '',
    customer['epoch'] or '',
    group_id or '',
    group_limit_text or '',
    group_exposure_after,
    group ~= nil and (group['epoch'] or '') or '',
    group ~= nil and (group['tolerance_bps'] or '') or '',
    -- The figures the rules compared, quoted by the answer's reasons.
    customer['status'] or '',
    customer['oldest_overdue_days'],
    customer['overdue_tolerance_days'],
    customer['order_cap'] or '',
    customer['tolerance_bps'],
  }
end

local ok, reply = pcall(authorize)
if ok then
  return reply
end
if type(reply) == 'table' and reply.refusal ~= nil then
  return reply.refusal
end
error(reply)
