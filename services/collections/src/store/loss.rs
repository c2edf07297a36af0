//! [`LossStore`]: write-offs and recoveries, on both backends (one body through
//! `on_database!`).
//!
//! A decision and a recovery lock the customer's account row first, as every receivable write
//! does (`ReceivableStore::commit`), so an approval never writes off an amount a concurrent
//! payment has just settled, and the account's counter gives the ledger position.

use async_trait::async_trait;
use chrono::{DateTime, NaiveDate, Utc};
use credit_core::{Currency, ServiceError};
use credit_proto::v1::Event;
use credit_runtime::sql::{IdempotencyKey, KeyLookup, KeyReused, retry_once_on_race};
use credit_runtime::{
    Database, insert_idempotency_key, insert_outbox_event, lookup_idempotency_key, on_database,
};
use rust_decimal::Decimal;
use sqlx::types::Json;

use super::balances::{self, BalanceDeltas, write_balances};
use super::{
    LedgerDocument, NewMovement, Outcome, StoreError, StoreResult, currency, decimal, stored_time,
};
use crate::domain::WriteOffStatus;

/// A write-off as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WriteOffRecord {
    pub write_off_id: String,
    pub invoice_id: String,
    pub customer_id: String,
    pub currency: Currency,
    pub amount: Decimal,
    pub reason: String,
    pub status: WriteOffStatus,
    pub requested_by: String,
    /// Principal id of the maker.
    pub requested_by_id: String,
    pub requested_at: DateTime<Utc>,
    /// Empty while pending.
    pub decided_by: String,
    pub decided_at: Option<DateTime<Utc>>,
    /// The approval (or rejection) date; the WRITE_OFF movement's date when approved.
    pub decision_date: Option<NaiveDate>,
    pub decision_reason: String,
    /// Recovered so far.
    pub recovered: Decimal,
    /// The WRITE_OFF chain it walks; `None` for a write-off decided in one step (requested
    /// before chains, or without a limits service to choose one).
    /// Boxed: most write-offs in a ledger listing are decided, their chains rarely read.
    pub approval_chain: Option<Box<credit_core::approval::Chain>>,
}

/// Money recovered on an approved write-off.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecoveryRecord {
    pub recovery_id: String,
    pub write_off_id: String,
    pub invoice_id: String,
    pub customer_id: String,
    pub currency: Currency,
    pub amount: Decimal,
    pub value_date: NaiveDate,
    pub reference: String,
    pub recorded_at: DateTime<Utc>,
    pub recorded_by: String,
}

/// The invoice of a write-off as a decision sees it, read after the account is locked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InvoiceState {
    pub amount: Decimal,
    /// Amount less every movement recorded.
    pub open_amount: Decimal,
}

/// What a decision writes.
#[derive(Debug, Clone)]
pub struct DecisionChanges {
    /// The write-off as decided.
    pub write_off: WriteOffRecord,
    /// The WRITE_OFF movement of an approval.
    pub movement: Option<NewMovement>,
    /// The date the invoice closes on, when the approval leaves nothing open.
    pub close_invoice_on: Option<NaiveDate>,
    pub events: Vec<Event>,
}

/// What a recovery writes.
#[derive(Debug, Clone)]
pub struct RecoveryChanges {
    pub recovery: RecoveryRecord,
    /// The write-off's recovered total after it.
    pub recovered_after: Decimal,
    pub events: Vec<Event>,
}

/// Makes the pending write-off to store; refusals are the caller's errors.
pub type RequestPlan<'a> = &'a (dyn Fn() -> Result<WriteOffRecord, ServiceError> + Send + Sync);

/// Decides against the pending write-off and its invoice; refusals are the caller's errors.
pub type DecisionPlan<'a> = &'a (
        dyn Fn(&WriteOffRecord, &InvoiceState) -> Result<DecisionChanges, ServiceError>
            + Send
            + Sync
    );

/// Plans a recovery against the write-off; refusals are the caller's errors.
pub type RecoveryPlan<'a> =
    &'a (dyn Fn(&WriteOffRecord) -> Result<RecoveryChanges, ServiceError> + Send + Sync);

/// Filter of ListWriteOffs.
#[derive(Debug, Clone, Default)]
pub struct WriteOffFilter {
    pub status: Option<WriteOffStatus>,
    pub customer_id: Option<String>,
}

#[async_trait]
pub trait LossStore: Send + Sync + std::fmt::Debug {
    /// Stores the pending write-off `plan` makes, once per request id: a replay returns the id
    /// it made (before the plan is asked again), other content under the same key is
    /// `KeyReused`.
    async fn request_write_off(
        &self,
        key: &IdempotencyKey,
        plan: RequestPlan<'_>,
    ) -> StoreResult<Outcome<String>>;

