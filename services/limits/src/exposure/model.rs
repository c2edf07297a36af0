//! The values the exposure cache holds and answers with, and the input checks both
//! implementations share so that they refuse exactly the same things.

use super::ExposureError;

/// The largest magnitude of an amount, limit, cap or exposure, in minor units: 2^53 − 1, the
/// largest integer up to which every integer is exact in a Lua 5.1 number (a double), which is
/// what Redis scripts compute with. Both implementations refuse anything larger, so they agree.
pub const MAX_EXACT_AMOUNT: i64 = (1 << 53) - 1;

/// Basis points in one whole: a tolerance of 1000 bps lets exposure reach 110 % of the limit
/// before an order is declined instead of referred.
pub(crate) const BASIS_POINTS: i64 = 10_000;

/// A customer's lifecycle status as far as credit is concerned: only ACTIVE customers may buy
/// on credit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ProfileStatus {
    /// May buy on credit, subject to the other rules.
    Active,
    /// Registered but not yet approved as a credit customer: no credit yet.
    Prospect,
    /// Temporarily barred (fraud suspicion, legal dispute, ...): no credit until reinstated.
    Suspended,
    /// The relationship ended: never credit again.
    Closed,
    /// A status the cache does not know (a newer intake status, or an unreadable one): treated
    /// as not active, which is the conservative reading.
    Unknown,
}

impl ProfileStatus {
    /// The stable text stored in Redis and shown in logs.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Active => "ACTIVE",
            Self::Prospect => "PROSPECT",
            Self::Suspended => "SUSPENDED",
            Self::Closed => "CLOSED",
            Self::Unknown => "UNKNOWN",
        }
    }

    /// Reads the stored text; anything unrecognised is [`ProfileStatus::Unknown`], which the
    /// Lua script treats the same way (only `ACTIVE` is active).
    pub fn parse(text: &str) -> Self {
        match text {
            "ACTIVE" => Self::Active,
            "PROSPECT" => Self::Prospect,
            "SUSPENDED" => Self::Suspended,
            "CLOSED" => Self::Closed,
            _ => Self::Unknown,
        }
    }
}

/// A granted credit limit in minor units of its currency, possibly expiring.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Limit {
    /// Minor units, `0..=MAX_EXACT_AMOUNT`.
    pub amount: i64,
    /// Unix seconds; the limit is no longer valid *at* this instant. `None`: open-ended.
    pub valid_until: Option<i64>,
}

impl Limit {
    /// Whether the limit may be used at `now`: expiry exactly at `now` means expired.
    pub fn is_valid_at(&self, now: i64) -> bool {
        self.valid_until.is_none_or(|valid_until| valid_until > now)
    }
}

/// A tolerance band this wide refers every order over the limit and declines none: the
/// profile of a customer whose grade refers orders beyond the policy's tolerance to people
/// (step 7.2) instead of declining them. Both the script and the pure rules compute the band
/// without overflow for it; the answer's reasons quote the policy's own tolerance.
pub const REFER_EVERY_OVERSHOOT_BPS: u32 = u32::MAX;

/// Everything `Authorize` needs to know about one customer, with its current exposure. Built
/// by the caller from the limits store and the exposure ledger.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct CustomerProfile {
    /// The intake service's customer id; part of the Redis key, so no `{` or `}`.
    pub customer_id: String,
    /// The corporate group whose limit also binds this customer; its id is also the Redis
    /// Cluster hash tag of the customer's keys.
    pub group_id: Option<String>,
    /// Only ACTIVE customers may buy on credit; any other status declines.
    pub status: ProfileStatus,
    /// The customer's current limit; `None` when none was ever granted.
    pub limit: Option<Limit>,
    /// The ISO 4217 code of the limit's currency, in whose minor units exposure is kept;
    /// `None` when no limit was ever granted (orders in any currency are then referred).
    /// An order in another currency is refused ([`ExposureError::CurrencyMismatch`]) so the
    /// caller converts it first: decided in the cache, the check needs no store read.
    pub limit_currency: Option<String>,
    /// A manual or automatic credit block: every order is referred.
    pub blocked: bool,
    /// The largest days past due over the customer's open invoices.
    pub oldest_overdue_days: u32,
    /// Overdue days tolerated before orders are referred.
    pub overdue_tolerance_days: u32,
    /// Whether policy requires a current rating for this customer.
    pub rating_required: bool,
    /// Unix seconds until which the current rating is valid; `None`: no rating.
    pub rating_valid_until: Option<i64>,
    /// Largest single order, in minor units; larger orders are referred.
    pub order_cap: Option<i64>,
    /// The referral band over the limit in basis points (1000 = 10 %): exposure within it is
    /// referred, beyond it declined.
    pub tolerance_bps: u32,
    /// Security and guarantees that move the capacity (absent from profiles cached before the
    /// security register existed: read as none).
    pub cover: Cover,
    /// Open holds + open receivables, in minor units.
    pub exposure: i64,
    /// The rebuild generation this profile was loaded with; written with each hold so a
    /// catch-up pass can add holds of an older epoch committed after a rebuild read the ledger.
    pub epoch: u64,
}

