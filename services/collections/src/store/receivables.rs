//! [`ReceivableStore`] on both backends.

use std::collections::BTreeMap;

use async_trait::async_trait;
use chrono::{DateTime, NaiveDate, Utc};
use credit_core::{Currency, ServiceError};
use credit_runtime::sql::{KeyReused, retry_once_on_race};
use credit_runtime::{Database, insert_outbox_event, on_database};
use rust_decimal::Decimal;

use super::{
    Account, CreditNoteRecord, InvoiceFilter, InvoiceRecord, LedgerDocument, NaturalKey,
    NewMovement, Outcome, OverdueChange, PaymentRecord, Plan, ReceivableStore, StoreError,
    StoreResult, StoredInvoice, Terms, currency, decimal, stored_time,
};
use crate::domain::{CustomerId, Invoice, InvoiceHistory, InvoiceId, Movement, MovementKind};

use super::cases::DisputeRow;

/// Sets each invoice's disputed amount from the open disputes read with it.
fn with_disputes(
    mut invoices: Vec<StoredInvoice>,
    disputes: Vec<DisputeRow>,
) -> StoreResult<Vec<StoredInvoice>> {
    let mut by_invoice: BTreeMap<String, Decimal> = BTreeMap::new();
    for row in disputes {
        let record = row.into_record()?;
        *by_invoice
            .entry(record.invoice_id.clone())
            .or_insert(Decimal::ZERO) += record.amount;
    }
    for stored in &mut invoices {
        stored.disputed_amount = by_invoice
            .get(stored.record.invoice.invoice_id.as_str())
            .copied()
            .unwrap_or(Decimal::ZERO);
    }
    Ok(invoices)
}

#[derive(Debug, Clone)]
pub struct SqlReceivableStore {
    database: Database,
}

impl SqlReceivableStore {
    pub fn new(database: Database) -> Self {
        Self { database }
    }

    /// For the other parts of the store, written against the same database.
    pub(super) fn database(&self) -> &Database {
        &self.database
    }
}

fn kind_name(kind: MovementKind) -> &'static str {
    match kind {
        MovementKind::Payment => "PAYMENT",
        MovementKind::CreditNote => "CREDIT_NOTE",
        MovementKind::WriteOff => "WRITE_OFF",
    }
}

fn parse_kind(text: &str) -> StoreResult<MovementKind> {
    match text {
        "PAYMENT" => Ok(MovementKind::Payment),
        "CREDIT_NOTE" => Ok(MovementKind::CreditNote),
        "WRITE_OFF" => Ok(MovementKind::WriteOff),
        other => Err(StoreError::Corrupt(format!("movement kind {other}"))),
    }
}

#[derive(Debug, sqlx::FromRow)]
struct InvoiceRow {
    invoice_id: String,
    customer_id: String,
    invoice_number: String,
    currency: String,
    amount: String,
    issue_date: NaiveDate,
    due_date: NaiveDate,
    order_id: String,
    hold_id: String,
    net_days: Option<i32>,
    discount_percent: String,
    discount_days: i32,
    closed_date: Option<NaiveDate>,
    posted_at: DateTime<Utc>,
    posted_by: String,
}

impl InvoiceRow {
    fn into_record(self) -> StoreResult<InvoiceRecord> {
        let place = format!("invoice {}", self.invoice_id);
        let corrupt = |what: &str| StoreError::Corrupt(format!("{place}: {what}"));
        Ok(InvoiceRecord {
            invoice: Invoice {
                invoice_id: InvoiceId::parse(&self.invoice_id).map_err(|_| corrupt("id"))?,
                customer_id: CustomerId::parse(&self.customer_id)
                    .map_err(|_| corrupt("customer id"))?,
                invoice_number: self.invoice_number,
                currency: currency(&place, &self.currency)?,
                amount: decimal(&place, &self.amount)?,
                issue_date: self.issue_date,
                due_date: self.due_date,
            },
            order_id: self.order_id,
            hold_id: self.hold_id,
            terms: self.net_days.map(|net_days| Terms {
                net_days: u32::try_from(net_days).unwrap_or(0),
                discount_percent: self.discount_percent.clone(),
                discount_days: u32::try_from(self.discount_days).unwrap_or(0),
            }),
            closed_date: self.closed_date,
            posted_at: self.posted_at,
            posted_by: self.posted_by,
        })
    }
}

