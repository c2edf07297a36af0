-- Authorize: the rules, the limit checks and the reservation at customer and group level in
-- one atomic step, for one order or for several orders of the same customer, decided one after
-- the other as if each were its own call (each sees the reservations of those before it).
-- Mirrors `rules::evaluate` in Rust; tests/exposure_cache.rs checks that both give the same
-- decisions.
--
-- KEYS[1]  the customer's hash  {prefix}{<tag>}:customer:<customer_id>
-- KEYS[2]  the group's hash     {prefix}{<tag>}:group:<tag>  (read only when the customer has
--          a group; declared always so the script never touches an undeclared key)
-- ARGV[1]  the hash tag the keys were built with (the group id, or the customer id)
-- then four arguments per order, the orders in sequence:
--   amount, minor units, 1 .. 2^53-1 (checked by the caller)
--   now, unix seconds, within +-(2^53-1) (checked by the caller)
--   "1": reserve when approved; "0": what-if
--   the ISO 4217 code of the amount's currency
--
-- Reply: first the profile's figures, the same for every order of the call (sent once rather
-- than with each order), then one reply per order, in order; every element a string.
--   profile: {epoch, group_id or "", group_epoch or "", group_tolerance_bps or "", status,
--            oldest_overdue_days, overdue_tolerance_days, order_cap or "", tolerance_bps or ""}
--            or {} when no order was decided (a cold or corrupt entry)
--   {"COLD", customer_cold "1"/"0", group_cold "1"/"0"}
--   {"DECIDED", outcome, reasons joined by ",", reserved "1"/"0", exposure_after,
--    limit or "", group_limit or "", group_exposure_after or "", secured, capacity or "",
--    contingent}
--     (the limits and the capacity are "" when expired at the order's `now`; secured is the
--     security counted at `now`)
--   {"ERROR", "CURRENCY", limit_currency, ""}  the order is not in the limit's currency
--   {"ERROR", "RANGE", level, id}     the amount would take an exposure beyond 2^53-1
--   {"ERROR", "CORRUPT", key, detail} a field missing or not a number (every order gets it)
-- Refusals are replies, not Redis errors: Redis appends script details to raised errors, and
-- a reply keeps the id exact. The reservations are written after every order is decided, so
-- a corrupt entry found at any order leaves everything unwritten.
--
-- Numbers are Lua 5.1 doubles: exact because every amount, limit and exposure stays within
-- 2^53-1 (checked per order before it reserves) and the tolerance band is computed without
-- an inexact product (see `band`). The reservations are written with HINCRBY, exact 64-bit
-- integer arithmetic in Redis.

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

