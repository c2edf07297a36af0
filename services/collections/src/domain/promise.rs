//! Promises to pay: whether a promise is open, kept or broken on a date, and whether it
//! pauses dunning of an invoice.
//!
//! A promise is kept when the payments allocated to the invoices it covers, with value dates
//! from the day it was made to its promised date, reach the promised amount (payments of any
//! earlier date were already there when the customer promised, so they do not count). It is
//! broken the day after its promised date if they do not. Until its date it pauses dunning of
//! the invoices it covers, kept or not: the collector agreed to wait until then.

use std::collections::BTreeSet;

use chrono::{Days, NaiveDate};
use credit_core::Currency;
use rust_decimal::Decimal;

use super::receivable::{CustomerId, InvoiceId, PromiseId};

/// State of a promise (`PromiseStatus`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum PromiseStatus {
    /// Promised date not passed, not yet paid.
    Open,
    /// Paid in full by the promised date.
    Kept,
    /// Not paid in full by the promised date.
    Broken,
    /// Replaced by a later promise on the same case before it was kept.
    Cancelled,
}

/// What a promise covers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PromiseScope {
    /// The case's overdue invoices, that is every invoice of the customer (the contract's
    /// empty `invoice_ids`).
    WholeCase,
    /// These invoices only.
    Invoices(BTreeSet<InvoiceId>),
}

/// A customer's promise to pay.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PromiseToPay {
    pub promise_id: PromiseId,
    pub customer_id: CustomerId,
    /// Promised amount, positive.
    pub amount: Decimal,
    pub currency: Currency,
    /// The day the promise was made (the contact's date).
    pub made_on: NaiveDate,
    /// The date by which the customer promised to pay.
    pub promised_date: NaiveDate,
    pub scope: PromiseScope,
    /// Set when a later promise replaced this one.
    pub cancelled_on: Option<NaiveDate>,
}

impl PromiseToPay {
    /// True when the promise covers `invoice_id` of `customer_id`.
    pub fn covers(&self, customer_id: &CustomerId, invoice_id: &InvoiceId) -> bool {
        if &self.customer_id != customer_id {
            return false;
        }
        match &self.scope {
            PromiseScope::WholeCase => true,
            PromiseScope::Invoices(invoices) => invoices.contains(invoice_id),
        }
    }

    /// The day the promise counts as broken if unpaid: the day after its date.
    pub fn breaks_on(&self) -> NaiveDate {
        self.promised_date
            .checked_add_days(Days::new(1))
            .unwrap_or(self.promised_date)
    }

    /// True when the promise pauses dunning of the invoice on `as_of`: made by then, its date
    /// not passed, and not cancelled by then.
    pub fn pauses_dunning(
        &self,
        customer_id: &CustomerId,
        invoice_id: &InvoiceId,
        as_of: NaiveDate,
    ) -> bool {
        self.covers(customer_id, invoice_id)
            && self.made_on <= as_of
            && as_of <= self.promised_date
            && self.cancelled_on.is_none_or(|cancelled| cancelled > as_of)
    }
}

/// Money applied to an invoice (a payment allocation, or applied unapplied credit), dated by
/// the payment's value date.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AllocatedPayment {
    pub customer_id: CustomerId,
    pub invoice_id: InvoiceId,
    pub currency: Currency,
    pub amount: Decimal,
    pub value_date: NaiveDate,
}

/// A promise's state on a date.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PromiseEvaluation {
    pub status: PromiseStatus,
    /// Paid towards it by the as-of date (counting value dates from `made_on` to the promised
    /// date).
    pub paid_amount: Decimal,
    /// When it became kept (the value date that reached the amount), broken (the day after
    /// its date) or cancelled; `None` while open.
    pub decided_on: Option<NaiveDate>,
}

/// The state of `promise` at the end of `as_of`, from the allocations made so far (any
/// allocation may be passed: those of other invoices, currencies or dates are ignored).
pub fn evaluate_promise(
    promise: &PromiseToPay,
    allocations: &[AllocatedPayment],
    as_of: NaiveDate,
) -> PromiseEvaluation {
    let mut counted: Vec<&AllocatedPayment> = allocations
        .iter()
        .filter(|payment| {
            payment.currency == promise.currency
                && promise.covers(&payment.customer_id, &payment.invoice_id)
                && payment.value_date >= promise.made_on
                && payment.value_date <= promise.promised_date
                && payment.value_date <= as_of
        })
        .collect();
    counted.sort_by_key(|payment| payment.value_date);
    let mut paid_amount = Decimal::ZERO;
    let mut kept_on = None;
    for payment in counted {
        paid_amount += payment.amount;
        if kept_on.is_none() && paid_amount >= promise.amount {
            kept_on = Some(payment.value_date);
        }
    }
    let cancelled_on = promise.cancelled_on.filter(|cancelled| *cancelled <= as_of);
    let (status, decided_on) = match (kept_on, cancelled_on) {
        (Some(kept), Some(cancelled)) if cancelled < kept => {
            (PromiseStatus::Cancelled, Some(cancelled))
        }
        (Some(kept), _) => (PromiseStatus::Kept, Some(kept)),
        (None, Some(cancelled)) if cancelled < promise.breaks_on() => {
            (PromiseStatus::Cancelled, Some(cancelled))
        }
        (None, _) if as_of >= promise.breaks_on() => {
            (PromiseStatus::Broken, Some(promise.breaks_on()))
        }
        (None, _) => (PromiseStatus::Open, None),
    };
    PromiseEvaluation {
        status,
        paid_amount,
        decided_on,
    }
}