#[derive(Debug, sqlx::FromRow)]
struct MovementRow {
    invoice_id: String,
    kind: String,
    amount: String,
    effective_date: NaiveDate,
    document_id: String,
}

impl MovementRow {
    fn into_movement(self) -> StoreResult<NewMovement> {
        Ok(NewMovement {
            kind: parse_kind(&self.kind)?,
            amount: decimal(&format!("movement of {}", self.invoice_id), &self.amount)?,
            date: self.effective_date,
            invoice_id: self.invoice_id,
            document_id: self.document_id,
        })
    }
}

#[derive(Debug, sqlx::FromRow)]
struct PaymentRow {
    payment_id: String,
    customer_id: String,
    reference: String,
    currency: String,
    amount: String,
    value_date: NaiveDate,
    unapplied_at_recording: String,
    unapplied: String,
    recorded_at: DateTime<Utc>,
    recorded_by: String,
}

impl PaymentRow {
    fn into_record(self) -> StoreResult<PaymentRecord> {
        let place = format!("payment {}", self.payment_id);
        Ok(PaymentRecord {
            currency: currency(&place, &self.currency)?,
            amount: decimal(&place, &self.amount)?,
            unapplied_at_recording: decimal(&place, &self.unapplied_at_recording)?,
            unapplied: decimal(&place, &self.unapplied)?,
            payment_id: self.payment_id,
            customer_id: self.customer_id,
            reference: self.reference,
            value_date: self.value_date,
            recorded_at: self.recorded_at,
            recorded_by: self.recorded_by,
        })
    }
}

#[derive(Debug, sqlx::FromRow)]
struct CreditNoteRow {
    credit_note_id: String,
    customer_id: String,
    credit_note_number: String,
    invoice_id: String,
    currency: String,
    amount: String,
    issue_date: NaiveDate,
    reason: String,
    dispute_id: String,
    posted_at: DateTime<Utc>,
    posted_by: String,
}

impl CreditNoteRow {
    fn into_record(self) -> StoreResult<CreditNoteRecord> {
        let place = format!("credit note {}", self.credit_note_id);
        Ok(CreditNoteRecord {
            currency: currency(&place, &self.currency)?,
            amount: decimal(&place, &self.amount)?,
            credit_note_id: self.credit_note_id,
            customer_id: self.customer_id,
            credit_note_number: self.credit_note_number,
            invoice_id: self.invoice_id,
            issue_date: self.issue_date,
            reason: self.reason,
            dispute_id: self.dispute_id,
            posted_at: self.posted_at,
            posted_by: self.posted_by,
        })
    }
}

/// Invoices with their movements, in the order of `invoices`.
fn join_histories(
    invoices: Vec<InvoiceRow>,
    movements: Vec<MovementRow>,
) -> StoreResult<Vec<StoredInvoice>> {
    let mut by_invoice: BTreeMap<String, Vec<(Movement, String)>> = BTreeMap::new();
    for row in movements {
        let movement = row.into_movement()?;
        by_invoice
            .entry(movement.invoice_id.clone())
            .or_default()
            .push((
                Movement {
                    kind: movement.kind,
                    amount: movement.amount,
                    date: movement.date,
                },
                movement.document_id,
            ));
    }
    invoices
        .into_iter()
        .map(|row| {
            let record = row.into_record()?;
            let (movements, movement_documents) = by_invoice
                .remove(record.invoice.invoice_id.as_str())
                .unwrap_or_default()
                .into_iter()
                .unzip();
            Ok(StoredInvoice {
                history: InvoiceHistory::new(record.invoice.clone(), movements),
                movement_documents,
                record,
                disputed_amount: Decimal::ZERO,
            })
        })
        .collect()
}

