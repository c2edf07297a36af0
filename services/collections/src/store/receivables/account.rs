//! Reading a customer's account inside a write: the open invoices in allocation order, a
//! batch at a time, with their movements and disputes (`load_account!`).

use chrono::NaiveDate;

use super::super::{Account, StoreResult};
use crate::domain::Invoice;

use super::super::cases::DisputeRow;

use super::rows::{InvoiceRow, MovementRow, join_histories};
use super::with_disputes;

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
pub(super) const FIRST_ALLOCATION_BATCH: i64 = 8;
pub(super) const MAX_ALLOCATION_BATCH: i64 = 512;

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
pub(super) fn first_key_date() -> NaiveDate {
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
                            covered = crate::store::balances::add(covered, undisputed, "open receivables")?;
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
pub(super) fn allocation_key(invoice: &Invoice) -> (NaiveDate, NaiveDate, &str, &str) {
    (
        invoice.due_date,
        invoice.issue_date,
        &invoice.invoice_number,
        invoice.invoice_id.as_str(),
    )
}

/// Adds invoices read with their movements and open disputes to `account`.
pub(super) fn add_to_account(
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