/// What the security register adds to a customer's profile, in minor units of its limit's
/// currency (`domain::security` values each item; the profile sums what counts).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct Cover {
    /// Eligible security after haircuts, `0..=MAX_EXACT_AMOUNT`.
    pub secured: i64,
    /// The grade's policy lets `secured` extend the capacity: limit + secured. Otherwise the
    /// security only lowers the loss and the limit alone binds.
    pub extends_capacity: bool,
    /// Unix seconds at which the first counted security stops counting; from then on none is
    /// counted until the customer is re-evaluated (the expiry sweep does), which errs on the
    /// side of less credit. `None`: none expires.
    pub secured_valid_until: Option<i64>,
    /// Guarantees this customer gave for other customers' debts (its contingent exposure),
    /// `0..=MAX_EXACT_AMOUNT`: counted with its own exposure against its limit.
    pub contingent: i64,
}

impl Cover {
    /// The security counted at `now`.
    pub fn secured_at(&self, now: i64) -> i64 {
        if self
            .secured_valid_until
            .is_none_or(|valid_until| valid_until > now)
        {
            self.secured
        } else {
            0
        }
    }

    /// What the security adds to the capacity at `now`.
    pub fn extension_at(&self, now: i64) -> i64 {
        if self.extends_capacity {
            self.secured_at(now)
        } else {
            0
        }
    }
}

/// A corporate group's limit and the summed exposure of its members.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct GroupProfile {
    /// The intake service's group id, also the hash tag of its members' keys.
    pub group_id: String,
    /// The group's limit; a group without a (valid) limit does not constrain its members.
    pub limit: Option<Limit>,
    /// The referral band over the group limit, in basis points.
    pub tolerance_bps: u32,
    /// Sum of the members' exposure, in minor units.
    pub exposure: i64,
    /// The rebuild generation of the group's exposure (see [`CustomerProfile::epoch`]).
    pub epoch: u64,
}

/// One order to decide, or to check (what-if).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct AuthorizeInput {
    /// The customer ordering on credit.
    pub customer_id: String,
    /// The group the caller believes the customer belongs to; the cached profile's group wins.
    /// Used only to report a cold group along with a cold customer.
    pub group_id: Option<String>,
    /// The order amount in minor units of `currency`, `1..=MAX_EXACT_AMOUNT`.
    pub amount: i64,
    /// The ISO 4217 code of the amount's currency; must be the limit's (see
    /// [`CustomerProfile::limit_currency`]).
    pub currency: String,
    /// Unix seconds, the instant limits and ratings are judged at.
    pub now: i64,
    /// `true`: reserve the amount when approved (`Authorize`); `false`: a what-if that never
    /// changes exposure (`CheckCredit`).
    pub reserve: bool,
}

/// The decision for an order, worst of all reasons that applied.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Outcome {
    /// Every rule passed; with `reserve`, the amount is now part of the exposure.
    Approved,
    /// A person with enough authority must release or reject the order.
    Referred,
    /// Not to be sold on credit (inactive customer, or beyond the tolerance band).
    Declined,
}

impl Outcome {
    /// The stable text used in the API, logs and the Lua script's reply.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Approved => "APPROVED",
            Self::Referred => "REFERRED",
            Self::Declined => "DECLINED",
        }
    }

    /// Reads the stable text back; `None` for anything else.
    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "APPROVED" => Some(Self::Approved),
            "REFERRED" => Some(Self::Referred),
            "DECLINED" => Some(Self::Declined),
            _ => None,
        }
    }
}

