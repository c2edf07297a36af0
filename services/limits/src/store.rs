//! The limits service's persistence: the [`LimitStore`] trait and its SQL implementation for
//! PostgreSQL and the embedded SQLite file (one body for both, through `on_database!`).

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use credit_core::{Currency, ServiceError};
use credit_proto::v1::Event;
use credit_proto::v1::event::Payload;
use credit_runtime::sql::{
    IdempotencyKey, KeyReused, MaybeRace, Page, is_unique_violation, retry_once_on_race,
};
use credit_runtime::{
    Database, insert_idempotency_key, insert_outbox_event, lookup_idempotency_key, on_database,
};
use rust_decimal::Decimal;
use sqlx::Row;
use sqlx::types::Json;

use crate::domain::fx::{self, FxRate};
use crate::domain::limits::{
    CreditBlock, CreditLimit, HistoryEntry, LimitRequest, LimitStatus, RequestStatus, Scope,
};
use crate::domain::policy::CreditPolicy;
use crate::domain::proposal::LatestStatement;
use crate::domain::terms::CustomerTerms;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error(transparent)]
    KeyReused(#[from] KeyReused),
    #[error("the limit request was decided meanwhile")]
    NotPending,
    /// The approval would take the customer limits past the portfolio cap (checked under the
    /// portfolio lock); the answer to give the caller.
    #[error("{0}")]
    Refused(Box<ServiceError>),
    #[error("a stored record is unreadable: {0}")]
    Corrupt(String),
    #[error(transparent)]
    Database(#[from] sqlx::Error),
}

pub type StoreResult<T> = Result<T, StoreError>;

impl MaybeRace for StoreError {
    fn is_race(&self) -> bool {
        matches!(self, StoreError::Database(error) if is_unique_violation(error))
    }
}

/// A state change's outcome: done now, or done by an earlier call with the same key.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome<T> {
    New(T),
    Replayed(T),
}

impl<T> Outcome<T> {
    pub fn into_inner(self) -> T {
        match self {
            Outcome::New(value) | Outcome::Replayed(value) => value,
        }
    }
}

/// What limits knows of a customer, from intake's and rating's events.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CustomerFacts {
    pub customer_id: String,
    pub status: String,
    pub group_id: Option<String>,
    pub rating: Option<RatingFacts>,
    /// The largest days past due over the customer's open invoices (InvoiceOverdue).
    pub oldest_overdue_days: u32,
}