/// `SELECT <columns> FROM invoices WHERE <condition>` as one static string per query.
macro_rules! invoices_where {
    ($condition:literal) => {
        concat!(
            "SELECT invoice_id, customer_id, invoice_number, currency, amount, issue_date, due_date, \
             order_id, hold_id, net_days, discount_percent, discount_days, closed_date, posted_at, posted_by \
             FROM invoices WHERE ",
            $condition
        )
    };
}

/// Movements of the invoices a condition on `i` (invoices) selects.
macro_rules! movements_of_invoices_where {
    ($condition:literal) => {
        concat!(
            "SELECT m.invoice_id, m.kind, m.amount, m.effective_date, m.document_id \
             FROM receivable_movements AS m JOIN invoices AS i ON i.invoice_id = m.invoice_id WHERE ",
            $condition,
            " ORDER BY m.recorded_at, m.movement_id"
        )
    };
}

#[async_trait]
impl ReceivableStore for SqlReceivableStore {
    async fn commit(
        &self,
        customer_id: &str,
        key: &NaturalKey,
        fingerprint: &str,
        plan: Plan<'_>,
    ) -> StoreResult<Outcome<String>> {
        let now = stored_time(Utc::now());
        retry_once_on_race(|| async {
            on_database!(&self.database, |pool, sql, begin_write| {
                let mut tx = pool.begin_with(begin_write).await?;
                let seq = next_posting!(tx, sql, customer_id)?;
                let existing: Option<(String, String)> = match key {
                    NaturalKey::Invoice(number) => sqlx::query_as(&sql(
                        "SELECT invoice_id, fingerprint FROM invoices WHERE customer_id = $1 AND invoice_number = $2",
                    ))
                    .bind(customer_id)
                    .bind(number)
                    .fetch_optional(&mut *tx)
                    .await?,
                    NaturalKey::CreditNote(number) => sqlx::query_as(&sql(
                        "SELECT credit_note_id, fingerprint FROM credit_notes WHERE customer_id = $1 AND credit_note_number = $2",
                    ))
                    .bind(customer_id)
                    .bind(number)
                    .fetch_optional(&mut *tx)
                    .await?,
                    NaturalKey::Payment(reference) => sqlx::query_as(&sql(
                        "SELECT payment_id, fingerprint FROM payments WHERE customer_id = $1 AND reference = $2",
                    ))
                    .bind(customer_id)
                    .bind(reference)
                    .fetch_optional(&mut *tx)
                    .await?,
                    NaturalKey::Request(key) => {
                        match credit_runtime::lookup_idempotency_key!(tx, sql, key)? {
                            credit_runtime::sql::KeyLookup::Fresh => None,
                            credit_runtime::sql::KeyLookup::Replay(id) => {
                                Some((id, fingerprint.to_owned()))
                            }
                            credit_runtime::sql::KeyLookup::Reused => {
                                return Err(StoreError::KeyReused(KeyReused));
                            }
                        }
                    }
                };
                if let Some((document_id, stored_fingerprint)) = existing {
                    if stored_fingerprint != fingerprint {
                        return Err(StoreError::KeyReused(KeyReused));
                    }
                    return Ok(Outcome::Replayed(document_id));
                }

                let invoices = sqlx::query_as::<_, InvoiceRow>(&sql(invoices_where!(
                    "customer_id = $1 AND closed_date IS NULL ORDER BY due_date, issue_date, invoice_number"
                )))
                .bind(customer_id)
                .fetch_all(&mut *tx)
                .await?;
                let movements = sqlx::query_as::<_, MovementRow>(&sql(movements_of_invoices_where!(
                    "i.customer_id = $1 AND i.closed_date IS NULL"
                )))
                .bind(customer_id)
                .fetch_all(&mut *tx)
                .await?;
                let credits = sqlx::query_as::<_, PaymentRow>(&sql(
                    "SELECT payment_id, customer_id, reference, currency, amount, value_date, \
                     unapplied_at_recording, unapplied, recorded_at, recorded_by \
                     FROM payments WHERE customer_id = $1 AND has_unapplied ORDER BY value_date, ledger_seq",
                ))
                .bind(customer_id)
                .fetch_all(&mut *tx)
                .await?
                .into_iter()
                .map(PaymentRow::into_record)
                .collect::<StoreResult<Vec<_>>>()?;
                let disputes = sqlx::query_as::<_, DisputeRow>(&sql(concat!(
                    "SELECT ", dispute_columns!(), " FROM disputes WHERE customer_id = $1 AND status = 'OPEN' ORDER BY dispute_id"
                )))
                .bind(customer_id)
                .fetch_all(&mut *tx)
                .await?;
                let open_disputes = disputes
                    .iter()
                    .cloned()
                    .map(DisputeRow::into_record)
                    .collect::<StoreResult<Vec<_>>>()?;
                let account = Account {
                    open_invoices: with_disputes(join_histories(invoices, movements)?, disputes)?,
                    credits,
                    open_disputes,
                };
                let changes = plan(&account).map_err(StoreError::Refused)?;

                if let Some(invoice) = &changes.invoice {
                    let terms = invoice.terms.as_ref();
                    sqlx::query(&sql(
                        "INSERT INTO invoices (invoice_id, customer_id, invoice_number, currency, amount, issue_date, \
                         due_date, order_id, hold_id, net_days, discount_percent, discount_days, closed_date, \
                         fingerprint, ledger_seq, posted_at, posted_by) \
                         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, NULL, $13, $14, $15, $16)",
                    ))
                    .bind(invoice.invoice.invoice_id.as_str())
                    .bind(customer_id)
                    .bind(&invoice.invoice.invoice_number)
                    .bind(invoice.invoice.currency.code())
                    .bind(invoice.invoice.amount.to_string())
                    .bind(invoice.invoice.issue_date)
                    .bind(invoice.invoice.due_date)
                    .bind(&invoice.order_id)
                    .bind(&invoice.hold_id)
                    .bind(terms.map(|terms| i32::try_from(terms.net_days).unwrap_or(i32::MAX)))
                    .bind(terms.map(|terms| terms.discount_percent.clone()).unwrap_or_default())
                    .bind(terms.map_or(0, |terms| i32::try_from(terms.discount_days).unwrap_or(0)))
                    .bind(&changes.fingerprint)
                    .bind(seq)
                    .bind(now)
                    .bind(&invoice.posted_by)
                    .execute(&mut *tx)
                    .await?;
                }
                if let Some(note) = &changes.credit_note {
                    // A credit note made by a dispute's resolution names its own number: one
                    // already in use is the caller's conflict, not a database failure.
                    let taken: Option<String> = sqlx::query_scalar(&sql(
                        "SELECT credit_note_id FROM credit_notes WHERE customer_id = $1 AND credit_note_number = $2",
                    ))
                    .bind(customer_id)
                    .bind(&note.credit_note_number)
                    .fetch_optional(&mut *tx)
                    .await?;
                    if let Some(existing) = taken {
                        return Err(StoreError::Refused(ServiceError::AlreadyExists {
                            reason: "CREDIT_NOTE_NUMBER_TAKEN",
                            message: format!(
                                "credit note number {} is already used for this customer",
                                note.credit_note_number
                            ),
                            metadata: vec![("credit_note_id", existing)],
                        }));
                    }
                    sqlx::query(&sql(
                        "INSERT INTO credit_notes (credit_note_id, customer_id, credit_note_number, invoice_id, \
                         currency, amount, issue_date, reason, dispute_id, fingerprint, ledger_seq, posted_at, posted_by) \
                         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)",
                    ))
                    .bind(&note.credit_note_id)
                    .bind(customer_id)
                    .bind(&note.credit_note_number)
                    .bind(&note.invoice_id)
                    .bind(note.currency.code())
                    .bind(note.amount.to_string())
                    .bind(note.issue_date)
                    .bind(&note.reason)
                    .bind(&note.dispute_id)
                    .bind(&changes.fingerprint)
                    .bind(seq)
                    .bind(now)
                    .bind(&note.posted_by)
                    .execute(&mut *tx)
                    .await?;
                }
                if let Some(payment) = &changes.payment {
                    sqlx::query(&sql(
                        "INSERT INTO payments (payment_id, customer_id, reference, currency, amount, value_date, \
                         unapplied_at_recording, unapplied, has_unapplied, fingerprint, ledger_seq, recorded_at, recorded_by) \
                         VALUES ($1, $2, $3, $4, $5, $6, $7, $7, $8, $9, $10, $11, $12)",
                    ))
                    .bind(&payment.payment_id)
                    .bind(customer_id)
                    .bind(&payment.reference)
                    .bind(payment.currency.code())
                    .bind(payment.amount.to_string())
                    .bind(payment.value_date)
                    .bind(payment.unapplied_at_recording.to_string())
                    .bind(payment.unapplied_at_recording > Decimal::ZERO)
                    .bind(&changes.fingerprint)
                    .bind(seq)
                    .bind(now)
                    .bind(&payment.recorded_by)
                    .execute(&mut *tx)
                    .await?;
                }
                for (index, movement) in changes.movements.iter().enumerate() {
                    sqlx::query(&sql(
                        "INSERT INTO receivable_movements (movement_id, customer_id, invoice_id, kind, amount, \
                         effective_date, document_id, recorded_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
                    ))
                    .bind(format!("{}-{index}", changes.document_id))
                    .bind(customer_id)
                    .bind(&movement.invoice_id)
                    .bind(kind_name(movement.kind))
                    .bind(movement.amount.to_string())
                    .bind(movement.date)
                    .bind(&movement.document_id)
                    .bind(now)
                    .execute(&mut *tx)
                    .await?;
                }
                for (payment_id, left) in &changes.credits_left {
                    sqlx::query(&sql(
                        "UPDATE payments SET unapplied = $2, has_unapplied = $3 WHERE payment_id = $1",
                    ))
                    .bind(payment_id)
                    .bind(left.to_string())
                    .bind(*left > Decimal::ZERO)
                    .execute(&mut *tx)
                    .await?;
                }
                for (invoice_id, closed_on) in &changes.closed {
                    sqlx::query(&sql("UPDATE invoices SET closed_date = $2 WHERE invoice_id = $1"))
                        .bind(invoice_id)
                        .bind(*closed_on)
                        .execute(&mut *tx)
                        .await?;
                }
                if let Some(dispute) = &changes.new_dispute {
                    sqlx::query(&sql(
                        "INSERT INTO disputes (dispute_id, invoice_id, customer_id, currency, amount, reason, status, \
                         opened_at, opened_by, resolved_at, resolved_by, resolution_notes, credit_note_id) \
                         VALUES ($1, $2, $3, $4, $5, $6, 'OPEN', $7, $8, NULL, '', '', '')",
                    ))
                    .bind(&dispute.dispute_id)
                    .bind(&dispute.invoice_id)
                    .bind(customer_id)
                    .bind(dispute.currency.code())
                    .bind(dispute.amount.to_string())
                    .bind(&dispute.reason)
                    .bind(now)
                    .bind(&dispute.opened_by)
                    .execute(&mut *tx)
                    .await?;
                }
                if let Some(dispute) = &changes.resolved_dispute {
                    sqlx::query(&sql(
                        "UPDATE disputes SET status = $2, resolved_at = $3, resolved_by = $4, \
                         resolution_notes = $5, credit_note_id = $6 WHERE dispute_id = $1 AND status = 'OPEN'",
                    ))
                    .bind(&dispute.dispute_id)
                    .bind(&dispute.status)
                    .bind(now)
                    .bind(&dispute.resolved_by)
                    .bind(&dispute.resolution_notes)
                    .bind(&dispute.credit_note_id)
                    .execute(&mut *tx)
                    .await?;
                }
                if let NaturalKey::Request(key) = key {
                    credit_runtime::insert_idempotency_key!(tx, sql, key, &changes.document_id, now)?;
                }
                for event in &changes.events {
                    insert_outbox_event!(tx, sql, event)?;
                }
                tx.commit().await?;
                Ok(Outcome::New(changes.document_id.clone()))
            })
        })
        .await
    }

