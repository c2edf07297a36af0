//! The limits service's persistence: the [`LimitStore`] trait and its SQL implementation for
//! PostgreSQL and the embedded SQLite file (one body for both, through `on_database!`).
//!
//! The trait and the records it trades in live here; `sql` is its implementation.

mod approvals;
mod governed;
mod projection;
mod reviews;
mod rows;
mod securities;
mod sql;

pub use approvals::TaskRef;
pub use governed::GovernedStore;
pub use securities::{SecurityParty, SecurityStore};
pub use sql::SqlLimitStore;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use credit_core::{Currency, ServiceError};
use credit_proto::v1::Event;
use credit_runtime::sql::{IdempotencyKey, Page};
use rust_decimal::Decimal;

use crate::domain::fx::FxRate;
use crate::domain::limits::{
    CreditBlock, CreditLimit, HistoryEntry, LimitRequest, RequestStatus, Scope,
};
use crate::domain::policy::CreditPolicy;
use crate::domain::proposal::LatestStatement;
use crate::domain::terms::CustomerTerms;

pub use credit_runtime::store::{Outcome, StoreError, StoreResult};

/// The answer when another decision on a limit request came first.
pub(super) fn not_pending() -> StoreError {
    StoreError::refused(ServiceError::failed_precondition(
        "REQUEST_NOT_PENDING",
        "the limit request was decided meanwhile",
    ))
}

pub use crate::domain::profile::{CustomerFacts, RatingFacts, WarmingFacts};

/// Everything an approval writes, in one transaction.
#[derive(Debug, Clone)]
pub struct Approval {
    pub limit: CreditLimit,
    /// Permanent limits of the scope that the new permanent limit replaces.
    pub superseded: Vec<String>,
    pub history: HistoryEntry,
    pub event: Event,
}

