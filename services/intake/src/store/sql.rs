//! [`IntakeStore`] in SQL: one body per operation, compiled for PostgreSQL and for SQLite
//! through `on_database!`. Rows are read through the types of `rows`.

use async_trait::async_trait;
use credit_proto::v1::Event;
use credit_runtime::Database;
use credit_runtime::on_database;
use credit_runtime::sql::{IdempotencyKey, Page, retry_once_on_race};
use credit_runtime::{insert_idempotency_key, insert_outbox_event, lookup_idempotency_key};
use sqlx::types::Json;

use super::rows::StatementRow;
use super::{
    CustomerFilter, IntakeStore, Outcome, StoreError, StoreResult, date_column, dated_cursor,
    duplicate_registration, statement_cursor,
};
use crate::domain::customer::{Customer, CustomerStatus};
use crate::domain::data_points::DataPointRecord;
use crate::domain::records::{AuditEntry, BureauReport, Group, StatementRecord, TradeReference};
use crate::domain::statement::PeriodType;
use credit_runtime::store::DocumentRow;

/// The SQL store, on either backend.
#[derive(Debug, Clone)]
pub struct SqlIntakeStore {
    database: Database,
}

impl SqlIntakeStore {
    pub fn new(database: Database) -> Self {
        Self { database }
    }

    /// The JSON document of one row, by `query`, whose one parameter is the id.
    async fn document_by_id<T: serde::de::DeserializeOwned + Send + Unpin + 'static>(
        &self,
        query: &'static str,
        id: &str,
    ) -> StoreResult<Option<T>> {
        on_database!(&self.database, |pool, sql| {
            let row: Option<DocumentRow<T>> = sqlx::query_as(&sql(query))
                .bind(id)
                .fetch_optional(pool)
                .await?;
            Ok(row.map(DocumentRow::into_record))
        })
    }

    /// One page of the JSON documents a customer has in a table, by `query`, whose parameters
    /// are the customer id, the last id seen and the limit.
    async fn documents_of_customer<T: serde::de::DeserializeOwned + Send + Unpin + 'static>(
        &self,
        query: &'static str,
        customer_id: &str,
        page: &Page,
    ) -> StoreResult<Vec<T>> {
        on_database!(&self.database, |pool, sql| {
            let rows: Vec<DocumentRow<T>> = sqlx::query_as(&sql(query))
                .bind(customer_id)
                .bind(page.after.as_deref().unwrap_or(""))
                .bind(page.fetch_limit())
                .fetch_all(pool)
                .await?;
            Ok(rows.into_iter().map(DocumentRow::into_record).collect())
        })
    }
}

/// The kind of a customer audit entry in the audit chain.
pub const CUSTOMER_AUDIT_KIND: &str = "customer.audit";

/// Writes a customer audit entry and appends it to the audit chain, in the transaction of the
/// change it records: the chain holds the entry as written, so `audit verify` can tell an
/// entry edited in `customer_audit` afterwards.
macro_rules! insert_audit {
    ($tx:ident, $sql:ident, $audit:expr) => {{
        let audit: &AuditEntry = $audit;
        sqlx::query(&$sql(
            "INSERT INTO customer_audit (id, customer_id, document, changed_at) VALUES ($1, $2, $3, $4)",
        ))
        .bind(&audit.id)
        .bind(&audit.customer_id)
        .bind(Json(audit))
        .bind(audit.changed_at)
        .execute(&mut *$tx)
        .await?;
        let entry = serde_json::to_string(audit).map_err(|error| StoreError::Corrupt(error.to_string()))?;
        credit_runtime::append_audit!(
            $tx,
            $sql,
            &credit_runtime::audit::AuditRecord {
                kind: CUSTOMER_AUDIT_KIND,
                record_id: &audit.id,
                actor: &audit.actor.name,
                entry,
            }
        )
        .await?;
    }};
}