    /// Decides a write-off once per request id, with its movement, closure and events in one
    /// transaction. Returns the write-off's id.
    async fn decide_write_off(
        &self,
        key: &IdempotencyKey,
        write_off_id: &str,
        plan: DecisionPlan<'_>,
    ) -> StoreResult<Outcome<String>>;

    /// Records a recovery once per request id. Returns the recovery's id.
    async fn record_recovery(
        &self,
        key: &IdempotencyKey,
        write_off_id: &str,
        plan: RecoveryPlan<'_>,
    ) -> StoreResult<Outcome<String>>;

    async fn write_off(&self, write_off_id: &str) -> StoreResult<Option<WriteOffRecord>>;

    async fn recovery(&self, recovery_id: &str) -> StoreResult<Option<RecoveryRecord>>;

    /// Write-offs newest first, after the id `after`.
    async fn write_offs(
        &self,
        filter: &WriteOffFilter,
        after: Option<&str>,
        limit: i64,
    ) -> StoreResult<Vec<WriteOffRecord>>;
}

#[derive(Debug, Clone)]
pub struct SqlLossStore {
    database: Database,
}

impl SqlLossStore {
    pub fn new(database: Database) -> Self {
        Self { database }
    }
}

#[derive(Debug, sqlx::FromRow)]
pub(super) struct WriteOffRow {
    write_off_id: String,
    invoice_id: String,
    customer_id: String,
    currency: String,
    amount: String,
    reason: String,
    status: String,
    requested_by: String,
    requested_by_id: String,
    requested_at: DateTime<Utc>,
    decided_by: String,
    decided_at: Option<DateTime<Utc>>,
    decision_date: Option<NaiveDate>,
    decision_reason: String,
    recovered: String,
    pub(super) ledger_seq: i64,
    approval_chain: Option<Json<credit_core::approval::Chain>>,
}

impl WriteOffRow {
    pub(super) fn into_record(self) -> StoreResult<WriteOffRecord> {
        let place = format!("write-off {}", self.write_off_id);
        Ok(WriteOffRecord {
            currency: currency(&place, &self.currency)?,
            amount: decimal(&place, &self.amount)?,
            recovered: decimal(&place, &self.recovered)?,
            status: WriteOffStatus::parse(&self.status)
                .ok_or_else(|| StoreError::Corrupt(format!("{place}: status {}", self.status)))?,
            write_off_id: self.write_off_id,
            invoice_id: self.invoice_id,
            customer_id: self.customer_id,
            reason: self.reason,
            requested_by: self.requested_by,
            requested_by_id: self.requested_by_id,
            requested_at: self.requested_at,
            decided_by: self.decided_by,
            decided_at: self.decided_at,
            decision_date: self.decision_date,
            decision_reason: self.decision_reason,
            approval_chain: self.approval_chain.map(|chain| Box::new(chain.0)),
        })
    }
}

#[derive(Debug, sqlx::FromRow)]
pub(super) struct RecoveryRow {
    recovery_id: String,
    write_off_id: String,
    invoice_id: String,
    customer_id: String,
    currency: String,
    amount: String,
    value_date: NaiveDate,
    reference: String,
    pub(super) ledger_seq: i64,
    recorded_at: DateTime<Utc>,
    recorded_by: String,
}

impl RecoveryRow {
    pub(super) fn into_record(self) -> StoreResult<RecoveryRecord> {
        let place = format!("recovery {}", self.recovery_id);
        Ok(RecoveryRecord {
            currency: currency(&place, &self.currency)?,
            amount: decimal(&place, &self.amount)?,
            recovery_id: self.recovery_id,
            write_off_id: self.write_off_id,
            invoice_id: self.invoice_id,
            customer_id: self.customer_id,
            value_date: self.value_date,
            reference: self.reference,
            recorded_at: self.recorded_at,
            recorded_by: self.recorded_by,
        })
    }
}

/// `SELECT <columns> FROM write_offs WHERE <condition>` as one static string.
macro_rules! write_offs_where {
    ($condition:literal) => {
        concat!(
            "SELECT write_off_id, invoice_id, customer_id, currency, amount, reason, status, \
             requested_by, requested_by_id, requested_at, decided_by, decided_at, decision_date, \
             decision_reason, recovered, ledger_seq, approval_chain FROM write_offs WHERE ",
            $condition
        )
    };
}

