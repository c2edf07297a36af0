//! Intake's persistence: the [`IntakeStore`] trait, and its SQL implementation that runs on
//! PostgreSQL and on the embedded SQLite file (one body, compiled for each, through
//! `on_database!`). Every change commits together with its audit entry and its outbox event.

use async_trait::async_trait;
use chrono::NaiveDate;
use credit_proto::v1::Event;
use credit_runtime::Database;
use credit_runtime::on_database;
use credit_runtime::sql::{
    IdempotencyKey, KeyReused, MaybeRace, Page, is_unique_violation, retry_once_on_race,
};
use credit_runtime::{insert_idempotency_key, insert_outbox_event, lookup_idempotency_key};
use sqlx::Row;
use sqlx::types::Json;

use crate::domain::customer::{Customer, CustomerKind, CustomerStatus};
use crate::domain::records::{AuditEntry, BureauReport, Group, StatementRecord, TradeReference};
use crate::domain::statement::PeriodType;

/// A create's outcome: made now, or made by an earlier call with the same key.
#[derive(Debug, Clone, PartialEq)]
pub enum Created<T> {
    New(T),
    Replayed(T),
}

impl<T> Created<T> {
    pub fn into_inner(self) -> T {
        match self {
            Created::New(value) | Created::Replayed(value) => value,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("an enterprise with this registration number exists: {existing_id}")]
    DuplicateRegistration { existing_id: String },
    #[error(transparent)]
    KeyReused(#[from] KeyReused),
    #[error("the record changed since it was read")]
    VersionConflict,
    #[error("{0} not found")]
    NotFound(&'static str),
    #[error("a stored record does not decode: {0}")]
    Corrupt(String),
    /// The page token's key is not one this list makes (see [`statement_list_key`]).
    #[error("the page token does not belong to this list")]
    InvalidPageToken,
    #[error(transparent)]
    Database(#[from] sqlx::Error),
}

pub type StoreResult<T> = Result<T, StoreError>;

impl MaybeRace for StoreError {
    fn is_race(&self) -> bool {
        matches!(self, StoreError::Database(error) if is_unique_violation(error))
    }
}

/// Filters of `ListCustomers`; empty means "any".
#[derive(Debug, Clone, Default)]
pub struct CustomerFilter {
    pub statuses: Vec<CustomerStatus>,
    pub kind: Option<CustomerKind>,
    pub industry_code: String,
    pub country: String,
    pub group_id: String,
    /// Lower-case prefix of the display name.
    pub name_prefix: String,
    pub registration_number: String,
    pub external_reference: String,
}

#[async_trait]
pub trait IntakeStore: Send + Sync + std::fmt::Debug {
    /// How many writes are worth running at once: several on PostgreSQL, one on SQLite, whose
    /// single writer would only make concurrent writers wait on its lock.
    fn write_concurrency(&self) -> usize;

    /// Inserts a new customer, unless `key` was used before (then the first customer is
    /// returned, or `KeyReused`) or an enterprise with its registration number exists
    /// (`DuplicateRegistration`). Nothing is written in either case.
    async fn create_customer(
        &self,
        customer: &Customer,
        key: &IdempotencyKey,
        audit: &AuditEntry,
        event: &Event,
    ) -> StoreResult<Created<Customer>>;

    async fn get_customer(&self, id: &str) -> StoreResult<Option<Customer>>;

    /// Replaces a customer whose stored version is `expected_version`, with its audit entry
    /// and events, or fails with `VersionConflict`.
    async fn save_customer(
        &self,
        customer: &Customer,
        expected_version: i64,
        audit: &AuditEntry,
        events: &[Event],
    ) -> StoreResult<()>;

    /// Customers matching `filter`, in id (creation) order, after `page.after`, at most
    /// `page.fetch_limit()` of them.
    async fn list_customers(
        &self,
        filter: &CustomerFilter,
        page: &Page,
    ) -> StoreResult<Vec<Customer>>;

    async fn create_group(
        &self,
        group: &Group,
        key: &IdempotencyKey,
    ) -> StoreResult<Created<Group>>;
    async fn get_group(&self, id: &str) -> StoreResult<Option<Group>>;
    async fn list_groups(&self, name_prefix: &str, page: &Page) -> StoreResult<Vec<Group>>;

    /// Stores a statement as the next version of its period (marking earlier versions
    /// superseded); `version` of the argument is ignored and set here. `make_event` builds the
    /// event from the stored record, so it carries the version.
    async fn add_statement(
        &self,
        statement: &StatementRecord,
        key: &IdempotencyKey,
        audit: &AuditEntry,
        make_event: &(dyn for<'record> Fn(&'record StatementRecord) -> Event + Send + Sync),
    ) -> StoreResult<Created<StatementRecord>>;
    async fn get_statement(&self, id: &str) -> StoreResult<Option<StatementRecord>>;
    /// A customer's statements, newest period end first, then highest version first, after
    /// `page.after` (a [`statement_list_key`]), at most `page.fetch_limit()` of them.
    async fn list_statements(
        &self,
        customer_id: &str,
        include_superseded: bool,
        period_type: Option<PeriodType>,
        page: &Page,
    ) -> StoreResult<Vec<StatementRecord>>;

    async fn add_bureau_report(
        &self,
        report: &BureauReport,
        key: &IdempotencyKey,
        audit: &AuditEntry,
        event: &Event,
    ) -> StoreResult<Created<BureauReport>>;
    /// A customer's bureau reports, newest report date first, after `page.after` (a
    /// [`bureau_report_list_key`]).
    async fn list_bureau_reports(
        &self,
        customer_id: &str,
        page: &Page,
    ) -> StoreResult<Vec<BureauReport>>;

    async fn add_trade_reference(
        &self,
        reference: &TradeReference,
        key: &IdempotencyKey,
        audit: &AuditEntry,
    ) -> StoreResult<Created<TradeReference>>;
    /// A customer's trade references, newest first, after `page.after` (the last id seen).
    async fn list_trade_references(
        &self,
        customer_id: &str,
        page: &Page,
    ) -> StoreResult<Vec<TradeReference>>;

    async fn list_audit(&self, customer_id: &str, page: &Page) -> StoreResult<Vec<AuditEntry>>;
}

/// The SQL store, on either backend.
#[derive(Debug, Clone)]
pub struct SqlIntakeStore {
    database: Database,
}

impl SqlIntakeStore {
    pub fn new(database: Database) -> Self {
        Self { database }
    }

    /// One page of the JSON documents a customer has in a table, by `query`, whose parameters
    /// are the customer id, the last id seen and the limit.
    async fn documents_of_customer<T: serde::de::DeserializeOwned + Send + 'static>(
        &self,
        query: &'static str,
        customer_id: &str,
        page: &Page,
    ) -> StoreResult<Vec<T>> {
        on_database!(&self.database, |pool, sql| {
            let rows = sqlx::query(&sql(query))
                .bind(customer_id)
                .bind(page.after.as_deref().unwrap_or(""))
                .bind(page.fetch_limit())
                .fetch_all(pool)
                .await?;
            documents(rows)
        })
    }
}

macro_rules! insert_audit {
    ($tx:expr, $sql:ident, $audit:expr) => {
        sqlx::query(&$sql(
            "INSERT INTO customer_audit (id, customer_id, document, changed_at) VALUES ($1, $2, $3, $4)",
        ))
        .bind(&$audit.id)
        .bind(&$audit.customer_id)
        .bind(Json($audit))
        .bind($audit.changed_at)
        .execute(&mut *$tx)
        .await?
    };
}

fn registration_column(customer: &Customer) -> Option<String> {
    customer.profile.registration_number().map(str::to_owned)
}

fn name_key(name: &str) -> String {
    name.to_lowercase()
}

/// `LIKE` pattern for "starts with `prefix`", with the wildcards in `prefix` escaped.
fn prefix_pattern(prefix: &str) -> String {
    let escaped = prefix
        .replace('\\', "\\\\")
        .replace('%', "\\%")
        .replace('_', "\\_");
    format!("{escaped}%")
}

/// Dates in the sort columns: "YYYY-MM-DD", the form serde writes into the documents (and
/// the migration copied from them), so that text order is date order on both backends.
fn date_column(date: NaiveDate) -> String {
    date.format("%Y-%m-%d").to_string()
}

/// A statement's place in `ListFinancialStatements` (newest period end first, then highest
/// version, then id): `period_end|version|id`. The last row's key is where the next page
/// starts.
pub fn statement_list_key(statement: &StatementRecord) -> String {
    format!(
        "{}|{}|{}",
        date_column(statement.period.period_end),
        statement.version,
        statement.id
    )
}

/// A bureau report's place in `ListBureauReports` (newest report date first, then id):
/// `report_date|id`.
pub fn bureau_report_list_key(report: &BureauReport) -> String {
    format!("{}|{}", date_column(report.report_date), report.id)
}

/// `(period_end, version, id)` of the last statement seen; `("", 0, "")` on the first page,
/// which the query reads as "from the top".
fn statement_cursor(after: Option<&str>) -> StoreResult<(&str, i32, &str)> {
    let Some(after) = after else {
        return Ok(("", 0, ""));
    };
    let (period_end, rest) = after.split_once('|').ok_or(StoreError::InvalidPageToken)?;
    let (version, id) = rest.split_once('|').ok_or(StoreError::InvalidPageToken)?;
    let version = version.parse().map_err(|_| StoreError::InvalidPageToken)?;
    if period_end.is_empty() || id.is_empty() {
        return Err(StoreError::InvalidPageToken);
    }
    Ok((period_end, version, id))
}

/// `(report_date, id)` of the last bureau report seen; `("", "")` on the first page.
fn bureau_report_cursor(after: Option<&str>) -> StoreResult<(&str, &str)> {
    let Some(after) = after else {
        return Ok(("", ""));
    };
    match after.split_once('|') {
        Some((report_date, id)) if !report_date.is_empty() && !id.is_empty() => {
            Ok((report_date, id))
        }
        _ => Err(StoreError::InvalidPageToken),
    }
}

/// Decodes rows of `(document)` into records.
fn documents<T: serde::de::DeserializeOwned, R: Row>(rows: Vec<R>) -> StoreResult<Vec<T>>
where
    for<'r> Json<T>: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    usize: sqlx::ColumnIndex<R>,
{
    rows.into_iter()
        .map(|row| {
            row.try_get::<Json<T>, _>(0usize)
                .map(|json| json.0)
                .map_err(StoreError::from)
        })
        .collect()
}

impl SqlIntakeStore {
    /// Stores a record of a customer's file kept whole as a document (a bureau report, a
    /// trade reference) with its idempotency key, audit entry and event, or replays the
    /// record an earlier call with the same key stored. `sort_column` is the value of the
    /// table's own list-order column (`$5` of its insert), for tables that have one.
    #[allow(
        clippy::too_many_arguments,
        reason = "one call per table, each names its parts"
    )]
    async fn add_customer_document<T>(
        &self,
        table: CustomerDocumentTable,
        (id, customer_id, created_at): (&str, &str, chrono::DateTime<chrono::Utc>),
        sort_column: Option<&str>,
        document: &T,
        key: &IdempotencyKey,
        audit: &AuditEntry,
        event: Option<&Event>,
    ) -> StoreResult<Created<T>>
    where
        T: serde::Serialize + serde::de::DeserializeOwned + Clone + Send + Sync + 'static,
    {
        retry_once_on_race(|| async {
            on_database!(&self.database, |pool, sql, begin_write| {
                let mut tx = pool.begin_with(begin_write).await?;
                if let Some(existing_id) = lookup_idempotency_key!(tx, sql, key)?.into_replay()? {
                    let row = sqlx::query(&sql(table.select_by_id))
                        .bind(&existing_id)
                        .fetch_one(&mut *tx)
                        .await?;
                    let existing: Json<T> = row.try_get(0)?;
                    return Ok(Created::Replayed(existing.0));
                }
                let insert_text = sql(table.insert);
                let mut insert = sqlx::query(&insert_text)
                    .bind(id)
                    .bind(customer_id)
                    .bind(Json(document))
                    .bind(created_at);
                if let Some(value) = sort_column {
                    insert = insert.bind(value);
                }
                insert.execute(&mut *tx).await?;
                insert_idempotency_key!(tx, sql, key, id, created_at)?;
                insert_audit!(tx, sql, audit);
                if let Some(event) = event {
                    insert_outbox_event!(tx, sql, event)?;
                }
                tx.commit().await?;
                Ok(Created::New(document.clone()))
            })
        })
        .await
    }
}