/// Why an order was not approved outright. Reported in this declaration order, every one that
/// applied, so a clerk and an analyst see all of them at once.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ReasonCode {
    /// The customer is not ACTIVE: DECLINED.
    CustomerInactive,
    /// No limit, or it expired: REFERRED.
    NoValidLimit,
    /// A credit block is set: REFERRED.
    CreditBlock,
    /// Oldest overdue days exceed the tolerance: REFERRED.
    Overdue,
    /// Policy requires a rating and it is missing or expired: REFERRED.
    RatingStale,
    /// The order exceeds the per-order cap: REFERRED.
    OrderAmountLimit,
    /// Exposure + amount exceeds the customer's limit: REFERRED within the tolerance band,
    /// DECLINED beyond.
    LimitExceeded,
    /// Exposure + amount exceeds the group's limit: REFERRED within the group's tolerance band,
    /// DECLINED beyond.
    GroupLimitExceeded,
}

impl ReasonCode {
    /// Every reason, in reporting order.
    pub const ALL: [Self; 8] = [
        Self::CustomerInactive,
        Self::NoValidLimit,
        Self::CreditBlock,
        Self::Overdue,
        Self::RatingStale,
        Self::OrderAmountLimit,
        Self::LimitExceeded,
        Self::GroupLimitExceeded,
    ];

    /// The stable code clients match on; never change one.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::CustomerInactive => "CUSTOMER_INACTIVE",
            Self::NoValidLimit => "NO_VALID_LIMIT",
            Self::CreditBlock => "CREDIT_BLOCK",
            Self::Overdue => "OVERDUE",
            Self::RatingStale => "RATING_STALE",
            Self::OrderAmountLimit => "ORDER_AMOUNT_LIMIT",
            Self::LimitExceeded => "LIMIT_EXCEEDED",
            Self::GroupLimitExceeded => "GROUP_LIMIT_EXCEEDED",
        }
    }

    /// Reads a stable code back; `None` for anything else.
    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|reason| reason.as_str() == text)
    }
}

/// The group's side of a decision, present whenever the customer belongs to a group.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct GroupPosition {
    /// The customer's cached group (which wins over the caller's belief).
    pub group_id: String,
    /// The group's valid limit; `None` when it has none or it expired (it did not constrain).
    pub limit: Option<i64>,
    /// The group's exposure after this call (including the amount only if reserved).
    pub exposure_after: i64,
    /// `limit − exposure_after`, negative when over the limit; `None` without a valid limit.
    pub available_after: Option<i64>,
    /// The group's rebuild epoch, to fence the hold's durable write against a group rebuild.
    pub epoch: u64,
    /// The group's referral band over its limit, in basis points, as the rules read it.
    pub tolerance_bps: u32,
}

/// The profile's figures the rules compared, read in the same atomic step as the decision,
/// so that the reasons of an answer quote exactly what it was decided on (and need no second
/// read of the cache).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct RuleFigures {
    pub status: ProfileStatus,
    pub oldest_overdue_days: u32,
    pub overdue_tolerance_days: u32,
    pub order_cap: Option<i64>,
    pub tolerance_bps: u32,
}

impl RuleFigures {
    pub(crate) fn of(customer: &CustomerProfile) -> Self {
        Self {
            status: customer.status,
            oldest_overdue_days: customer.oldest_overdue_days,
            overdue_tolerance_days: customer.overdue_tolerance_days,
            order_cap: customer.order_cap,
            tolerance_bps: customer.tolerance_bps,
        }
    }
}

/// The answer to one [`AuthorizeInput`].
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Decision {
    /// The worst outcome over `reasons`; APPROVED exactly when `reasons` is empty.
    pub outcome: Outcome,
    /// Every reason that applied, in [`ReasonCode`] order.
    pub reasons: Vec<ReasonCode>,
    /// The customer's valid limit; `None` when it has none or it expired.
    pub limit: Option<i64>,
    /// The valid limit plus what security adds to it ([`Cover::extension_at`]); `None`
    /// without a valid limit.
    pub capacity: Option<i64>,
    /// The customer's exposure after this call: including the amount only if `reserved`, so
    /// a what-if reports the unchanged exposure.
    pub exposure_after: i64,
    /// `capacity − contingent − exposure_after`, negative when over; `None` without a valid
    /// limit.
    pub available_after: Option<i64>,
    /// The security counted at the decision's `now` ([`Cover::secured_at`]): the part of the
    /// exposure up to it is secured, the rest unsecured.
    pub secured: i64,
    /// The customer's contingent exposure (guarantees it gave), counted against its limit.
    pub contingent: i64,
    /// The group's side, when the customer belongs to a group.
    pub group: Option<GroupPosition>,
    /// Whether the amount was added to the exposure (APPROVED with `reserve`).
    pub reserved: bool,
    /// The customer profile's rebuild epoch, to write with the hold (the fence of DESIGN.md).
    pub epoch: u64,
    /// What the rules compared, for the reasons of the answer.
    pub figures: RuleFigures,
}

