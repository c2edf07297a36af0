//! Approval chains in SQL: the rows that put a chain in people's queues (`approval_tasks`,
//! rewritten in the transaction that moves the chain).

use chrono::{DateTime, Utc};
use credit_core::approval::DecisionKind;
use credit_runtime::on_database;
use credit_runtime::sql::Page;

use super::sql::SqlLimitStore;
use super::{StoreError, StoreResult};

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
            let now: chrono::DateTime<chrono::Utc> = $now;
            let escalate_at = chain.and_then(|chain| chain.escalation_due(now));
            for audience in chain.map(|chain| chain.audiences()).unwrap_or_default() {
                sqlx::query(&$sql(
                    "INSERT INTO approval_tasks (audience, kind, record_id, requested_at, waiting_since, escalate_at) \
                     VALUES ($1, $2, $3, $4, $5, $6)",
                ))
                .bind(audience)
                .bind(kind)
                .bind(record_id)
                .bind($requested_at)
                .bind(now)
                .bind(escalate_at)
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

impl TaskRow {
    fn into_task(self) -> StoreResult<TaskRef> {
        Ok(TaskRef {
            kind: DecisionKind::parse(&self.kind).ok_or_else(|| {
                StoreError::Corrupt(format!("unknown decision kind {}", self.kind))
            })?,
            record_id: self.record_id,
            requested_at: self.requested_at,
            waiting_since: self.waiting_since,
        })
    }
}

impl SqlLimitStore {
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
            rows.into_iter().map(TaskRow::into_task).collect()
        })
    }

    /// The chains still waiting that were requested at or before `requested_by`, oldest first
    /// (filings with the informed roles are not waiting).
    pub(super) async fn expirations_due(
        &self,
        requested_by: DateTime<Utc>,
        limit: i64,
    ) -> StoreResult<Vec<TaskRef>> {
        on_database!(&self.database, |pool, sql| {
            let rows = sqlx::query_as::<_, TaskRow>(&sql(
                "SELECT kind, record_id, MIN(requested_at) AS requested_at, MAX(waiting_since) AS waiting_since \
                 FROM approval_tasks WHERE requested_at <= $1 \
                 AND (audience LIKE 'role:%' OR audience LIKE 'person:%') \
                 GROUP BY kind, record_id ORDER BY MIN(requested_at) LIMIT $2",
            ))
            .bind(requested_by)
            .bind(limit)
            .fetch_all(pool)
            .await?;
            rows.into_iter().map(TaskRow::into_task).collect()
        })
    }

    /// The chains whose waiting step is due to be escalated at `now`, the longest due first.
    pub(super) async fn escalations_due(
        &self,
        now: DateTime<Utc>,
        limit: i64,
    ) -> StoreResult<Vec<TaskRef>> {
        on_database!(&self.database, |pool, sql| {
            let rows = sqlx::query_as::<_, TaskRow>(&sql(
                "SELECT kind, record_id, MIN(requested_at) AS requested_at, MAX(waiting_since) AS waiting_since \
                 FROM approval_tasks WHERE escalate_at IS NOT NULL AND escalate_at <= $1 \
                 GROUP BY kind, record_id ORDER BY MIN(escalate_at) LIMIT $2",
            ))
            .bind(now)
            .bind(limit)
            .fetch_all(pool)
            .await?;
            rows.into_iter().map(TaskRow::into_task).collect()
        })
    }
}
