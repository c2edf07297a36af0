//! The exposure ledger behind the hot path: holds, receivable movements, authorization
//! answers, referrals, and the epochs that fence cache rebuilds against durable writes.
//! One SQL body serves PostgreSQL and SQLite (`on_database!`).

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use credit_proto::v1::Event;
use credit_runtime::sql::{IdempotencyKey, KeyReused, Page, is_unique_violation};
use credit_runtime::{
    Database, insert_idempotency_key, insert_outbox_event, lookup_idempotency_key, on_database,
};
use serde::{Deserialize, Serialize};
use sqlx::Row;
use sqlx::types::Json;

use crate::domain::limits::Person;
use crate::exposure::Fence;
use crate::group_commit::{GroupCommit, Write};

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
    pub created_by: Person,
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
    pub created_by: Person,
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
    pub decided_by: Option<Person>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub decided_at: Option<DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub decision_reason: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub hold_id: String,
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

    /// Records the decision of an open referral with its event; on release also the hold,
    /// fenced like `record_hold`. A retry of the same request replays the first decision.
    async fn decide_referral(
        &self,
        decided: &Referral,
        hold: Option<FencedHold<'_>>,
        key: &IdempotencyKey,
        event: &Event,
    ) -> LedgerResult<DecidedReferral>;

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

/// A referral's document, found by its id.
const REFERRAL_BY_ID: &str = "SELECT referral FROM authorizations WHERE referral_id = $1";

/// Records inside transaction `$tx` that `$consumer` has seen event `$event_id`: `true` the
/// first time, `false` for a redelivery (whose effects are then written already).
macro_rules! first_delivery {
    ($tx:ident, $sql:ident, $consumer:expr, $event_id:expr) => {
        sqlx::query(&$sql(
            "INSERT INTO processed_events (consumer, event_id) VALUES ($1, $2) ON CONFLICT DO NOTHING",
        ))
        .bind($consumer)
        .bind($event_id)
        .execute(&mut *$tx)
        .await
        .map(|done| done.rows_affected() == 1)
    };
}

/// A referral's place in the review queue: open referrals first, then by id (ids sort by
/// time). The expression of the queue's index (migration 0012), so a page is a range of it.
macro_rules! referral_queue_key {
    () => {
        "(CASE WHEN referral_status = 'OPEN' THEN '0' ELSE '1' END || referral_id)"
    };
}

/// Inserts `$hold` inside transaction `$tx` (the SQLite paths; PostgreSQL's hot path writes
/// holds in one statement, see `group_commit`).
macro_rules! insert_hold {
    ($tx:expr, $sql:ident, $hold:expr) => {
        sqlx::query(&$sql(
            "INSERT INTO holds (id, customer_id, group_id, status, amount_minor, open_minor, epoch, expires_at, created_at, document, order_id) \
             VALUES ($1, $2, $3, $4, $5, $5, $6, $7, $8, $9, $10)",
        ))
        .bind(&$hold.id)
        .bind(&$hold.customer_id)
        .bind(&$hold.group_id)
        .bind($hold.status.as_str())
        .bind($hold.amount_minor)
        .bind($hold.epoch)
        .bind($hold.expires_at)
        .bind($hold.created_at)
        .bind(Json($hold))
        .bind(&$hold.order_id)
        .execute(&mut *$tx)
        .await
    };
}

/// Inserts the stored answer `$answer` inside transaction `$tx`, with `$referral` (an
/// `Option<&Referral>`) in the same row when the order was referred (see migration 0012).
macro_rules! insert_answer {
    ($tx:expr, $sql:ident, $answer:expr, $referral:expr) => {
        sqlx::query(&$sql(
            "INSERT INTO authorizations (customer_id, idempotency_key, fingerprint, decision_id, decision, response, created_at, \
             referral_id, referral_status, referral) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
        ))
        .bind(&$answer.customer_id)
        .bind(&$answer.idempotency_key)
        .bind(&$answer.fingerprint)
        .bind(&$answer.decision_id)
        .bind(&$answer.decision)
        .bind(&$answer.response)
        .bind($answer.created_at)
        .bind($referral.map(|referral: &Referral| referral.id.as_str()))
        .bind($referral.map(|referral: &Referral| referral.status.as_str()))
        .bind($referral.map(Json))
        .execute(&mut *$tx)
        .await
    };
}