/// A table of `(id, customer_id, document, created_at)` rows, plus the list-order column
/// some have: part of a customer's file kept whole as a document.
#[derive(Debug, Clone, Copy)]
struct CustomerDocumentTable {
    select_by_id: &'static str,
    insert: &'static str,
}

impl CustomerDocumentTable {
    const BUREAU_REPORTS: Self = Self {
        select_by_id: "SELECT document FROM bureau_reports WHERE id = $1",
        insert: "INSERT INTO bureau_reports (id, customer_id, document, created_at, report_date) \
                 VALUES ($1, $2, $3, $4, $5)",
    };
    const TRADE_REFERENCES: Self = Self {
        select_by_id: "SELECT document FROM trade_references WHERE id = $1",
        insert: "INSERT INTO trade_references (id, customer_id, document, created_at) VALUES ($1, $2, $3, $4)",
    };
}

#[async_trait]
impl IntakeStore for SqlIntakeStore {
    fn write_concurrency(&self) -> usize {
        match self.database {
            Database::Postgres(_) => 4,
            Database::Sqlite(_) => 1,
        }
    }

    async fn create_customer(
        &self,
        customer: &Customer,
        key: &IdempotencyKey,
        audit: &AuditEntry,
        event: &Event,
    ) -> StoreResult<Created<Customer>> {
        retry_once_on_race(|| async {
            on_database!(&self.database, |pool, sql, begin_write| {
                let mut tx = pool.begin_with(begin_write).await?;
                if let Some(existing_id) = lookup_idempotency_key!(tx, sql, key)?.into_replay()? {
                    let row = sqlx::query(&sql("SELECT document FROM customers WHERE id = $1"))
                        .bind(&existing_id)
                        .fetch_one(&mut *tx)
                        .await?;
                    let existing: Json<Customer> = row.try_get(0)?;
                    return Ok(Created::Replayed(existing.0));
                }
                if let Some(registration_number) = registration_column(customer) {
                    let existing: Option<String> = sqlx::query_scalar(&sql(
                        "SELECT id FROM customers WHERE country = $1 AND registration_number = $2",
                    ))
                    .bind(&customer.country)
                    .bind(&registration_number)
                    .fetch_optional(&mut *tx)
                    .await?;
                    if let Some(existing_id) = existing {
                        return Err(StoreError::DuplicateRegistration { existing_id });
                    }
                }
                sqlx::query(&sql(
                    "INSERT INTO customers (id, kind, status, country, registration_number, name_key, industry_code, \
                     group_id, external_reference, version, document, created_at, updated_at) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)",
                ))
                .bind(&customer.id)
                .bind(customer.profile.kind().as_str())
                .bind(customer.status.as_str())
                .bind(&customer.country)
                .bind(registration_column(customer))
                .bind(name_key(customer.profile.display_name()))
                .bind(customer.profile.industry_code())
                .bind(&customer.group_id)
                .bind(&customer.profile.external_reference)
                .bind(customer.version)
                .bind(Json(customer))
                .bind(customer.created_at)
                .bind(customer.updated_at)
                .execute(&mut *tx)
                .await?;
                insert_idempotency_key!(tx, sql, key, &customer.id, customer.created_at)?;
                insert_audit!(tx, sql, audit);
                insert_outbox_event!(tx, sql, event)?;
                tx.commit().await?;
                Ok(Created::New(customer.clone()))
            })
        })
        .await
    }