    async fn invoice(&self, invoice_id: &str) -> StoreResult<Option<StoredInvoice>> {
        let (invoices, movements, disputes) = on_database!(&self.database, |pool, sql| {
            let invoices =
                sqlx::query_as::<_, InvoiceRow>(&sql(invoices_where!("invoice_id = $1")))
                    .bind(invoice_id)
                    .fetch_all(pool)
                    .await?;
            let movements = sqlx::query_as::<_, MovementRow>(&sql(movements_of_invoices_where!(
                "i.invoice_id = $1"
            )))
            .bind(invoice_id)
            .fetch_all(pool)
            .await?;
            let disputes = sqlx::query_as::<_, DisputeRow>(&sql(concat!(
                "SELECT ",
                dispute_columns!(),
                " FROM disputes WHERE invoice_id = $1 AND status = 'OPEN'"
            )))
            .bind(invoice_id)
            .fetch_all(pool)
            .await?;
            (invoices, movements, disputes)
        });
        Ok(
            with_disputes(join_histories(invoices, movements)?, disputes)?
                .into_iter()
                .next(),
        )
    }

    async fn invoices(
        &self,
        customer_id: &str,
        filter: &InvoiceFilter,
        after: Option<&str>,
        limit: i64,
    ) -> StoreResult<Vec<StoredInvoice>> {
        let (after_due, after_number) = match after.and_then(|key| key.split_once('|')) {
            Some((due, number)) => (due.to_owned(), number.to_owned()),
            None => (String::new(), String::new()),
        };
        let after_due: Option<NaiveDate> = after_due.parse().ok();
        let (invoices, movements, disputes) = on_database!(&self.database, |pool, sql| {
            let invoices = sqlx::query_as::<_, InvoiceRow>(&sql(invoices_where!(
                "customer_id = $1 AND (NOT $2 OR closed_date IS NULL) AND (NOT $3 OR closed_date IS NOT NULL) \
                 AND ($4 IS NULL OR due_date > $4 OR (due_date = $4 AND invoice_number > $5)) \
                 ORDER BY due_date, invoice_number LIMIT $6"
            )))
            .bind(customer_id)
            .bind(filter.open_only)
            .bind(filter.closed_only)
            .bind(after_due)
            .bind(&after_number)
            .bind(limit)
            .fetch_all(pool)
            .await?;
            let movements = sqlx::query_as::<_, MovementRow>(&sql(movements_of_invoices_where!(
                "i.customer_id = $1"
            )))
            .bind(customer_id)
            .fetch_all(pool)
            .await?;
            let disputes = sqlx::query_as::<_, DisputeRow>(&sql(concat!(
                "SELECT ",
                dispute_columns!(),
                " FROM disputes WHERE customer_id = $1 AND status = 'OPEN'"
            )))
            .bind(customer_id)
            .fetch_all(pool)
            .await?;
            (invoices, movements, disputes)
        });
        with_disputes(join_histories(invoices, movements)?, disputes)
    }