#[derive(Debug, Clone)]
pub struct SqlLedger {
    database: Database,
    /// On PostgreSQL, Authorize's writes are group-committed (see `group_commit`).
    group_commit: Option<GroupCommit>,
}

impl SqlLedger {
    /// The ledger on `database`; on PostgreSQL this starts the group-commit writers, so it
    /// must be called inside the Tokio runtime.
    pub fn new(database: Database) -> Self {
        let group_commit = match &database {
            Database::Postgres(pool) => Some(GroupCommit::start(pool.clone())),
            Database::Sqlite(_) => None,
        };
        Self {
            database,
            group_commit,
        }
    }

    /// The epochs of two scopes (the second may be NULL), share-locked where the backend has
    /// row locks (see `epoch_share_lock`).
    fn epochs_share_lock(&self) -> &'static str {
        match self.database {
            Database::Postgres(_) => {
                "SELECT scope_key, epoch FROM exposure_epochs WHERE scope_key IN ($1, $2) FOR SHARE"
            }
            Database::Sqlite(_) => {
                "SELECT scope_key, epoch FROM exposure_epochs WHERE scope_key IN ($1, $2)"
            }
        }
    }

    /// `SELECT epoch … FOR SHARE` where the backend has row locks; SQLite's single writer
    /// (BEGIN IMMEDIATE) gives the same exclusion without it.
    fn epoch_share_lock(&self) -> &'static str {
        match self.database {
            Database::Postgres(_) => {
                "SELECT epoch FROM exposure_epochs WHERE scope_key = $1 FOR SHARE"
            }
            Database::Sqlite(_) => "SELECT epoch FROM exposure_epochs WHERE scope_key = $1",
        }
    }
}

/// The fence from the epochs a movement read: the customer's, and its group's when it has one.
fn fence_of(epochs: &[(String, i64)], customer_key: &str, group_key: Option<&str>) -> Fence {
    let epoch_of = |key: &str| {
        epochs
            .iter()
            .find(|(scope_key, _)| scope_key == key)
            .and_then(|(_, epoch)| u64::try_from(*epoch).ok())
    };
    Fence {
        customer_epoch: epoch_of(customer_key),
        group_epoch: group_key.and_then(epoch_of),
    }
}

/// The scope's id and the two sums that make its exposure: open holds, receivables.
fn exposure_queries(scope_key: &str) -> (&str, &'static str, &'static str) {
    match scope_column(scope_key) {
        ("group", id) => (
            id,
            "SELECT CAST(COALESCE(SUM(open_minor), 0) AS BIGINT) FROM holds WHERE group_id = $1 AND status = 'OPEN'",
            "SELECT CAST(COALESCE(SUM(amount_minor), 0) AS BIGINT) FROM receivable_movements WHERE group_id = $1",
        ),
        (_, id) => (
            id,
            "SELECT CAST(COALESCE(SUM(open_minor), 0) AS BIGINT) FROM holds WHERE customer_id = $1 AND status = 'OPEN'",
            "SELECT CAST(COALESCE(SUM(amount_minor), 0) AS BIGINT) FROM receivable_movements WHERE customer_id = $1",
        ),
    }
}

fn scope_column(scope_key: &str) -> (&'static str, &str) {
    match scope_key.split_once(':') {
        Some(("group", id)) => ("group", id),
        Some((_, id)) => ("customer", id),
        None => ("customer", scope_key),
    }
}