#[cfg(test)]
pub(crate) mod test_support {
    use super::*;
    use crate::domain::receivable::test_support::*;

    pub fn promise(amount: Decimal, made_on: &str, promised: &str) -> PromiseToPay {
        PromiseToPay {
            promise_id: PromiseId::parse("p1").unwrap(),
            customer_id: CustomerId::parse("c1").unwrap(),
            amount,
            currency: cny(),
            made_on: date(made_on),
            promised_date: date(promised),
            scope: PromiseScope::WholeCase,
            cancelled_on: None,
        }
    }

    pub fn paid(invoice: &str, amount: Decimal, on: &str) -> AllocatedPayment {
        AllocatedPayment {
            customer_id: CustomerId::parse("c1").unwrap(),
            invoice_id: InvoiceId::parse(invoice).unwrap(),
            currency: cny(),
            amount,
            value_date: date(on),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::test_support::*;
    use super::*;
    use crate::domain::receivable::test_support::*;
    use rust_decimal_macros::dec;

    #[test]
    fn a_promise_is_kept_when_payments_between_promise_and_date_reach_the_amount() {
        let promise = promise(dec!(500.00), "2026-03-01", "2026-03-15");
        let payments = [
            paid("inv-A", dec!(100.00), "2026-02-28"), // before the promise: ignored
            paid("inv-A", dec!(200.00), "2026-03-05"),
            paid("inv-B", dec!(300.00), "2026-03-15"), // on the date: counts
        ];
        let on_the_10th = evaluate_promise(&promise, &payments, date("2026-03-10"));
        assert_eq!(on_the_10th.status, PromiseStatus::Open);
        assert_eq!(on_the_10th.paid_amount, dec!(200.00));
        // 200 + 300 = 500 reached on 03-15.
        let later = evaluate_promise(&promise, &payments, date("2026-04-01"));
        assert_eq!(later.status, PromiseStatus::Kept);
        assert_eq!(later.decided_on, Some(date("2026-03-15")));
        assert_eq!(later.paid_amount, dec!(500.00));
    }

    #[test]
    fn a_promise_not_paid_by_its_date_is_broken_the_day_after() {
        let promise = promise(dec!(500.00), "2026-03-01", "2026-03-15");
        let payments = [
            paid("inv-A", dec!(499.99), "2026-03-15"),
            paid("inv-A", dec!(0.01), "2026-03-16"), // one day late: does not count
        ];
        let on_the_date = evaluate_promise(&promise, &payments, date("2026-03-15"));
        assert_eq!(on_the_date.status, PromiseStatus::Open);
        let day_after = evaluate_promise(&promise, &payments, date("2026-03-16"));
        assert_eq!(day_after.status, PromiseStatus::Broken);
        assert_eq!(day_after.decided_on, Some(date("2026-03-16")));
        assert_eq!(day_after.paid_amount, dec!(499.99));
    }

    #[test]
    fn a_promise_on_named_invoices_counts_only_them_and_pauses_only_them() {
        let mut promise = promise(dec!(100.00), "2026-03-01", "2026-03-15");
        promise.scope =
            PromiseScope::Invoices(BTreeSet::from([InvoiceId::parse("inv-A").unwrap()]));
        let payments = [paid("inv-B", dec!(100.00), "2026-03-02")];
        let evaluation = evaluate_promise(&promise, &payments, date("2026-03-20"));
        assert_eq!(evaluation.status, PromiseStatus::Broken);
        let customer = CustomerId::parse("c1").unwrap();
        let invoice_a = InvoiceId::parse("inv-A").unwrap();
        let invoice_b = InvoiceId::parse("inv-B").unwrap();
        assert!(promise.pauses_dunning(&customer, &invoice_a, date("2026-03-15")));
        assert!(!promise.pauses_dunning(&customer, &invoice_a, date("2026-03-16")));
        assert!(!promise.pauses_dunning(&customer, &invoice_b, date("2026-03-10")));
        assert!(!promise.pauses_dunning(&customer, &invoice_a, date("2026-02-28")));
    }

    #[test]
    fn a_replaced_promise_is_cancelled_not_broken() {
        let mut promise = promise(dec!(100.00), "2026-03-01", "2026-03-15");
        promise.cancelled_on = Some(date("2026-03-10"));
        let evaluation = evaluate_promise(&promise, &[], date("2026-04-01"));
        assert_eq!(evaluation.status, PromiseStatus::Cancelled);
        let customer = CustomerId::parse("c1").unwrap();
        let invoice = InvoiceId::parse("inv-A").unwrap();
        assert!(!promise.pauses_dunning(&customer, &invoice, date("2026-03-12")));
    }
}