/// The customer's rating in force (RatingChanged).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RatingFacts {
    pub rating_id: String,
    pub grade: String,
    /// After this day (plus the policy's grace days) the rating is stale.
    pub next_review_date: Option<chrono::NaiveDate>,
}

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
pub trait LimitStore: Send + Sync + std::fmt::Debug {
    /// Applies one of intake's customer events to the projection, once per event id.
    async fn apply_customer_event(&self, consumer: &str, event: &Event) -> StoreResult<()>;
    async fn customer(&self, customer_id: &str) -> StoreResult<Option<CustomerFacts>>;
    /// The customer's latest financial statement (FinancialStatementSubmitted), if limits has
    /// seen one.
    async fn latest_statement(&self, customer_id: &str) -> StoreResult<Option<LatestStatement>>;
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
    async fn list_limit_requests(
        &self,
        scope: Option<&Scope>,
        status: Option<RequestStatus>,
        page: &Page,
    ) -> StoreResult<Vec<LimitRequest>>;
    /// Records the decision of a pending request; with `approval` the limit is granted in the
    /// same transaction. `NotPending` when another decision came first.
    async fn decide(
        &self,
        decided: &LimitRequest,
        key: &IdempotencyKey,
        approval: Option<&Approval>,
    ) -> StoreResult<Outcome<LimitRequest>>;

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
    /// The stored credit policy; `None` until the first UpdateCreditPolicy (the shipped
    /// default applies).
    async fn policy(&self) -> StoreResult<Option<CreditPolicy>>;
    /// Replaces the policy if its stored version is still `expected_version`; `false` (and
    /// nothing written) when another change came first.
    async fn save_policy(&self, policy: &CreditPolicy, expected_version: u64) -> StoreResult<bool>;
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

#[derive(Debug, Clone)]
pub struct SqlLimitStore {
    database: Database,
}

impl SqlLimitStore {
    pub fn new(database: Database) -> Self {
        Self { database }
    }
}

/// The time of a change not yet seen: any real event is newer.
const NEVER: DateTime<Utc> = DateTime::UNIX_EPOCH;

fn occurred_at(event: &Event) -> DateTime<Utc> {
    event
        .occurred_at
        .as_ref()
        .and_then(|time| {
            DateTime::from_timestamp(time.seconds, u32::try_from(time.nanos).unwrap_or(0))
        })
        .unwrap_or_else(Utc::now)
}

/// A FinancialStatementSubmitted as `customer_statements` keeps it.
#[derive(Debug)]
struct StatementRow {
    statement_id: String,
    fiscal_year: i32,
    fiscal_quarter: i32,
    version: i32,
    period_end_date: String,
    period_months: i32,
    currency: Currency,
    equity: Decimal,
    revenue: Decimal,
}

/// The statement's figures, checked; `Err` says why limits cannot propose from them (an
/// event published before intake sent its figures has no currency).
fn statement_row(
    submitted: &credit_proto::v1::FinancialStatementSubmitted,
) -> Result<StatementRow, String> {
    let currency =
        Currency::parse(&submitted.currency).map_err(|error| format!("currency: {error}"))?;
    let figure = |name: &str, wire: Option<&credit_proto::v1::Money>| {
        let money = wire
            .ok_or_else(|| format!("{name} is missing"))
            .and_then(|wire| {
                credit_core::Money::try_from(wire).map_err(|error| format!("{name}: {error}"))
            })?;
        if money.currency() != currency {
            return Err(format!(
                "{name} is in {}, the statement in {currency}",
                money.currency()
            ));
        }
        Ok(money.amount())
    };
    let equity = figure("equity", submitted.equity.as_ref())?;
    let revenue = figure("revenue", submitted.revenue.as_ref())?;
    if submitted.period_months <= 0 {
        return Err("period_months is not positive".to_owned());
    }
    let period_end = submitted
        .period_end_date
        .as_ref()
        .and_then(|date| {
            chrono::NaiveDate::from_ymd_opt(
                date.year,
                u32::try_from(date.month).ok()?,
                u32::try_from(date.day).ok()?,
            )
        })
        .ok_or_else(|| "period_end_date is not a calendar date".to_owned())?;
    Ok(StatementRow {
        statement_id: submitted.statement_id.clone(),
        fiscal_year: submitted.fiscal_year,
        fiscal_quarter: submitted.fiscal_quarter,
        version: submitted.version,
        period_end_date: period_end.format("%Y-%m-%d").to_string(),
        period_months: submitted.period_months,
        currency,
        equity,
        revenue,
    })
}

/// Keeps a customer's latest statement: a newer version of the row's period replaces it;
/// another period only when it ends later, or on the same day covers more months (a year's
/// revenue averages out a season). So the row ends up the same whatever order the events
/// arrive in.
const UPSERT_LATEST_STATEMENT: &str = "\
INSERT INTO customer_statements (customer_id, statement_id, fiscal_year, fiscal_quarter, version, \
    period_end_date, period_months, currency, equity, revenue, submitted_at) \
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) \
ON CONFLICT (customer_id) DO UPDATE SET \
    statement_id = excluded.statement_id, fiscal_year = excluded.fiscal_year, \
    fiscal_quarter = excluded.fiscal_quarter, version = excluded.version, \
    period_end_date = excluded.period_end_date, period_months = excluded.period_months, \
    currency = excluded.currency, equity = excluded.equity, revenue = excluded.revenue, \
    submitted_at = excluded.submitted_at \
WHERE (customer_statements.fiscal_year = excluded.fiscal_year \
        AND customer_statements.fiscal_quarter = excluded.fiscal_quarter \
        AND customer_statements.version < excluded.version) \
    OR ((customer_statements.fiscal_year <> excluded.fiscal_year \
            OR customer_statements.fiscal_quarter <> excluded.fiscal_quarter) \
        AND (customer_statements.period_end_date < excluded.period_end_date \
            OR (customer_statements.period_end_date = excluded.period_end_date \
                AND customer_statements.period_months < excluded.period_months)))";

fn status_name(status: i32) -> String {
    credit_proto::v1::CustomerStatus::try_from(status)
        .map(|status| {
            status
                .as_str_name()
                .trim_start_matches("CUSTOMER_STATUS_")
                .to_owned()
        })
        .unwrap_or_else(|_| "UNSPECIFIED".to_owned())
}

#[async_trait]
impl LimitStore for SqlLimitStore {
    async fn apply_customer_event(&self, consumer: &str, event: &Event) -> StoreResult<()> {
        // Most events on the stream are not about customers (every referral, hold and limit
        // change is one): they are skipped without a write.
        if !matches!(
            event.payload,
            Some(
                Payload::CustomerRegistered(_)
                    | Payload::CustomerStatusChanged(_)
                    | Payload::GroupMembershipChanged(_)
                    | Payload::RatingChanged(_)
                    | Payload::InvoiceOverdue(_)
                    | Payload::FinancialStatementSubmitted(_)
            )
        ) {
            return Ok(());
        }
        let at = occurred_at(event);
        on_database!(&self.database, |pool, sql, begin_write| {
            let mut tx = pool.begin_with(begin_write).await?;
            let first_time = sqlx::query(&sql(
                "INSERT INTO processed_events (consumer, event_id) VALUES ($1, $2) ON CONFLICT DO NOTHING",
            ))
            .bind(consumer)
            .bind(&event.event_id)
            .execute(&mut *tx)
            .await?
            .rows_affected()
                == 1;
            if !first_time {
                return Ok(());
            }
            // Each change is applied only when newer than what the row holds, so events of
            // one customer that arrive out of order still leave the newest state.
            match &event.payload {
                Some(Payload::CustomerRegistered(registered)) => {
                    sqlx::query(&sql(
                        "INSERT INTO customer_profiles (customer_id, status, status_changed_at, group_id, group_changed_at) \
                         VALUES ($1, $2, $3, NULL, $4) ON CONFLICT (customer_id) DO NOTHING",
                    ))
                    .bind(&registered.customer_id)
                    .bind(status_name(registered.status))
                    .bind(at)
                    .bind(NEVER)
                    .execute(&mut *tx)
                    .await?;
                }
                Some(Payload::CustomerStatusChanged(changed)) => {
                    sqlx::query(&sql(
                        "INSERT INTO customer_profiles (customer_id, status, status_changed_at, group_id, group_changed_at) \
                         VALUES ($1, $2, $3, NULL, $4) ON CONFLICT (customer_id) DO UPDATE \
                         SET status = excluded.status, status_changed_at = excluded.status_changed_at \
                         WHERE customer_profiles.status_changed_at <= excluded.status_changed_at",
                    ))
                    .bind(&changed.customer_id)
                    .bind(status_name(changed.status))
                    .bind(at)
                    .bind(NEVER)
                    .execute(&mut *tx)
                    .await?;
                }
                Some(Payload::GroupMembershipChanged(changed)) => {
                    let joined =
                        changed.change == credit_proto::v1::GroupMembershipChange::Added as i32;
                    let group_id = joined.then(|| changed.group_id.clone());
                    sqlx::query(&sql(
                        "INSERT INTO customer_profiles (customer_id, status, status_changed_at, group_id, group_changed_at) \
                         VALUES ($1, 'PROSPECT', $2, $3, $4) ON CONFLICT (customer_id) DO UPDATE \
                         SET group_id = excluded.group_id, group_changed_at = excluded.group_changed_at \
                         WHERE customer_profiles.group_changed_at <= excluded.group_changed_at",
                    ))
                    .bind(&changed.customer_id)
                    .bind(NEVER)
                    .bind(group_id)
                    .bind(at)
                    .execute(&mut *tx)
                    .await?;
                }
                Some(Payload::InvoiceOverdue(overdue)) => {
                    sqlx::query(&sql(
                        "INSERT INTO customer_profiles (customer_id, status, status_changed_at, group_id, group_changed_at, oldest_overdue_days, overdue_changed_at) \
                         VALUES ($1, 'PROSPECT', $2, NULL, $2, $3, $4) ON CONFLICT (customer_id) DO UPDATE \
                         SET oldest_overdue_days = excluded.oldest_overdue_days, overdue_changed_at = excluded.overdue_changed_at \
                         WHERE customer_profiles.overdue_changed_at <= excluded.overdue_changed_at",
                    ))
                    .bind(&overdue.customer_id)
                    .bind(NEVER)
                    .bind(overdue.oldest_overdue_days.max(0))
                    .bind(at)
                    .execute(&mut *tx)
                    .await?;
                }
                Some(Payload::RatingChanged(changed)) => {
                    let next_review_date = changed.next_review_date.as_ref().and_then(|date| {
                        chrono::NaiveDate::from_ymd_opt(
                            date.year,
                            u32::try_from(date.month).ok()?,
                            u32::try_from(date.day).ok()?,
                        )
                    });
                    sqlx::query(&sql(
                        "INSERT INTO customer_profiles (customer_id, status, status_changed_at, group_id, group_changed_at, rating_id, grade, next_review_date, rating_changed_at) \
                         VALUES ($1, 'PROSPECT', $2, NULL, $2, $3, $4, $5, $6) ON CONFLICT (customer_id) DO UPDATE \
                         SET rating_id = excluded.rating_id, grade = excluded.grade, \
                             next_review_date = excluded.next_review_date, rating_changed_at = excluded.rating_changed_at \
                         WHERE customer_profiles.rating_changed_at <= excluded.rating_changed_at",
                    ))
                    .bind(&changed.customer_id)
                    .bind(NEVER)
                    .bind(&changed.rating_id)
                    .bind(&changed.grade)
                    .bind(next_review_date.map(|date| date.format("%Y-%m-%d").to_string()))
                    .bind(at)
                    .execute(&mut *tx)
                    .await?;
                }
                Some(Payload::FinancialStatementSubmitted(submitted)) => {
                    match statement_row(submitted) {
                        Ok(row) => {
                            sqlx::query(&sql(UPSERT_LATEST_STATEMENT))
                                .bind(&submitted.customer_id)
                                .bind(&row.statement_id)
                                .bind(row.fiscal_year)
                                .bind(row.fiscal_quarter)
                                .bind(row.version)
                                .bind(&row.period_end_date)
                                .bind(row.period_months)
                                .bind(row.currency.code())
                                .bind(row.equity.to_string())
                                .bind(row.revenue.to_string())
                                .bind(at)
                                .execute(&mut *tx)
                                .await?;
                        }
                        // Retrying cannot make the figures readable: the event is recorded as
                        // processed and the customer's proposals go on without it.
                        Err(problem) => tracing::warn!(
                            customer_id = %submitted.customer_id,
                            statement_id = %submitted.statement_id,
                            %problem,
                            "a financial statement event without usable figures is not projected"
                        ),
                    }
                }
                _ => {}
            }
            tx.commit().await?;
            Ok(())
        })
    }

