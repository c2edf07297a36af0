//! The rows the ledger's reads decode, one `FromRow` type per shape. Holds and referrals are
//! kept whole as JSON documents; a stored answer and an unconverted amount are kept in columns.

use chrono::{DateTime, Utc};
use sqlx::types::Json;

use super::{Referral, StoredAnswer, Unconverted};

/// `SELECT referral FROM authorizations ...`: a referral lives in its order's answer row
/// (migration 0012), in a column of its own name.
#[derive(Debug, sqlx::FromRow)]
pub(super) struct ReferralRow {
    referral: Json<Referral>,
}

impl ReferralRow {
    pub(super) fn into_referral(self) -> Referral {
        self.referral.0
    }
}

/// A page of the review queue: the referral with its queue key, which the caller hands back
/// as the cursor of the next page.
#[derive(Debug, sqlx::FromRow)]
pub(super) struct QueuedReferralRow {
    queue_key: String,
    referral: Json<Referral>,
}

impl QueuedReferralRow {
    pub(super) fn into_entry(self) -> (String, Referral) {
        (self.queue_key, self.referral.0)
    }
}

/// `SELECT fingerprint, decision_id, decision, response, created_at FROM authorizations ...`:
/// the row is found by customer and idempotency key, so those are not read back.
#[derive(Debug, sqlx::FromRow)]
pub(super) struct AnswerRow {
    fingerprint: String,
    decision_id: String,
    decision: String,
    /// The encoded `AuthorizeResponse`.
    response: Vec<u8>,
    created_at: DateTime<Utc>,
}

impl AnswerRow {
    pub(super) fn into_answer(self, customer_id: &str, idempotency_key: &str) -> StoredAnswer {
        StoredAnswer {
            customer_id: customer_id.to_owned(),
            idempotency_key: idempotency_key.to_owned(),
            fingerprint: self.fingerprint,
            decision_id: self.decision_id,
            decision: self.decision,
            response: self.response,
            created_at: self.created_at,
        }
    }
}

/// `SELECT source, event_id, customer_id, currency, amount, recorded_at FROM
/// unconverted_receivables ...`: every column of the table.
#[derive(Debug, sqlx::FromRow)]
pub(super) struct UnconvertedRow {
    source: String,
    event_id: String,
    customer_id: String,
    currency: String,
    amount: String,
    recorded_at: DateTime<Utc>,
}

impl From<UnconvertedRow> for Unconverted {
    fn from(row: UnconvertedRow) -> Self {
        Self {
            source: row.source,
            event_id: row.event_id,
            customer_id: row.customer_id,
            currency: row.currency,
            amount: row.amount,
            recorded_at: row.recorded_at,
        }
    }
}
