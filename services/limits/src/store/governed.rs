//! Governed documents in SQL (the approval matrix, the credit policy): every version a row of
//! `governed_versions`, numbered in the transaction that files it, its chain's queue rows
//! rewritten with every verdict. One body serves every governed document; the trait
//! [`GovernedStore`] names it per document.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use credit_core::approval::DecisionKind;
use credit_core::governance::{self, Governed, Version, VersionStatus};
use credit_proto::v1::Event;
use credit_runtime::sql::{IdempotencyKey, retry_once_on_race};
use credit_runtime::store::DocumentRow;
use credit_runtime::{insert_idempotency_key, lookup_idempotency_key, on_database};
use sqlx::types::Json;

use super::sql::SqlLimitStore;
use super::{Outcome, StoreError, StoreResult};

/// The versions of one governed document `T`.
#[async_trait]
pub trait GovernedStore<T: Governed> {
    /// Every stored version, oldest first (a handful: one per change of policy).
    async fn governed_versions(&self) -> StoreResult<Vec<Version<T>>>;
    /// The published version in force at `at`, if any was published.
    async fn governed_in_force(&self, at: DateTime<Utc>) -> StoreResult<Option<Version<T>>>;
    /// Files a proposal as the next version, numbered in the transaction (at least
    /// `lowest_number`), once per key; its chain's queue rows are written with it.
    async fn propose_version(
        &self,
        proposal: &Version<T>,
        lowest_number: u32,
        key: &IdempotencyKey,
    ) -> StoreResult<Outcome<Version<T>>>;
    /// Records a verdict on a proposal's chain if no other verdict came since the caller read
    /// it (its trail is still `expected_trail` long); `step_event` is written with it.
    async fn decide_version(
        &self,
        decided: &Version<T>,
        expected_trail: usize,
        key: &IdempotencyKey,
        step_event: Option<&Event>,
        now: DateTime<Utc>,
    ) -> StoreResult<Outcome<Version<T>>>;
}

#[async_trait]
impl<T: Governed> GovernedStore<T> for SqlLimitStore {
    async fn governed_versions(&self) -> StoreResult<Vec<Version<T>>> {
        on_database!(&self.database, |pool, sql| {
            let rows = sqlx::query_as::<_, DocumentRow<Version<T>>>(&sql(
                "SELECT document FROM governed_versions WHERE subject = $1 ORDER BY version",
            ))
            .bind(T::SUBJECT)
            .fetch_all(pool)
            .await?;
            Ok(rows.into_iter().map(DocumentRow::into_record).collect())
        })
    }

    async fn governed_in_force(&self, at: DateTime<Utc>) -> StoreResult<Option<Version<T>>> {
        on_database!(&self.database, |pool, sql| {
            let row = sqlx::query_as::<_, DocumentRow<Version<T>>>(&sql(
                "SELECT document FROM governed_versions \
                 WHERE subject = $1 AND status = $2 AND effective_from <= $3 \
                 ORDER BY effective_from DESC, version DESC LIMIT 1",
            ))
            .bind(T::SUBJECT)
            .bind(VersionStatus::Published.as_str())
            .bind(at)
            .fetch_optional(pool)
            .await?;
            Ok(row.map(DocumentRow::into_record))
        })
    }

