//! The hot-path exposure cache: each customer's credit profile and current exposure, and the
//! `Authorize` step that decides and reserves in one atomic operation.
//!
//! DESIGN.md ("Exposure and the hot path") makes this the only place where an order's decision
//! and its reservation meet: the rules, the limit check and the reservation at customer *and*
//! group level happen in one step, so 64 callers racing on one customer can never together
//! pass its limit. The ledger in the store stays the truth; this is a cache of it, rebuilt from
//! the ledger whenever an entry is missing ("cold").
//!
//! Two implementations of [`ExposureCache`] behave identically (one conformance suite,
//! `tests/exposure_cache.rs`, runs against both):
//! - [`RedisExposureCache`] (production): one Lua script call per decision, so the decision is
//!   atomic across every replica of the service;
//! - [`InProcessExposureCache`] (embedded default): a mutex over two maps, for a laptop or a
//!   demo with nothing installed; atomic within the one process that owns it.
//!
//! The rules themselves are the pure function [`evaluate`]; the in-process cache calls it and
//! the Lua script mirrors it line by line.
//!
//! # Amounts and times
//! Amounts are `i64` **minor units of the limit's currency** (cents for EUR, yen for JPY): the
//! caller converts an order's `Money` (and, for a foreign currency, applies the FX rate) before
//! asking, because Redis cannot hold decimals and a cache must not round. Every amount, limit,
//! cap and exposure must lie within ±[`MAX_EXACT_AMOUNT`] (2^53 − 1): Redis runs its scripts on
//! Lua 5.1, whose numbers are doubles and exact only up to 2^53. Larger values are refused with
//! [`ExposureError::AmountOutOfRange`] (inputs) or [`ExposureError::ExposureOutOfRange`] (an
//! exposure that would leave the range), by both implementations alike; 2^53 minor units are
//! about 90 trillion units of any currency, far beyond any credit limit.
//!
//! Times are unix seconds (`i64`); a limit or rating valid until `t` is no longer valid at `t`.
//!
//! # Cold entries
//! A customer (or its group) whose profile is not cached is *cold*: Redis restarted, was
//! flushed, or the entry was evicted. Every operation on a cold entry reports it
//! ([`AuthorizeOutcome::Cold`], [`Adjustment::Cold`], [`UpdateOutcome::NotCached`]) and writes
//! nothing: an increment on a missing key would create a half-profile whose exposure counts
//! only the movements since the loss, understating exposure, which the design forbids. The
//! caller rebuilds the profile from the ledger, [`ExposureCache::load_customer`] /
//! [`ExposureCache::load_group`], and retries. A release or add that finds the entry cold needs
//! no retry when the movement is already in the ledger: the rebuild reads it.

mod in_process;
mod model;
mod redis_store;
mod rules;

use async_trait::async_trait;

pub use in_process::InProcessExposureCache;
pub use model::{
    Adjustment, AuthorizeInput, AuthorizeOutcome, Cover, CustomerProfile, CustomerUpdate, Decision,
    Fence, GroupPosition, GroupProfile, GroupUpdate, Level, Limit, MAX_EXACT_AMOUNT, Outcome,
    ProfileStatus, REFER_EVERY_OVERSHOOT_BPS, ReasonCode, RuleFigures, UpdateOutcome,
};
pub use redis_store::RedisExposureCache;
pub use rules::evaluate;

/// Why a cache operation did not happen. Nothing was written in any of these cases.
#[derive(Debug, Clone, thiserror::Error)]
pub enum ExposureError {
    /// An input amount, limit, cap, exposure or time is outside what the cache computes
    /// exactly (see the module docs); the caller's input is wrong, retrying will not help.
    #[error(
        "{field} is {value}, outside {min}..={max}, the range the exposure cache computes exactly"
    )]
    AmountOutOfRange {
        /// The input field, as named in this module's types.
        field: &'static str,
        /// The refused value.
        value: i64,
        /// The smallest accepted value.
        min: i64,
        /// The largest accepted value.
        max: i64,
    },
    /// An id is empty or contains `{` or `}`, which would break the Redis Cluster hash tag that
    /// keeps a customer and its group in one slot.
    #[error(
        "{field} {value:?} is not a usable id: it must be non-empty and contain neither '{{' nor '}}'"
    )]
    InvalidId {
        /// The input field.
        field: &'static str,
        /// The refused id.
        value: String,
    },
    /// Applying the amount would move a cached exposure outside ±(2^53 − 1) minor units.
    #[error(
        "the {level} exposure of {id} would leave the range the exposure cache computes exactly"
    )]
    ExposureOutOfRange {
        /// Whether the customer's or the group's exposure would overflow.
        level: Level,
        /// The customer or group id.
        id: String,
    },
    /// A cached entry cannot be read back (a field missing or not a number): written by
    /// something other than this module. Evict it and rebuild from the ledger.
    #[error("the cached entry {key} is unreadable: {detail}")]
    CorruptEntry {
        /// The Redis key of the entry.
        key: String,
        /// What is wrong with it.
        detail: String,
    },
    /// The order's currency is not the customer's limit currency: nothing was decided or
    /// written. Convert the amount into `limit_currency` and ask again.
    #[error("the order is not in the limit's currency {limit_currency}")]
    CurrencyMismatch {
        /// The ISO 4217 code of the customer's limit.
        limit_currency: String,
    },
    /// Redis did not answer, or answered with an error: the cache is unavailable and the caller
    /// must not approve (gRPC `UNAVAILABLE`).
    #[error("redis: {0}")]
    Redis(#[from] redis::RedisError),
}

