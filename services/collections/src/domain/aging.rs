//! Aging: open receivables by days past due, as of any date (`GetAging`).
//!
//! Totals are per currency; amounts are never converted here. An invoice counts when it was
//! issued on or before the date and still had an open amount at the end of that day.
//!
//! Totals are summed with checked arithmetic: each amount is bounded on input, but a sum of
//! many (or of rows stored before the bound) is not, and a total that does not fit is an
//! [`AmountOverflow`] the caller reports, never a panic.

#![deny(clippy::arithmetic_side_effects)]

use std::collections::BTreeMap;

use chrono::NaiveDate;
use credit_core::Currency;
use rust_decimal::Decimal;

use super::AmountOverflow;
use super::receivable::{CustomerId, InvoiceHistory, InvoiceId};

/// Aging bucket by days past due (`AgingBucket` in collections.proto).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum AgingBucket {
    /// Not yet due (0 days past due).
    Current,
    Days1To30,
    Days31To60,
    Days61To90,
    Days91To180,
    Days181To360,
    /// More than 360 days past due.
    Over360Days,
}

impl AgingBucket {
    /// All seven buckets, in bucket order.
    pub const ALL: [AgingBucket; 7] = [
        AgingBucket::Current,
        AgingBucket::Days1To30,
        AgingBucket::Days31To60,
        AgingBucket::Days61To90,
        AgingBucket::Days91To180,
        AgingBucket::Days181To360,
        AgingBucket::Over360Days,
    ];

    /// The bucket of an invoice `days_past_due` days past due (bounds inclusive: 30 is in
    /// 1–30, 31 in 31–60, 360 in 181–360).
    pub fn for_days_past_due(days_past_due: u32) -> Self {
        match days_past_due {
            0 => Self::Current,
            1..=30 => Self::Days1To30,
            31..=60 => Self::Days31To60,
            61..=90 => Self::Days61To90,
            91..=180 => Self::Days91To180,
            181..=360 => Self::Days181To360,
            _ => Self::Over360Days,
        }
    }

    /// True for every bucket but `Current`.
    pub fn is_past_due(self) -> bool {
        self != Self::Current
    }

    fn index(self) -> usize {
        self as usize
    }
}

/// Amount and invoice count of one bucket.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct BucketAmount {
    pub amount: Decimal,
    pub invoice_count: u32,
}

/// An aging table in one currency (`AgingSummary`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AgingSummary {
    pub currency: Currency,
    /// Indexed in [`AgingBucket::ALL`] order; every bucket is present, zero when empty.
    buckets: [BucketAmount; 7],
}

impl AgingSummary {
    pub fn new(currency: Currency) -> Self {
        Self {
            currency,
            buckets: [BucketAmount::default(); 7],
        }
    }

    /// Adds `invoice_count` invoices open for `amount` in all to `bucket`.
    fn add(
        &mut self,
        bucket: AgingBucket,
        amount: Decimal,
        invoice_count: u32,
    ) -> Result<(), AmountOverflow> {
        let slot = &mut self.buckets[bucket.index()];
        slot.amount = slot.amount.checked_add(amount).ok_or(AmountOverflow)?;
        slot.invoice_count = slot.invoice_count.saturating_add(invoice_count);
        Ok(())
    }

    /// One bucket's amount and count.
    pub fn bucket(&self, bucket: AgingBucket) -> BucketAmount {
        self.buckets[bucket.index()]
    }

    /// All seven buckets in bucket order, as the contract lists them.
    pub fn buckets(&self) -> impl Iterator<Item = (AgingBucket, BucketAmount)> + '_ {
        AgingBucket::ALL
            .into_iter()
            .map(|bucket| (bucket, self.bucket(bucket)))
    }

    /// Total open amount.
    pub fn total(&self) -> Result<Decimal, AmountOverflow> {
        checked_sum(self.buckets.iter().map(|slot| slot.amount))
    }

    /// Total of the past-due buckets.
    pub fn overdue_total(&self) -> Result<Decimal, AmountOverflow> {
        checked_sum(
            self.buckets()
                .filter(|(bucket, _)| bucket.is_past_due())
                .map(|(_, slot)| slot.amount),
        )
    }
}