#[async_trait]
impl LedgerStore for SqlLedger {
    async fn answer(
        &self,
        customer_id: &str,
        idempotency_key: &str,
    ) -> LedgerResult<Option<StoredAnswer>> {
        on_database!(&self.database, |pool, sql| {
            let row = sqlx::query(&sql(
                "SELECT fingerprint, decision_id, decision, response, created_at FROM authorizations \
                 WHERE customer_id = $1 AND idempotency_key = $2",
            ))
            .bind(customer_id)
            .bind(idempotency_key)
            .fetch_optional(pool)
            .await?;
            let Some(row) = row else { return Ok(None) };
            Ok(Some(StoredAnswer {
                customer_id: customer_id.to_owned(),
                idempotency_key: idempotency_key.to_owned(),
                fingerprint: row.try_get(0)?,
                decision_id: row.try_get(1)?,
                decision: row.try_get(2)?,
                response: row.try_get(3)?,
                created_at: row.try_get(4)?,
            }))
        })
    }

    async fn rebuild(&self, scope_key: &str) -> LedgerResult<(u64, LedgerExposure)> {
        let (id, holds_sql, receivables_sql) = exposure_queries(scope_key);
        on_database!(&self.database, |pool, sql, begin_write| {
            let mut tx = pool.begin_with(begin_write).await?;
            // Taking the row lock first means every hold write still in flight either
            // committed before the sums below (and is counted) or will see the new epoch.
            let epoch: i64 = sqlx::query_scalar(&sql(
                "INSERT INTO exposure_epochs (scope_key, epoch) VALUES ($1, 1) \
                 ON CONFLICT (scope_key) DO UPDATE SET epoch = exposure_epochs.epoch + 1 RETURNING epoch",
            ))
            .bind(scope_key)
            .fetch_one(&mut *tx)
            .await?;
            let open_holds: i64 = sqlx::query_scalar(&sql(holds_sql))
                .bind(id)
                .fetch_one(&mut *tx)
                .await?;
            let receivables: i64 = sqlx::query_scalar(&sql(receivables_sql))
                .bind(id)
                .fetch_one(&mut *tx)
                .await?;
            tx.commit().await?;
            Ok((
                u64::try_from(epoch).unwrap_or(0),
                LedgerExposure {
                    open_holds,
                    receivables,
                },
            ))
        })
    }

    async fn record_hold(
        &self,
        hold: &Hold,
        group_epoch: Option<(&str, u64)>,
        answer: &StoredAnswer,
    ) -> LedgerResult<()> {
        let lock = self.epoch_share_lock();
        let customer_key = format!("customer:{}", hold.customer_id);
        let group_key = group_epoch.map(|(group_id, epoch)| (format!("group:{group_id}"), epoch));
        if let Some(group_commit) = &self.group_commit {
            return group_commit
                .write(Write::Hold {
                    hold: Box::new(hold.clone()),
                    group_epoch: group_epoch.map(|(group_id, epoch)| (group_id.to_owned(), epoch)),
                    answer: answer.clone(),
                })
                .await;
        }
        let result: LedgerResult<()> = on_database!(&self.database, |pool, sql, begin_write| {
            // An async block, so that `?` ends the block and the error is matched below.
            async {
                let mut tx = pool.begin_with(begin_write).await?;
                let current: Option<i64> = sqlx::query_scalar(&sql(lock))
                    .bind(&customer_key)
                    .fetch_optional(&mut *tx)
                    .await?;
                if current != Some(hold.epoch) {
                    return Err(LedgerError::EpochMoved);
                }
                if let Some((group_key, expected)) = &group_key {
                    let current: Option<i64> = sqlx::query_scalar(&sql(lock))
                        .bind(group_key)
                        .fetch_optional(&mut *tx)
                        .await?;
                    if current.and_then(|epoch| u64::try_from(epoch).ok()) != Some(*expected) {
                        return Err(LedgerError::EpochMoved);
                    }
                }
                insert_answer!(tx, sql, answer, None::<&Referral>)?;
                insert_hold!(tx, sql, hold)?;
                tx.commit().await?;
                Ok(())
            }
            .await
        });
        match result {
            Err(LedgerError::Database(error)) if is_unique_violation(&error) => {
                Err(LedgerError::Duplicate)
            }
            other => other,
        }
    }