    async fn payment(&self, payment_id: &str) -> StoreResult<Option<PaymentRecord>> {
        let row = on_database!(&self.database, |pool, sql| {
            sqlx::query_as::<_, PaymentRow>(&sql(
                "SELECT payment_id, customer_id, reference, currency, amount, value_date, \
                 unapplied_at_recording, unapplied, recorded_at, recorded_by FROM payments WHERE payment_id = $1",
            ))
            .bind(payment_id)
            .fetch_optional(pool)
            .await?
        });
        row.map(PaymentRow::into_record).transpose()
    }

    async fn payment_allocations(&self, payment_id: &str) -> StoreResult<Vec<NewMovement>> {
        let rows = on_database!(&self.database, |pool, sql| {
            sqlx::query_as::<_, MovementRow>(&sql(
                "SELECT invoice_id, kind, amount, effective_date, document_id FROM receivable_movements \
                 WHERE document_id = $1 ORDER BY movement_id",
            ))
            .bind(payment_id)
            .fetch_all(pool)
            .await?
        });
        rows.into_iter().map(MovementRow::into_movement).collect()
    }

    async fn credit_note(&self, credit_note_id: &str) -> StoreResult<Option<CreditNoteRecord>> {
        let row = on_database!(&self.database, |pool, sql| {
            sqlx::query_as::<_, CreditNoteRow>(&sql(
                "SELECT credit_note_id, customer_id, credit_note_number, invoice_id, currency, amount, \
                 issue_date, reason, dispute_id, posted_at, posted_by FROM credit_notes WHERE credit_note_id = $1",
            ))
            .bind(credit_note_id)
            .fetch_optional(pool)
            .await?
        });
        row.map(CreditNoteRow::into_record).transpose()
    }