/// Writes the records of one change of a customer's data points, in the transaction of the
/// change: each joins the history and becomes its code's current value, unless a newer record
/// got there first (ids are uuid v7, so the later record wins whichever commits last); a
/// record without a value removes the current one.
macro_rules! write_data_points {
    ($tx:ident, $sql:ident, $records:expr) => {{
        let records: &[$crate::domain::data_points::DataPointRecord] = $records;
        for record in records {
            sqlx::query(&$sql(
                "INSERT INTO data_point_history (id, change_id, customer_id, code, document, set_at) \
                 VALUES ($1, $2, $3, $4, $5, $6)",
            ))
            .bind(&record.id)
            .bind(&record.change_id)
            .bind(&record.customer_id)
            .bind(&record.code)
            .bind(Json(record))
            .bind(record.set_at)
            .execute(&mut *$tx)
            .await?;
            if record.value.is_some() {
                sqlx::query(&$sql(
                    "INSERT INTO data_point_values (customer_id, code, record_id, document, valid_until) \
                     VALUES ($1, $2, $3, $4, $5) \
                     ON CONFLICT (customer_id, code) DO UPDATE SET record_id = excluded.record_id, \
                     document = excluded.document, valid_until = excluded.valid_until \
                     WHERE data_point_values.record_id < excluded.record_id",
                ))
                .bind(&record.customer_id)
                .bind(&record.code)
                .bind(&record.id)
                .bind(Json(record))
                .bind(record.valid_until)
                .execute(&mut *$tx)
                .await?;
            } else {
                sqlx::query(&$sql(
                    "DELETE FROM data_point_values WHERE customer_id = $1 AND code = $2 AND record_id < $3",
                ))
                .bind(&record.customer_id)
                .bind(&record.code)
                .bind(&record.id)
                .execute(&mut *$tx)
                .await?;
            }
        }
    }};
}