/// What `authorize` found.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[allow(
    clippy::large_enum_variant,
    reason = "an outcome lives for one call and is moved once; boxing the decision would allocate on every order of the hot path"
)]
pub enum AuthorizeOutcome {
    /// The rules ran (and, if approved with `reserve`, the amount is reserved).
    Decided(Decision),
    /// A profile is not cached; nothing was decided or written. Rebuild the flagged profiles
    /// from the ledger, load them, and retry. `customer`: the customer is cold. `group`: its
    /// group (the cached one, or the caller's belief when the customer is cold) is cold.
    Cold {
        /// The customer is cold.
        customer: bool,
        /// The customer's group is cold.
        group: bool,
    },
}

/// The rebuild generations a ledger movement was written under, read in the movement's own
/// transaction under the epoch fence. A cached level whose epoch differs was rebuilt after the
/// movement committed, so its exposure already counts the movement and must not move again;
/// `None` at a level moves it whatever its epoch (nothing in the ledger behind the change).
///
/// Without it, a release that closes a hold in the ledger and then lowers the cache would
/// lower it twice when a rebuild read the ledger in between: exposure understated.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct Fence {
    /// The customer's epoch the movement saw.
    pub customer_epoch: Option<u64>,
    /// The epoch of the customer's group the movement saw.
    pub group_epoch: Option<u64>,
}

impl Fence {
    /// Moves every cached level, whatever its epoch.
    pub const NONE: Fence = Fence {
        customer_epoch: None,
        group_epoch: None,
    };

    /// Whether a level cached at `epoch` is to move.
    pub fn admits(expected: Option<u64>, epoch: u64) -> bool {
        expected.is_none_or(|expected| expected == epoch)
    }
}

/// What `add` or `release` did.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Adjustment {
    /// Both levels moved, except a level the [`Fence`] held back (its rebuild already counts
    /// the change); the exposures after the change.
    Applied {
        /// The customer's exposure after the change.
        customer_exposure: i64,
        /// The group's exposure after the change; `None` when the customer has no group.
        group_exposure: Option<i64>,
    },
    /// A profile is not cached; nothing was written (see [`AuthorizeOutcome::Cold`]).
    Cold {
        /// The customer is cold.
        customer: bool,
        /// Its group is cold.
        group: bool,
    },
}

/// What an `update_*` call did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum UpdateOutcome {
    /// The cached profile now carries the new values.
    Updated,
    /// Not cached: nothing written; the next rebuild reads the new values from the store.
    NotCached,
}

/// Profile fields to change on a cached customer; `None` leaves a field as it is. For the
/// optional fields, `Some(None)` clears them.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct CustomerUpdate {
    /// CustomerStatusChanged.
    pub status: Option<ProfileStatus>,
    /// LimitChanged (an approved limit request); `Some(None)` withdraws the limit.
    pub limit: Option<Option<Limit>>,
    /// CreditBlockChanged (manual, or set and cleared by overdue events).
    pub blocked: Option<bool>,
    /// InvoiceOverdue / PaymentReceived recompute the oldest overdue days.
    pub oldest_overdue_days: Option<u32>,
    /// A policy change of the tolerated overdue days.
    pub overdue_tolerance_days: Option<u32>,
    /// A policy change of whether a rating is required.
    pub rating_required: Option<bool>,
    /// RatingChanged: the new rating's validity; `Some(None)` when the rating was withdrawn.
    pub rating_valid_until: Option<Option<i64>>,
    /// SetCreditTerms: the per-order cap; `Some(None)` removes it.
    pub order_cap: Option<Option<i64>>,
    /// A policy change of the referral band.
    pub tolerance_bps: Option<u32>,
}