    async fn get_customer(&self, id: &str) -> StoreResult<Option<Customer>> {
        on_database!(&self.database, |pool, sql| {
            let rows = sqlx::query(&sql("SELECT document FROM customers WHERE id = $1"))
                .bind(id)
                .fetch_all(pool)
                .await?;
            Ok(documents(rows)?.into_iter().next())
        })
    }

    async fn save_customer(
        &self,
        customer: &Customer,
        expected_version: i64,
        audit: &AuditEntry,
        events: &[Event],
    ) -> StoreResult<()> {
        on_database!(&self.database, |pool, sql, begin_write| {
            let mut tx = pool.begin_with(begin_write).await?;
            let updated = sqlx::query(&sql(
                "UPDATE customers SET status = $1, name_key = $2, industry_code = $3, group_id = $4, \
                 external_reference = $5, version = $6, document = $7, updated_at = $8 \
                 WHERE id = $9 AND version = $10",
            ))
            .bind(customer.status.as_str())
            .bind(name_key(customer.profile.display_name()))
            .bind(customer.profile.industry_code())
            .bind(&customer.group_id)
            .bind(&customer.profile.external_reference)
            .bind(customer.version)
            .bind(Json(customer))
            .bind(customer.updated_at)
            .bind(&customer.id)
            .bind(expected_version)
            .execute(&mut *tx)
            .await?;
            if updated.rows_affected() != 1 {
                return Err(StoreError::VersionConflict);
            }
            insert_audit!(tx, sql, audit);
            for event in events {
                insert_outbox_event!(tx, sql, event)?;
            }
            tx.commit().await?;
            Ok(())
        })
    }