    async fn ledger(&self, customer_id: &str) -> StoreResult<Vec<LedgerDocument>> {
        let (invoices, notes, payments, invoice_seqs, note_seqs, payment_seqs) = on_database!(
            &self.database,
            |pool, sql| {
                let invoices = sqlx::query_as::<_, InvoiceRow>(&sql(invoices_where!(
                    "customer_id = $1 ORDER BY ledger_seq"
                )))
                .bind(customer_id)
                .fetch_all(pool)
                .await?;
                let invoice_seqs: Vec<i64> = sqlx::query_scalar(&sql(
                    "SELECT ledger_seq FROM invoices WHERE customer_id = $1 ORDER BY ledger_seq",
                ))
                .bind(customer_id)
                .fetch_all(pool)
                .await?;
                let notes = sqlx::query_as::<_, CreditNoteRow>(&sql(
                    "SELECT credit_note_id, customer_id, credit_note_number, invoice_id, currency, amount, \
                     issue_date, reason, dispute_id, posted_at, posted_by FROM credit_notes \
                     WHERE customer_id = $1 ORDER BY ledger_seq",
                ))
                .bind(customer_id)
                .fetch_all(pool)
                .await?;
                let note_seqs: Vec<i64> = sqlx::query_scalar(&sql(
                    "SELECT ledger_seq FROM credit_notes WHERE customer_id = $1 ORDER BY ledger_seq",
                ))
                .bind(customer_id)
                .fetch_all(pool)
                .await?;
                let payments = sqlx::query_as::<_, PaymentRow>(&sql(
                    "SELECT payment_id, customer_id, reference, currency, amount, value_date, \
                     unapplied_at_recording, unapplied, recorded_at, recorded_by FROM payments \
                     WHERE customer_id = $1 ORDER BY ledger_seq",
                ))
                .bind(customer_id)
                .fetch_all(pool)
                .await?;
                let payment_seqs: Vec<i64> = sqlx::query_scalar(&sql(
                    "SELECT ledger_seq FROM payments WHERE customer_id = $1 ORDER BY ledger_seq",
                ))
                .bind(customer_id)
                .fetch_all(pool)
                .await?;
                (
                    invoices,
                    notes,
                    payments,
                    invoice_seqs,
                    note_seqs,
                    payment_seqs,
                )
            }
        );
        let mut documents: Vec<(i64, LedgerDocument)> = Vec::new();
        for (row, seq) in invoices.into_iter().zip(invoice_seqs) {
            documents.push((seq, LedgerDocument::Invoice(row.into_record()?)));
        }
        for (row, seq) in notes.into_iter().zip(note_seqs) {
            documents.push((seq, LedgerDocument::CreditNote(row.into_record()?)));
        }
        for (row, seq) in payments.into_iter().zip(payment_seqs) {
            documents.push((seq, LedgerDocument::Payment(row.into_record()?)));
        }
        documents.extend(super::loss::ledger_documents(&self.database, customer_id).await?);
        documents.sort_by_key(|(seq, _)| *seq);
        Ok(documents
            .into_iter()
            .map(|(_, document)| document)
            .collect())
    }