    async fn record_answer(
        &self,
        answer: &StoredAnswer,
        referral: Option<(&Referral, &Event)>,
    ) -> LedgerResult<()> {
        if let Some(group_commit) = &self.group_commit {
            return group_commit
                .write(Write::Answer {
                    answer: answer.clone(),
                    referral: referral
                        .map(|(referral, event)| Box::new((referral.clone(), event.clone()))),
                })
                .await;
        }
        let result: LedgerResult<()> = on_database!(&self.database, |pool, sql, begin_write| {
            // An async block, so that `?` ends the block and the error is matched below.
            async {
                let mut tx = pool.begin_with(begin_write).await?;
                insert_answer!(tx, sql, answer, referral.map(|(referral, _)| referral))?;
                if let Some((_, event)) = referral {
                    insert_outbox_event!(tx, sql, event)?;
                }
                tx.commit().await?;
                Ok(())
            }
            .await
        });
        match result {
            Err(LedgerError::Database(error)) if is_unique_violation(&error) => {
                Err(LedgerError::Duplicate)
            }
            other => other,
        }
    }

    async fn hold(&self, hold_id: &str) -> LedgerResult<Option<Hold>> {
        on_database!(&self.database, |pool, sql| {
            let row = sqlx::query(&sql("SELECT document FROM holds WHERE id = $1"))
                .bind(hold_id)
                .fetch_optional(pool)
                .await?;
            let Some(row) = row else { return Ok(None) };
            Ok(Some(row.try_get::<Json<Hold>, _>(0)?.0))
        })
    }

    async fn holds(
        &self,
        customer_id: &str,
        order_id: &str,
        status: Option<HoldStatus>,
        page: &Page,
    ) -> LedgerResult<Vec<Hold>> {
        let status = status.as_ref().map(HoldStatus::as_str).unwrap_or_default();
        on_database!(&self.database, |pool, sql| {
            // Hold ids are UUID v7: newest first is descending id order.
            let rows = sqlx::query(&sql(
                "SELECT document FROM holds WHERE ($1 = '' OR customer_id = $1) AND ($2 = '' OR order_id = $2) \
                 AND ($3 = '' OR status = $3) AND ($4 = '' OR id < $4) ORDER BY id DESC LIMIT $5",
            ))
            .bind(customer_id)
            .bind(order_id)
            .bind(status)
            .bind(page.after.as_deref().unwrap_or(""))
            .bind(page.fetch_limit())
            .fetch_all(pool)
            .await?;
            rows.into_iter()
                .map(|row| Ok(row.try_get::<Json<Hold>, _>(0)?.0))
                .collect()
        })
    }

    async fn close_hold(&self, closed: &Hold, event: Option<&Event>) -> LedgerResult<Fence> {
        let closed_at = closed.closed_at.unwrap_or_else(Utc::now);
        let customer_key = format!("customer:{}", closed.customer_id);
        let group_key = closed
            .group_id
            .as_ref()
            .map(|group_id| format!("group:{group_id}"));
        let lock = self.epochs_share_lock();
        on_database!(&self.database, |pool, sql, begin_write| {
            let mut tx = pool.begin_with(begin_write).await?;
            // First the fence: a rebuild either read the ledger before this commit (and is
            // cached under the epoch read here) or waits for it and bumps the epoch.
            let epochs: Vec<(String, i64)> = sqlx::query_as(&sql(lock))
                .bind(&customer_key)
                .bind(&group_key)
                .fetch_all(&mut *tx)
                .await?;
            let fence = fence_of(&epochs, &customer_key, group_key.as_deref());
            let updated = sqlx::query(&sql(
                "UPDATE holds SET status = $1, open_minor = 0, document = $2 WHERE id = $3 AND status = 'OPEN'",
            ))
            .bind(closed.status.as_str())
            .bind(Json(closed))
            .bind(&closed.id)
            .execute(&mut *tx)
            .await?;
            if updated.rows_affected() != 1 {
                let row = sqlx::query(&sql("SELECT document FROM holds WHERE id = $1"))
                    .bind(&closed.id)
                    .fetch_optional(&mut *tx)
                    .await?;
                return match row {
                    Some(row) => Err(LedgerError::HoldNotOpen(Box::new(
                        row.try_get::<Json<Hold>, _>(0)?.0,
                    ))),
                    None => Err(LedgerError::NoSuchHold),
                };
            }
            if closed.captured_minor > 0 {
                sqlx::query(&sql(
                    "INSERT INTO receivable_movements (id, customer_id, group_id, amount_minor, source, created_at) \
                     VALUES ($1, $2, $3, $4, $5, $6)",
                ))
                .bind(format!("rcv_{}", uuid::Uuid::now_v7().simple()))
                .bind(&closed.customer_id)
                .bind(&closed.group_id)
                .bind(closed.captured_minor)
                .bind(format!("capture:{}:{}", closed.id, closed.invoice_id))
                .bind(closed_at)
                .execute(&mut *tx)
                .await?;
            }
            if let Some(event) = event {
                insert_outbox_event!(tx, sql, event)?;
            }
            tx.commit().await?;
            Ok(fence)
        })
    }