-- The number of orders: four arguments each, after the tag.
local ORDERS = (#ARGV - 1) / 4

-- The same reply for every order (a cold or corrupt entry concerns them all), after an
-- empty profile.
local function for_every_order(reply)
  local replies = { {} }
  for i = 1, ORDERS do
    replies[i + 1] = reply
  end
  return replies
end

-- A corrupt entry travels as a table through `error` to the `pcall` at the bottom, which
-- answers it for every order.
local function corrupt(key, detail)
  error({ refusal = { 'ERROR', 'CORRUPT', key, detail } })
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

-- floor(limit * (10000 + tolerance) / 10000) for 0 <= limit <= 2^53-1, computed as
-- limit + whole * tolerance + floor(rest * tolerance / 10000) with limit = whole * 10000 + rest:
-- every term is exact while the band is below 2^53 (rest * tolerance < 2^47); above, rounding
-- is monotone and the result stays above any exact exposure it is compared with.
local function band(limit, tolerance)
  local rest = math.fmod(limit, 10000)
  local whole = (limit - rest) / 10000
  return limit + whole * tolerance + math.floor(rest * tolerance / 10000)
end

-- Decimal text of an exact integer (below 2^53 in magnitude).
local function integer_text(value)
  return string.format('%.0f', value)
end

local function authorize_all()
  local tag = ARGV[1]

  local customer = read_hash(KEYS[1])
  if customer == nil then
    return for_every_order({ 'COLD', '1', '0' })
  end
  local group_id = customer['group_id']
  local group = nil
  if group_id ~= nil then
    if group_id ~= tag then
      corrupt(KEYS[1], 'group_id ' .. group_id .. ' differs from the hash tag ' .. tag)
    end
    group = read_hash(KEYS[2])
    if group == nil then
      return for_every_order({ 'COLD', '0', '1' })
    end
  end

  -- The exposures as the orders so far left them; written once, after the last order.
  local exposure = exposure_of(customer, KEYS[1])
  local group_exposure = nil
  if group ~= nil then
    group_exposure = exposure_of(group, KEYS[2])
  end
  local reserved_total = 0

  -- The profile's figures, read once for all the orders.
  local limit_currency = customer['limit_currency']
  local limit_amount = optional_number(customer, 'limit_amount', KEYS[1])
  local limit_valid_until = optional_number(customer, 'limit_valid_until', KEYS[1])
  local overdue = required_number(customer, 'oldest_overdue_days', KEYS[1])
    > required_number(customer, 'overdue_tolerance_days', KEYS[1])
  local rating_required = customer['rating_required'] == '1'
  local rating_valid_until = optional_number(customer, 'rating_valid_until', KEYS[1])
  local order_cap = optional_number(customer, 'order_cap', KEYS[1])
  local tolerance = optional_number(customer, 'tolerance_bps', KEYS[1])
  -- The security register's cover (absent: none), see `Cover` in model.rs.
  local secured = optional_number(customer, 'secured', KEYS[1]) or 0
  local secured_extends = customer['secured_extends'] == '1'
  local secured_valid_until = optional_number(customer, 'secured_valid_until', KEYS[1])
  local contingent = optional_number(customer, 'contingent', KEYS[1]) or 0
  local group_limit_amount, group_limit_valid_until, group_tolerance = nil, nil, nil
  if group ~= nil then
    group_limit_amount = optional_number(group, 'limit_amount', KEYS[2])
    group_limit_valid_until = optional_number(group, 'limit_valid_until', KEYS[2])
    group_tolerance = optional_number(group, 'tolerance_bps', KEYS[2])
  end
  -- A limit may be used at `now` until its expiry: expiry exactly at now means expired.
  local function usable(amount, valid_until, now)
    return amount ~= nil and (valid_until == nil or valid_until > now)
  end

  local OUTCOMES = { 'APPROVED', 'REFERRED', 'DECLINED' }
  local APPROVED, REFERRED, DECLINED = 1, 2, 3

  -- The outcome a limit check adds: nil within the limit, REFERRED within the tolerance band
  -- above it, DECLINED beyond; a band of 4294967295 (REFER_EVERY_OVERSHOOT_BPS) refers every
  -- overshoot (a grade whose policy refers orders beyond the tolerance to people).
  -- The security extends the capacity (limit + extension); the tolerance band is the limit's,
  -- with the extension on top.
  local function over_limit(total, limit, extension, tolerance_bps, key)
    if total <= limit + extension then
      return nil
    end
    if tolerance_bps == nil then
      corrupt(key, 'tolerance_bps is missing')
    end
    if tolerance_bps == 4294967295 then
      return REFERRED
    end
    if total <= band(limit, tolerance_bps) + extension then
      return REFERRED
    end
    return DECLINED
  end

  local function decide(amount, now, reserve, currency)
    if limit_currency ~= nil and limit_currency ~= currency then
      return { 'ERROR', 'CURRENCY', limit_currency, '' }
    end
    if exposure + amount > MAX_EXACT then
      return { 'ERROR', 'RANGE', 'customer', customer['customer_id'] or KEYS[1] }
    end
    if group ~= nil and group_exposure + amount > MAX_EXACT then
      return { 'ERROR', 'RANGE', 'group', group_id }
    end

    local outcome = APPROVED
    local reasons = {}
    local function flag(reason, severity)
      reasons[#reasons + 1] = reason
      if severity > outcome then
        outcome = severity
      end
    end

    if customer['status'] ~= 'ACTIVE' then
      flag('CUSTOMER_INACTIVE', DECLINED)
    end
    local limit_valid = usable(limit_amount, limit_valid_until, now)
    if not limit_valid then
      flag('NO_VALID_LIMIT', REFERRED)
    end
    if customer['blocked'] == '1' then
      flag('CREDIT_BLOCK', REFERRED)
    end
    if overdue then
      flag('OVERDUE', REFERRED)
    end
    if rating_required and (rating_valid_until == nil or rating_valid_until <= now) then
      flag('RATING_STALE', REFERRED)
    end
    if order_cap ~= nil and amount > order_cap then
      flag('ORDER_AMOUNT_LIMIT', REFERRED)
    end
    -- The security counted at `now`, and what of it extends the capacity.
    local secured_now = 0
    if secured_valid_until == nil or secured_valid_until > now then
      secured_now = secured
    end
    local extension = 0
    if secured_extends then
      extension = secured_now
    end
    if limit_valid then
      local severity = over_limit(exposure + contingent + amount, limit_amount, extension,
        tolerance, KEYS[1])
      if severity ~= nil then
        flag('LIMIT_EXCEEDED', severity)
      end
    end
    local group_limit_valid = group ~= nil
      and usable(group_limit_amount, group_limit_valid_until, now)
    if group_limit_valid then
      local severity = over_limit(group_exposure + amount, group_limit_amount, 0,
        group_tolerance, KEYS[2])
      if severity ~= nil then
        flag('GROUP_LIMIT_EXCEEDED', severity)
      end
    end

    local reserved = '0'
    if outcome == APPROVED and reserve then
      exposure = exposure + amount
      if group ~= nil then
        group_exposure = group_exposure + amount
      end
      reserved_total = reserved_total + amount
      reserved = '1'
    end

    return {
      'DECIDED',
      OUTCOMES[outcome],
      table.concat(reasons, ','),
      reserved,
      integer_text(exposure),
      limit_valid and customer['limit_amount'] or '',
      group_limit_valid and group['limit_amount'] or '',
      group ~= nil and integer_text(group_exposure) or '',
      integer_text(secured_now),
      limit_valid and integer_text(limit_amount + extension) or '',
      integer_text(contingent),
    }
  end

  -- The epochs the reservations are made in, and the figures the rules compared (quoted by
  -- the answers' reasons): the same for every order.
  local replies = { {
    customer['epoch'] or '',
    group_id or '',
    group ~= nil and (group['epoch'] or '') or '',
    group ~= nil and (group['tolerance_bps'] or '') or '',
    customer['status'] or '',
    customer['oldest_overdue_days'],
    customer['overdue_tolerance_days'],
    customer['order_cap'] or '',
    customer['tolerance_bps'] or '',
  } }
  for i = 1, ORDERS do
    local first = 1 + (i - 1) * 4
    replies[i + 1] = decide(tonumber(ARGV[first + 1]), tonumber(ARGV[first + 2]),
      ARGV[first + 3] == '1', ARGV[first + 4])
  end
  if reserved_total > 0 then
    redis.call('HINCRBY', KEYS[1], 'exposure', integer_text(reserved_total))
    if group ~= nil then
      redis.call('HINCRBY', KEYS[2], 'exposure', integer_text(reserved_total))
    end
  end
  return replies
end

local ok, reply = pcall(authorize_all)
if ok then
  return reply
end
if type(reply) == 'table' and reply.refusal ~= nil then
  return for_every_order(reply.refusal)
end
error(reply)