    async fn customer(&self, customer_id: &str) -> StoreResult<Option<CustomerFacts>> {
        on_database!(&self.database, |pool, sql| {
            let row = sqlx::query(&sql(
                "SELECT customer_id, status, group_id, rating_id, grade, next_review_date, oldest_overdue_days FROM customer_profiles WHERE customer_id = $1",
            ))
            .bind(customer_id)
            .fetch_optional(pool)
            .await?;
            let Some(row) = row else { return Ok(None) };
            let rating_id: Option<String> = row.try_get(3)?;
            let grade: Option<String> = row.try_get(4)?;
            let next_review_date: Option<String> = row.try_get(5)?;
            let oldest_overdue_days: i32 = row.try_get(6)?;
            Ok(Some(CustomerFacts {
                oldest_overdue_days: u32::try_from(oldest_overdue_days).unwrap_or(0),
                customer_id: row.try_get(0)?,
                status: row.try_get(1)?,
                group_id: row.try_get(2)?,
                rating: rating_id.zip(grade).map(|(rating_id, grade)| RatingFacts {
                    rating_id,
                    grade,
                    next_review_date: next_review_date
                        .and_then(|date| chrono::NaiveDate::parse_from_str(&date, "%Y-%m-%d").ok()),
                }),
            }))
        })
    }

