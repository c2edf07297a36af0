//! Approval chains in SQL: the versions of the approval matrix, and the rows that put a chain
//! in people's queues (`approval_tasks`, rewritten in the transaction that moves the chain).

use chrono::{DateTime, Utc};
use credit_core::approval::{ApprovalMatrix, DecisionKind};
use credit_core::governance::Version;
use credit_runtime::sql::{IdempotencyKey, Page, retry_once_on_race};
use credit_runtime::store::DocumentRow;
use credit_runtime::{insert_idempotency_key, lookup_idempotency_key, on_database};
use sqlx::types::Json;

use super::sql::SqlLimitStore;
use super::{Outcome, StoreError, StoreResult};

/// A version of the approval matrix as it is stored.
pub type MatrixVersion = Version<ApprovalMatrix>;

/// The record id of a matrix version in chains and queues: `matrix:3`.
pub fn matrix_record_id(version: u32) -> String {
    format!("matrix:{version}")
}

/// One entry of a person's queue: the record whose chain waits, and since when.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaskRef {
    pub kind: DecisionKind,
    pub record_id: String,
    pub requested_at: DateTime<Utc>,
    pub waiting_since: DateTime<Utc>,
}

/// The most audiences one queue asks for: a role each (all of them for ADMIN), the person,
/// and the filings of each role. The query binds exactly this many (the rest empty), so its
/// text stays one static statement on both backends.
const MAX_AUDIENCES: usize = 24;

/// Rewrites the queue rows of one chain inside the caller's transaction: the chain's
/// audiences now, or none (a rejected chain, or a record without a chain).
#[macro_export]
#[doc(hidden)]
macro_rules! replace_approval_tasks {
    ($tx:expr, $sql:ident, $kind:expr, $record_id:expr, $chain:expr, $requested_at:expr, $now:expr) => {
        async {
            let kind: &str = $kind;
            let record_id: &str = $record_id;
            let chain: Option<&credit_core::approval::Chain> = $chain;
            sqlx::query(&$sql(
                "DELETE FROM approval_tasks WHERE kind = $1 AND record_id = $2",
            ))
            .bind(kind)
            .bind(record_id)
            .execute(&mut *$tx)
            .await?;
            for audience in chain.map(|chain| chain.audiences()).unwrap_or_default() {
                sqlx::query(&$sql(
                    "INSERT INTO approval_tasks (audience, kind, record_id, requested_at, waiting_since) \
                     VALUES ($1, $2, $3, $4, $5)",
                ))
                .bind(audience)
                .bind(kind)
                .bind(record_id)
                .bind($requested_at)
                .bind($now)
                .execute(&mut *$tx)
                .await?;
            }
            Ok::<(), sqlx::Error>(())
        }
    };
}

#[derive(sqlx::FromRow)]
struct TaskRow {
    kind: String,
    record_id: String,
    requested_at: DateTime<Utc>,
    waiting_since: DateTime<Utc>,
}

impl SqlLimitStore {
    pub(super) async fn matrix_versions(&self) -> StoreResult<Vec<MatrixVersion>> {
        on_database!(&self.database, |pool, sql| {
            let rows = sqlx::query_as::<_, DocumentRow<MatrixVersion>>(&sql(
                "SELECT document FROM approval_matrices ORDER BY version",
            ))
            .fetch_all(pool)
            .await?;
            Ok(rows.into_iter().map(DocumentRow::into_record).collect())
        })
    }

    pub(super) async fn insert_matrix_proposal(
        &self,
        proposal: &MatrixVersion,
        key: &IdempotencyKey,
    ) -> StoreResult<Outcome<MatrixVersion>> {
        retry_once_on_race(|| async {
            on_database!(&self.database, |pool, sql, begin_write| {
                let mut tx = pool.begin_with(begin_write).await?;
                if let Some(existing) = lookup_idempotency_key!(tx, sql, key)?.into_replay()? {
                    let existing = sqlx::query_as::<_, DocumentRow<MatrixVersion>>(&sql(
                        "SELECT document FROM approval_matrices WHERE version = $1",
                    ))
                    .bind(parse_version(&existing)?)
                    .fetch_one(&mut *tx)
                    .await?;
                    return Ok(Outcome::Replayed(existing.into_record()));
                }
                let last: Option<i64> = sqlx::query_scalar(&sql(
                    "SELECT CAST(MAX(version) AS BIGINT) FROM approval_matrices",
                ))
                .fetch_one(&mut *tx)
                .await?;
                let version = u32::try_from(last.unwrap_or(0) + 1)
                    .map_err(|error| StoreError::Corrupt(error.to_string()))?;
                let numbered = MatrixVersion {
                    version,
                    ..proposal.clone()
                };
                sqlx::query(&sql(
                    "INSERT INTO approval_matrices (version, status, document, proposed_at) VALUES ($1, $2, $3, $4)",
                ))
                .bind(i64::from(version))
                .bind(numbered.status().as_str())
                .bind(Json(&numbered))
                .bind(numbered.proposed_at)
                .execute(&mut *tx)
                .await?;
                let record_id = matrix_record_id(version);
                crate::replace_approval_tasks!(
                    tx,
                    sql,
                    DecisionKind::PolicyChange.as_str(),
                    &record_id,
                    Some(&numbered.chain),
                    numbered.proposed_at,
                    numbered.proposed_at
                )
                .await?;
                insert_idempotency_key!(tx, sql, key, &version.to_string(), numbered.proposed_at)?;
                tx.commit().await?;
                Ok(Outcome::New(numbered))
            })
        })
        .await
    }