    async fn unapplied_credit(
        &self,
        customer_id: &str,
    ) -> StoreResult<BTreeMap<Currency, Decimal>> {
        let rows: Vec<(String, String)> = on_database!(&self.database, |pool, sql| {
            sqlx::query_as(&sql(
                "SELECT currency, unapplied FROM payments WHERE customer_id = $1 AND has_unapplied",
            ))
            .bind(customer_id)
            .fetch_all(pool)
            .await?
        });
        let mut totals = BTreeMap::new();
        for (code, unapplied) in rows {
            let place = format!("unapplied credit of {customer_id}");
            *totals
                .entry(currency(&place, &code)?)
                .or_insert(Decimal::ZERO) += decimal(&place, &unapplied)?;
        }
        Ok(totals)
    }

    async fn histories(
        &self,
        customer_id: Option<&str>,
        issued_by: NaiveDate,
        open_on: NaiveDate,
    ) -> StoreResult<Vec<InvoiceHistory>> {
        let customer = customer_id.unwrap_or("");
        let (invoices, movements) = on_database!(&self.database, |pool, sql| {
            let invoices = sqlx::query_as::<_, InvoiceRow>(&sql(invoices_where!(
                "($1 = '' OR customer_id = $1) AND issue_date <= $2 AND (closed_date IS NULL OR closed_date >= $3) \
                 ORDER BY customer_id, due_date, invoice_number"
            )))
            .bind(customer)
            .bind(issued_by)
            .bind(open_on)
            .fetch_all(pool)
            .await?;
            let movements = sqlx::query_as::<_, MovementRow>(&sql(movements_of_invoices_where!(
                "($1 = '' OR i.customer_id = $1) AND i.issue_date <= $2 AND (i.closed_date IS NULL OR i.closed_date >= $3)"
            )))
            .bind(customer)
            .bind(issued_by)
            .bind(open_on)
            .fetch_all(pool)
            .await?;
            (invoices, movements)
        });
        Ok(join_histories(invoices, movements)?
            .into_iter()
            .map(|stored| stored.history)
            .collect())
    }

