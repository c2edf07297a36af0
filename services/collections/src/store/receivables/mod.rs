//! [`ReceivableStore`] on both backends.
//!
//! `rows` reads documents, `account` loads an account for a write, `running_balances` keeps
//! the per-customer balances moving with each change.

#[macro_use]
mod account;
mod approvals;
mod rows;
mod running_balances;

use std::collections::BTreeMap;

use async_trait::async_trait;
use chrono::{NaiveDate, Utc};
use credit_core::{Currency, ServiceError};
use credit_runtime::sql::{KeyReused, retry_once_on_race};
use credit_runtime::{Database, insert_outbox_event, on_database};
use rust_decimal::Decimal;

use super::balances::write_balances;
use super::{
    Account, AccountScope, CreditNoteApprovalRecord, CreditNoteRecord, CurrencyBalance,
    CustomerBalances, DueBalance, InvoiceFilter, LedgerDocument, NaturalKey, NewMovement,
    OpenInvoiceKey, Outcome, OverdueChange, PaymentRecord, Plan, ReceivableStore, StoreError,
    StoreResult, StoredInvoice, currency, decimal, stored_time,
};
use crate::domain::{CreditNoteApproval, InvoiceHistory};

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

use account::{
    FIRST_ALLOCATION_BATCH, MAX_ALLOCATION_BATCH, add_to_account, allocation_key, first_key_date,
};
use rows::{
    CreditNoteRow, DiscountRow, InvoiceRow, MovementRow, PaymentRow, join_histories, kind_name,
};
use running_balances::balance_deltas;