    async fn list_customers(
        &self,
        filter: &CustomerFilter,
        page: &Page,
    ) -> StoreResult<Vec<Customer>> {
        // Each filter is "empty or equal", so one statement serves every combination and its
        // plan is cached; statuses travel as ",ACTIVE,SUSPENDED," and match with LIKE.
        let statuses = if filter.statuses.is_empty() {
            String::new()
        } else {
            let names: Vec<&str> = filter.statuses.iter().map(CustomerStatus::as_str).collect();
            format!(",{},", names.join(","))
        };
        let kind = filter.kind.map(|kind| kind.as_str()).unwrap_or_default();
        let name_prefix = if filter.name_prefix.is_empty() {
            String::new()
        } else {
            prefix_pattern(&name_key(&filter.name_prefix))
        };
        on_database!(&self.database, |pool, sql| {
            let rows = sqlx::query(&sql("SELECT document FROM customers WHERE id > $1 \
                 AND ($2 = '' OR $2 LIKE '%,' || status || ',%') \
                 AND ($3 = '' OR kind = $3) \
                 AND ($4 = '' OR industry_code = $4) \
                 AND ($5 = '' OR country = $5) \
                 AND ($6 = '' OR group_id = $6) \
                 AND ($7 = '' OR name_key LIKE $7 ESCAPE '\\') \
                 AND ($8 = '' OR registration_number = $8) \
                 AND ($9 = '' OR external_reference = $9) \
                 ORDER BY id LIMIT $10"))
            .bind(page.after.as_deref().unwrap_or(""))
            .bind(&statuses)
            .bind(kind)
            .bind(&filter.industry_code)
            .bind(&filter.country)
            .bind(&filter.group_id)
            .bind(&name_prefix)
            .bind(&filter.registration_number)
            .bind(&filter.external_reference)
            .bind(page.fetch_limit())
            .fetch_all(pool)
            .await?;
            documents(rows)
        })
    }