impl CustomerUpdate {
    /// Applies the changes to an in-memory profile (the in-process cache, and the reference
    /// the Redis field writes must match).
    pub(crate) fn apply_to(&self, profile: &mut CustomerProfile) {
        if let Some(status) = self.status {
            profile.status = status;
        }
        if let Some(limit) = self.limit {
            profile.limit = limit;
        }
        if let Some(blocked) = self.blocked {
            profile.blocked = blocked;
        }
        if let Some(days) = self.oldest_overdue_days {
            profile.oldest_overdue_days = days;
        }
        if let Some(days) = self.overdue_tolerance_days {
            profile.overdue_tolerance_days = days;
        }
        if let Some(required) = self.rating_required {
            profile.rating_required = required;
        }
        if let Some(valid_until) = self.rating_valid_until {
            profile.rating_valid_until = valid_until;
        }
        if let Some(order_cap) = self.order_cap {
            profile.order_cap = order_cap;
        }
        if let Some(tolerance_bps) = self.tolerance_bps {
            profile.tolerance_bps = tolerance_bps;
        }
    }
}

/// Group fields to change on a cached group; `None` leaves a field as it is, `limit:
/// Some(None)` removes the group limit.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct GroupUpdate {
    /// LimitChanged for the group; `Some(None)` withdraws the group limit.
    pub limit: Option<Option<Limit>>,
    /// A policy change of the group's referral band.
    pub tolerance_bps: Option<u32>,
}

impl GroupUpdate {
    /// Applies the changes to an in-memory group profile.
    pub(crate) fn apply_to(&self, profile: &mut GroupProfile) {
        if let Some(limit) = self.limit {
            profile.limit = limit;
        }
        if let Some(tolerance_bps) = self.tolerance_bps {
            profile.tolerance_bps = tolerance_bps;
        }
    }
}

/// Which level of exposure an error or a key concerns.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Level {
    /// One customer's own exposure.
    Customer,
    /// The summed exposure of a corporate group.
    Group,
}

impl Level {
    /// The stable word used in error texts and in the Lua script's error replies.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Customer => "customer",
            Self::Group => "group",
        }
    }
}

impl std::fmt::Display for Level {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.write_str(self.as_str())
    }
}

// ---- input checks shared by both implementations ----------------------------------------

/// A customer or group id must be non-empty and free of `{`/`}`: it becomes a hash tag.
pub(crate) fn check_id(field: &'static str, value: &str) -> Result<(), ExposureError> {
    if value.is_empty() || value.contains(['{', '}']) {
        return Err(ExposureError::InvalidId {
            field,
            value: value.to_owned(),
        });
    }
    Ok(())
}

/// `value` must lie in `min..=max` (bounds within ±MAX_EXACT_AMOUNT).
pub(crate) fn check_range(
    field: &'static str,
    value: i64,
    min: i64,
    max: i64,
) -> Result<(), ExposureError> {
    if value < min || value > max {
        return Err(ExposureError::AmountOutOfRange {
            field,
            value,
            min,
            max,
        });
    }
    Ok(())
}

/// An order amount: positive (a zero or negative order is a caller bug) and exact.
pub(crate) fn check_order_amount(amount: i64) -> Result<(), ExposureError> {
    check_range("amount", amount, 1, MAX_EXACT_AMOUNT)
}

/// An adjustment amount: zero is allowed (a full capture releases nothing), negative is not
/// (the operation says the direction).
pub(crate) fn check_adjustment_amount(amount: i64) -> Result<(), ExposureError> {
    check_range("amount", amount, 0, MAX_EXACT_AMOUNT)
}

/// A point in time compared in Lua: must be exact there.
pub(crate) fn check_time(field: &'static str, value: i64) -> Result<(), ExposureError> {
    check_range(field, value, -MAX_EXACT_AMOUNT, MAX_EXACT_AMOUNT)
}

/// A limit's amount is a non-negative exact amount; its expiry may be any instant (a far
/// future is still compared correctly against an exact `now`).
fn check_limit(field: &'static str, limit: Option<&Limit>) -> Result<(), ExposureError> {
    match limit {
        Some(limit) => check_range(field, limit.amount, 0, MAX_EXACT_AMOUNT),
        None => Ok(()),
    }
}

fn check_exposure(value: i64) -> Result<(), ExposureError> {
    check_range("exposure", value, -MAX_EXACT_AMOUNT, MAX_EXACT_AMOUNT)
}