#[async_trait]
pub trait LimitStore:
    GovernedStore<credit_core::approval::ApprovalMatrix>
    + GovernedStore<CreditPolicy>
    + SecurityStore
    + Send
    + Sync
    + std::fmt::Debug
{
    /// Applies one of intake's customer events to the projection, once per event id.
    async fn apply_customer_event(&self, consumer: &str, event: &Event) -> StoreResult<()>;
    async fn customer(&self, customer_id: &str) -> StoreResult<Option<CustomerFacts>>;
    /// What warming the customer's cache profile reads, in one call: its facts, its limits,
    /// whether it is blocked, its own terms, the stored credit policy, its active securities
    /// and the guarantees it gave. `None` for a customer
    /// limits has not heard of.
    async fn warming_facts(&self, customer_id: &str) -> StoreResult<Option<WarmingFacts>>;
    /// The customer's latest financial statement (FinancialStatementSubmitted), if limits has
    /// seen one.
    async fn latest_statement(&self, customer_id: &str) -> StoreResult<Option<LatestStatement>>;
    /// The id of the customer's latest completed credit investigation (intake's
    /// InvestigationCompleted), if limits has seen one.
    async fn completed_investigation(&self, customer_id: &str) -> StoreResult<Option<String>>;
    /// The freshness of the customer's current rating (RatingRecorded): the inputs stale at
    /// rating ("CODE input, …", empty when none) and the first day a fresh one goes stale.
    async fn rating_freshness(
        &self,
        customer_id: &str,
    ) -> StoreResult<Option<(String, Option<chrono::NaiveDate>)>>;
    /// Whether any customer is known to belong to `group_id`.
    async fn group_known(&self, group_id: &str) -> StoreResult<bool>;
    /// The ids of the customers known to belong to `group_id`.
    async fn group_members(&self, group_id: &str) -> StoreResult<Vec<String>>;
    /// At most `limit` customers of the projection whose id sorts after `after_customer_id`,
    /// in id order, each with its group: one batch of a walk over every customer ("" starts
    /// it), so a walk over many customers never holds them all in memory. Without ratings.
    async fn customers_after(
        &self,
        after_customer_id: &str,
        limit: i64,
    ) -> StoreResult<Vec<CustomerFacts>>;

    async fn create_limit_request(
        &self,
        request: &LimitRequest,
        key: &IdempotencyKey,
    ) -> StoreResult<Outcome<LimitRequest>>;
    async fn limit_request(&self, id: &str) -> StoreResult<Option<LimitRequest>>;
    /// The id of what a call under `key` already made or moved, if one did (a limit request
    /// id, a matrix version): a retry is answered with the record as it stands, never decided
    /// twice. IDEMPOTENCY_KEY_REUSED when the key was used for another request.
    async fn recorded_under(&self, key: &IdempotencyKey) -> StoreResult<Option<String>>;
    async fn list_limit_requests(
        &self,
        scope: Option<&Scope>,
        status: Option<RequestStatus>,
        page: &Page,
    ) -> StoreResult<Vec<LimitRequest>>;
    /// Records a step of a pending request's chain, or its decision; with `approval` the limit
    /// is granted in the same transaction. Refused (`REQUEST_NOT_PENDING`) when the request is
    /// no longer pending or another verdict came first (its chain revision is no longer
    /// `expected_revision`).
    /// `step_event` (ApprovalStepDecided) is written with it.
    async fn decide(
        &self,
        decided: &LimitRequest,
        expected_revision: i64,
        key: &IdempotencyKey,
        approval: Option<&Approval>,
        step_event: Option<&Event>,
    ) -> StoreResult<Outcome<LimitRequest>>;

    /// The chains waiting for any of `audiences` (see `Chain::audiences`), by record id.
    async fn approval_tasks(
        &self,
        audiences: &[String],
        kind: Option<credit_core::approval::DecisionKind>,
        page: &Page,
    ) -> StoreResult<Vec<TaskRef>>;

    /// Opens a review after a grade change for the rating event `event_id`, once; the review
    /// as stored (the one opened before, for a redelivered event).
    async fn open_review(
        &self,
        review: &crate::domain::review::CreditReview,
        event_id: &str,
    ) -> StoreResult<crate::domain::review::CreditReview>;
    async fn review(
        &self,
        review_id: &str,
    ) -> StoreResult<Option<crate::domain::review::CreditReview>>;
    /// Records a verdict on a review's chain if no other verdict came since the caller read
    /// it (its trail is still `expected_trail` long).
    async fn decide_review(
        &self,
        decided: &crate::domain::review::CreditReview,
        expected_trail: usize,
        key: &IdempotencyKey,
        step_event: Option<&Event>,
        now: DateTime<Utc>,
    ) -> StoreResult<Outcome<crate::domain::review::CreditReview>>;

    /// The chains whose waiting step is due to be escalated at `now`, at most `limit`.
    async fn escalations_due(&self, now: DateTime<Utc>, limit: i64) -> StoreResult<Vec<TaskRef>>;
    /// The chains still waiting (for a decider or for their maker) that were requested at or
    /// before `requested_by`, the oldest first, at most `limit`: those the policy's expiry has
    /// caught up with.
    async fn expirations_due(
        &self,
        requested_by: DateTime<Utc>,
        limit: i64,
    ) -> StoreResult<Vec<TaskRef>>;
    /// Forgets that a chain's step is due to be escalated (it has nothing left to escalate).
    async fn clear_escalation(
        &self,
        kind: credit_core::approval::DecisionKind,
        record_id: &str,
    ) -> StoreResult<()>;

    /// The scope's limits that are not superseded (scheduled, in force or expired).
    async fn limits(&self, scope: &Scope) -> StoreResult<Vec<CreditLimit>>;
    /// Every customer limit not superseded, for the portfolio total.
    async fn customer_limits(&self) -> StoreResult<Vec<CreditLimit>>;
    async fn history(&self, scope: &Scope, page: &Page) -> StoreResult<Vec<HistoryEntry>>;

    /// The customer's credit blocks in force, oldest first.
    async fn blocks(&self, customer_id: &str) -> StoreResult<Vec<CreditBlock>>;
    /// Sets `block` with its event; `false` (and nothing written) when one of its kind is set.
    async fn set_block(&self, block: &CreditBlock, event: &Event) -> StoreResult<bool>;
    /// Clears the customer's block of `block_type` with its event; `false` (and nothing
    /// written) when none is set.
    async fn clear_block(
        &self,
        customer_id: &str,
        block_type: &str,
        event: &Event,
    ) -> StoreResult<bool>;

    /// Stores a rate, replacing one of the same pair and effective time; once per key.
    async fn set_fx_rate(
        &self,
        rate: &FxRate,
        key: &IdempotencyKey,
    ) -> StoreResult<Outcome<FxRate>>;
    /// The newest direct and inverse rates of the pair effective at `at`, converted into the
    /// rate from `base` to `quote`; `None` when neither exists.
    async fn fx_rate(
        &self,
        base: Currency,
        quote: Currency,
        at: DateTime<Utc>,
    ) -> StoreResult<Option<Decimal>>;
    /// The credit policy in force now: the published version with the latest effective date
    /// passed, else the policy stored before policies were governed; `None` when there is
    /// neither (the shipped default applies).
    async fn policy(&self) -> StoreResult<Option<CreditPolicy>>;
    /// The policy stored before policies were governed (by the UpdateCreditPolicy of old,
    /// which replaced it in place); `None` when there was none.
    async fn ungoverned_policy(&self) -> StoreResult<Option<CreditPolicy>>;
    /// The customer-specific credit terms.
    async fn terms(&self, customer_id: &str) -> StoreResult<Option<CustomerTerms>>;
    async fn save_terms(&self, terms: &CustomerTerms) -> StoreResult<()>;

    /// Every stored rate, filtered by base and quote currency when given, ordered by pair,
    /// newest effective time first. The table is reference data, small enough to list.
    async fn fx_rates(
        &self,
        base: Option<Currency>,
        quote: Option<Currency>,
    ) -> StoreResult<Vec<FxRate>>;
}
