//! The security register in SQL: one row per item, the whole item (its changes and their
//! chains) as a document, the columns it is searched by beside it; a pending change's queue
//! rows are rewritten in the transaction that moves it.

use async_trait::async_trait;
use chrono::{DateTime, NaiveDate, Utc};
use credit_core::approval::DecisionKind;
use credit_proto::v1::Event;
use credit_runtime::sql::{IdempotencyKey, Page};
use credit_runtime::store::DocumentRow;
use credit_runtime::{insert_idempotency_key, lookup_idempotency_key, on_database};
use sqlx::types::Json;

use super::sql::SqlLimitStore;
use super::{Outcome, StoreError, StoreResult};
use crate::domain::security::{Security, SecurityStatus};

/// Which part of the register to list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SecurityParty<'a> {
    /// The securities of a customer's own debt.
    Customer(&'a str),
    /// The third-party guarantees a customer gave for other customers' debts.
    Guarantor(&'a str),
}

/// The security register.
#[async_trait]
pub trait SecurityStore {
    /// Files a new item (pending its registration chain) once per key, with its queue rows.
    async fn register_security(
        &self,
        security: &Security,
        key: &IdempotencyKey,
    ) -> StoreResult<Outcome<Security>>;
    async fn security(&self, security_id: &str) -> StoreResult<Option<Security>>;
    /// Stores a changed item if nobody changed it since the caller read it (its revision was
    /// `expected_revision`), rewriting its queue rows and writing `events` with it, once per
    /// key. `REQUEST_NOT_PENDING` when another change came first.
    async fn save_security(
        &self,
        changed: &Security,
        expected_revision: i64,
        key: &IdempotencyKey,
        events: &[Event],
        now: DateTime<Utc>,
    ) -> StoreResult<Outcome<Security>>;
    /// The items of `party`, in id order, of the given status (any when `None`).
    async fn securities(
        &self,
        party: SecurityParty<'_>,
        status: Option<SecurityStatus>,
        page: &Page,
    ) -> StoreResult<Vec<Security>>;
    /// Active items whose last valid day is before `today`, at most `limit`: the expiry
    /// sweep's work.
    async fn securities_expired_by(
        &self,
        today: NaiveDate,
        limit: i64,
    ) -> StoreResult<Vec<Security>>;
}

impl SqlLimitStore {
    /// The active items of `party` (a customer's own, or the guarantees it gave): what its
    /// cache profile counts. A customer has a handful; bounded all the same.
    pub(super) async fn active_securities(
        &self,
        party: SecurityParty<'_>,
    ) -> StoreResult<Vec<Security>> {
        let page = Page {
            size: MAX_ACTIVE_PER_CUSTOMER,
            after: None,
        };
        self.securities(party, Some(SecurityStatus::Active), &page)
            .await
    }
}

/// The most active items a customer's profile counts; an unusual register beyond it counts
/// the first ones by id (less cover, never more).
const MAX_ACTIVE_PER_CUSTOMER: usize = 500;

#[async_trait]
impl SecurityStore for SqlLimitStore {
    async fn register_security(
        &self,
        security: &Security,
        key: &IdempotencyKey,
    ) -> StoreResult<Outcome<Security>> {
        let now = security.registered_at;
        on_database!(&self.database, |pool, sql, begin_write| {
            let mut tx = pool.begin_with(begin_write).await?;
            if let Some(existing) = lookup_idempotency_key!(tx, sql, key)?.into_replay()? {
                let existing = sqlx::query_as::<_, DocumentRow<Security>>(&sql(
                    "SELECT document FROM securities WHERE security_id = $1",
                ))
                .bind(existing)
                .fetch_one(&mut *tx)
                .await?;
                return Ok(Outcome::Replayed(existing.into_record()));
            }
            sqlx::query(&sql(
                "INSERT INTO securities (security_id, customer_id, guarantor_customer_id, status, \
                 valid_until, revision, document, registered_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
            ))
            .bind(&security.security_id)
            .bind(&security.customer_id)
            .bind(&security.guarantor_customer_id)
            .bind(security.status.as_str())
            .bind(security.valid_until)
            .bind(security.revision)
            .bind(Json(security))
            .bind(now)
            .execute(&mut *tx)
            .await?;
            crate::replace_approval_tasks!(
                tx,
                sql,
                DecisionKind::SecurityChange.as_str(),
                &security.security_id,
                security.pending.as_ref().map(|change| &change.chain),
                now,
                now
            )
            .await?;
            insert_idempotency_key!(tx, sql, key, &security.security_id, now)?;
            tx.commit().await?;
            Ok(Outcome::New(security.clone()))
        })
    }

    async fn security(&self, security_id: &str) -> StoreResult<Option<Security>> {
        on_database!(&self.database, |pool, sql| {
            let row = sqlx::query_as::<_, DocumentRow<Security>>(&sql(
                "SELECT document FROM securities WHERE security_id = $1",
            ))
            .bind(security_id)
            .fetch_optional(pool)
            .await?;
            Ok(row.map(DocumentRow::into_record))
        })
    }

    async fn save_security(
        &self,
        changed: &Security,
        expected_revision: i64,
        key: &IdempotencyKey,
        events: &[Event],
        now: DateTime<Utc>,
    ) -> StoreResult<Outcome<Security>> {
        on_database!(&self.database, |pool, sql, begin_write| {
            let mut tx = pool.begin_with(begin_write).await?;
            let select = sql("SELECT document FROM securities WHERE security_id = $1");
            if let Some(existing) = lookup_idempotency_key!(tx, sql, key)?.into_replay()? {
                let existing = sqlx::query_as::<_, DocumentRow<Security>>(&select)
                    .bind(existing)
                    .fetch_one(&mut *tx)
                    .await?;
                return Ok(Outcome::Replayed(existing.into_record()));
            }
            // The revision fences the write: a change decided meanwhile wins.
            let updated = sqlx::query(&sql(
                "UPDATE securities SET status = $1, valid_until = $2, revision = $3, document = $4 \
                 WHERE security_id = $5 AND revision = $6",
            ))
            .bind(changed.status.as_str())
            .bind(changed.valid_until)
            .bind(changed.revision)
            .bind(Json(changed))
            .bind(&changed.security_id)
            .bind(expected_revision)
            .execute(&mut *tx)
            .await?
            .rows_affected();
            if updated != 1 {
                return Err(StoreError::refused(
                    credit_core::ServiceError::failed_precondition(
                        "REQUEST_NOT_PENDING",
                        "another change of this security came first; read it again",
                    ),
                ));
            }
            crate::replace_approval_tasks!(
                tx,
                sql,
                DecisionKind::SecurityChange.as_str(),
                &changed.security_id,
                changed.pending.as_ref().map(|change| &change.chain),
                changed
                    .pending
                    .as_ref()
                    .map_or(now, |change| change.requested_at),
                now
            )
            .await?;
            for event in events {
                credit_runtime::insert_outbox_event!(tx, sql, event)?;
            }
            insert_idempotency_key!(tx, sql, key, &changed.security_id, now)?;
            tx.commit().await?;
            Ok(Outcome::New(changed.clone()))
        })
    }

    async fn securities(
        &self,
        party: SecurityParty<'_>,
        status: Option<SecurityStatus>,
        page: &Page,
    ) -> StoreResult<Vec<Security>> {
        let status = status.map(SecurityStatus::as_str).unwrap_or_default();
        let after = page.after.as_deref().unwrap_or("");
        on_database!(&self.database, |pool, sql| {
            let query = match party {
                SecurityParty::Customer(_) => sql(
                    "SELECT document FROM securities WHERE customer_id = $1 AND security_id > $2 \
                     AND ($3 = '' OR status = $3) ORDER BY security_id LIMIT $4",
                ),
                SecurityParty::Guarantor(_) => sql(
                    "SELECT document FROM securities WHERE guarantor_customer_id = $1 \
                     AND security_id > $2 AND ($3 = '' OR status = $3) ORDER BY security_id LIMIT $4",
                ),
            };
            let (SecurityParty::Customer(id) | SecurityParty::Guarantor(id)) = party;
            let rows = sqlx::query_as::<_, DocumentRow<Security>>(&query)
                .bind(id)
                .bind(after)
                .bind(status)
                .bind(page.fetch_limit())
                .fetch_all(pool)
                .await?;
            Ok(rows.into_iter().map(DocumentRow::into_record).collect())
        })
    }

    async fn securities_expired_by(
        &self,
        today: NaiveDate,
        limit: i64,
    ) -> StoreResult<Vec<Security>> {
        on_database!(&self.database, |pool, sql| {
            let rows = sqlx::query_as::<_, DocumentRow<Security>>(&sql(
                "SELECT document FROM securities WHERE status = 'ACTIVE' AND valid_until < $1 \
                 ORDER BY valid_until, security_id LIMIT $2",
            ))
            .bind(today)
            .bind(limit)
            .fetch_all(pool)
            .await?;
            Ok(rows.into_iter().map(DocumentRow::into_record).collect())
        })
    }
}