/// The write-off `$write_off_id` as it is once its customer's account row is taken (its
/// writes queue there): evaluates to `(customer_id, posting sequence, WriteOffRecord)`, or
/// returns NOT_FOUND from the enclosing transaction when there is no such write-off.
macro_rules! locked_write_off {
    ($tx:ident, $sql:ident, $write_off_id:expr) => {{
        let customer_id: Option<String> = sqlx::query_scalar(&$sql(
            "SELECT customer_id FROM write_offs WHERE write_off_id = $1",
        ))
        .bind($write_off_id)
        .fetch_optional(&mut *$tx)
        .await?;
        let Some(customer_id) = customer_id else {
            return Err(StoreError::refused(ServiceError::not_found(
                "write-off",
                $write_off_id,
            )));
        };
        let seq = next_posting!($tx, $sql, &customer_id)?;
        // Read after the account row is taken: a concurrent decision on it has committed.
        let write_off =
            sqlx::query_as::<_, WriteOffRow>(&$sql(write_offs_where!("write_off_id = $1")))
                .bind($write_off_id)
                .fetch_one(&mut *$tx)
                .await?
                .into_record()?;
        (customer_id, seq, write_off)
    }};
}

/// `SELECT <columns> FROM recoveries WHERE <condition>` as one static string.
macro_rules! recoveries_where {
    ($condition:literal) => {
        concat!(
            "SELECT recovery_id, write_off_id, invoice_id, customer_id, currency, amount, \
             value_date, reference, ledger_seq, recorded_at, recorded_by FROM recoveries WHERE ",
            $condition
        )
    };
}

fn key_outcome(lookup: KeyLookup) -> Option<StoreResult<Outcome<String>>> {
    match lookup {
        KeyLookup::Fresh => None,
        KeyLookup::Replay(resource_id) => Some(Ok(Outcome::Replayed(resource_id))),
        KeyLookup::Reused => Some(Err(StoreError::KeyReused(KeyReused))),
    }
}

/// Approved write-offs and recoveries of a customer with their ledger positions, for
/// `ReceivableStore::ledger`.
pub(super) async fn ledger_documents(
    database: &Database,
    customer_id: &str,
) -> StoreResult<Vec<(i64, LedgerDocument)>> {
    let (write_offs, recoveries) = on_database!(database, |pool, sql| {
        let write_offs = sqlx::query_as::<_, WriteOffRow>(&sql(write_offs_where!(
            "customer_id = $1 AND status = 'APPROVED' ORDER BY ledger_seq"
        )))
        .bind(customer_id)
        .fetch_all(pool)
        .await?;
        let recoveries = sqlx::query_as::<_, RecoveryRow>(&sql(recoveries_where!(
            "customer_id = $1 ORDER BY ledger_seq"
        )))
        .bind(customer_id)
        .fetch_all(pool)
        .await?;
        (write_offs, recoveries)
    });
    let mut documents = Vec::with_capacity(write_offs.len() + recoveries.len());
    for row in write_offs {
        let seq = row.ledger_seq;
        documents.push((seq, LedgerDocument::WriteOff(row.into_record()?)));
    }
    for row in recoveries {
        let seq = row.ledger_seq;
        documents.push((seq, LedgerDocument::Recovery(row.into_record()?)));
    }
    Ok(documents)
}

#[async_trait]
impl LossStore for SqlLossStore {
    async fn request_write_off(
        &self,
        key: &IdempotencyKey,
        plan: RequestPlan<'_>,
    ) -> StoreResult<Outcome<String>> {
        let now = stored_time(Utc::now());
        retry_once_on_race(|| async {
            on_database!(&self.database, |pool, sql, begin_write| {
                let mut tx = pool.begin_with(begin_write).await?;
                if let Some(outcome) = key_outcome(lookup_idempotency_key!(tx, sql, key)?) {
                    return outcome;
                }
                let write_off = plan().map_err(StoreError::refused)?;
                sqlx::query(&sql(
                    "INSERT INTO write_offs (write_off_id, invoice_id, customer_id, currency, amount, reason, status, \
                     requested_by, requested_by_id, requested_at, decided_by, decided_at, decision_date, decision_reason, \
                     recovered, ledger_seq, approval_chain) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, '', NULL, NULL, '', '0', 0, $11)",
                ))
                .bind(&write_off.write_off_id)
                .bind(&write_off.invoice_id)
                .bind(&write_off.customer_id)
                .bind(write_off.currency.code())
                .bind(write_off.amount.to_string())
                .bind(&write_off.reason)
                .bind(WriteOffStatus::Pending.name())
                .bind(&write_off.requested_by)
                .bind(&write_off.requested_by_id)
                .bind(now)
                .bind(write_off.approval_chain.as_deref().map(Json))
                .execute(&mut *tx)
                .await?;
                insert_idempotency_key!(tx, sql, key, &write_off.write_off_id, now)?;
                tx.commit().await?;
                Ok(Outcome::New(write_off.write_off_id.clone()))
            })
        })
        .await
    }