    async fn propose_version(
        &self,
        proposal: &Version<T>,
        lowest_number: u32,
        key: &IdempotencyKey,
    ) -> StoreResult<Outcome<Version<T>>> {
        retry_once_on_race(|| async {
            on_database!(&self.database, |pool, sql, begin_write| {
                let mut tx = pool.begin_with(begin_write).await?;
                if let Some(existing) = lookup_idempotency_key!(tx, sql, key)?.into_replay()? {
                    let existing = sqlx::query_as::<_, DocumentRow<Version<T>>>(&sql(
                        "SELECT document FROM governed_versions WHERE subject = $1 AND version = $2",
                    ))
                    .bind(T::SUBJECT)
                    .bind(parse_version(&existing)?)
                    .fetch_one(&mut *tx)
                    .await?;
                    return Ok(Outcome::Replayed(existing.into_record()));
                }
                let last: Option<i64> = sqlx::query_scalar(&sql(
                    "SELECT CAST(MAX(version) AS BIGINT) FROM governed_versions WHERE subject = $1",
                ))
                .bind(T::SUBJECT)
                .fetch_one(&mut *tx)
                .await?;
                let next = u32::try_from(last.unwrap_or(0) + 1)
                    .map_err(|error| StoreError::Corrupt(error.to_string()))?;
                let numbered = Version {
                    version: next.max(lowest_number),
                    ..proposal.clone()
                };
                sqlx::query(&sql(
                    "INSERT INTO governed_versions (subject, version, status, document, proposed_at) \
                     VALUES ($1, $2, $3, $4, $5)",
                ))
                .bind(T::SUBJECT)
                .bind(i64::from(numbered.version))
                .bind(numbered.status().as_str())
                .bind(Json(&numbered))
                .bind(numbered.proposed_at)
                .execute(&mut *tx)
                .await?;
                crate::replace_approval_tasks!(
                    tx,
                    sql,
                    DecisionKind::PolicyChange.as_str(),
                    &governance::record_id::<T>(numbered.version),
                    Some(&numbered.chain),
                    numbered.proposed_at,
                    numbered.proposed_at
                )
                .await?;
                insert_idempotency_key!(
                    tx,
                    sql,
                    key,
                    &numbered.version.to_string(),
                    numbered.proposed_at
                )?;
                tx.commit().await?;
                Ok(Outcome::New(numbered))
            })
        })
        .await
    }

    async fn decide_version(
        &self,
        decided: &Version<T>,
        expected_trail: usize,
        key: &IdempotencyKey,
        step_event: Option<&Event>,
        now: DateTime<Utc>,
    ) -> StoreResult<Outcome<Version<T>>> {
        on_database!(&self.database, |pool, sql, begin_write| {
            let mut tx = pool.begin_with(begin_write).await?;
            let select =
                sql("SELECT document FROM governed_versions WHERE subject = $1 AND version = $2");
            if let Some(existing) = lookup_idempotency_key!(tx, sql, key)?.into_replay()? {
                let existing = sqlx::query_as::<_, DocumentRow<Version<T>>>(&select)
                    .bind(T::SUBJECT)
                    .bind(parse_version(&existing)?)
                    .fetch_one(&mut *tx)
                    .await?;
                return Ok(Outcome::Replayed(existing.into_record()));
            }
            // Takes the row first (PostgreSQL reads committed rows only after the lock), so two
            // verdicts on the same step cannot both see the trail as it was.
            sqlx::query(&sql(
                "UPDATE governed_versions SET status = status WHERE subject = $1 AND version = $2",
            ))
            .bind(T::SUBJECT)
            .bind(i64::from(decided.version))
            .execute(&mut *tx)
            .await?;
            let stored = sqlx::query_as::<_, DocumentRow<Version<T>>>(&select)
                .bind(T::SUBJECT)
                .bind(i64::from(decided.version))
                .fetch_one(&mut *tx)
                .await?
                .into_record();
            if stored.chain.trail.len() != expected_trail {
                return Err(StoreError::refused(
                    credit_core::ServiceError::failed_precondition(
                        "REQUEST_NOT_PENDING",
                        "another verdict on this proposal came first; read it again",
                    ),
                ));
            }
            let effective_from =
                (decided.status() == VersionStatus::Published).then_some(decided.effective_from);
            sqlx::query(&sql(
                "UPDATE governed_versions SET status = $1, document = $2, effective_from = $3 \
                 WHERE subject = $4 AND version = $5",
            ))
            .bind(decided.status().as_str())
            .bind(Json(decided))
            .bind(effective_from)
            .bind(T::SUBJECT)
            .bind(i64::from(decided.version))
            .execute(&mut *tx)
            .await?;
            crate::replace_approval_tasks!(
                tx,
                sql,
                DecisionKind::PolicyChange.as_str(),
                &governance::record_id::<T>(decided.version),
                Some(&decided.chain),
                decided.proposed_at,
                now
            )
            .await?;
            if let Some(step_event) = step_event {
                credit_runtime::insert_outbox_event!(tx, sql, step_event)?;
            }
            insert_idempotency_key!(tx, sql, key, &decided.version.to_string(), now)?;
            tx.commit().await?;
            Ok(Outcome::New(decided.clone()))
        })
    }
}

fn parse_version(text: &str) -> Result<i64, StoreError> {
    text.parse()
        .map_err(|_| StoreError::Corrupt(format!("version {text} is not a number")))
}