    async fn latest_statement(&self, customer_id: &str) -> StoreResult<Option<LatestStatement>> {
        let row = on_database!(&self.database, |pool, sql| {
            let row = sqlx::query(&sql(
                "SELECT statement_id, period_end_date, period_months, currency, equity, revenue FROM customer_statements WHERE customer_id = $1",
            ))
            .bind(customer_id)
            .fetch_optional(pool)
            .await?;
            row.map(|row| {
                Ok::<_, StoreError>((
                    row.try_get::<String, _>(0)?,
                    row.try_get::<String, _>(1)?,
                    row.try_get::<i32, _>(2)?,
                    row.try_get::<String, _>(3)?,
                    row.try_get::<String, _>(4)?,
                    row.try_get::<String, _>(5)?,
                ))
            })
            .transpose()
        })?;
        let Some((statement_id, period_end, period_months, currency, equity, revenue)) = row else {
            return Ok(None);
        };
        let corrupt = || StoreError::Corrupt(format!("statement {statement_id} of {customer_id}"));
        let currency = Currency::parse(&currency).map_err(|_| corrupt())?;
        let amount = |text: &str| {
            Decimal::from_str_exact(text)
                .map(|amount| credit_core::Money::new(amount, currency))
                .map_err(|_| corrupt())
        };
        Ok(Some(LatestStatement {
            period_end: chrono::NaiveDate::parse_from_str(&period_end, "%Y-%m-%d")
                .map_err(|_| corrupt())?,
            period_months: u32::try_from(period_months).map_err(|_| corrupt())?,
            equity: amount(&equity)?,
            revenue: amount(&revenue)?,
            statement_id,
        }))
    }

    async fn group_known(&self, group_id: &str) -> StoreResult<bool> {
        on_database!(&self.database, |pool, sql| {
            let found: Option<String> = sqlx::query_scalar(&sql(
                "SELECT customer_id FROM customer_profiles WHERE group_id = $1 LIMIT 1",
            ))
            .bind(group_id)
            .fetch_optional(pool)
            .await?;
            Ok(found.is_some())
        })
    }

    async fn group_members(&self, group_id: &str) -> StoreResult<Vec<String>> {
        on_database!(&self.database, |pool, sql| {
            Ok(sqlx::query_scalar(&sql(
                "SELECT customer_id FROM customer_profiles WHERE group_id = $1 ORDER BY customer_id",
            ))
            .bind(group_id)
            .fetch_all(pool)
            .await?)
        })
    }