    async fn decide_write_off(
        &self,
        key: &IdempotencyKey,
        write_off_id: &str,
        plan: DecisionPlan<'_>,
    ) -> StoreResult<Outcome<String>> {
        let now = stored_time(Utc::now());
        retry_once_on_race(|| async {
            on_database!(&self.database, |pool, sql, begin_write| {
                let mut tx = pool.begin_with(begin_write).await?;
                if let Some(outcome) = key_outcome(lookup_idempotency_key!(tx, sql, key)?) {
                    return outcome;
                }
                let (customer_id, seq, write_off) = locked_write_off!(tx, sql, write_off_id);
                let (amount, invoice_currency, due_date): (String, String, NaiveDate) =
                    sqlx::query_as(&sql(
                        "SELECT amount, currency, due_date FROM invoices WHERE invoice_id = $1",
                    ))
                    .bind(&write_off.invoice_id)
                    .fetch_one(&mut *tx)
                    .await?;
                let reductions: Vec<String> = sqlx::query_scalar(&sql(
                    "SELECT amount FROM receivable_movements WHERE invoice_id = $1",
                ))
                .bind(&write_off.invoice_id)
                .fetch_all(&mut *tx)
                .await?;
                let place = format!("invoice {}", write_off.invoice_id);
                let amount = decimal(&place, &amount)?;
                let invoice_currency = currency(&place, &invoice_currency)?;
                let mut reduced = Decimal::ZERO;
                for reduction in &reductions {
                    reduced = balances::add(reduced, decimal(&place, reduction)?, "open receivables")?;
                }
                let state = InvoiceState {
                    amount,
                    open_amount: (amount - reduced).max(Decimal::ZERO),
                };
                let changes = plan(&write_off, &state).map_err(StoreError::refused)?;

                let decided = &changes.write_off;
                sqlx::query(&sql(
                    "UPDATE write_offs SET status = $2, decided_by = $3, decided_at = $4, decision_date = $5, \
                     decision_reason = $6, ledger_seq = $7, approval_chain = $8 WHERE write_off_id = $1",
                ))
                .bind(write_off_id)
                .bind(decided.status.name())
                .bind(&decided.decided_by)
                // A step of its chain leaves it pending: decided when its chain ends.
                .bind((decided.status != WriteOffStatus::Pending).then_some(now))
                .bind(decided.decision_date)
                .bind(&decided.decision_reason)
                .bind(seq)
                .bind(decided.approval_chain.as_deref().map(Json))
                .execute(&mut *tx)
                .await?;
                let entry = serde_json::json!({
                    "write_off_id": write_off_id,
                    "invoice_id": &decided.invoice_id,
                    "customer_id": &decided.customer_id,
                    "amount": decided.amount.to_string(),
                    "currency": decided.currency.code(),
                    "status": decided.status.name(),
                    "requested_by": &decided.requested_by,
                    "requested_by_id": &decided.requested_by_id,
                    "decided_by": &decided.decided_by,
                    "decision_reason": &decided.decision_reason,
                });
                credit_runtime::append_audit!(
                    tx,
                    sql,
                    &credit_runtime::audit::AuditRecord {
                        kind: if decided.status == WriteOffStatus::Pending {
                            "write_off.step_decided"
                        } else {
                            "write_off.decided"
                        },
                        record_id: write_off_id,
                        actor: &decided.decided_by,
                        entry: entry.to_string(),
                    }
                )
                .await?;
                if let Some(movement) = &changes.movement {
                    sqlx::query(&sql(
                        "INSERT INTO receivable_movements (movement_id, customer_id, invoice_id, kind, amount, \
                         effective_date, document_id, recorded_at) VALUES ($1, $2, $3, 'WRITE_OFF', $4, $5, $6, $7)",
                    ))
                    .bind(format!("{write_off_id}-0"))
                    .bind(&customer_id)
                    .bind(&movement.invoice_id)
                    .bind(movement.amount.to_string())
                    .bind(movement.date)
                    .bind(&movement.document_id)
                    .bind(now)
                    .execute(&mut *tx)
                    .await?;
                }
                if let Some(closed_on) = changes.close_invoice_on {
                    sqlx::query(&sql("UPDATE invoices SET closed_date = $2 WHERE invoice_id = $1"))
                        .bind(&write_off.invoice_id)
                        .bind(closed_on)
                        .execute(&mut *tx)
                        .await?;
                }
                // The running balances move with the write-off (migration 0007).
                let mut deltas = BalanceDeltas::default();
                if let Some(movement) = &changes.movement {
                    deltas.invoice_reduced(invoice_currency, due_date, movement.amount)?;
                }
                if changes.close_invoice_on.is_some() {
                    deltas.invoice_closed(invoice_currency, due_date)?;
                }
                write_balances!(tx, sql, &customer_id, &deltas)?;
                for event in &changes.events {
                    insert_outbox_event!(tx, sql, event)?;
                }
                insert_idempotency_key!(tx, sql, key, write_off_id, now)?;
                tx.commit().await?;
                Ok(Outcome::New(write_off_id.to_owned()))
            })
        })
        .await
    }