    async fn referral(&self, referral_id: &str) -> LedgerResult<Option<Referral>> {
        on_database!(&self.database, |pool, sql| {
            let row = sqlx::query(&sql(REFERRAL_BY_ID))
                .bind(referral_id)
                .fetch_optional(pool)
                .await?;
            let Some(row) = row else { return Ok(None) };
            Ok(Some(row.try_get::<Json<Referral>, _>(0)?.0))
        })
    }

    async fn referrals(
        &self,
        status: Option<ReferralStatus>,
        customer_id: &str,
        page: &Page,
    ) -> LedgerResult<Vec<(String, Referral)>> {
        let status = status.map(|status| status.as_str()).unwrap_or_default();
        on_database!(&self.database, |pool, sql| {
            let rows = sqlx::query(&sql(concat!(
                "SELECT ",
                referral_queue_key!(),
                ", referral FROM authorizations \
                 WHERE referral_id IS NOT NULL AND ",
                referral_queue_key!(),
                " > $1 AND ($2 = '' OR referral_status = $2) AND ($3 = '' OR customer_id = $3) \
                 ORDER BY ",
                referral_queue_key!(),
                " LIMIT $4"
            )))
            .bind(page.after.as_deref().unwrap_or(""))
            .bind(status)
            .bind(customer_id)
            .bind(page.fetch_limit())
            .fetch_all(pool)
            .await?;
            rows.into_iter()
                .map(|row| Ok((row.try_get(0)?, row.try_get::<Json<Referral>, _>(1)?.0)))
                .collect()
        })
    }