    async fn overdue_positions(&self) -> StoreResult<BTreeMap<String, u32>> {
        let rows: Vec<(String, i32)> = on_database!(&self.database, |pool, sql| {
            sqlx::query_as(&sql(
                "SELECT customer_id, oldest_overdue_days FROM overdue_positions",
            ))
            .fetch_all(pool)
            .await?
        });
        Ok(rows
            .into_iter()
            .map(|(customer_id, days)| (customer_id, u32::try_from(days).unwrap_or(0)))
            .collect())
    }

    async fn save_overdue_positions(
        &self,
        changes: &[OverdueChange],
        as_of: NaiveDate,
    ) -> StoreResult<Vec<String>> {
        on_database!(&self.database, |pool, sql, begin_write| {
            let mut tx = pool.begin_with(begin_write).await?;
            let mut saved = Vec::new();
            for change in changes {
                // Inserted when none is stored (the change was computed from 0), updated only
                // when the stored days are still the ones the change was computed from.
                let written = sqlx::query(&sql(
                    "INSERT INTO overdue_positions (customer_id, oldest_overdue_days, as_of_date) VALUES ($1, $2, $3) \
                     ON CONFLICT (customer_id) DO UPDATE SET oldest_overdue_days = excluded.oldest_overdue_days, \
                     as_of_date = excluded.as_of_date WHERE overdue_positions.oldest_overdue_days = $4",
                ))
                .bind(&change.customer_id)
                .bind(i32::try_from(change.days).unwrap_or(i32::MAX))
                .bind(as_of)
                .bind(i32::try_from(change.previous).unwrap_or(i32::MAX))
                .execute(&mut *tx)
                .await?
                .rows_affected()
                    == 1;
                if written {
                    insert_outbox_event!(tx, sql, &change.event)?;
                    saved.push(change.customer_id.clone());
                }
            }
            tx.commit().await?;
            Ok(saved)
        })
    }
}