    async fn record_recovery(
        &self,
        key: &IdempotencyKey,
        write_off_id: &str,
        plan: RecoveryPlan<'_>,
    ) -> StoreResult<Outcome<String>> {
        let now = stored_time(Utc::now());
        retry_once_on_race(|| async {
            on_database!(&self.database, |pool, sql, begin_write| {
                let mut tx = pool.begin_with(begin_write).await?;
                if let Some(outcome) = key_outcome(lookup_idempotency_key!(tx, sql, key)?) {
                    return outcome;
                }
                let (customer_id, seq, write_off) = locked_write_off!(tx, sql, write_off_id);
                let changes = plan(&write_off).map_err(StoreError::refused)?;
                let recovery = &changes.recovery;
                sqlx::query(&sql(
                    "INSERT INTO recoveries (recovery_id, write_off_id, invoice_id, customer_id, currency, amount, \
                     value_date, reference, ledger_seq, recorded_at, recorded_by) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
                ))
                .bind(&recovery.recovery_id)
                .bind(write_off_id)
                .bind(&recovery.invoice_id)
                .bind(&customer_id)
                .bind(recovery.currency.code())
                .bind(recovery.amount.to_string())
                .bind(recovery.value_date)
                .bind(&recovery.reference)
                .bind(seq)
                .bind(now)
                .bind(&recovery.recorded_by)
                .execute(&mut *tx)
                .await?;
                sqlx::query(&sql(
                    "UPDATE write_offs SET recovered = $2 WHERE write_off_id = $1",
                ))
                .bind(write_off_id)
                .bind(changes.recovered_after.to_string())
                .execute(&mut *tx)
                .await?;
                for event in &changes.events {
                    insert_outbox_event!(tx, sql, event)?;
                }
                insert_idempotency_key!(tx, sql, key, &recovery.recovery_id, now)?;
                tx.commit().await?;
                Ok(Outcome::New(recovery.recovery_id.clone()))
            })
        })
        .await
    }

    async fn write_off(&self, write_off_id: &str) -> StoreResult<Option<WriteOffRecord>> {
        let row = on_database!(&self.database, |pool, sql| {
            sqlx::query_as::<_, WriteOffRow>(&sql(write_offs_where!("write_off_id = $1")))
                .bind(write_off_id)
                .fetch_optional(pool)
                .await?
        });
        row.map(WriteOffRow::into_record).transpose()
    }

    async fn recovery(&self, recovery_id: &str) -> StoreResult<Option<RecoveryRecord>> {
        let row = on_database!(&self.database, |pool, sql| {
            sqlx::query_as::<_, RecoveryRow>(&sql(recoveries_where!("recovery_id = $1")))
                .bind(recovery_id)
                .fetch_optional(pool)
                .await?
        });
        row.map(RecoveryRow::into_record).transpose()
    }

    async fn write_offs(
        &self,
        filter: &WriteOffFilter,
        after: Option<&str>,
        limit: i64,
    ) -> StoreResult<Vec<WriteOffRecord>> {
        let status = filter.status.map_or("", WriteOffStatus::name);
        let customer = filter.customer_id.as_deref().unwrap_or("");
        let after = after.unwrap_or("");
        let rows = on_database!(&self.database, |pool, sql| {
            sqlx::query_as::<_, WriteOffRow>(&sql(write_offs_where!(
                "($1 = '' OR status = $1) AND ($2 = '' OR customer_id = $2) \
                 AND ($3 = '' OR write_off_id < $3) ORDER BY write_off_id DESC LIMIT $4"
            )))
            .bind(status)
            .bind(customer)
            .bind(after)
            .bind(limit)
            .fetch_all(pool)
            .await?
        });
        rows.into_iter().map(WriteOffRow::into_record).collect()
    }
}