    async fn customers_after(
        &self,
        after_customer_id: &str,
        limit: i64,
    ) -> StoreResult<Vec<CustomerFacts>> {
        on_database!(&self.database, |pool, sql| {
            let rows = sqlx::query(&sql(
                "SELECT customer_id, status, group_id FROM customer_profiles \
                 WHERE customer_id > $1 ORDER BY customer_id LIMIT $2",
            ))
            .bind(after_customer_id)
            .bind(limit)
            .fetch_all(pool)
            .await?;
            rows.into_iter()
                .map(|row| {
                    Ok(CustomerFacts {
                        customer_id: row.try_get(0)?,
                        status: row.try_get(1)?,
                        group_id: row.try_get(2)?,
                        // Reconciliation needs only ids and groups.
                        rating: None,
                        oldest_overdue_days: 0,
                    })
                })
                .collect()
        })
    }

    async fn create_limit_request(
        &self,
        request: &LimitRequest,
        key: &IdempotencyKey,
    ) -> StoreResult<Outcome<LimitRequest>> {
        retry_once_on_race(|| async {
            on_database!(&self.database, |pool, sql, begin_write| {
                let mut tx = pool.begin_with(begin_write).await?;
                if let Some(existing_id) = lookup_idempotency_key!(tx, sql, key)?.into_replay()? {
                    let row = sqlx::query(&sql("SELECT document FROM limit_requests WHERE id = $1"))
                        .bind(&existing_id)
                        .fetch_one(&mut *tx)
                        .await?;
                    let existing: Json<LimitRequest> = row.try_get(0)?;
                    return Ok(Outcome::Replayed(existing.0));
                }
                sqlx::query(&sql(
                    "INSERT INTO limit_requests (id, scope_key, status, document, requested_at) VALUES ($1, $2, $3, $4, $5)",
                ))
                .bind(&request.id)
                .bind(request.scope.key())
                .bind(request.status.as_str())
                .bind(Json(request))
                .bind(request.requested_at)
                .execute(&mut *tx)
                .await?;
                insert_idempotency_key!(tx, sql, key, &request.id, request.requested_at)?;
                tx.commit().await?;
                Ok(Outcome::New(request.clone()))
            })
        })
        .await
    }

    async fn limit_request(&self, id: &str) -> StoreResult<Option<LimitRequest>> {
        on_database!(&self.database, |pool, sql| {
            let row = sqlx::query(&sql("SELECT document FROM limit_requests WHERE id = $1"))
                .bind(id)
                .fetch_optional(pool)
                .await?;
            let Some(row) = row else { return Ok(None) };
            let request: Json<LimitRequest> = row.try_get(0)?;
            Ok(Some(request.0))
        })
    }

    async fn list_limit_requests(
        &self,
        scope: Option<&Scope>,
        status: Option<RequestStatus>,
        page: &Page,
    ) -> StoreResult<Vec<LimitRequest>> {
        let scope_key = scope.map(Scope::key).unwrap_or_default();
        let status = status.map(|status| status.as_str()).unwrap_or_default();
        on_database!(&self.database, |pool, sql| {
            let rows = sqlx::query(&sql(
                "SELECT document FROM limit_requests WHERE id > $1 AND ($2 = '' OR scope_key = $2) \
                 AND ($3 = '' OR status = $3) ORDER BY id LIMIT $4",
            ))
            .bind(page.after.as_deref().unwrap_or(""))
            .bind(&scope_key)
            .bind(status)
            .bind(page.fetch_limit())
            .fetch_all(pool)
            .await?;
            rows.into_iter()
                .map(|row| Ok(row.try_get::<Json<LimitRequest>, _>(0)?.0))
                .collect()
        })
    }

