//! [`CaseStore`]: collection cases, promises to pay, contacts, disputes (read side; disputes
//! are written with the customer's account, through [`super::ReceivableStore::commit`]) and
//! the customers' ratings as rating announces them — one body for both backends.

use std::collections::BTreeMap;

use async_trait::async_trait;
use chrono::{DateTime, NaiveDate, Utc};
use credit_core::Currency;
use credit_proto::v1::Event;
use credit_proto::v1::event::Payload;
use credit_runtime::sql::{IdempotencyKey, KeyLookup, KeyReused};
use credit_runtime::{insert_idempotency_key, lookup_idempotency_key, on_database};
use rust_decimal::Decimal;

use super::{Outcome, SqlReceivableStore, StoreError, StoreResult, currency, decimal, stored_time};

/// A collection case as stored; overdue figures are computed from the receivables on read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CaseRecord {
    pub case_id: String,
    pub customer_id: String,
    /// OPEN or CLOSED.
    pub status: String,
    pub assigned_collector: String,
    pub broken_promises: u32,
    pub escalation_level: u32,
    pub next_contact_date: Option<NaiveDate>,
    pub last_contact_at: Option<DateTime<Utc>>,
    pub opened_at: DateTime<Utc>,
    pub closed_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PromiseRecord {
    pub promise_id: String,
    pub case_id: String,
    pub customer_id: String,
    pub currency: Currency,
    pub amount: Decimal,
    pub made_on: NaiveDate,
    pub promised_date: NaiveDate,
    /// Empty = the case's invoices.
    pub invoice_ids: Vec<String>,
    /// OPEN, KEPT, BROKEN or CANCELLED.
    pub status: String,
    pub paid_amount: Decimal,
    pub decided_on: Option<NaiveDate>,
    pub created_at: DateTime<Utc>,
    pub created_by: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContactRecord {
    pub contact_id: String,
    pub case_id: String,
    pub customer_id: String,
    /// `ContactChannel` name.
    pub channel: String,
    /// `ContactOutcome` name.
    pub outcome: String,
    pub notes: String,
    pub contact_name: String,
    /// '' when no promise was made.
    pub promise_id: String,
    pub contacted_at: DateTime<Utc>,
    pub logged_by: String,
    pub next_contact_date: NaiveDate,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DisputeRecord {
    pub dispute_id: String,
    pub invoice_id: String,
    pub customer_id: String,
    pub currency: Currency,
    pub amount: Decimal,
    pub reason: String,
    /// OPEN, RESOLVED_VALID or RESOLVED_INVALID.
    pub status: String,
    pub opened_at: DateTime<Utc>,
    pub opened_by: String,
    pub resolved_at: Option<DateTime<Utc>>,
    pub resolved_by: String,
    pub resolution_notes: String,
    pub credit_note_id: String,
}

/// A promise's state as overdue detection found it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PromiseDecision {
    pub promise_id: String,
    pub case_id: String,
    /// OPEN (only the paid amount changes), KEPT, BROKEN or CANCELLED.
    pub status: String,
    pub paid_amount: Decimal,
    pub decided_on: Option<NaiveDate>,
}

/// Filter of ListDisputes; empty fields mean any.
#[derive(Debug, Clone, Default)]
pub struct DisputeFilter {
    pub customer_id: String,
    pub invoice_id: String,
    pub status: String,
}

#[async_trait]
pub trait CaseStore: Send + Sync + std::fmt::Debug {
    /// Cases of one customer or of all, open ones only or all, by case id.
    async fn cases(
        &self,
        customer_id: Option<&str>,
        open_only: bool,
    ) -> StoreResult<Vec<CaseRecord>>;

    async fn case(&self, case_id: &str) -> StoreResult<Option<CaseRecord>>;

    /// Opens a case (next contact on `as_of`) for each `overdue` customer without an open one
    /// and closes the open case of each `settled` customer, cancelling its open promises.
    /// Returns (opened, closed).
    async fn sync_cases(
        &self,
        overdue: &[String],
        settled: &[String],
        as_of: NaiveDate,
    ) -> StoreResult<(u32, u32)>;

    /// Open promises of one customer or of all.
    async fn open_promises(&self, customer_id: Option<&str>) -> StoreResult<Vec<PromiseRecord>>;

    /// Promises dunning looks at: open and kept ones pause it until their date, broken ones
    /// escalate it (cancelled ones count for nothing).
    async fn dunning_promises(&self) -> StoreResult<Vec<PromiseRecord>>;

    /// Records what overdue detection found; a promise turning BROKEN escalates its case.
    /// Only promises still open change. Returns the number of promises marked broken.
    async fn decide_promises(&self, decisions: &[PromiseDecision]) -> StoreResult<u32>;

    /// Sets the case's collector ('' = unassign); `None` when there is no such case.
    async fn assign_case(&self, case_id: &str, collector: &str) -> StoreResult<Option<CaseRecord>>;

    /// Logs a contact once per `key`: cancels the case's open promise when a new one is made,
    /// stores the promise and the contact, moves the case's next contact date. Refused
    /// (`Refused`) when the case is not open.
    async fn log_contact(
        &self,
        key: &IdempotencyKey,
        contact: &ContactRecord,
        promise: Option<&PromiseRecord>,
    ) -> StoreResult<Outcome<String>>;

    async fn contact(&self, contact_id: &str) -> StoreResult<Option<ContactRecord>>;

    /// Contacts of a case and/or customer ('' = any), newest logged first, after the contact
    /// id `after`.
    async fn contacts(
        &self,
        case_id: &str,
        customer_id: &str,
        after: Option<&str>,
        limit: i64,
    ) -> StoreResult<Vec<ContactRecord>>;

    async fn promise(&self, promise_id: &str) -> StoreResult<Option<PromiseRecord>>;

    async fn dispute(&self, dispute_id: &str) -> StoreResult<Option<DisputeRecord>>;

    /// Disputes newest first, after the dispute id `after`.
    async fn disputes(
        &self,
        filter: &DisputeFilter,
        after: Option<&str>,
        limit: i64,
    ) -> StoreResult<Vec<DisputeRecord>>;

    /// Each rated customer's PD (a fraction, as rating announced it).
    async fn customer_pds(&self) -> StoreResult<BTreeMap<String, String>>;

    /// Each rated customer's grade, as rating announced it (dunning picks its policy by it).
    async fn customer_grades(&self) -> StoreResult<BTreeMap<String, String>>;

    /// Applies a RatingChanged once (other events are skipped); the newest rating wins.
    async fn apply_rating_event(&self, consumer: &str, event: &Event) -> StoreResult<()>;
}

macro_rules! case_columns {
    () => {
        "case_id, customer_id, status, assigned_collector, broken_promises, escalation_level, \
         next_contact_date, last_contact_at, opened_at, closed_at"
    };
}

macro_rules! promise_columns {
    () => {
        "promise_id, case_id, customer_id, currency, amount, made_on, promised_date, invoice_ids, status, \
         paid_amount, decided_on, created_at, created_by"
    };
}

macro_rules! contact_columns {
    () => {
        "contact_id, case_id, customer_id, channel, outcome, notes, contact_name, promise_id, contacted_at, \
         logged_by, next_contact_date"
    };
}

#[derive(Debug, sqlx::FromRow)]
struct CaseRow {
    case_id: String,
    customer_id: String,
    status: String,
    assigned_collector: String,
    broken_promises: i32,
    escalation_level: i32,
    next_contact_date: Option<NaiveDate>,
    last_contact_at: Option<DateTime<Utc>>,
    opened_at: DateTime<Utc>,
    closed_at: Option<DateTime<Utc>>,
}

impl CaseRow {
    fn into_record(self) -> CaseRecord {
        CaseRecord {
            case_id: self.case_id,
            customer_id: self.customer_id,
            status: self.status,
            assigned_collector: self.assigned_collector,
            broken_promises: u32::try_from(self.broken_promises).unwrap_or(0),
            escalation_level: u32::try_from(self.escalation_level).unwrap_or(0),
            next_contact_date: self.next_contact_date,
            last_contact_at: self.last_contact_at,
            opened_at: self.opened_at,
            closed_at: self.closed_at,
        }
    }
}

#[derive(Debug, sqlx::FromRow)]
struct PromiseRow {
    promise_id: String,
    case_id: String,
    customer_id: String,
    currency: String,
    amount: String,
    made_on: NaiveDate,
    promised_date: NaiveDate,
    invoice_ids: String,
    status: String,
    paid_amount: String,
    decided_on: Option<NaiveDate>,
    created_at: DateTime<Utc>,
    created_by: String,
}

impl PromiseRow {
    fn into_record(self) -> StoreResult<PromiseRecord> {
        let place = format!("promise {}", self.promise_id);
        Ok(PromiseRecord {
            currency: currency(&place, &self.currency)?,
            amount: decimal(&place, &self.amount)?,
            paid_amount: decimal(&place, &self.paid_amount)?,
            invoice_ids: self
                .invoice_ids
                .split(',')
                .filter(|id| !id.is_empty())
                .map(str::to_owned)
                .collect(),
            promise_id: self.promise_id,
            case_id: self.case_id,
            customer_id: self.customer_id,
            made_on: self.made_on,
            promised_date: self.promised_date,
            status: self.status,
            decided_on: self.decided_on,
            created_at: self.created_at,
            created_by: self.created_by,
        })
    }
}

#[derive(Debug, sqlx::FromRow)]
struct ContactRow {
    contact_id: String,
    case_id: String,
    customer_id: String,
    channel: String,
    outcome: String,
    notes: String,
    contact_name: String,
    promise_id: String,
    contacted_at: DateTime<Utc>,
    logged_by: String,
    next_contact_date: NaiveDate,
}

impl ContactRow {
    fn into_record(self) -> ContactRecord {
        ContactRecord {
            contact_id: self.contact_id,
            case_id: self.case_id,
            customer_id: self.customer_id,
            channel: self.channel,
            outcome: self.outcome,
            notes: self.notes,
            contact_name: self.contact_name,
            promise_id: self.promise_id,
            contacted_at: self.contacted_at,
            logged_by: self.logged_by,
            next_contact_date: self.next_contact_date,
        }
    }
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub(super) struct DisputeRow {
    dispute_id: String,
    invoice_id: String,
    customer_id: String,
    currency: String,
    amount: String,
    reason: String,
    status: String,
    opened_at: DateTime<Utc>,
    opened_by: String,
    resolved_at: Option<DateTime<Utc>>,
    resolved_by: String,
    resolution_notes: String,
    credit_note_id: String,
}

impl DisputeRow {
    pub(super) fn into_record(self) -> StoreResult<DisputeRecord> {
        let place = format!("dispute {}", self.dispute_id);
        Ok(DisputeRecord {
            currency: currency(&place, &self.currency)?,
            amount: decimal(&place, &self.amount)?,
            dispute_id: self.dispute_id,
            invoice_id: self.invoice_id,
            customer_id: self.customer_id,
            reason: self.reason,
            status: self.status,
            opened_at: self.opened_at,
            opened_by: self.opened_by,
            resolved_at: self.resolved_at,
            resolved_by: self.resolved_by,
            resolution_notes: self.resolution_notes,
            credit_note_id: self.credit_note_id,
        })
    }
}

fn occurred_at(event: &Event) -> DateTime<Utc> {
    event
        .occurred_at
        .as_ref()
        .and_then(credit_proto::time::from_timestamp)
        .unwrap_or_else(Utc::now)
}

#[async_trait]
impl CaseStore for SqlReceivableStore {
    async fn cases(
        &self,
        customer_id: Option<&str>,
        open_only: bool,
    ) -> StoreResult<Vec<CaseRecord>> {
        let customer = customer_id.unwrap_or("");
        let rows = on_database!(self.database(), |pool, sql| {
            sqlx::query_as::<_, CaseRow>(&sql(concat!(
                "SELECT ",
                case_columns!(),
                " FROM collection_cases WHERE ($1 = '' OR customer_id = $1) AND (NOT $2 OR status = 'OPEN') ORDER BY case_id"
            )))
            .bind(customer)
            .bind(open_only)
            .fetch_all(pool)
            .await?
        });
        Ok(rows.into_iter().map(CaseRow::into_record).collect())
    }

    async fn case(&self, case_id: &str) -> StoreResult<Option<CaseRecord>> {
        let row = on_database!(self.database(), |pool, sql| {
            sqlx::query_as::<_, CaseRow>(&sql(concat!(
                "SELECT ",
                case_columns!(),
                " FROM collection_cases WHERE case_id = $1"
            )))
            .bind(case_id)
            .fetch_optional(pool)
            .await?
        });
        Ok(row.map(CaseRow::into_record))
    }

    async fn sync_cases(
        &self,
        overdue: &[String],
        settled: &[String],
        as_of: NaiveDate,
    ) -> StoreResult<(u32, u32)> {
        let now = stored_time(Utc::now());
        on_database!(self.database(), |pool, sql, begin_write| {
            let mut tx = pool.begin_with(begin_write).await?;
            let mut opened = 0;
            let mut closed = 0;
            for customer_id in overdue {
                let inserted = sqlx::query(&sql(
                    "INSERT INTO collection_cases (case_id, customer_id, status, assigned_collector, broken_promises, \
                     escalation_level, next_contact_date, last_contact_at, opened_at, closed_at) \
                     VALUES ($1, $2, 'OPEN', '', 0, 0, $3, NULL, $4, NULL) \
                     ON CONFLICT (customer_id) WHERE status = 'OPEN' DO NOTHING",
                ))
                .bind(format!("case_{}", uuid::Uuid::now_v7().simple()))
                .bind(customer_id)
                .bind(as_of)
                .bind(now)
                .execute(&mut *tx)
                .await?;
                opened += u32::try_from(inserted.rows_affected()).unwrap_or(0);
            }
            for customer_id in settled {
                sqlx::query(&sql(
                    "UPDATE promises SET status = 'CANCELLED', decided_on = $2 \
                     WHERE customer_id = $1 AND status = 'OPEN'",
                ))
                .bind(customer_id)
                .bind(as_of)
                .execute(&mut *tx)
                .await?;
                let updated = sqlx::query(&sql(
                    "UPDATE collection_cases SET status = 'CLOSED', closed_at = $2 \
                     WHERE customer_id = $1 AND status = 'OPEN'",
                ))
                .bind(customer_id)
                .bind(now)
                .execute(&mut *tx)
                .await?;
                closed += u32::try_from(updated.rows_affected()).unwrap_or(0);
            }
            tx.commit().await?;
            Ok((opened, closed))
        })
    }

    async fn open_promises(&self, customer_id: Option<&str>) -> StoreResult<Vec<PromiseRecord>> {
        let customer = customer_id.unwrap_or("");
        let rows = on_database!(self.database(), |pool, sql| {
            sqlx::query_as::<_, PromiseRow>(&sql(concat!(
                "SELECT ",
                promise_columns!(),
                " FROM promises WHERE status = 'OPEN' AND ($1 = '' OR customer_id = $1) ORDER BY promise_id"
            )))
            .bind(customer)
            .fetch_all(pool)
            .await?
        });
        rows.into_iter().map(PromiseRow::into_record).collect()
    }

    async fn dunning_promises(&self) -> StoreResult<Vec<PromiseRecord>> {
        let rows = on_database!(self.database(), |pool, sql| {
            sqlx::query_as::<_, PromiseRow>(&sql(concat!(
                "SELECT ",
                promise_columns!(),
                " FROM promises WHERE status <> 'CANCELLED' ORDER BY promise_id"
            )))
            .fetch_all(pool)
            .await?
        });
        rows.into_iter().map(PromiseRow::into_record).collect()
    }

    async fn decide_promises(&self, decisions: &[PromiseDecision]) -> StoreResult<u32> {
        if decisions.is_empty() {
            return Ok(0);
        }
        on_database!(self.database(), |pool, sql, begin_write| {
            let mut tx = pool.begin_with(begin_write).await?;
            let mut broken = 0;
            for decision in decisions {
                let updated = sqlx::query(&sql(
                    "UPDATE promises SET status = $2, paid_amount = $3, decided_on = $4 \
                     WHERE promise_id = $1 AND status = 'OPEN'",
                ))
                .bind(&decision.promise_id)
                .bind(&decision.status)
                .bind(decision.paid_amount.to_string())
                .bind(decision.decided_on)
                .execute(&mut *tx)
                .await?;
                if updated.rows_affected() == 1 && decision.status == "BROKEN" {
                    sqlx::query(&sql(
                        "UPDATE collection_cases SET broken_promises = broken_promises + 1, \
                         escalation_level = escalation_level + 1 WHERE case_id = $1",
                    ))
                    .bind(&decision.case_id)
                    .execute(&mut *tx)
                    .await?;
                    broken += 1;
                }
            }
            tx.commit().await?;
            Ok(broken)
        })
    }

    async fn assign_case(&self, case_id: &str, collector: &str) -> StoreResult<Option<CaseRecord>> {
        on_database!(self.database(), |pool, sql| {
            sqlx::query(&sql(
                "UPDATE collection_cases SET assigned_collector = $2 WHERE case_id = $1",
            ))
            .bind(case_id)
            .bind(collector)
            .execute(pool)
            .await?;
        });
        self.case(case_id).await
    }

    async fn log_contact(
        &self,
        key: &IdempotencyKey,
        contact: &ContactRecord,
        promise: Option<&PromiseRecord>,
    ) -> StoreResult<Outcome<String>> {
        let now = stored_time(Utc::now());
        on_database!(self.database(), |pool, sql, begin_write| {
            let mut tx = pool.begin_with(begin_write).await?;
            match lookup_idempotency_key!(tx, sql, key)? {
                KeyLookup::Fresh => {}
                KeyLookup::Replay(contact_id) => return Ok(Outcome::Replayed(contact_id)),
                KeyLookup::Reused => return Err(StoreError::KeyReused(KeyReused)),
            }
            let status: Option<String> = sqlx::query_scalar(&sql(
                "SELECT status FROM collection_cases WHERE case_id = $1",
            ))
            .bind(&contact.case_id)
            .fetch_optional(&mut *tx)
            .await?;
            match status.as_deref() {
                Some("OPEN") => {}
                Some(_) => {
                    return Err(StoreError::refused(
                        credit_core::ServiceError::FailedPrecondition {
                            reason: "CASE_NOT_OPEN",
                            message: format!("case {} is closed", contact.case_id),
                            metadata: Vec::new(),
                        },
                    ));
                }
                None => {
                    return Err(StoreError::refused(credit_core::ServiceError::not_found(
                        "collection case",
                        &contact.case_id,
                    )));
                }
            }
            if let Some(promise) = promise {
                sqlx::query(&sql(
                    "UPDATE promises SET status = 'CANCELLED', decided_on = $2 \
                     WHERE case_id = $1 AND status = 'OPEN'",
                ))
                .bind(&promise.case_id)
                .bind(promise.made_on)
                .execute(&mut *tx)
                .await?;
                sqlx::query(&sql(
                    "INSERT INTO promises (promise_id, case_id, customer_id, currency, amount, made_on, promised_date, \
                     invoice_ids, status, paid_amount, decided_on, created_at, created_by) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 'OPEN', '0', NULL, $9, $10)",
                ))
                .bind(&promise.promise_id)
                .bind(&promise.case_id)
                .bind(&promise.customer_id)
                .bind(promise.currency.code())
                .bind(promise.amount.to_string())
                .bind(promise.made_on)
                .bind(promise.promised_date)
                .bind(promise.invoice_ids.join(","))
                .bind(now)
                .bind(&promise.created_by)
                .execute(&mut *tx)
                .await?;
            }
            sqlx::query(&sql(
                "INSERT INTO contacts (contact_id, case_id, customer_id, channel, outcome, notes, contact_name, \
                 promise_id, contacted_at, logged_by, next_contact_date) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
            ))
            .bind(&contact.contact_id)
            .bind(&contact.case_id)
            .bind(&contact.customer_id)
            .bind(&contact.channel)
            .bind(&contact.outcome)
            .bind(&contact.notes)
            .bind(&contact.contact_name)
            .bind(&contact.promise_id)
            .bind(stored_time(contact.contacted_at))
            .bind(&contact.logged_by)
            .bind(contact.next_contact_date)
            .execute(&mut *tx)
            .await?;
            sqlx::query(&sql(
                "UPDATE collection_cases SET next_contact_date = $2, \
                 last_contact_at = CASE WHEN last_contact_at IS NULL OR last_contact_at < $3 THEN $3 ELSE last_contact_at END \
                 WHERE case_id = $1",
            ))
            .bind(&contact.case_id)
            .bind(contact.next_contact_date)
            .bind(stored_time(contact.contacted_at))
            .execute(&mut *tx)
            .await?;
            insert_idempotency_key!(tx, sql, key, &contact.contact_id, now)?;
            tx.commit().await?;
            Ok(Outcome::New(contact.contact_id.clone()))
        })
    }

    async fn contact(&self, contact_id: &str) -> StoreResult<Option<ContactRecord>> {
        let row = on_database!(self.database(), |pool, sql| {
            sqlx::query_as::<_, ContactRow>(&sql(concat!(
                "SELECT ",
                contact_columns!(),
                " FROM contacts WHERE contact_id = $1"
            )))
            .bind(contact_id)
            .fetch_optional(pool)
            .await?
        });
        Ok(row.map(ContactRow::into_record))
    }

    async fn contacts(
        &self,
        case_id: &str,
        customer_id: &str,
        after: Option<&str>,
        limit: i64,
    ) -> StoreResult<Vec<ContactRecord>> {
        let after = after.unwrap_or("");
        let rows = on_database!(self.database(), |pool, sql| {
            sqlx::query_as::<_, ContactRow>(&sql(concat!(
                "SELECT ",
                contact_columns!(),
                " FROM contacts WHERE ($1 = '' OR case_id = $1) AND ($2 = '' OR customer_id = $2) \
                 AND ($3 = '' OR contact_id < $3) ORDER BY contact_id DESC LIMIT $4"
            )))
            .bind(case_id)
            .bind(customer_id)
            .bind(after)
            .bind(limit)
            .fetch_all(pool)
            .await?
        });
        Ok(rows.into_iter().map(ContactRow::into_record).collect())
    }

    async fn promise(&self, promise_id: &str) -> StoreResult<Option<PromiseRecord>> {
        let row = on_database!(self.database(), |pool, sql| {
            sqlx::query_as::<_, PromiseRow>(&sql(concat!(
                "SELECT ",
                promise_columns!(),
                " FROM promises WHERE promise_id = $1"
            )))
            .bind(promise_id)
            .fetch_optional(pool)
            .await?
        });
        row.map(PromiseRow::into_record).transpose()
    }

    async fn dispute(&self, dispute_id: &str) -> StoreResult<Option<DisputeRecord>> {
        let row = on_database!(self.database(), |pool, sql| {
            sqlx::query_as::<_, DisputeRow>(&sql(concat!(
                "SELECT ",
                dispute_columns!(),
                " FROM disputes WHERE dispute_id = $1"
            )))
            .bind(dispute_id)
            .fetch_optional(pool)
            .await?
        });
        row.map(DisputeRow::into_record).transpose()
    }

    async fn disputes(
        &self,
        filter: &DisputeFilter,
        after: Option<&str>,
        limit: i64,
    ) -> StoreResult<Vec<DisputeRecord>> {
        let after = after.unwrap_or("");
        let rows = on_database!(self.database(), |pool, sql| {
            sqlx::query_as::<_, DisputeRow>(&sql(concat!(
                "SELECT ",
                dispute_columns!(),
                " FROM disputes WHERE ($1 = '' OR customer_id = $1) AND ($2 = '' OR invoice_id = $2) \
                 AND ($3 = '' OR status = $3) AND ($4 = '' OR dispute_id < $4) ORDER BY dispute_id DESC LIMIT $5"
            )))
            .bind(&filter.customer_id)
            .bind(&filter.invoice_id)
            .bind(&filter.status)
            .bind(after)
            .bind(limit)
            .fetch_all(pool)
            .await?
        });
        rows.into_iter().map(DisputeRow::into_record).collect()
    }

    async fn customer_pds(&self) -> StoreResult<BTreeMap<String, String>> {
        let rows: Vec<(String, String)> = on_database!(self.database(), |pool, sql| {
            sqlx::query_as(&sql("SELECT customer_id, pd FROM customer_ratings"))
                .fetch_all(pool)
                .await?
        });
        Ok(rows.into_iter().collect())
    }

    async fn customer_grades(&self) -> StoreResult<BTreeMap<String, String>> {
        let rows: Vec<(String, String)> = on_database!(self.database(), |pool, sql| {
            sqlx::query_as(&sql("SELECT customer_id, grade FROM customer_ratings"))
                .fetch_all(pool)
                .await?
        });
        Ok(rows.into_iter().collect())
    }

    async fn apply_rating_event(&self, consumer: &str, event: &Event) -> StoreResult<()> {
        let Some(Payload::RatingChanged(changed)) = &event.payload else {
            return Ok(());
        };
        let at = stored_time(occurred_at(event));
        on_database!(self.database(), |pool, sql, begin_write| {
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
            if first_time {
                sqlx::query(&sql(
                    "INSERT INTO customer_ratings (customer_id, grade, pd, rating_changed_at) VALUES ($1, $2, $3, $4) \
                     ON CONFLICT (customer_id) DO UPDATE SET grade = excluded.grade, pd = excluded.pd, \
                     rating_changed_at = excluded.rating_changed_at \
                     WHERE customer_ratings.rating_changed_at <= excluded.rating_changed_at",
                ))
                .bind(&changed.customer_id)
                .bind(&changed.grade)
                .bind(&changed.pd)
                .bind(at)
                .execute(&mut *tx)
                .await?;
            }
            tx.commit().await?;
            Ok(())
        })
    }
}
