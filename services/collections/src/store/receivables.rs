//! [`ReceivableStore`] on both backends.

use std::collections::BTreeMap;

use async_trait::async_trait;
use chrono::{DateTime, NaiveDate, Utc};
use credit_core::{Currency, ServiceError};
use credit_runtime::sql::{KeyReused, retry_once_on_race};
use credit_runtime::{Database, insert_outbox_event, on_database};
use rust_decimal::Decimal;

use super::balances::{BalanceDeltas, write_balances};
use super::{
    Account, AccountScope, Changes, CreditNoteRecord, CurrencyBalance, CustomerBalances,
    DueBalance, InvoiceFilter, InvoiceRecord, LedgerDocument, NaturalKey, NewMovement,
    OpenInvoiceKey, Outcome, OverdueChange, PaymentRecord, Plan, ReceivableStore, StoreError,
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
    ($condition:expr) => {
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
    ($condition:expr) => {
        concat!(
            "SELECT m.invoice_id, m.kind, m.amount, m.effective_date, m.document_id \
             FROM receivable_movements AS m JOIN invoices AS i ON i.invoice_id = m.invoice_id WHERE ",
            $condition,
            " ORDER BY m.recorded_at, m.movement_id"
        )
    };
}

/// How many open invoices an oldest-first allocation reads in its first batch; each further
/// batch is twice as large (up to [`MAX_ALLOCATION_BATCH`]). Most payments settle one to a few
/// invoices, so most read one small batch.
const FIRST_ALLOCATION_BATCH: i64 = 8;
const MAX_ALLOCATION_BATCH: i64 = 512;

/// The open invoices of the customer in allocation order (due date, issue date, invoice
/// number, id), after the key `$3..$6`, in `$2`'s currency. The first batch passes
/// [`first_key_date`] and empty strings: a plain row comparison (no "`$3 IS NULL OR`") is a
/// range on the index, also in the generic plan PostgreSQL caches for a prepared statement.
macro_rules! open_in_allocation_order {
    ($prefix:literal) => {
        concat!(
            $prefix,
            "customer_id = $1 AND ",
            $prefix,
            "currency = $2 AND ",
            $prefix,
            "closed_date IS NULL \
             AND (",
            $prefix,
            "due_date, ",
            $prefix,
            "issue_date, ",
            $prefix,
            "invoice_number, ",
            $prefix,
            "invoice_id) > ($3, $4, $5, $6)"
        )
    };
}

/// Below every due and issue date stored (dates come from callers as calendar dates of year 1
/// or later, and both databases store this one): the start key of a walk from the first
/// invoice.
fn first_key_date() -> NaiveDate {
    NaiveDate::from_ymd_opt(1, 1, 1).unwrap_or(NaiveDate::MIN)
}

/// Reads the part of customer `$customer_id`'s account that `$scope` ([`AccountScope`])
/// selects, inside the write transaction `$tx`. Evaluates to `StoreResult<Account>`. Nothing
/// here reads all of the customer's open items: a scope names its invoices, or walks the
/// allocation-order index only as far as the payment reaches.
macro_rules! load_account {
    ($tx:ident, $sql:ident, $customer_id:expr, $scope:expr) => {
        async {
            let customer_id: &str = $customer_id;
            let mut account = Account::default();
            match $scope {
                AccountScope::Credit(currency) => {
                    account.credits = sqlx::query_as::<_, PaymentRow>(&$sql(
                        "SELECT payment_id, customer_id, reference, currency, amount, value_date, \
                         unapplied_at_recording, unapplied, recorded_at, recorded_by FROM payments \
                         WHERE customer_id = $1 AND currency = $2 AND has_unapplied ORDER BY value_date, ledger_seq",
                    ))
                    .bind(customer_id)
                    .bind(currency.code())
                    .fetch_all(&mut *$tx)
                    .await?
                    .into_iter()
                    .map(PaymentRow::into_record)
                    .collect::<StoreResult<Vec<_>>>()?;
                }
                AccountScope::Invoices(invoice_ids) => {
                    for invoice_id in invoice_ids {
                        let invoices = sqlx::query_as::<_, InvoiceRow>(&$sql(invoices_where!(
                            "invoice_id = $1 AND customer_id = $2 AND closed_date IS NULL"
                        )))
                        .bind(invoice_id)
                        .bind(customer_id)
                        .fetch_all(&mut *$tx)
                        .await?;
                        // Open disputes of the invoice even when it is closed: a dispute
                        // stays open until resolved, whatever paid the invoice.
                        let disputes = sqlx::query_as::<_, DisputeRow>(&$sql(concat!(
                            "SELECT ", dispute_columns!(),
                            " FROM disputes WHERE invoice_id = $1 AND customer_id = $2 AND status = 'OPEN' ORDER BY dispute_id"
                        )))
                        .bind(invoice_id)
                        .bind(customer_id)
                        .fetch_all(&mut *$tx)
                        .await?;
                        if invoices.is_empty() {
                            account.open_disputes.extend(
                                disputes
                                    .into_iter()
                                    .map(DisputeRow::into_record)
                                    .collect::<StoreResult<Vec<_>>>()?,
                            );
                            continue;
                        }
                        let movements = sqlx::query_as::<_, MovementRow>(&$sql(
                            movements_of_invoices_where!("i.invoice_id = $1")
                        ))
                        .bind(invoice_id)
                        .fetch_all(&mut *$tx)
                        .await?;
                        add_to_account(&mut account, invoices, movements, disputes)?;
                    }
                    account.open_invoices.sort_by(|left, right| {
                        allocation_key(&left.history.invoice).cmp(&allocation_key(&right.history.invoice))
                    });
                }
                AccountScope::OldestOpen { currency, amount } => {
                    let mut covered = Decimal::ZERO;
                    let mut after: Option<(NaiveDate, NaiveDate, String, String)> = None;
                    let mut batch = FIRST_ALLOCATION_BATCH;
                    loop {
                        let (after_due, after_issue, after_number, after_id) = match &after {
                            Some((due, issue, number, id)) => {
                                (*due, *issue, number.clone(), id.clone())
                            }
                            None => (
                                first_key_date(),
                                first_key_date(),
                                String::new(),
                                String::new(),
                            ),
                        };
                        let invoices = sqlx::query_as::<_, InvoiceRow>(&$sql(concat!(
                            invoices_where!(""),
                            open_in_allocation_order!(""),
                            " ORDER BY due_date, issue_date, invoice_number, invoice_id LIMIT $7"
                        )))
                        .bind(customer_id)
                        .bind(currency.code())
                        .bind(after_due)
                        .bind(after_issue)
                        .bind(&after_number)
                        .bind(&after_id)
                        .bind(batch)
                        .fetch_all(&mut *$tx)
                        .await?;
                        let Some(last) = invoices.last() else {
                            break;
                        };
                        let last_key = (
                            last.due_date,
                            last.issue_date,
                            last.invoice_number.clone(),
                            last.invoice_id.clone(),
                        );
                        let full = i64::try_from(invoices.len()).unwrap_or(i64::MAX) >= batch;
                        // Movements and open disputes of exactly this batch: the same walk,
                        // bounded above by the batch's last invoice.
                        let movements = sqlx::query_as::<_, MovementRow>(&$sql(
                            movements_of_invoices_where!(concat!(
                                open_in_allocation_order!("i."),
                                " AND (i.due_date, i.issue_date, i.invoice_number, i.invoice_id) <= ($7, $8, $9, $10)"
                            ))
                        ))
                        .bind(customer_id)
                        .bind(currency.code())
                        .bind(after_due)
                        .bind(after_issue)
                        .bind(&after_number)
                        .bind(&after_id)
                        .bind(last_key.0)
                        .bind(last_key.1)
                        .bind(&last_key.2)
                        .bind(&last_key.3)
                        .fetch_all(&mut *$tx)
                        .await?;
                        let disputes = sqlx::query_as::<_, DisputeRow>(&$sql(concat!(
                            "SELECT ", dispute_columns!(),
                            " FROM disputes WHERE status = 'OPEN' AND invoice_id IN (SELECT invoice_id FROM invoices WHERE ",
                            open_in_allocation_order!(""),
                            " AND (due_date, issue_date, invoice_number, invoice_id) <= ($7, $8, $9, $10)) ORDER BY dispute_id"
                        )))
                        .bind(customer_id)
                        .bind(currency.code())
                        .bind(after_due)
                        .bind(after_issue)
                        .bind(&after_number)
                        .bind(&after_id)
                        .bind(last_key.0)
                        .bind(last_key.1)
                        .bind(&last_key.2)
                        .bind(&last_key.3)
                        .fetch_all(&mut *$tx)
                        .await?;
                        let read_before = account.open_invoices.len();
                        add_to_account(&mut account, invoices, movements, disputes)?;
                        for stored in account.open_invoices.iter().skip(read_before) {
                            let open = stored
                                .history
                                .open_amount_as_of(NaiveDate::MAX)
                                .unwrap_or(Decimal::ZERO);
                            let undisputed = open
                                .checked_sub(stored.disputed_amount)
                                .unwrap_or(Decimal::ZERO)
                                .max(Decimal::ZERO);
                            covered = super::balances::add(covered, undisputed, "open receivables")?;
                        }
                        if covered >= *amount || !full {
                            break;
                        }
                        after = Some(last_key);
                        batch = batch.saturating_mul(2).min(MAX_ALLOCATION_BATCH);
                    }
                }
            }
            Ok::<Account, StoreError>(account)
        }
        .await
    };
}

/// The order of automatic allocation (`domain::allocation`), which the index walks.
fn allocation_key(invoice: &Invoice) -> (NaiveDate, NaiveDate, &str, &str) {
    (
        invoice.due_date,
        invoice.issue_date,
        &invoice.invoice_number,
        invoice.invoice_id.as_str(),
    )
}

/// Adds invoices read with their movements and open disputes to `account`.
fn add_to_account(
    account: &mut Account,
    invoices: Vec<InvoiceRow>,
    movements: Vec<MovementRow>,
    disputes: Vec<DisputeRow>,
) -> StoreResult<()> {
    account.open_disputes.extend(
        disputes
            .iter()
            .cloned()
            .map(DisputeRow::into_record)
            .collect::<StoreResult<Vec<_>>>()?,
    );
    account.open_invoices.extend(with_disputes(
        join_histories(invoices, movements)?,
        disputes,
    )?);
    Ok(())
}

/// What a change does to the customer's running balances. Every invoice a movement or a
/// closure names is one the change read (`account`) or posts (`changes.invoice`).
fn balance_deltas(account: &Account, changes: &Changes) -> StoreResult<BalanceDeltas> {
    let mut invoices: BTreeMap<&str, &Invoice> = account
        .open_invoices
        .iter()
        .map(|stored| {
            (
                stored.history.invoice.invoice_id.as_str(),
                &stored.history.invoice,
            )
        })
        .collect();
    let mut deltas = BalanceDeltas::default();
    if let Some(record) = &changes.invoice {
        let invoice = &record.invoice;
        deltas.invoice_posted(invoice.currency, invoice.due_date, invoice.amount)?;
        invoices.insert(invoice.invoice_id.as_str(), invoice);
    }
    let read = |invoice_id: &str| {
        invoices.get(invoice_id).copied().ok_or_else(|| {
            StoreError::Corrupt(format!(
                "a change moves invoice {invoice_id}, which it did not read"
            ))
        })
    };
    for movement in &changes.movements {
        let invoice = read(&movement.invoice_id)?;
        deltas.invoice_reduced(invoice.currency, invoice.due_date, movement.amount)?;
    }
    for (invoice_id, _) in &changes.closed {
        let invoice = read(invoice_id)?;
        deltas.invoice_closed(invoice.currency, invoice.due_date)?;
    }
    if let Some(payment) = &changes.payment {
        deltas.credit_changed(payment.currency, payment.unapplied_at_recording)?;
    }
    for (payment_id, left) in &changes.credits_left {
        let credit = account
            .credits
            .iter()
            .find(|credit| &credit.payment_id == payment_id)
            .ok_or_else(|| {
                StoreError::Corrupt(format!(
                    "a change uses the credit of payment {payment_id}, which it did not read"
                ))
            })?;
        let used = left
            .checked_sub(credit.unapplied)
            .ok_or_else(|| super::balances::overflow("unapplied credit"))?;
        deltas.credit_changed(credit.currency, used)?;
    }
    Ok(deltas)
}

/// A customer's running balances computed from its rows: the open invoices with their
/// movements and the payments holding credit. What the backfill writes, and what the
/// stored balances must always equal.
macro_rules! computed_balances {
    ($executor:expr, $sql:ident, $customer_id:expr) => {
        async {
            let customer_id: &str = $customer_id;
            let invoices = sqlx::query_as::<_, InvoiceRow>(&$sql(invoices_where!(
                "customer_id = $1 AND closed_date IS NULL"
            )))
            .bind(customer_id)
            .fetch_all(&mut *$executor)
            .await?;
            let movements = sqlx::query_as::<_, MovementRow>(&$sql(movements_of_invoices_where!(
                "i.customer_id = $1 AND i.closed_date IS NULL"
            )))
            .bind(customer_id)
            .fetch_all(&mut *$executor)
            .await?;
            let credits: Vec<(String, String)> = sqlx::query_as(&$sql(
                "SELECT currency, unapplied FROM payments WHERE customer_id = $1 AND has_unapplied",
            ))
            .bind(customer_id)
            .fetch_all(&mut *$executor)
            .await?;
            let mut deltas = BalanceDeltas::default();
            for stored in join_histories(invoices, movements)? {
                let invoice = &stored.history.invoice;
                deltas.invoice_posted(invoice.currency, invoice.due_date, invoice.amount)?;
                for movement in &stored.history.movements {
                    deltas.invoice_reduced(invoice.currency, invoice.due_date, movement.amount)?;
                }
            }
            let place = format!("unapplied credit of {customer_id}");
            for (code, unapplied) in credits {
                deltas.credit_changed(currency(&place, &code)?, decimal(&place, &unapplied)?)?;
            }
            Ok::<BalanceDeltas, StoreError>(deltas)
        }
        .await
    };
}

/// Stored running balances as the API reads them.
fn as_balances(deltas: BalanceDeltas) -> CustomerBalances {
    CustomerBalances {
        currencies: deltas
            .currencies
            .into_iter()
            .map(|(currency, delta)| {
                (
                    currency,
                    CurrencyBalance {
                        open_receivables: delta.open_receivables,
                        unapplied_credit: delta.unapplied_credit,
                    },
                )
            })
            .collect(),
        due_dates: deltas
            .due_dates
            .into_iter()
            .filter(|(_, delta)| delta.open_invoices > 0)
            .map(|(key, delta)| {
                (
                    key,
                    DueBalance {
                        open_amount: delta.open_amount,
                        open_invoices: u32::try_from(delta.open_invoices).unwrap_or(u32::MAX),
                    },
                )
            })
            .collect(),
    }
}

impl SqlReceivableStore {
    /// Computes the running balances of the customers that had receivables before migration
    /// 0007 (listed in `balance_backfill`), one customer per transaction under its account
    /// lock. Run at start-up, before serving; a replica already serving may have moved a
    /// listed customer's balances meanwhile, which is why each is recomputed from the rows
    /// (not added to). Returns how many customers were done.
    pub async fn backfill_balances(&self) -> StoreResult<u64> {
        let mut done = 0_u64;
        loop {
            let pending: Vec<String> = on_database!(&self.database, |pool, sql| {
                sqlx::query_scalar(&sql(
                    "SELECT customer_id FROM balance_backfill ORDER BY customer_id LIMIT 100",
                ))
                .fetch_all(pool)
                .await?
            });
            if pending.is_empty() {
                return Ok(done);
            }
            for customer_id in &pending {
                self.rebuild_balances(customer_id).await?;
                done = done.saturating_add(1);
            }
        }
    }

    /// Recomputes one customer's running balances from its rows, replacing what is stored.
    async fn rebuild_balances(&self, customer_id: &str) -> StoreResult<()> {
        on_database!(&self.database, |pool, sql, begin_write| {
            let mut tx = pool.begin_with(begin_write).await?;
            // The account lock: no posting of this customer runs while its balances are
            // replaced.
            sqlx::query(&sql(
                "UPDATE customer_accounts SET postings = postings WHERE customer_id = $1",
            ))
            .bind(customer_id)
            .execute(&mut *tx)
            .await?;
            let deltas = computed_balances!(tx, sql, customer_id)?;
            sqlx::query(&sql("DELETE FROM customer_balances WHERE customer_id = $1"))
                .bind(customer_id)
                .execute(&mut *tx)
                .await?;
            sqlx::query(&sql(
                "DELETE FROM customer_due_balances WHERE customer_id = $1",
            ))
            .bind(customer_id)
            .execute(&mut *tx)
            .await?;
            write_balances!(tx, sql, customer_id, &deltas)?;
            sqlx::query(&sql("DELETE FROM balance_backfill WHERE customer_id = $1"))
                .bind(customer_id)
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
            Ok(())
        })
    }

    /// The customer's running balances as its rows give them, computed from scratch (every
    /// open item read): for checks, never in a request path.
    pub async fn computed_balances(&self, customer_id: &str) -> StoreResult<CustomerBalances> {
        let deltas = on_database!(&self.database, |pool, sql| {
            let mut connection = pool.acquire().await?;
            computed_balances!(connection, sql, customer_id)?
        });
        Ok(as_balances(deltas))
    }
}

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

                let account = load_account!(tx, sql, customer_id, scope)?;
                let changes = plan(&account).map_err(StoreError::Refused)?;
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