fn check_order_cap(order_cap: Option<i64>) -> Result<(), ExposureError> {
    match order_cap {
        Some(cap) => check_range("order_cap", cap, 0, MAX_EXACT_AMOUNT),
        None => Ok(()),
    }
}

pub(crate) fn check_authorize_input(input: &AuthorizeInput) -> Result<(), ExposureError> {
    check_id("customer_id", &input.customer_id)?;
    if let Some(group_id) = &input.group_id {
        check_id("group_id", group_id)?;
    }
    check_order_amount(input.amount)?;
    check_currency_code("currency", &input.currency)?;
    check_time("now", input.now)
}

/// An ISO 4217 code: three ASCII capitals (which also keeps it safe as a Redis field value).
fn check_currency_code(field: &'static str, code: &str) -> Result<(), ExposureError> {
    if code.len() == 3 && code.bytes().all(|byte| byte.is_ascii_uppercase()) {
        Ok(())
    } else {
        Err(ExposureError::InvalidId {
            field,
            value: code.to_owned(),
        })
    }
}

/// The order must be in the limit's currency; a customer without a limit takes any.
pub(crate) fn check_order_currency(
    customer: &CustomerProfile,
    input: &AuthorizeInput,
) -> Result<(), ExposureError> {
    match &customer.limit_currency {
        Some(limit_currency) if *limit_currency != input.currency => {
            Err(ExposureError::CurrencyMismatch {
                limit_currency: limit_currency.clone(),
            })
        }
        _ => Ok(()),
    }
}

pub(crate) fn check_adjustment(
    customer_id: &str,
    group_id: Option<&str>,
    amount: i64,
) -> Result<(), ExposureError> {
    check_id("customer_id", customer_id)?;
    if let Some(group_id) = group_id {
        check_id("group_id", group_id)?;
    }
    check_adjustment_amount(amount)
}

pub(crate) fn check_customer_profile(profile: &CustomerProfile) -> Result<(), ExposureError> {
    check_id("customer_id", &profile.customer_id)?;
    if let Some(group_id) = &profile.group_id {
        check_id("group_id", group_id)?;
    }
    if let Some(currency) = &profile.limit_currency {
        check_currency_code("limit_currency", currency)?;
    }
    check_limit("limit.amount", profile.limit.as_ref())?;
    check_order_cap(profile.order_cap)?;
    check_range("cover.secured", profile.cover.secured, 0, MAX_EXACT_AMOUNT)?;
    check_range(
        "cover.contingent",
        profile.cover.contingent,
        0,
        MAX_EXACT_AMOUNT,
    )?;
    if let Some(valid_until) = profile.cover.secured_valid_until {
        check_time("cover.secured_valid_until", valid_until)?;
    }
    check_exposure(profile.exposure)
}

pub(crate) fn check_group_profile(profile: &GroupProfile) -> Result<(), ExposureError> {
    check_id("group_id", &profile.group_id)?;
    check_limit("limit.amount", profile.limit.as_ref())?;
    check_exposure(profile.exposure)
}

pub(crate) fn check_customer_update(update: &CustomerUpdate) -> Result<(), ExposureError> {
    if let Some(limit) = &update.limit {
        check_limit("limit.amount", limit.as_ref())?;
    }
    if let Some(order_cap) = update.order_cap {
        check_order_cap(order_cap)?;
    }
    Ok(())
}

pub(crate) fn check_group_update(update: &GroupUpdate) -> Result<(), ExposureError> {
    if let Some(limit) = &update.limit {
        check_limit("limit.amount", limit.as_ref())?;
    }
    Ok(())
}

/// `exposure + delta` when it stays within ±MAX_EXACT_AMOUNT, else the error both
/// implementations give. Computed in i128: no overflow whatever the inputs.
pub(crate) fn shifted_exposure(
    level: Level,
    id: &str,
    exposure: i64,
    delta: i64,
) -> Result<i64, ExposureError> {
    let shifted = i128::from(exposure) + i128::from(delta);
    if shifted.abs() > i128::from(MAX_EXACT_AMOUNT) {
        return Err(ExposureError::ExposureOutOfRange {
            level,
            id: id.to_owned(),
        });
    }
    i64::try_from(shifted).map_err(|_| ExposureError::ExposureOutOfRange {
        level,
        id: id.to_owned(),
    })
}