    async fn decide_referral(
        &self,
        decided: &Referral,
        hold: Option<FencedHold<'_>>,
        key: &IdempotencyKey,
        event: &Event,
    ) -> LedgerResult<DecidedReferral> {
        let lock = self.epoch_share_lock();
        let now = decided.decided_at.unwrap_or_else(Utc::now);
        let result: LedgerResult<DecidedReferral> = on_database!(
            &self.database,
            |pool, sql, begin_write| {
                // An async block, so that `?` ends the block and the error is matched below.
                async {
                let mut tx = pool.begin_with(begin_write).await?;
                if let Some(existing_id) = lookup_idempotency_key!(tx, sql, key)?.into_replay()? {
                    let row = sqlx::query(&sql(REFERRAL_BY_ID))
                        .bind(&existing_id)
                        .fetch_one(&mut *tx)
                        .await?;
                    let referral = row.try_get::<Json<Referral>, _>(0)?.0;
                    let hold = if referral.hold_id.is_empty() {
                        None
                    } else {
                        sqlx::query(&sql("SELECT document FROM holds WHERE id = $1"))
                            .bind(&referral.hold_id)
                            .fetch_optional(&mut *tx)
                            .await?
                            .map(|row| row.try_get::<Json<Hold>, _>(0).map(|hold| hold.0))
                            .transpose()?
                    };
                    return Ok(DecidedReferral {
                        referral,
                        hold,
                        replayed: true,
                    });
                }
                let updated = sqlx::query(&sql(
                    "UPDATE authorizations SET referral_status = $1, referral = $2 WHERE referral_id = $3 AND referral_status = 'OPEN'",
                ))
                .bind(decided.status.as_str())
                .bind(Json(decided))
                .bind(&decided.id)
                .execute(&mut *tx)
                .await?;
                if updated.rows_affected() != 1 {
                    let row = sqlx::query(&sql(REFERRAL_BY_ID))
                        .bind(&decided.id)
                        .fetch_one(&mut *tx)
                        .await?;
                    return Err(LedgerError::ReferralNotOpen(Box::new(
                        row.try_get::<Json<Referral>, _>(0)?.0,
                    )));
                }
                if let Some(FencedHold { hold, group_epoch }) = hold {
                    let current: Option<i64> = sqlx::query_scalar(&sql(lock))
                        .bind(format!("customer:{}", hold.customer_id))
                        .fetch_optional(&mut *tx)
                        .await?;
                    if current != Some(hold.epoch) {
                        return Err(LedgerError::EpochMoved);
                    }
                    if let Some((group_id, expected)) = group_epoch {
                        let current: Option<i64> = sqlx::query_scalar(&sql(lock))
                            .bind(format!("group:{group_id}"))
                            .fetch_optional(&mut *tx)
                            .await?;
                        if current.and_then(|epoch| u64::try_from(epoch).ok()) != Some(expected) {
                            return Err(LedgerError::EpochMoved);
                        }
                    }
                    insert_hold!(tx, sql, hold)?;
                }
                insert_outbox_event!(tx, sql, event)?;
                insert_idempotency_key!(tx, sql, key, &decided.id, now)?;
                tx.commit().await?;
                Ok(DecidedReferral {
                    referral: decided.clone(),
                    hold: hold.map(|fenced| fenced.hold.clone()),
                    replayed: false,
                })
            }
            .await
            }
        );
        result
    }

    async fn expired_holds(&self, now: DateTime<Utc>, limit: i64) -> LedgerResult<Vec<Hold>> {
        on_database!(&self.database, |pool, sql| {
            let rows = sqlx::query(&sql(
                "SELECT document FROM holds WHERE status = 'OPEN' AND expires_at <= $1 ORDER BY expires_at, id LIMIT $2",
            ))
            .bind(now)
            .bind(limit)
            .fetch_all(pool)
            .await?;
            rows.into_iter()
                .map(|row| Ok(row.try_get::<Json<Hold>, _>(0)?.0))
                .collect()
        })
    }

    async fn exposure(&self, scope_key: &str) -> LedgerResult<LedgerExposure> {
        let (id, holds_sql, receivables_sql) = exposure_queries(scope_key);
        on_database!(&self.database, |pool, sql| {
            let open_holds: i64 = sqlx::query_scalar(&sql(holds_sql))
                .bind(id)
                .fetch_one(pool)
                .await?;
            let receivables: i64 = sqlx::query_scalar(&sql(receivables_sql))
                .bind(id)
                .fetch_one(pool)
                .await?;
            Ok(LedgerExposure {
                open_holds,
                receivables,
            })
        })
    }