    async fn create_group(
        &self,
        group: &Group,
        key: &IdempotencyKey,
    ) -> StoreResult<Created<Group>> {
        retry_once_on_race(|| async {
            on_database!(&self.database, |pool, sql, begin_write| {
                let mut tx = pool.begin_with(begin_write).await?;
                if let Some(existing_id) = lookup_idempotency_key!(tx, sql, key)?.into_replay()? {
                    let row = sqlx::query(&sql("SELECT document FROM customer_groups WHERE id = $1"))
                        .bind(&existing_id)
                        .fetch_one(&mut *tx)
                        .await?;
                    let existing: Json<Group> = row.try_get(0)?;
                    return Ok(Created::Replayed(existing.0));
                }
                sqlx::query(&sql(
                    "INSERT INTO customer_groups (id, name_key, document, created_at) VALUES ($1, $2, $3, $4)",
                ))
                .bind(&group.id)
                .bind(name_key(&group.name))
                .bind(Json(group))
                .bind(group.created_at)
                .execute(&mut *tx)
                .await?;
                insert_idempotency_key!(tx, sql, key, &group.id, group.created_at)?;
                tx.commit().await?;
                Ok(Created::New(group.clone()))
            })
        })
        .await
    }

    async fn get_group(&self, id: &str) -> StoreResult<Option<Group>> {
        on_database!(&self.database, |pool, sql| {
            let rows = sqlx::query(&sql("SELECT document FROM customer_groups WHERE id = $1"))
                .bind(id)
                .fetch_all(pool)
                .await?;
            Ok(documents(rows)?.into_iter().next())
        })
    }

    async fn list_groups(&self, name_prefix: &str, page: &Page) -> StoreResult<Vec<Group>> {
        let pattern = if name_prefix.is_empty() {
            String::new()
        } else {
            prefix_pattern(&name_key(name_prefix))
        };
        on_database!(&self.database, |pool, sql| {
            let rows = sqlx::query(&sql("SELECT document FROM customer_groups WHERE id > $1 \
                 AND ($2 = '' OR name_key LIKE $2 ESCAPE '\\') ORDER BY id LIMIT $3"))
            .bind(page.after.as_deref().unwrap_or(""))
            .bind(&pattern)
            .bind(page.fetch_limit())
            .fetch_all(pool)
            .await?;
            documents(rows)
        })
    }