    async fn decide(
        &self,
        decided: &LimitRequest,
        key: &IdempotencyKey,
        approval: Option<&Approval>,
    ) -> StoreResult<Outcome<LimitRequest>> {
        let now = decided.decided_at.unwrap_or_else(Utc::now);
        on_database!(&self.database, |pool, sql, begin_write| {
            let mut tx = pool.begin_with(begin_write).await?;
            if let Some(existing_id) = lookup_idempotency_key!(tx, sql, key)?.into_replay()? {
                let row = sqlx::query(&sql("SELECT document FROM limit_requests WHERE id = $1"))
                    .bind(&existing_id)
                    .fetch_one(&mut *tx)
                    .await?;
                return Ok(Outcome::Replayed(
                    row.try_get::<Json<LimitRequest>, _>(0)?.0,
                ));
            }
            let updated = sqlx::query(&sql("UPDATE limit_requests SET status = $1, document = $2 WHERE id = $3 AND status = $4"))
                .bind(decided.status.as_str())
                .bind(Json(decided))
                .bind(&decided.id)
                .bind(RequestStatus::Pending.as_str())
                .execute(&mut *tx)
                .await?;
            if updated.rows_affected() != 1 {
                return Err(StoreError::NotPending);
            }
            if let Some(approval) = approval
                && matches!(approval.limit.scope, Scope::Customer(_))
            {
                // Queue behind every other approval of a customer limit, then check the cap
                // against what they granted (see migration 0014).
                sqlx::query(&sql(
                    "UPDATE portfolio_cap_lock SET approvals = approvals + 1 WHERE id = 1",
                ))
                .execute(&mut *tx)
                .await?;
                // The cap and every customer limit, read under the lock (an approval is a
                // person's decision: reading them all is cheap at that pace).
                let limits: Vec<CreditLimit> = sqlx::query(&sql(
                    "SELECT document FROM credit_limits WHERE status = $1 AND (scope_key = $2 OR scope_key LIKE 'customer:%')",
                ))
                .bind("ACTIVE")
                .bind(Scope::Portfolio.key())
                .fetch_all(&mut *tx)
                .await?
                .into_iter()
                .map(|row| row.try_get::<Json<CreditLimit>, _>(0).map(|json| json.0))
                .collect::<Result<_, _>>()?;
                let (portfolio, customer_limits): (Vec<_>, Vec<_>) = limits
                    .into_iter()
                    .partition(|limit| limit.scope == Scope::Portfolio);
                crate::domain::limits::check_portfolio(
                    &portfolio,
                    customer_limits,
                    &approval.limit.scope,
                    &approval.limit.amount,
                    now,
                )
                .map_err(|refused| StoreError::Refused(Box::new(refused)))?;
            }
            if let Some(approval) = approval {
                for limit_id in &approval.superseded {
                    let row = sqlx::query(&sql("SELECT document FROM credit_limits WHERE id = $1"))
                        .bind(limit_id)
                        .fetch_one(&mut *tx)
                        .await?;
                    let mut old: Json<CreditLimit> = row.try_get(0)?;
                    old.0.status = LimitStatus::Superseded;
                    sqlx::query(&sql(
                        "UPDATE credit_limits SET status = $1, document = $2 WHERE id = $3",
                    ))
                    .bind("SUPERSEDED")
                    .bind(Json(&old.0))
                    .bind(limit_id)
                    .execute(&mut *tx)
                    .await?;
                }
                let limit = &approval.limit;
                sqlx::query(&sql(
                    "INSERT INTO credit_limits (id, scope_key, status, temporary, document, granted_at) VALUES ($1, $2, $3, $4, $5, $6)",
                ))
                .bind(&limit.id)
                .bind(limit.scope.key())
                .bind("ACTIVE")
                .bind(limit.temporary)
                .bind(Json(limit))
                .bind(limit.granted_at)
                .execute(&mut *tx)
                .await?;
                sqlx::query(&sql("INSERT INTO limit_history (id, scope_key, document, changed_at) VALUES ($1, $2, $3, $4)"))
                    .bind(&approval.history.id)
                    .bind(approval.history.scope.key())
                    .bind(Json(&approval.history))
                    .bind(approval.history.changed_at)
                    .execute(&mut *tx)
                    .await?;
                insert_outbox_event!(tx, sql, &approval.event)?;
            }
            insert_idempotency_key!(tx, sql, key, &decided.id, now)?;
            tx.commit().await?;
            Ok(Outcome::New(decided.clone()))
        })
    }

    async fn limits(&self, scope: &Scope) -> StoreResult<Vec<CreditLimit>> {
        on_database!(&self.database, |pool, sql| {
            let rows = sqlx::query(&sql(
                "SELECT document FROM credit_limits WHERE scope_key = $1 AND status = $2 ORDER BY granted_at, id",
            ))
            .bind(scope.key())
            .bind("ACTIVE")
            .fetch_all(pool)
            .await?;
            rows.into_iter()
                .map(|row| Ok(row.try_get::<Json<CreditLimit>, _>(0)?.0))
                .collect()
        })
    }

    async fn customer_limits(&self) -> StoreResult<Vec<CreditLimit>> {
        on_database!(&self.database, |pool, sql| {
            let rows = sqlx::query(&sql(
                "SELECT document FROM credit_limits WHERE scope_key LIKE 'customer:%' AND status = $1 ORDER BY granted_at, id",
            ))
            .bind("ACTIVE")
            .fetch_all(pool)
            .await?;
            rows.into_iter()
                .map(|row| Ok(row.try_get::<Json<CreditLimit>, _>(0)?.0))
                .collect()
        })
    }