/// The sum of `amounts`, or [`AmountOverflow`] when it does not fit a `Decimal`.
pub fn checked_sum(amounts: impl IntoIterator<Item = Decimal>) -> Result<Decimal, AmountOverflow> {
    amounts.into_iter().try_fold(Decimal::ZERO, |sum, amount| {
        sum.checked_add(amount).ok_or(AmountOverflow)
    })
}

/// One invoice's line in a customer aging (`AgedInvoice`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AgedInvoice {
    pub invoice_id: InvoiceId,
    pub customer_id: CustomerId,
    pub invoice_number: String,
    pub currency: Currency,
    pub due_date: NaiveDate,
    pub days_past_due: u32,
    pub bucket: AgingBucket,
    /// Open amount at the end of the as-of date.
    pub open_amount: Decimal,
}

/// An aging as of a date: the invoice lines and a summary per currency.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Aging {
    pub as_of: NaiveDate,
    /// Open invoices, oldest due date first, then invoice number.
    pub invoices: Vec<AgedInvoice>,
    /// One summary per currency that has an open invoice, by currency code.
    pub summaries: BTreeMap<Currency, AgingSummary>,
}

/// The open invoices of `histories` on `as_of`, one line each (invoices not yet issued or
/// with nothing open on that date are left out), oldest due date first.
pub fn aged_invoices(histories: &[InvoiceHistory], as_of: NaiveDate) -> Vec<AgedInvoice> {
    let mut lines: Vec<AgedInvoice> = histories
        .iter()
        .filter_map(|history| {
            let open_amount = history.open_amount_as_of(as_of)?;
            if open_amount <= Decimal::ZERO {
                return None;
            }
            let invoice = &history.invoice;
            let days_past_due = invoice.days_past_due(as_of);
            Some(AgedInvoice {
                invoice_id: invoice.invoice_id.clone(),
                customer_id: invoice.customer_id.clone(),
                invoice_number: invoice.invoice_number.clone(),
                currency: invoice.currency,
                due_date: invoice.due_date,
                days_past_due,
                bucket: AgingBucket::for_days_past_due(days_past_due),
                open_amount,
            })
        })
        .collect();
    lines.sort_by(|left, right| {
        (left.due_date, &left.invoice_number, &left.invoice_id).cmp(&(
            right.due_date,
            &right.invoice_number,
            &right.invoice_id,
        ))
    });
    lines
}

/// Ages `histories` (one customer's, or the whole portfolio's) as of `as_of`.
pub fn age(histories: &[InvoiceHistory], as_of: NaiveDate) -> Result<Aging, AmountOverflow> {
    let invoices = aged_invoices(histories, as_of);
    let summaries = summarize(&invoices)?;
    Ok(Aging {
        as_of,
        invoices,
        summaries,
    })
}

/// A portfolio aging split by customer (`CustomerAging`), customers by id.
pub fn age_by_customer(
    histories: &[InvoiceHistory],
    as_of: NaiveDate,
) -> Result<BTreeMap<CustomerId, BTreeMap<Currency, AgingSummary>>, AmountOverflow> {
    let mut by_customer: BTreeMap<CustomerId, Vec<AgedInvoice>> = BTreeMap::new();
    for line in aged_invoices(histories, as_of) {
        by_customer
            .entry(line.customer_id.clone())
            .or_default()
            .push(line);
    }
    by_customer
        .into_iter()
        .map(|(customer, lines)| Ok((customer, summarize(&lines)?)))
        .collect()
}

fn summarize(lines: &[AgedInvoice]) -> Result<BTreeMap<Currency, AgingSummary>, AmountOverflow> {
    let mut summaries: BTreeMap<Currency, AgingSummary> = BTreeMap::new();
    for line in lines {
        summaries
            .entry(line.currency)
            .or_insert_with(|| AgingSummary::new(line.currency))
            .add(line.bucket, line.open_amount, 1)?;
    }
    Ok(summaries)
}