    async fn add_statement(
        &self,
        statement: &StatementRecord,
        key: &IdempotencyKey,
        audit: &AuditEntry,
        make_event: &(dyn for<'record> Fn(&'record StatementRecord) -> Event + Send + Sync),
    ) -> StoreResult<Created<StatementRecord>> {
        let period_key = statement.period_key();
        let period_type = period_type_column(statement.period.period_type);
        let period_end = date_column(statement.period.period_end);
        retry_once_on_race(|| async {
            on_database!(&self.database, |pool, sql, begin_write| {
                let mut tx = pool.begin_with(begin_write).await?;
                if let Some(existing_id) = lookup_idempotency_key!(tx, sql, key)?.into_replay()? {
                    let row = sqlx::query(&sql("SELECT document, superseded FROM financial_statements WHERE id = $1"))
                        .bind(&existing_id)
                        .fetch_one(&mut *tx)
                        .await?;
                    let mut existing: Json<StatementRecord> = row.try_get(0)?;
                    existing.0.superseded = row.try_get(1)?;
                    return Ok(Created::Replayed(existing.0));
                }
                let latest: Option<i32> = sqlx::query_scalar(&sql(
                    "SELECT MAX(version) FROM financial_statements WHERE customer_id = $1 AND period_key = $2",
                ))
                .bind(&statement.customer_id)
                .bind(&period_key)
                .fetch_one(&mut *tx)
                .await?;
                let mut stored = statement.clone();
                stored.version = latest.unwrap_or(0) + 1;
                stored.superseded = false;
                sqlx::query(&sql(
                    "UPDATE financial_statements SET superseded = $1 WHERE customer_id = $2 AND period_key = $3",
                ))
                .bind(true)
                .bind(&statement.customer_id)
                .bind(&period_key)
                .execute(&mut *tx)
                .await?;
                sqlx::query(&sql(
                    "INSERT INTO financial_statements (id, customer_id, period_key, period_type, version, superseded, \
                     document, submitted_at, period_end) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
                ))
                .bind(&stored.id)
                .bind(&stored.customer_id)
                .bind(&period_key)
                .bind(period_type)
                .bind(stored.version)
                .bind(false)
                .bind(Json(&stored))
                .bind(stored.submitted_at)
                .bind(&period_end)
                .execute(&mut *tx)
                .await?;
                insert_idempotency_key!(tx, sql, key, &stored.id, stored.submitted_at)?;
                insert_audit!(tx, sql, audit);
                let event = make_event(&stored);
                insert_outbox_event!(tx, sql, &event)?;
                tx.commit().await?;
                Ok(Created::New(stored))
            })
        })
        .await
    }

    async fn get_statement(&self, id: &str) -> StoreResult<Option<StatementRecord>> {
        on_database!(&self.database, |pool, sql| {
            let row = sqlx::query(&sql(
                "SELECT document, superseded FROM financial_statements WHERE id = $1",
            ))
            .bind(id)
            .fetch_optional(pool)
            .await?;
            let Some(row) = row else { return Ok(None) };
            let mut statement: Json<StatementRecord> = row.try_get(0)?;
            statement.0.superseded = row.try_get(1)?;
            Ok(Some(statement.0))
        })
    }

    async fn list_statements(
        &self,
        customer_id: &str,
        include_superseded: bool,
        period_type: Option<PeriodType>,
        page: &Page,
    ) -> StoreResult<Vec<StatementRecord>> {
        let period_type = period_type.map(period_type_column).unwrap_or_default();
        let (after_period_end, after_version, after_id) = statement_cursor(page.after.as_deref())?;
        on_database!(&self.database, |pool, sql| {
            let rows = sqlx::query(&sql(
                "SELECT document, superseded FROM financial_statements WHERE customer_id = $1 \
                 AND ($2 = '' OR (period_end, version, id) < ($2, $3, $4)) \
                 AND ($5 OR superseded = $6) AND ($7 = '' OR period_type = $7) \
                 ORDER BY period_end DESC, version DESC, id DESC LIMIT $8",
            ))
            .bind(customer_id)
            .bind(after_period_end)
            .bind(after_version)
            .bind(after_id)
            .bind(include_superseded)
            .bind(false)
            .bind(period_type)
            .bind(page.fetch_limit())
            .fetch_all(pool)
            .await?;
            rows.into_iter()
                .map(|row| {
                    let mut statement: Json<StatementRecord> = row.try_get(0)?;
                    statement.0.superseded = row.try_get(1)?;
                    Ok(statement.0)
                })
                .collect()
        })
    }

    async fn add_bureau_report(
        &self,
        report: &BureauReport,
        key: &IdempotencyKey,
        audit: &AuditEntry,
        event: &Event,
    ) -> StoreResult<Created<BureauReport>> {
        self.add_customer_document(
            CustomerDocumentTable::BUREAU_REPORTS,
            (&report.id, &report.customer_id, report.created_at),
            Some(&date_column(report.report_date)),
            report,
            key,
            audit,
            Some(event),
        )
        .await
    }

    async fn list_bureau_reports(
        &self,
        customer_id: &str,
        page: &Page,
    ) -> StoreResult<Vec<BureauReport>> {
        let (after_report_date, after_id) = bureau_report_cursor(page.after.as_deref())?;
        on_database!(&self.database, |pool, sql| {
            let rows = sqlx::query(&sql(
                "SELECT document FROM bureau_reports WHERE customer_id = $1 \
                 AND ($2 = '' OR (report_date, id) < ($2, $3)) \
                 ORDER BY report_date DESC, id DESC LIMIT $4",
            ))
            .bind(customer_id)
            .bind(after_report_date)
            .bind(after_id)
            .bind(page.fetch_limit())
            .fetch_all(pool)
            .await?;
            documents(rows)
        })
    }

    async fn add_trade_reference(
        &self,
        reference: &TradeReference,
        key: &IdempotencyKey,
        audit: &AuditEntry,
    ) -> StoreResult<Created<TradeReference>> {
        self.add_customer_document(
            CustomerDocumentTable::TRADE_REFERENCES,
            (&reference.id, &reference.customer_id, reference.created_at),
            None,
            reference,
            key,
            audit,
            None,
        )
        .await
    }

    async fn list_trade_references(
        &self,
        customer_id: &str,
        page: &Page,
    ) -> StoreResult<Vec<TradeReference>> {
        self.documents_of_customer(
            // Newest first: ids are uuid v7, so id order is creation order.
            "SELECT document FROM trade_references WHERE customer_id = $1 AND ($2 = '' OR id < $2) \
             ORDER BY id DESC LIMIT $3",
            customer_id,
            page,
        )
        .await
    }

    async fn list_audit(&self, customer_id: &str, page: &Page) -> StoreResult<Vec<AuditEntry>> {
        self.documents_of_customer(
            "SELECT document FROM customer_audit WHERE customer_id = $1 AND id > $2 ORDER BY id LIMIT $3",
            customer_id,
            page,
        )
        .await
    }
}