    async fn history(&self, scope: &Scope, page: &Page) -> StoreResult<Vec<HistoryEntry>> {
        on_database!(&self.database, |pool, sql| {
            let rows = sqlx::query(&sql(
                "SELECT document FROM limit_history WHERE scope_key = $1 AND id > $2 ORDER BY id LIMIT $3",
            ))
            .bind(scope.key())
            .bind(page.after.as_deref().unwrap_or(""))
            .bind(page.fetch_limit())
            .fetch_all(pool)
            .await?;
            rows.into_iter()
                .map(|row| Ok(row.try_get::<Json<HistoryEntry>, _>(0)?.0))
                .collect()
        })
    }

    async fn blocks(&self, customer_id: &str) -> StoreResult<Vec<CreditBlock>> {
        on_database!(&self.database, |pool, sql| {
            let rows = sqlx::query(&sql(
                "SELECT document FROM credit_blocks WHERE customer_id = $1 ORDER BY set_at, block_type",
            ))
            .bind(customer_id)
            .fetch_all(pool)
            .await?;
            rows.into_iter()
                .map(|row| Ok(row.try_get::<Json<CreditBlock>, _>(0)?.0))
                .collect()
        })
    }

    async fn set_block(&self, block: &CreditBlock, event: &Event) -> StoreResult<bool> {
        on_database!(&self.database, |pool, sql, begin_write| {
            let mut tx = pool.begin_with(begin_write).await?;
            let inserted = sqlx::query(&sql(
                "INSERT INTO credit_blocks (customer_id, block_type, document, set_at) VALUES ($1, $2, $3, $4) \
                 ON CONFLICT (customer_id, block_type) DO NOTHING",
            ))
            .bind(&block.customer_id)
            .bind(&block.block_type)
            .bind(Json(block))
            .bind(block.set_at)
            .execute(&mut *tx)
            .await?
            .rows_affected()
                == 1;
            if inserted {
                insert_outbox_event!(tx, sql, event)?;
            }
            tx.commit().await?;
            Ok(inserted)
        })
    }

    async fn clear_block(
        &self,
        customer_id: &str,
        block_type: &str,
        event: &Event,
    ) -> StoreResult<bool> {
        on_database!(&self.database, |pool, sql, begin_write| {
            let mut tx = pool.begin_with(begin_write).await?;
            let deleted = sqlx::query(&sql(
                "DELETE FROM credit_blocks WHERE customer_id = $1 AND block_type = $2",
            ))
            .bind(customer_id)
            .bind(block_type)
            .execute(&mut *tx)
            .await?
            .rows_affected()
                == 1;
            if deleted {
                insert_outbox_event!(tx, sql, event)?;
            }
            tx.commit().await?;
            Ok(deleted)
        })
    }

    async fn set_fx_rate(
        &self,
        rate: &FxRate,
        key: &IdempotencyKey,
    ) -> StoreResult<Outcome<FxRate>> {
        // The key remembers the row by its primary key: pair and effective time.
        let row_id = format!(
            "{}/{}/{}",
            rate.base.code(),
            rate.quote.code(),
            rate.effective_at.to_rfc3339()
        );
        retry_once_on_race(|| async {
            on_database!(&self.database, |pool, sql, begin_write| {
                let mut tx = pool.begin_with(begin_write).await?;
                if let Some(existing) = lookup_idempotency_key!(tx, sql, key)?.into_replay()? {
                    let mut parts = existing.splitn(3, '/');
                    let (Some(base), Some(quote), Some(effective_at)) =
                        (parts.next(), parts.next(), parts.next())
                    else {
                        return Err(StoreError::Corrupt(format!("fx rate key {existing}")));
                    };
                    let effective_at = DateTime::parse_from_rfc3339(effective_at)
                        .map_err(|_| StoreError::Corrupt(format!("fx rate key {existing}")))?
                        .with_timezone(&Utc);
                    let row = sqlx::query(&sql(
                        "SELECT document FROM fx_rates WHERE base_currency = $1 AND quote_currency = $2 AND effective_at = $3",
                    ))
                    .bind(base)
                    .bind(quote)
                    .bind(effective_at)
                    .fetch_one(&mut *tx)
                    .await?;
                    return Ok(Outcome::Replayed(row.try_get::<Json<FxRate>, _>(0)?.0));
                }
                sqlx::query(&sql(
                    "INSERT INTO fx_rates (base_currency, quote_currency, effective_at, document) VALUES ($1, $2, $3, $4) \
                     ON CONFLICT (base_currency, quote_currency, effective_at) DO UPDATE SET document = excluded.document",
                ))
                .bind(rate.base.code())
                .bind(rate.quote.code())
                .bind(rate.effective_at)
                .bind(Json(rate))
                .execute(&mut *tx)
                .await?;
                insert_idempotency_key!(tx, sql, key, &row_id, rate.set_at)?;
                tx.commit().await?;
                Ok(Outcome::New(rate.clone()))
            })
        })
        .await
    }

