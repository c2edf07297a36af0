//! The ledger in SQL: one body for PostgreSQL and SQLite (`on_database!`); on PostgreSQL
//! Authorize's writes go through the group-commit writers.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use credit_core::approval::{ChainStatus, DecisionKind};
use credit_proto::v1::Event;
use credit_runtime::sql::{IdempotencyKey, Page, is_unique_violation};
use credit_runtime::{
    Database, insert_idempotency_key, insert_outbox_event, lookup_idempotency_key, on_database,
};
use sqlx::types::Json;

use crate::exposure::Fence;
use crate::ledger::group_commit::{GroupCommit, Write};

use super::rows::{AnswerRow, QueuedReferralRow, ReferralRow, UnconvertedRow};
use credit_runtime::store::DocumentRow;

use super::{
    DecidedReferral, FencedHold, Hold, HoldStatus, LedgerError, LedgerExposure, LedgerResult,
    LedgerStore, ReceivableChange, ReceivableRecorded, Referral, ReferralStatus, StoredAnswer,
    Unconverted,
};

/// A referral's document, found by its id.
const REFERRAL_BY_ID: &str = "SELECT referral FROM authorizations WHERE referral_id = $1";

/// Why an update of referral `$referral_id` that expected it open at a revision changed no
/// row, read inside transaction `$tx`: another verdict moved its chain on (`ChainMoved`), or
/// it is decided (`ReferralNotOpen`, with the referral as it stands).
macro_rules! why_not_updated {
    ($tx:ident, $sql:ident, $referral_id:expr) => {{
        let current = sqlx::query_as::<_, ReferralRow>(&$sql(REFERRAL_BY_ID))
            .bind($referral_id)
            .fetch_one(&mut *$tx)
            .await?
            .into_referral();
        if current.status == ReferralStatus::Open {
            LedgerError::ChainMoved
        } else {
            LedgerError::ReferralNotOpen(Box::new(current))
        }
    }};
}

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
            let row = sqlx::query_as::<_, AnswerRow>(&sql(
                "SELECT fingerprint, decision_id, decision, response, created_at FROM authorizations \
                 WHERE customer_id = $1 AND idempotency_key = $2",
            ))
            .bind(customer_id)
            .bind(idempotency_key)
            .fetch_optional(pool)
            .await?;
            Ok(row.map(|row| row.into_answer(customer_id, idempotency_key)))
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
            let row = sqlx::query_as::<_, DocumentRow<Hold>>(&sql(
                "SELECT document FROM holds WHERE id = $1",
            ))
            .bind(hold_id)
            .fetch_optional(pool)
            .await?;
            Ok(row.map(DocumentRow::into_record))
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
            let rows = sqlx::query_as::<_, DocumentRow<Hold>>(&sql(
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
            Ok(rows.into_iter().map(DocumentRow::into_record).collect())
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
                let row = sqlx::query_as::<_, DocumentRow<Hold>>(&sql(
                    "SELECT document FROM holds WHERE id = $1",
                ))
                .bind(&closed.id)
                .fetch_optional(&mut *tx)
                .await?;
                return match row {
                    Some(row) => Err(LedgerError::HoldNotOpen(Box::new(row.into_record()))),
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
            let row = sqlx::query_as::<_, ReferralRow>(&sql(REFERRAL_BY_ID))
                .bind(referral_id)
                .fetch_optional(pool)
                .await?;
            Ok(row.map(ReferralRow::into_referral))
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
            // The key is an expression, named so the row can be read by name.
            let rows = sqlx::query_as::<_, QueuedReferralRow>(&sql(concat!(
                "SELECT ",
                referral_queue_key!(),
                " AS queue_key, referral FROM authorizations \
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
            Ok(rows
                .into_iter()
                .map(QueuedReferralRow::into_entry)
                .collect())
        })
    }

    async fn decide_referral(
        &self,
        decided: &Referral,
        expected_revision: i64,
        hold: Option<FencedHold<'_>>,
        key: &IdempotencyKey,
        events: &[Event],
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
                    let referral = sqlx::query_as::<_, ReferralRow>(&sql(REFERRAL_BY_ID))
                        .bind(&existing_id)
                        .fetch_one(&mut *tx)
                        .await?
                        .into_referral();
                    let hold = if referral.hold_id.is_empty() {
                        None
                    } else {
                        sqlx::query_as::<_, DocumentRow<Hold>>(&sql(
                            "SELECT document FROM holds WHERE id = $1",
                        ))
                        .bind(&referral.hold_id)
                        .fetch_optional(&mut *tx)
                        .await?
                        .map(DocumentRow::into_record)
                    };
                    return Ok(DecidedReferral {
                        referral,
                        hold,
                        replayed: true,
                    });
                }
                let updated = sqlx::query(&sql(
                    "UPDATE authorizations SET referral_status = $1, referral = $2, referral_revision = $3 \
                     WHERE referral_id = $4 AND referral_status = 'OPEN' AND referral_revision = $5",
                ))
                .bind(decided.status.as_str())
                .bind(Json(decided))
                .bind(decided.chain_revision())
                .bind(&decided.id)
                .bind(expected_revision)
                .execute(&mut *tx)
                .await?;
                if updated.rows_affected() != 1 {
                    return Err(why_not_updated!(tx, sql, &decided.id));
                }
                // Decided: out of every queue, but filed where an approved chain says so. A
                // chain still under way (the system released the order) leaves no task.
                let filed = decided.approval_chain.as_ref().filter(|chain| {
                    matches!(chain.status, ChainStatus::Approved | ChainStatus::Rejected)
                });
                crate::replace_approval_tasks!(
                    tx,
                    sql,
                    DecisionKind::OrderReferral.as_str(),
                    &decided.id,
                    filed,
                    decided.created_at,
                    now
                )
                .await?;
                credit_runtime::append_audit!(
                    tx,
                    sql,
                    &credit_runtime::audit::AuditRecord {
                        kind: "referral.decided",
                        record_id: &decided.id,
                        actor: decided.decided_by.as_ref().map_or("", |actor| actor.name.as_str()),
                        // A referral is plain fields (no map keys to refuse): it always
                        // serializes, as its stored document does just above.
                        entry: serde_json::to_string(decided).unwrap_or_default(),
                    }
                )
                .await?;
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
                for event in events {
                    insert_outbox_event!(tx, sql, event)?;
                }
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

    async fn save_referral_chain(
        &self,
        referral: &Referral,
        expected_revision: i64,
        key: Option<&IdempotencyKey>,
        step_event: Option<&Event>,
    ) -> LedgerResult<Referral> {
        let now = Utc::now();
        on_database!(&self.database, |pool, sql, begin_write| {
            let mut tx = pool.begin_with(begin_write).await?;
            let updated = sqlx::query(&sql(
                "UPDATE authorizations SET referral = $1, referral_revision = $2 \
                 WHERE referral_id = $3 AND referral_status = 'OPEN' AND referral_revision = $4",
            ))
            .bind(Json(referral))
            .bind(referral.chain_revision())
            .bind(&referral.id)
            .bind(expected_revision)
            .execute(&mut *tx)
            .await?;
            if updated.rows_affected() != 1 {
                return Err(why_not_updated!(tx, sql, &referral.id));
            }
            crate::replace_approval_tasks!(
                tx,
                sql,
                DecisionKind::OrderReferral.as_str(),
                &referral.id,
                referral.approval_chain.as_ref(),
                referral.created_at,
                now
            )
            .await?;
            if let Some(step_event) = step_event {
                insert_outbox_event!(tx, sql, step_event)?;
            }
            if let Some(key) = key {
                insert_idempotency_key!(tx, sql, key, &referral.id, now)?;
            }
            tx.commit().await?;
            Ok(referral.clone())
        })
    }

    async fn expired_holds(&self, now: DateTime<Utc>, limit: i64) -> LedgerResult<Vec<Hold>> {
        on_database!(&self.database, |pool, sql| {
            let rows = sqlx::query_as::<_, DocumentRow<Hold>>(&sql(
                "SELECT document FROM holds WHERE status = 'OPEN' AND expires_at <= $1 ORDER BY expires_at, id LIMIT $2",
            ))
            .bind(now)
            .bind(limit)
            .fetch_all(pool)
            .await?;
            Ok(rows.into_iter().map(DocumentRow::into_record).collect())
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
            let rows = sqlx::query_as::<_, UnconvertedRow>(&sql(
                "SELECT source, event_id, customer_id, currency, amount, recorded_at \
                 FROM unconverted_receivables ORDER BY recorded_at, source LIMIT $1",
            ))
            .bind(limit)
            .fetch_all(pool)
            .await?;
            Ok(rows.into_iter().map(Unconverted::from).collect())
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