fn period_type_column(period_type: PeriodType) -> &'static str {
    match period_type {
        PeriodType::Annual => "ANNUAL",
        PeriodType::Quarterly => "QUARTERLY",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn list_keys_read_back_as_cursors_and_foreign_keys_are_refused() {
        assert_eq!(statement_cursor(None).unwrap(), ("", 0, ""));
        assert_eq!(
            statement_cursor(Some("2025-12-31|2|stm_1")).unwrap(),
            ("2025-12-31", 2, "stm_1")
        );
        for foreign in [
            "stm_1",
            "2025-12-31|two|stm_1",
            "2025-12-31|2",
            "|2|stm_1",
            "2025-12-31|2|",
        ] {
            assert!(matches!(
                statement_cursor(Some(foreign)),
                Err(StoreError::InvalidPageToken)
            ));
        }
        assert_eq!(bureau_report_cursor(None).unwrap(), ("", ""));
        assert_eq!(
            bureau_report_cursor(Some("2026-03-01|bur_1")).unwrap(),
            ("2026-03-01", "bur_1")
        );
        for foreign in ["bur_1", "|bur_1", "2026-03-01|"] {
            assert!(matches!(
                bureau_report_cursor(Some(foreign)),
                Err(StoreError::InvalidPageToken)
            ));
        }
        let date = NaiveDate::from_ymd_opt(2025, 6, 1).unwrap();
        assert_eq!(date_column(date), "2025-06-01");
        assert_eq!(
            serde_json::to_value(date).unwrap(),
            serde_json::json!("2025-06-01"),
            "the migration copies the documents' form into the column"
        );
    }
}