/// The cache of credit profiles and exposure that `Authorize`, `CheckCredit`, `Capture`,
/// `Release` and the event consumers share. Every method is atomic on its own: no other call
/// sees half of it.
///
/// `group_id` arguments carry the group the *caller* believes the customer belongs to; the
/// cached customer profile's group always wins. The caller's belief only serves to report a
/// cold group together with a cold customer, so one rebuild warms both.
#[async_trait]
pub trait ExposureCache: Send + Sync + std::fmt::Debug {
    /// Evaluates the rules for one order and, when the outcome is APPROVED and
    /// `input.reserve` is set, adds the amount to the exposure of the customer and of its group
    /// (both or neither). REFERRED and DECLINED never reserve; a what-if (`reserve = false`)
    /// never changes anything. A cold customer or group gives [`AuthorizeOutcome::Cold`] and
    /// never an approval.
    async fn authorize(&self, input: &AuthorizeInput) -> Result<AuthorizeOutcome, ExposureError>;

    /// Lowers the exposure of the customer and its cached group by `amount` (a hold cancelled
    /// or expired, a payment, credit note or write-off), at each level the `fence` admits. No
    /// rule is checked. Cold: no write.
    async fn release(
        &self,
        customer_id: &str,
        group_id: Option<&str>,
        amount: i64,
        fence: Fence,
    ) -> Result<Adjustment, ExposureError>;

    /// Raises the exposure of the customer and its cached group by `amount` without any check:
    /// an invoice that arrived without a hold, or a referral released as an audited override.
    /// At each level the `fence` admits. Cold: no write.
    async fn add(
        &self,
        customer_id: &str,
        group_id: Option<&str>,
        amount: i64,
        fence: Fence,
    ) -> Result<Adjustment, ExposureError>;

    /// Stores a customer profile rebuilt from the ledger, replacing every field of a cached one,
    /// exposure and epoch included. When the customer moved to another group, the caller evicts
    /// it first (or simply loads it: a copy under the old group's hash tag is removed) and
    /// rebuilds both groups, whose exposures changed.
    async fn load_customer(&self, profile: &CustomerProfile) -> Result<(), ExposureError>;

    /// Stores a group profile rebuilt from the ledger, replacing every field of a cached one,
    /// exposure and epoch included.
    async fn load_group(&self, profile: &GroupProfile) -> Result<(), ExposureError>;

    /// Changes profile fields of a cached customer (status, limit, block, overdue days, rating
    /// validity, ...) without touching its exposure or epoch. A cold customer is left cold
    /// ([`UpdateOutcome::NotCached`]): its next rebuild reads the new values from the store.
    async fn update_customer(
        &self,
        customer_id: &str,
        update: &CustomerUpdate,
    ) -> Result<UpdateOutcome, ExposureError>;

    /// Changes the limit or tolerance of a cached group without touching its exposure or epoch.
    /// A cold group is left cold ([`UpdateOutcome::NotCached`]).
    async fn update_group(
        &self,
        group_id: &str,
        update: &GroupUpdate,
    ) -> Result<UpdateOutcome, ExposureError>;

    /// The cached profile of a customer, `None` when cold (for `GetExposure` and reconciliation).
    async fn get_customer(
        &self,
        customer_id: &str,
    ) -> Result<Option<CustomerProfile>, ExposureError>;

    /// The cached profile of a group, `None` when cold.
    async fn get_group(&self, group_id: &str) -> Result<Option<GroupProfile>, ExposureError>;

    /// Drops a customer's cached profile, making it cold (before a rebuild, or when it changes
    /// group), and moves on its generation. Its group stays cached.
    async fn evict_customer(&self, customer_id: &str) -> Result<(), ExposureError>;

    /// A number that changes whenever the customer is evicted, alone or with every profile.
    ///
    /// A rebuild reads the store and then loads what it read; an event applied to the store in
    /// between evicts the customer, but the load that follows would put the old facts back
    /// until the next eviction. So a rebuild reads the generation before the store and again
    /// after loading, and evicts its own load when the two differ. (An evictor applies its
    /// change to the store before it evicts.)
    async fn customer_generation(&self, customer_id: &str) -> Result<u64, ExposureError>;

    /// Drops a group's cached profile, making it and every member's authorization cold until it
    /// is rebuilt, and moves on its generation. The members' own profiles stay cached.
    async fn evict_group(&self, group_id: &str) -> Result<(), ExposureError>;

    /// As [`ExposureCache::customer_generation`], for a group: moved on by every eviction of
    /// the group and every eviction of everything.
    async fn group_generation(&self, group_id: &str) -> Result<u64, ExposureError>;

    /// Drops every cached customer and group profile (after a credit policy change, whose
    /// tolerances and caps every profile carries) and moves on every generation.
    /// Each is rebuilt on its next use.
    async fn evict_all(&self) -> Result<(), ExposureError>;
}
