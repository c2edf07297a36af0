//! The running balances a write moves: the deltas of a change, and the recomputation from
//! the documents that checks and repairs them.

use std::collections::BTreeMap;

use credit_runtime::on_database;

use super::super::{
    Account, Changes, CurrencyBalance, CustomerBalances, DueBalance, StoreError, StoreResult,
    currency, decimal,
};
use crate::domain::Invoice;
use crate::store::balances::{BalanceDeltas, write_balances};

use super::SqlReceivableStore;
use super::rows::{InvoiceRow, MovementRow, join_histories};

/// What a change does to the customer's running balances. Every invoice a movement or a
/// closure names is one the change read (`account`) or posts (`changes.invoice`).
pub(super) fn balance_deltas(account: &Account, changes: &Changes) -> StoreResult<BalanceDeltas> {
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
            .ok_or_else(|| crate::store::balances::overflow("unapplied credit"))?;
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
pub(super) fn as_balances(deltas: BalanceDeltas) -> CustomerBalances {
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