    async fn fx_rate(
        &self,
        base: Currency,
        quote: Currency,
        at: DateTime<Utc>,
    ) -> StoreResult<Option<Decimal>> {
        let newest = |from: Currency, to: Currency| async move {
            on_database!(&self.database, |pool, sql| {
                let row = sqlx::query(&sql(
                    "SELECT document FROM fx_rates WHERE base_currency = $1 AND quote_currency = $2 \
                     AND effective_at <= $3 ORDER BY effective_at DESC LIMIT 1",
                ))
                .bind(from.code())
                .bind(to.code())
                .bind(at)
                .fetch_optional(pool)
                .await?;
                row.map(|row| Ok::<_, StoreError>(row.try_get::<Json<FxRate>, _>(0)?.0.rate))
                    .transpose()
            })
        };
        let direct = newest(base, quote).await?;
        if direct.is_some() {
            return Ok(direct);
        }
        Ok(fx::conversion_rate(None, newest(quote, base).await?))
    }

    async fn fx_rates(
        &self,
        base: Option<Currency>,
        quote: Option<Currency>,
    ) -> StoreResult<Vec<FxRate>> {
        let base = base.map(|currency| currency.code()).unwrap_or_default();
        let quote = quote.map(|currency| currency.code()).unwrap_or_default();
        on_database!(&self.database, |pool, sql| {
            let rows = sqlx::query(&sql(
                "SELECT document FROM fx_rates WHERE ($1 = '' OR base_currency = $1) AND ($2 = '' OR quote_currency = $2) \
                 ORDER BY base_currency, quote_currency, effective_at DESC",
            ))
            .bind(base)
            .bind(quote)
            .fetch_all(pool)
            .await?;
            rows.into_iter()
                .map(|row| Ok(row.try_get::<Json<FxRate>, _>(0)?.0))
                .collect()
        })
    }

    async fn policy(&self) -> StoreResult<Option<CreditPolicy>> {
        on_database!(&self.database, |pool, sql| {
            let row = sqlx::query(&sql("SELECT document FROM credit_policy WHERE id = 1"))
                .fetch_optional(pool)
                .await?;
            row.map(|row| Ok::<_, StoreError>(row.try_get::<Json<CreditPolicy>, _>(0)?.0))
                .transpose()
        })
    }

    async fn save_policy(&self, policy: &CreditPolicy, expected_version: u64) -> StoreResult<bool> {
        let updated_at = policy
            .last_change
            .as_ref()
            .map_or_else(Utc::now, |change| change.changed_at);
        let expected = expected_version.to_string();
        on_database!(&self.database, |pool, sql, begin_write| {
            let mut tx = pool.begin_with(begin_write).await?;
            // The shipped default has version 0 and no row; the first change inserts it.
            let written = if expected_version == 0 {
                sqlx::query(&sql(
                    "INSERT INTO credit_policy (id, etag, document, updated_at) VALUES (1, $1, $2, $3) \
                     ON CONFLICT (id) DO NOTHING",
                ))
                .bind(policy.version.to_string())
                .bind(Json(policy))
                .bind(updated_at)
                .execute(&mut *tx)
                .await?
            } else {
                sqlx::query(&sql(
                    "UPDATE credit_policy SET etag = $1, document = $2, updated_at = $3 WHERE id = 1 AND etag = $4",
                ))
                .bind(policy.version.to_string())
                .bind(Json(policy))
                .bind(updated_at)
                .bind(&expected)
                .execute(&mut *tx)
                .await?
            }
            .rows_affected()
                == 1;
            tx.commit().await?;
            Ok(written)
        })
    }

    async fn terms(&self, customer_id: &str) -> StoreResult<Option<CustomerTerms>> {
        on_database!(&self.database, |pool, sql| {
            let row = sqlx::query(&sql(
                "SELECT document FROM credit_terms WHERE customer_id = $1",
            ))
            .bind(customer_id)
            .fetch_optional(pool)
            .await?;
            row.map(|row| Ok::<_, StoreError>(row.try_get::<Json<CustomerTerms>, _>(0)?.0))
                .transpose()
        })
    }

    async fn save_terms(&self, terms: &CustomerTerms) -> StoreResult<()> {
        on_database!(&self.database, |pool, sql| {
            sqlx::query(&sql(
                "INSERT INTO credit_terms (customer_id, document, updated_at) VALUES ($1, $2, $3) \
                 ON CONFLICT (customer_id) DO UPDATE SET document = excluded.document, updated_at = excluded.updated_at",
            ))
            .bind(&terms.customer_id)
            .bind(Json(terms))
            .bind(terms.changed_at)
            .execute(pool)
            .await?;
            Ok(())
        })
    }
}