    pub(super) async fn update_matrix_chain(
        &self,
        decided: &MatrixVersion,
        expected_trail: usize,
        key: &IdempotencyKey,
        step_event: Option<&credit_proto::v1::Event>,
        now: DateTime<Utc>,
    ) -> StoreResult<Outcome<MatrixVersion>> {
        on_database!(&self.database, |pool, sql, begin_write| {
            let mut tx = pool.begin_with(begin_write).await?;
            if let Some(existing) = lookup_idempotency_key!(tx, sql, key)?.into_replay()? {
                let existing = sqlx::query_as::<_, DocumentRow<MatrixVersion>>(&sql(
                    "SELECT document FROM approval_matrices WHERE version = $1",
                ))
                .bind(parse_version(&existing)?)
                .fetch_one(&mut *tx)
                .await?;
                return Ok(Outcome::Replayed(existing.into_record()));
            }
            let stored = sqlx::query_as::<_, DocumentRow<MatrixVersion>>(&sql(
                "SELECT document FROM approval_matrices WHERE version = $1",
            ))
            .bind(i64::from(decided.version))
            .fetch_one(&mut *tx)
            .await?
            .into_record();
            if stored.chain.trail.len() != expected_trail {
                return Err(super::not_pending());
            }
            sqlx::query(&sql(
                "UPDATE approval_matrices SET status = $1, document = $2 WHERE version = $3",
            ))
            .bind(decided.status().as_str())
            .bind(Json(decided))
            .bind(i64::from(decided.version))
            .execute(&mut *tx)
            .await?;
            crate::replace_approval_tasks!(
                tx,
                sql,
                DecisionKind::PolicyChange.as_str(),
                &matrix_record_id(decided.version),
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

    pub(super) async fn tasks_for(
        &self,
        audiences: &[String],
        kind: Option<DecisionKind>,
        page: &Page,
    ) -> StoreResult<Vec<TaskRef>> {
        let mut bound: Vec<&str> = audiences
            .iter()
            .take(MAX_AUDIENCES)
            .map(String::as_str)
            .collect();
        bound.resize(MAX_AUDIENCES, "");
        let kind = kind.map(|kind| kind.as_str()).unwrap_or_default();
        on_database!(&self.database, |pool, sql| {
            let statement = sql(
                "SELECT kind, record_id, MIN(requested_at) AS requested_at, MAX(waiting_since) AS waiting_since \
                 FROM approval_tasks WHERE audience IN ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, \
                 $13, $14, $15, $16, $17, $18, $19, $20, $21, $22, $23, $24) \
                 AND ($25 = '' OR kind = $25) AND record_id > $26 \
                 GROUP BY kind, record_id ORDER BY record_id LIMIT $27",
            );
            let mut query = sqlx::query_as::<_, TaskRow>(&statement);
            for audience in &bound {
                query = query.bind(*audience);
            }
            let rows = query
                .bind(kind)
                .bind(page.after.as_deref().unwrap_or(""))
                .bind(page.fetch_limit())
                .fetch_all(pool)
                .await?;
            rows.into_iter()
                .map(|row| {
                    Ok(TaskRef {
                        kind: DecisionKind::parse(&row.kind).ok_or_else(|| {
                            StoreError::Corrupt(format!("unknown decision kind {}", row.kind))
                        })?,
                        record_id: row.record_id,
                        requested_at: row.requested_at,
                        waiting_since: row.waiting_since,
                    })
                })
                .collect()
        })
    }
}

fn parse_version(text: &str) -> Result<i64, StoreError> {
    text.parse()
        .map_err(|_| StoreError::Corrupt(format!("matrix version {text} is not a number")))
}