    async fn record_receivable(
        &self,
        consumer: &str,
        event_id: &str,
        change: &ReceivableChange<'_>,
    ) -> LedgerResult<Option<ReceivableRecorded>> {
        let customer_key = format!("customer:{}", change.customer_id);
        let group_key = change.group_id.map(|group_id| format!("group:{group_id}"));
        let lock = self.epochs_share_lock();
        on_database!(&self.database, |pool, sql, begin_write| {
            let mut tx = pool.begin_with(begin_write).await?;
            let first_time = first_delivery!(tx, sql, consumer, event_id)?;
            if !first_time {
                return Ok(None);
            }
            let epochs: Vec<(String, i64)> = sqlx::query_as(&sql(lock))
                .bind(&customer_key)
                .bind(&group_key)
                .fetch_all(&mut *tx)
                .await?;
            let fence = fence_of(&epochs, &customer_key, group_key.as_deref());
            let mut hold_released_minor = 0;
            if let Some((hold, event)) = change.captured {
                // Only a hold still open is captured here; one closed meanwhile (released,
                // expired, or captured through Capture) has already left exposure.
                let closed = sqlx::query(&sql(
                    "UPDATE holds SET status = $1, open_minor = 0, document = $2 WHERE id = $3 AND status = 'OPEN'",
                ))
                .bind(hold.status.as_str())
                .bind(Json(hold))
                .bind(&hold.id)
                .execute(&mut *tx)
                .await?
                .rows_affected()
                    == 1;
                if closed {
                    hold_released_minor = hold.amount_minor;
                    insert_outbox_event!(tx, sql, event)?;
                }
            }
            if change.amount_minor != 0 {
                sqlx::query(&sql(
                    "INSERT INTO receivable_movements (id, customer_id, group_id, amount_minor, source, created_at) \
                     VALUES ($1, $2, $3, $4, $5, $6)",
                ))
                .bind(format!("rcv_{}", uuid::Uuid::now_v7().simple()))
                .bind(change.customer_id)
                .bind(change.group_id)
                .bind(change.amount_minor)
                .bind(&change.source)
                .bind(change.at)
                .execute(&mut *tx)
                .await?;
            }
            tx.commit().await?;
            Ok(Some(ReceivableRecorded {
                fence,
                hold_released_minor,
            }))
        })
    }

    async fn record_unconverted(
        &self,
        consumer: &str,
        event_id: &str,
        amounts: &[Unconverted],
    ) -> LedgerResult<bool> {
        on_database!(&self.database, |pool, sql, begin_write| {
            let mut tx = pool.begin_with(begin_write).await?;
            let first_time = first_delivery!(tx, sql, consumer, event_id)?;
            if !first_time {
                return Ok(false);
            }
            for amount in amounts {
                sqlx::query(&sql(
                    "INSERT INTO unconverted_receivables (source, event_id, customer_id, currency, amount, recorded_at) \
                     VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (source) DO NOTHING",
                ))
                .bind(&amount.source)
                .bind(&amount.event_id)
                .bind(&amount.customer_id)
                .bind(&amount.currency)
                .bind(&amount.amount)
                .bind(amount.recorded_at)
                .execute(&mut *tx)
                .await?;
            }
            tx.commit().await?;
            Ok(true)
        })
    }

    async fn unconverted(&self, limit: i64) -> LedgerResult<Vec<Unconverted>> {
        on_database!(&self.database, |pool, sql| {
            let rows = sqlx::query(&sql(
                "SELECT source, event_id, customer_id, currency, amount, recorded_at \
                 FROM unconverted_receivables ORDER BY recorded_at, source LIMIT $1",
            ))
            .bind(limit)
            .fetch_all(pool)
            .await?;
            rows.iter()
                .map(|row| {
                    Ok(Unconverted {
                        source: row.try_get("source")?,
                        event_id: row.try_get("event_id")?,
                        customer_id: row.try_get("customer_id")?,
                        currency: row.try_get("currency")?,
                        amount: row.try_get("amount")?,
                        recorded_at: row.try_get("recorded_at")?,
                    })
                })
                .collect::<Result<Vec<_>, sqlx::Error>>()
                .map_err(LedgerError::from)
        })
    }

    async fn has_unconverted(&self, customer_id: &str) -> LedgerResult<bool> {
        on_database!(&self.database, |pool, sql| {
            let found: Option<String> = sqlx::query_scalar(&sql(
                "SELECT source FROM unconverted_receivables WHERE customer_id = $1 LIMIT 1",
            ))
            .bind(customer_id)
            .fetch_optional(pool)
            .await?;
            Ok(found.is_some())
        })
    }

    async fn forget_unconverted(&self, source: &str) -> LedgerResult<()> {
        on_database!(&self.database, |pool, sql| {
            sqlx::query(&sql(
                "DELETE FROM unconverted_receivables WHERE source = $1",
            ))
            .bind(source)
            .execute(pool)
            .await?;
            Ok(())
        })
    }
}