/// What a customer has open in one currency on one due date: `open_invoices` invoices, open
/// for `open_amount` in all (the store's running balance per due date).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DueDateTotal {
    pub currency: Currency,
    pub due_date: NaiveDate,
    pub open_amount: Decimal,
    pub open_invoices: u32,
}

/// The summaries of an aging as of `as_of` from what is open per due date. An invoice's bucket
/// depends only on its due date, so this equals the summaries of [`age`] over the invoices open
/// on `as_of`, with one row read per due date instead of one per invoice. Only for what is open
/// now: the totals per due date hold no history, so an aging of a past date ages invoices.
pub fn summarize_due_dates(
    totals: impl IntoIterator<Item = DueDateTotal>,
    as_of: NaiveDate,
) -> Result<BTreeMap<Currency, AgingSummary>, AmountOverflow> {
    let mut summaries: BTreeMap<Currency, AgingSummary> = BTreeMap::new();
    for total in totals {
        if total.open_invoices == 0 {
            continue;
        }
        let bucket = AgingBucket::for_days_past_due(super::days_past_due(total.due_date, as_of));
        summaries
            .entry(total.currency)
            .or_insert_with(|| AgingSummary::new(total.currency))
            .add(bucket, total.open_amount, total.open_invoices)?;
    }
    Ok(summaries)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::receivable::MovementKind::{CreditNote, Payment, WriteOff};
    use crate::domain::receivable::test_support::*;
    use rust_decimal_macros::dec;

    #[test]
    fn bucket_bounds_are_inclusive() {
        use AgingBucket::*;
        let expected = [
            (0, Current),
            (1, Days1To30),
            (30, Days1To30),
            (31, Days31To60),
            (60, Days31To60),
            (61, Days61To90),
            (90, Days61To90),
            (91, Days91To180),
            (180, Days91To180),
            (181, Days181To360),
            (360, Days181To360),
            (361, Over360Days),
        ];
        for (days, bucket) in expected {
            assert_eq!(AgingBucket::for_days_past_due(days), bucket, "{days} days");
        }
    }

    /// A portfolio whose aging on 2026-06-30 and on the past date 2026-03-31 is worked out by
    /// hand below.
    fn portfolio() -> Vec<InvoiceHistory> {
        vec![
            // A: due 2026-01-31. Paid 400 on 2026-04-15 (after the past date).
            InvoiceHistory::new(
                invoice("c1", "A", dec!(1000.00), "2026-01-01", "2026-01-31"),
                vec![movement(Payment, dec!(400.00), "2026-04-15")],
            ),
            // B: due 2026-03-15. Credit note 100 on 2026-03-31 (counts on that very date).
            InvoiceHistory::new(
                invoice("c1", "B", dec!(500.00), "2026-02-13", "2026-03-15"),
                vec![movement(CreditNote, dec!(100.00), "2026-03-31")],
            ),
            // C: due 2026-04-30, not yet due on the past date.
            InvoiceHistory::new(
                invoice("c2", "C", dec!(250.00), "2026-03-31", "2026-04-30"),
                vec![],
            ),
            // D: issued after the past date: absent then.
            InvoiceHistory::new(
                invoice("c2", "D", dec!(80.00), "2026-04-01", "2026-05-01"),
                vec![],
            ),
            // E: very old, fully paid on 2026-03-01: absent on both dates.
            InvoiceHistory::new(
                invoice("c2", "E", dec!(70.00), "2025-01-01", "2025-01-31"),
                vec![movement(Payment, dec!(70.00), "2026-03-01")],
            ),
            // F: due 2025-03-01, written off 2026-05-01: open on the past date only.
            InvoiceHistory::new(
                invoice("c3", "F", dec!(300.00), "2025-01-30", "2025-03-01"),
                vec![movement(WriteOff, dec!(300.00), "2026-05-01")],
            ),
        ]
    }

    #[test]
    fn aging_as_of_a_past_date_matches_the_hand_computed_table() {
        let as_of = date("2026-03-31");
        let aging = age(&portfolio(), as_of).unwrap();
        // Open on 2026-03-31 (days past due = as_of − due date):
        //   A 1000.00, due 01-31: 28 (Feb) + 31 (Mar) = 59  → 31–60
        //   B  400.00 (500 − 100 credit note of 03-31), due 03-15: 16 → 1–30
        //   C  250.00, due 04-30: not due → current
        //   F  300.00, due 2025-03-01: 365 (to 2026-03-01) + 30 = 395 → over 360
        //   D not issued yet; E paid on 03-01.
        let numbers: Vec<(&str, u32)> = aging
            .invoices
            .iter()
            .map(|line| (line.invoice_number.as_str(), line.days_past_due))
            .collect();
        assert_eq!(numbers, [("F", 395), ("A", 59), ("B", 16), ("C", 0)]);
        let summary = &aging.summaries[&cny()];
        let table: Vec<(AgingBucket, Decimal, u32)> = summary
            .buckets()
            .map(|(bucket, slot)| (bucket, slot.amount, slot.invoice_count))
            .collect();
        assert_eq!(
            table,
            [
                (AgingBucket::Current, dec!(250.00), 1),
                (AgingBucket::Days1To30, dec!(400.00), 1),
                (AgingBucket::Days31To60, dec!(1000.00), 1),
                (AgingBucket::Days61To90, dec!(0), 0),
                (AgingBucket::Days91To180, dec!(0), 0),
                (AgingBucket::Days181To360, dec!(0), 0),
                (AgingBucket::Over360Days, dec!(300.00), 1),
            ]
        );
        // 250 + 400 + 1000 + 300 = 1950; overdue = 1950 − 250 = 1700.
        assert_eq!(summary.total().unwrap(), dec!(1950.00));
        assert_eq!(summary.overdue_total().unwrap(), dec!(1700.00));
    }

    #[test]
    fn aging_today_reflects_later_payments_and_write_offs() {
        let aging = age(&portfolio(), date("2026-06-30")).unwrap();
        // On 2026-06-30:
        //   A 600.00 (1000 − 400), due 01-31: 28 + 31 + 30 + 31 + 30 = 150 → 91–180
        //   B 400.00, due 03-15: 16 + 30 + 31 + 30 = 107 → 91–180
        //   C 250.00, due 04-30: 31 + 30 = 61 → 61–90
        //   D  80.00, due 05-01: 30 + 30 = 60 → 31–60
        //   F written off on 05-01 → gone.
        let summary = &aging.summaries[&cny()];
        assert_eq!(
            summary.bucket(AgingBucket::Days91To180),
            BucketAmount {
                amount: dec!(1000.00),
                invoice_count: 2
            }
        );
        assert_eq!(summary.bucket(AgingBucket::Days61To90).amount, dec!(250.00));
        assert_eq!(summary.bucket(AgingBucket::Days31To60).amount, dec!(80.00));
        assert_eq!(summary.bucket(AgingBucket::Over360Days).invoice_count, 0);
        assert_eq!(summary.total().unwrap(), dec!(1330.00));
    }

    #[test]
    fn portfolio_aging_splits_by_customer_and_currency() {
        let mut histories = portfolio();
        let mut dollar = invoice("c1", "G", dec!(10.00), "2026-03-01", "2026-03-31");
        dollar.currency = usd();
        histories.push(InvoiceHistory::new(dollar, vec![]));
        let by_customer = age_by_customer(&histories, date("2026-03-31")).unwrap();
        let c1 = &by_customer[&CustomerId::parse("c1").unwrap()];
        // c1 in CNY: A 1000 + B 400; in USD: G 10, due that day → current.
        assert_eq!(c1[&cny()].total().unwrap(), dec!(1400.00));
        assert_eq!(c1[&usd()].bucket(AgingBucket::Current).amount, dec!(10.00));
        let c2 = &by_customer[&CustomerId::parse("c2").unwrap()];
        assert_eq!(c2[&cny()].total().unwrap(), dec!(250.00));
        assert_eq!(by_customer.len(), 3);
    }
}
