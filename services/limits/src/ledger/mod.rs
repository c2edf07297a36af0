//! The exposure ledger behind the hot path: holds, receivable movements, authorization
//! answers, referrals, and the epochs that fence cache rebuilds against durable writes.
//! One SQL body serves PostgreSQL and SQLite (`on_database!`).
//!
//! `records` holds the data, `sql` the one implementation for both backends, and
//! `group_commit` the PostgreSQL writers that batch Authorize's durable writes.

pub mod group_commit;
mod records;
mod rows;
mod sql;

pub use records::*;
pub use sql::SqlLedger;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use credit_proto::v1::Event;
use credit_runtime::sql::{IdempotencyKey, Page};

use crate::exposure::Fence;

#[async_trait]
pub trait LedgerStore: Send + Sync + std::fmt::Debug {
    async fn answer(
        &self,
        customer_id: &str,
        idempotency_key: &str,
    ) -> LedgerResult<Option<StoredAnswer>>;

    /// Starts a new cache incarnation of `scope_key` (`customer:<id>` / `group:<id>`) and
    /// reads its exposure, fenced against concurrent hold writes (see the migration).
    async fn rebuild(&self, scope_key: &str) -> LedgerResult<(u64, LedgerExposure)>;

    /// Stores an approved order's hold and answer if the cache incarnations it was reserved
    /// in are still current.
    async fn record_hold(
        &self,
        hold: &Hold,
        group_epoch: Option<(&str, u64)>,
        answer: &StoredAnswer,
    ) -> LedgerResult<()>;

    /// Stores a referred or declined answer (and its referral with its ReferralCreated event).
    async fn record_answer(
        &self,
        answer: &StoredAnswer,
        referral: Option<(&Referral, &Event)>,
    ) -> LedgerResult<()>;

    async fn referral(&self, referral_id: &str) -> LedgerResult<Option<Referral>>;

    /// Referrals after the page key, open ones first, each part oldest first; each with its
    /// page key.
    async fn referrals(
        &self,
        status: Option<ReferralStatus>,
        customer_id: &str,
        page: &Page,
    ) -> LedgerResult<Vec<(String, Referral)>>;

    /// Records the decision of an open referral with its events (ReferralDecided, and the
    /// ApprovalStepDecided of a person's last verdict); on release also the hold,
    /// fenced like `record_hold`. A retry of the same request replays the first decision.
    /// `ChainMoved` when its chain's revision is no longer `expected_revision`.
    async fn decide_referral(
        &self,
        decided: &Referral,
        expected_revision: i64,
        hold: Option<FencedHold<'_>>,
        key: &IdempotencyKey,
        events: &[Event],
    ) -> LedgerResult<DecidedReferral>;

    /// Stores an open referral's chain as it moved (opened, a step decided, returned,
    /// resubmitted) with its place in people's queues, if no other verdict came since it was
    /// read (`ChainMoved`) and it is still open (`ReferralNotOpen`); under `key` when a
    /// person's call moved it.
    async fn save_referral_chain(
        &self,
        referral: &Referral,
        expected_revision: i64,
        key: Option<&IdempotencyKey>,
        step_event: Option<&Event>,
    ) -> LedgerResult<Referral>;

    /// Open holds whose expiry is at or before `now`, oldest expiry first, at most `limit`.
    async fn expired_holds(&self, now: DateTime<Utc>, limit: i64) -> LedgerResult<Vec<Hold>>;

    async fn hold(&self, hold_id: &str) -> LedgerResult<Option<Hold>>;

    /// Holds newest first, after the page key (a hold id), filtered by customer, order and
    /// status when given.
    async fn holds(
        &self,
        customer_id: &str,
        order_id: &str,
        status: Option<HoldStatus>,
        page: &Page,
    ) -> LedgerResult<Vec<Hold>>;

    /// Closes an open hold as captured (with `captured_minor` becoming receivable exposure)
    /// or released. `HoldNotOpen` carries the hold when it was closed before. Returns the
    /// epochs of the customer and the hold's group, read under the fence in the same
    /// transaction: the cache lowers only levels still cached under them.
    async fn close_hold(&self, closed: &Hold, event: Option<&Event>) -> LedgerResult<Fence>;

    async fn exposure(&self, scope_key: &str) -> LedgerResult<LedgerExposure>;

    /// Records one of collections' receivable events once (per `consumer` and event id): the
    /// signed receivable movement and, for an invoice that captures a hold, the hold's close.
    /// `None` when the event was recorded before. The epochs come back as for `close_hold`.
    async fn record_receivable(
        &self,
        consumer: &str,
        event_id: &str,
        change: &ReceivableChange<'_>,
    ) -> LedgerResult<Option<ReceivableRecorded>>;

    /// Records an event's amounts that cannot be converted yet, once (per `consumer` and event
    /// id, like `record_receivable`); `false` when the event was recorded before.
    async fn record_unconverted(
        &self,
        consumer: &str,
        event_id: &str,
        amounts: &[Unconverted],
    ) -> LedgerResult<bool>;

    /// The oldest `limit` amounts still waiting for a rate.
    async fn unconverted(&self, limit: i64) -> LedgerResult<Vec<Unconverted>>;

    /// Whether any of the customer's amounts still waits for a rate.
    async fn has_unconverted(&self, customer_id: &str) -> LedgerResult<bool>;

    /// Forgets an amount once its conversion is in `receivable_movements`.
    async fn forget_unconverted(&self, source: &str) -> LedgerResult<()>;
}

/// A receivable amount not yet converted into the customer's exposure currency (no rate).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unconverted {
    /// What it comes from ("invoice:<id>", "payment:<id>:<currency>", ...); one row each.
    pub source: String,
    pub event_id: String,
    pub customer_id: String,
    pub currency: String,
    /// Signed decimal text: positive raises exposure (an invoice), negative lowers it.
    pub amount: String,
    pub recorded_at: DateTime<Utc>,
}

/// A change of a customer's receivables, from an invoice, payment, credit note or write-off.
#[derive(Debug, Clone)]
pub struct ReceivableChange<'a> {
    pub customer_id: &'a str,
    /// The group whose exposure it counts toward (the customer's, or the captured hold's).
    pub group_id: Option<&'a str>,
    /// Minor units of the limit's currency; positive raises exposure.
    pub amount_minor: i64,
    /// What it comes from, for the audit of the ledger ("invoice:<id>", "payment:<id>", ...).
    pub source: String,
    /// The hold an invoice captures, closed (as captured) in the same transaction, with its
    /// HoldCaptured event (written only if the hold was still open).
    pub captured: Option<(&'a Hold, &'a Event)>,
    pub at: DateTime<Utc>,
}

/// What `record_receivable` did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReceivableRecorded {
    pub fence: Fence,
    /// The open amount of the captured hold that left exposure (0 when none was open).
    pub hold_released_minor: i64,
}