#[async_trait]
impl ReceivableStore for SqlReceivableStore {
    async fn commit(
        &self,
        customer_id: &str,
        key: &NaturalKey,
        fingerprint: &str,
        scope: &AccountScope,
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
                    // Posted, or waiting for (or refused by) a second person.
                    NaturalKey::CreditNote(number) => sqlx::query_as(&sql(
                        "SELECT credit_note_id, fingerprint FROM credit_notes WHERE customer_id = $1 AND credit_note_number = $2 \
                         UNION ALL SELECT credit_note_id, fingerprint FROM credit_note_approvals \
                         WHERE customer_id = $1 AND credit_note_number = $2 LIMIT 1",
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

                let account = load_account!(tx, sql, customer_id, scope)?;
                let changes = plan(&account).map_err(StoreError::refused)?;
                let deltas = balance_deltas(&account, &changes)?;
                write_balances!(tx, sql, customer_id, &deltas)?;

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
                // A credit note made by a dispute's resolution names its own number: one
                // already in use (posted or waiting, by another credit note) is the caller's
                // conflict, not a database failure.
                let numbered = changes
                    .credit_note
                    .as_ref()
                    .map(|note| (&note.credit_note_id, &note.credit_note_number))
                    .or(changes
                        .credit_note_request
                        .as_ref()
                        .map(|note| (&note.credit_note_id, &note.credit_note_number)));
                if let Some((credit_note_id, number)) = numbered {
                    let taken: Option<String> = sqlx::query_scalar(&sql(
                        "SELECT credit_note_id FROM credit_notes WHERE customer_id = $1 AND credit_note_number = $2 \
                         UNION ALL SELECT credit_note_id FROM credit_note_approvals \
                         WHERE customer_id = $1 AND credit_note_number = $2 AND credit_note_id <> $3 LIMIT 1",
                    ))
                    .bind(customer_id)
                    .bind(number)
                    .bind(credit_note_id)
                    .fetch_optional(&mut *tx)
                    .await?;
                    if let Some(existing) = taken {
                        return Err(StoreError::refused(ServiceError::AlreadyExists {
                            reason: "CREDIT_NOTE_NUMBER_TAKEN",
                            message: format!(
                                "credit note number {number} is already used for this customer"
                            ),
                            metadata: vec![("credit_note_id", existing)],
                        }));
                    }
                }
                approvals::write_credit_note_approval!(tx, sql, customer_id, &changes, now).await?;
                if let Some(note) = &changes.credit_note {
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
                    let resolved = sqlx::query(&sql(
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
                    .await?
                    .rows_affected();
                    // Resolved meanwhile (by another resolution, or a credit note approved for
                    // it): nothing of this change may land, least of all a second credit.
                    if resolved != 1 {
                        return Err(StoreError::refused(ServiceError::failed_precondition(
                            "DISPUTE_NOT_OPEN",
                            format!("dispute {} is not open", dispute.dispute_id),
                        )));
                    }
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

    async fn credit_note_approval(
        &self,
        credit_note_id: &str,
    ) -> StoreResult<Option<CreditNoteApprovalRecord>> {
        self.read_credit_note_approval(credit_note_id).await
    }

    async fn credit_note_approvals(
        &self,
        status: Option<CreditNoteApproval>,
        after: Option<&str>,
        limit: i64,
    ) -> StoreResult<Vec<CreditNoteApprovalRecord>> {
        self.read_credit_note_approvals(status, after, limit).await
    }

    async fn balances(&self, customer_id: &str) -> StoreResult<CustomerBalances> {
        let (currencies, due_dates): (
            Vec<(String, String, String)>,
            Vec<(String, NaiveDate, String, i64)>,
        ) = on_database!(&self.database, |pool, sql| {
            let currencies = sqlx::query_as(&sql(
                "SELECT currency, open_receivables, unapplied_credit FROM customer_balances \
                     WHERE customer_id = $1",
            ))
            .bind(customer_id)
            .fetch_all(pool)
            .await?;
            let due_dates = sqlx::query_as(&sql(
                "SELECT currency, due_date, open_amount, open_invoices FROM customer_due_balances \
                     WHERE customer_id = $1",
            ))
            .bind(customer_id)
            .fetch_all(pool)
            .await?;
            (currencies, due_dates)
        });
        let place = format!("balances of {customer_id}");
        let mut balances = CustomerBalances::default();
        for (code, open, credit) in currencies {
            balances.currencies.insert(
                currency(&place, &code)?,
                CurrencyBalance {
                    open_receivables: decimal(&place, &open)?,
                    unapplied_credit: decimal(&place, &credit)?,
                },
            );
        }
        for (code, due_date, open, count) in due_dates {
            balances.due_dates.insert(
                (currency(&place, &code)?, due_date),
                DueBalance {
                    open_amount: decimal(&place, &open)?,
                    open_invoices: u32::try_from(count)
                        .map_err(|_| StoreError::Corrupt(format!("{place}: count {count}")))?,
                },
            );
        }
        Ok(balances)
    }

    async fn open_invoice_page(
        &self,
        customer_id: &str,
        currency: Option<Currency>,
        after: Option<&OpenInvoiceKey>,
        limit: i64,
    ) -> StoreResult<Vec<StoredInvoice>> {
        let code = currency.map_or("", |currency| currency.code());
        // From the first invoice: a start key below every stored one, so that the query is
        // one plain row comparison (see `open_in_allocation_order!`).
        let (after_due, after_number, after_id) = match after {
            Some(key) => (
                key.due_date,
                key.invoice_number.as_str(),
                key.invoice_id.as_str(),
            ),
            None => (first_key_date(), "", ""),
        };
        let (invoices, movements, disputes) = on_database!(&self.database, |pool, sql| {
            let invoices = sqlx::query_as::<_, InvoiceRow>(&sql(invoices_where!(
                "customer_id = $1 AND closed_date IS NULL AND ($2 = '' OR currency = $2) \
                 AND (due_date, invoice_number, invoice_id) > ($3, $4, $5) \
                 ORDER BY due_date, invoice_number, invoice_id LIMIT $6"
            )))
            .bind(customer_id)
            .bind(code)
            .bind(after_due)
            .bind(after_number)
            .bind(after_id)
            .bind(limit)
            .fetch_all(pool)
            .await?;
            // Movements and open disputes of exactly this page: the same walk, bounded above
            // by the page's last invoice.
            let (last_due, last_number, last_id) = match invoices.last() {
                Some(last) => (
                    last.due_date,
                    last.invoice_number.clone(),
                    last.invoice_id.clone(),
                ),
                None => return Ok(Vec::new()),
            };
            let movements = sqlx::query_as::<_, MovementRow>(&sql(movements_of_invoices_where!(
                "i.customer_id = $1 AND i.closed_date IS NULL AND ($2 = '' OR i.currency = $2) \
                 AND (i.due_date, i.invoice_number, i.invoice_id) > ($3, $4, $5) \
                 AND (i.due_date, i.invoice_number, i.invoice_id) <= ($6, $7, $8)"
            )))
            .bind(customer_id)
            .bind(code)
            .bind(after_due)
            .bind(after_number)
            .bind(after_id)
            .bind(last_due)
            .bind(&last_number)
            .bind(&last_id)
            .fetch_all(pool)
            .await?;
            let disputes = sqlx::query_as::<_, DisputeRow>(&sql(concat!(
                "SELECT ",
                dispute_columns!(),
                " FROM disputes WHERE status = 'OPEN' AND invoice_id IN (SELECT invoice_id FROM invoices \
                 WHERE customer_id = $1 AND closed_date IS NULL AND ($2 = '' OR currency = $2) \
                 AND (due_date, invoice_number, invoice_id) > ($3, $4, $5) \
                 AND (due_date, invoice_number, invoice_id) <= ($6, $7, $8))"
            )))
            .bind(customer_id)
            .bind(code)
            .bind(after_due)
            .bind(after_number)
            .bind(after_id)
            .bind(last_due)
            .bind(&last_number)
            .bind(&last_id)
            .fetch_all(pool)
            .await?;
            (invoices, movements, disputes)
        });
        with_disputes(join_histories(invoices, movements)?, disputes)
    }

    async fn overdue_position(&self, customer_id: &str) -> StoreResult<u32> {
        let days: Option<i32> = on_database!(&self.database, |pool, sql| {
            sqlx::query_scalar(&sql(
                "SELECT oldest_overdue_days FROM overdue_positions WHERE customer_id = $1",
            ))
            .bind(customer_id)
            .fetch_optional(pool)
            .await?
        });
        Ok(days.map_or(0, |days| u32::try_from(days).unwrap_or(0)))
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
            // Movements and open disputes of this page only (not of every invoice the
            // customer ever had): the same filter, bounded above by the page's last row.
            let Some(last) = invoices.last() else {
                return Ok(Vec::new());
            };
            let (last_due, last_number) = (last.due_date, last.invoice_number.clone());
            let movements = sqlx::query_as::<_, MovementRow>(&sql(movements_of_invoices_where!(
                "i.customer_id = $1 AND (NOT $2 OR i.closed_date IS NULL) AND (NOT $3 OR i.closed_date IS NOT NULL) \
                 AND ($4 IS NULL OR i.due_date > $4 OR (i.due_date = $4 AND i.invoice_number > $5)) \
                 AND (i.due_date < $6 OR (i.due_date = $6 AND i.invoice_number <= $7))"
            )))
            .bind(customer_id)
            .bind(filter.open_only)
            .bind(filter.closed_only)
            .bind(after_due)
            .bind(&after_number)
            .bind(last_due)
            .bind(&last_number)
            .fetch_all(pool)
            .await?;
            let disputes = sqlx::query_as::<_, DisputeRow>(&sql(concat!(
                "SELECT ",
                dispute_columns!(),
                " FROM disputes WHERE status = 'OPEN' AND invoice_id IN (SELECT invoice_id FROM invoices \
                 WHERE customer_id = $1 AND (NOT $2 OR closed_date IS NULL) AND (NOT $3 OR closed_date IS NOT NULL) \
                 AND ($4 IS NULL OR due_date > $4 OR (due_date = $4 AND invoice_number > $5)) \
                 AND (due_date < $6 OR (due_date = $6 AND invoice_number <= $7)))"
            )))
            .bind(customer_id)
            .bind(filter.open_only)
            .bind(filter.closed_only)
            .bind(after_due)
            .bind(&after_number)
            .bind(last_due)
            .bind(&last_number)
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
                // Movement ids are "<document>-<index>": by length first, so the eleventh
                // allocation comes after the second, not between the first and the second.
                "SELECT invoice_id, kind, amount, effective_date, document_id FROM receivable_movements \
                 WHERE document_id = $1 ORDER BY length(movement_id), movement_id",
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
        // Discounts stand right after their payment: same position, pushed after it, and the
        // sort below keeps that order.
        let discounts = on_database!(&self.database, |pool, sql| {
            sqlx::query_as::<_, DiscountRow>(&sql(
                "SELECT m.document_id AS payment_id, p.reference, m.invoice_id, p.currency, m.amount, \
                 m.effective_date AS value_date, m.recorded_at, p.ledger_seq FROM receivable_movements m \
                 JOIN payments p ON p.payment_id = m.document_id \
                 WHERE m.customer_id = $1 AND m.kind = 'DISCOUNT' ORDER BY p.ledger_seq, m.movement_id",
            ))
            .bind(customer_id)
            .fetch_all(pool)
            .await?
        });
        for row in discounts {
            let (seq, discount) = row.into_record()?;
            documents.push((seq, LedgerDocument::Discount(discount)));
        }
        documents.extend(super::loss::ledger_documents(&self.database, customer_id).await?);
        documents.sort_by_key(|(seq, _)| *seq);
        Ok(documents
            .into_iter()
            .map(|(_, document)| document)
            .collect())
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
