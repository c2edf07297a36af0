//! The ledger's records: holds, referrals, stored Authorize answers, exposure totals and the
//! ledger's errors. Plain data, shared by the ledger's SQL and its group-commit writers.

use chrono::{DateTime, Utc};
use credit_runtime::sql::KeyReused;
use serde::{Deserialize, Serialize};

use credit_core::approval::Chain;

use crate::domain::limits::Actor;
use crate::domain::referral::ReleaseCondition;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum HoldStatus {
    Open,
    Captured,
    Released,
    Expired,
}

impl HoldStatus {
    pub fn as_str(&self) -> &'static str {
        match self {
            HoldStatus::Open => "OPEN",
            HoldStatus::Captured => "CAPTURED",
            HoldStatus::Released => "RELEASED",
            HoldStatus::Expired => "EXPIRED",
        }
    }
}

/// Credit reserved for an approved order. Amounts are minor units of `currency`, the
/// currency of the customer's limit.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Hold {
    pub id: String,
    pub customer_id: String,
    pub group_id: Option<String>,
    pub order_id: String,
    pub currency: String,
    pub amount_minor: i64,
    pub status: HoldStatus,
    pub captured_minor: i64,
    pub released_minor: i64,
    pub invoice_id: String,
    pub release_reason: String,
    pub decision_id: String,
    pub idempotency_key: String,
    pub created_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    pub closed_at: Option<DateTime<Utc>>,
    pub created_by: Actor,
    pub epoch: i64,
    /// The referral whose release created the hold (an audited override), if any.
    #[serde(default)]
    pub referral_id: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum ReferralStatus {
    #[default]
    Open,
    Released,
    Rejected,
}

impl ReferralStatus {
    pub fn as_str(&self) -> &'static str {
        match self {
            ReferralStatus::Open => "OPEN",
            ReferralStatus::Released => "RELEASED",
            ReferralStatus::Rejected => "REJECTED",
        }
    }
}

/// An order referred to a person, waiting for a decision, and that decision. Amounts are
/// minor units of `currency`, the limit's; positions are the ones seen when it was referred.
///
/// Stored as a document in its answer's row, written with nearly every order of a customer
/// past its limit: what an open referral leaves unset is left out of the document.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Referral {
    pub id: String,
    pub customer_id: String,
    pub order_id: String,
    pub currency: String,
    pub amount_minor: i64,
    pub reasons: Vec<String>,
    pub decision_id: String,
    pub idempotency_key: String,
    pub created_at: DateTime<Utc>,
    pub created_by: Actor,
    #[serde(default)]
    pub status: ReferralStatus,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group_id: Option<String>,
    /// The hold TTL the order asked for, applied on release.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hold_ttl_seconds: Option<i64>,
    #[serde(default)]
    pub limit_minor: Option<i64>,
    #[serde(default)]
    pub exposure_minor: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group_limit_minor: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group_exposure_minor: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub decided_by: Option<Actor>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub decided_at: Option<DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub decision_reason: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub hold_id: String,
    /// The customer's oldest overdue days when referred (finance's figure of step 7.2).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub oldest_overdue_days: Option<u32>,
    /// The approval chain the matrix chose; opened a moment after the referral (from its
    /// ReferralCreated event) or at its first decision, whichever comes first.
    #[serde(default, rename = "chain", skip_serializing_if = "Option::is_none")]
    pub approval_chain: Option<Chain>,
    /// The conditions of its release.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub release_conditions: Vec<ReleaseCondition>,
}

impl Referral {
    /// How many verdicts its chain holds: the stored revision a decision must still find.
    pub fn chain_revision(&self) -> i64 {
        self.approval_chain.as_ref().map_or(0, |chain| {
            i64::try_from(chain.trail.len()).unwrap_or(i64::MAX)
        })
    }
}

/// A hold to write with the cache incarnations (epochs) its exposure was counted in.
#[derive(Debug, Clone, Copy)]
pub struct FencedHold<'a> {
    pub hold: &'a Hold,
    pub group_epoch: Option<(&'a str, u64)>,
}

/// What a referral decision stored: new, or replayed from its request id.
#[derive(Debug, Clone)]
pub struct DecidedReferral {
    pub referral: Referral,
    pub hold: Option<Hold>,
    pub replayed: bool,
}

/// An Authorize answer as stored for replays.
#[derive(Debug, Clone)]
pub struct StoredAnswer {
    pub customer_id: String,
    pub idempotency_key: String,
    pub fingerprint: String,
    pub decision_id: String,
    pub decision: String,
    /// The encoded `AuthorizeResponse`.
    pub response: Vec<u8>,
    pub created_at: DateTime<Utc>,
}

#[derive(Debug, thiserror::Error)]
pub enum LedgerError {
    /// The cache was rebuilt after the reservation was made; the reservation is not in it.
    #[error("the exposure cache was rebuilt while this authorization ran")]
    EpochMoved,
    /// Another call with the same idempotency key stored its answer first.
    #[error("an answer for this idempotency key exists")]
    Duplicate,
    #[error("the hold is not open")]
    HoldNotOpen(Box<Hold>),
    #[error("no such hold")]
    NoSuchHold,
    /// The referral was decided before (by another request).
    #[error("the referral is not open")]
    ReferralNotOpen(Box<Referral>),
    /// Another verdict on the referral's chain was stored since it was read.
    #[error("another verdict on the referral came first")]
    ChainMoved,
    #[error(transparent)]
    KeyReused(#[from] KeyReused),
    #[error(transparent)]
    Database(#[from] sqlx::Error),
    /// The group commit this write was part of failed as a whole.
    #[error("the group commit failed: {0}")]
    Batch(std::sync::Arc<sqlx::Error>),
    /// The group-commit writers are gone (the service is stopping).
    #[error("the ledger's writers have stopped")]
    WriterStopped,
}

pub type LedgerResult<T> = Result<T, LedgerError>;

/// What counts in exposure, from the ledger.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct LedgerExposure {
    pub open_holds: i64,
    pub receivables: i64,
}

impl LedgerExposure {
    pub fn total(&self) -> i64 {
        self.open_holds + self.receivables
    }
}