mod data_points;
mod investigations;

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
    ) -> StoreResult<Outcome<T>>
    where
        T: serde::Serialize + serde::de::DeserializeOwned + Clone + Send + Sync + Unpin + 'static,
    {
        retry_once_on_race(|| async {
            on_database!(&self.database, |pool, sql, begin_write| {
                let mut tx = pool.begin_with(begin_write).await?;
                if let Some(existing_id) = lookup_idempotency_key!(tx, sql, key)?.into_replay()? {
                    let existing: DocumentRow<T> = sqlx::query_as(&sql(table.select_by_id))
                        .bind(&existing_id)
                        .fetch_one(&mut *tx)
                        .await?;
                    return Ok(Outcome::Replayed(existing.into_record()));
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
                Ok(Outcome::New(document.clone()))
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
    const CREDIT_DOCUMENTS: Self = Self {
        select_by_id: "SELECT document FROM credit_documents WHERE id = $1",
        insert: "INSERT INTO credit_documents (id, customer_id, document, recorded_at, issued_on) \
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
        data_points: &[DataPointRecord],
        key: &IdempotencyKey,
        audit: &AuditEntry,
        event: &Event,
    ) -> StoreResult<Outcome<Customer>> {
        retry_once_on_race(|| async {
            on_database!(&self.database, |pool, sql, begin_write| {
                let mut tx = pool.begin_with(begin_write).await?;
                if let Some(existing_id) = lookup_idempotency_key!(tx, sql, key)?.into_replay()? {
                    let existing: DocumentRow<Customer> = sqlx::query_as(&sql("SELECT document FROM customers WHERE id = $1"))
                        .bind(&existing_id)
                        .fetch_one(&mut *tx)
                        .await?;
                    return Ok(Outcome::Replayed(existing.into_record()));
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
                        return Err(duplicate_registration(existing_id));
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
                write_data_points!(tx, sql, data_points);
                insert_audit!(tx, sql, audit);
                insert_outbox_event!(tx, sql, event)?;
                tx.commit().await?;
                Ok(Outcome::New(customer.clone()))
            })
        })
        .await
    }

    async fn get_customer(&self, id: &str) -> StoreResult<Option<Customer>> {
        self.document_by_id("SELECT document FROM customers WHERE id = $1", id)
            .await
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
            let rows: Vec<DocumentRow<Customer>> =
                sqlx::query_as(&sql("SELECT document FROM customers WHERE id > $1 \
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
            Ok(rows.into_iter().map(DocumentRow::into_record).collect())
        })
    }

    async fn create_group(
        &self,
        group: &Group,
        key: &IdempotencyKey,
    ) -> StoreResult<Outcome<Group>> {
        retry_once_on_race(|| async {
            on_database!(&self.database, |pool, sql, begin_write| {
                let mut tx = pool.begin_with(begin_write).await?;
                if let Some(existing_id) = lookup_idempotency_key!(tx, sql, key)?.into_replay()? {
                    let existing: DocumentRow<Group> = sqlx::query_as(&sql("SELECT document FROM customer_groups WHERE id = $1"))
                        .bind(&existing_id)
                        .fetch_one(&mut *tx)
                        .await?;
                    return Ok(Outcome::Replayed(existing.into_record()));
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
                Ok(Outcome::New(group.clone()))
            })
        })
        .await
    }

    async fn get_group(&self, id: &str) -> StoreResult<Option<Group>> {
        on_database!(&self.database, |pool, sql| {
            let row: Option<DocumentRow<Group>> =
                sqlx::query_as(&sql("SELECT document FROM customer_groups WHERE id = $1"))
                    .bind(id)
                    .fetch_optional(pool)
                    .await?;
            Ok(row.map(DocumentRow::into_record))
        })
    }

    async fn list_groups(&self, name_prefix: &str, page: &Page) -> StoreResult<Vec<Group>> {
        let pattern = if name_prefix.is_empty() {
            String::new()
        } else {
            prefix_pattern(&name_key(name_prefix))
        };
        on_database!(&self.database, |pool, sql| {
            let rows: Vec<DocumentRow<Group>> =
                sqlx::query_as(&sql("SELECT document FROM customer_groups WHERE id > $1 \
                 AND ($2 = '' OR name_key LIKE $2 ESCAPE '\\') ORDER BY id LIMIT $3"))
                .bind(page.after.as_deref().unwrap_or(""))
                .bind(&pattern)
                .bind(page.fetch_limit())
                .fetch_all(pool)
                .await?;
            Ok(rows.into_iter().map(DocumentRow::into_record).collect())
        })
    }

    async fn add_statement(
        &self,
        statement: &StatementRecord,
        key: &IdempotencyKey,
        audit: &AuditEntry,
        make_event: &(dyn for<'record> Fn(&'record StatementRecord) -> Event + Send + Sync),
    ) -> StoreResult<Outcome<StatementRecord>> {
        let period_key = statement.period_key();
        let period_type = period_type_column(statement.period.period_type);
        let period_end = date_column(statement.period.period_end);
        retry_once_on_race(|| async {
            on_database!(&self.database, |pool, sql, begin_write| {
                let mut tx = pool.begin_with(begin_write).await?;
                if let Some(existing_id) = lookup_idempotency_key!(tx, sql, key)?.into_replay()? {
                    let existing: StatementRow = sqlx::query_as(&sql("SELECT document, superseded FROM financial_statements WHERE id = $1"))
                        .bind(&existing_id)
                        .fetch_one(&mut *tx)
                        .await?;
                    return Ok(Outcome::Replayed(existing.into_record()));
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
                Ok(Outcome::New(stored))
            })
        })
        .await
    }

    async fn get_statement(&self, id: &str) -> StoreResult<Option<StatementRecord>> {
        on_database!(&self.database, |pool, sql| {
            let row: Option<StatementRow> = sqlx::query_as(&sql(
                "SELECT document, superseded FROM financial_statements WHERE id = $1",
            ))
            .bind(id)
            .fetch_optional(pool)
            .await?;
            Ok(row.map(StatementRow::into_record))
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
            let rows: Vec<StatementRow> = sqlx::query_as(&sql(
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
            Ok(rows.into_iter().map(StatementRow::into_record).collect())
        })
    }

    async fn add_bureau_report(
        &self,
        report: &BureauReport,
        key: &IdempotencyKey,
        audit: &AuditEntry,
        event: &Event,
    ) -> StoreResult<Outcome<BureauReport>> {
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
        let (after_report_date, after_id) = dated_cursor(page.after.as_deref())?;
        on_database!(&self.database, |pool, sql| {
            let rows: Vec<DocumentRow<BureauReport>> = sqlx::query_as(&sql(
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
            Ok(rows.into_iter().map(DocumentRow::into_record).collect())
        })
    }

    async fn add_trade_reference(
        &self,
        reference: &TradeReference,
        key: &IdempotencyKey,
        audit: &AuditEntry,
    ) -> StoreResult<Outcome<TradeReference>> {
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
