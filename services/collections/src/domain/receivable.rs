//! Receivables: identifiers, an invoice, the movements that reduce it, and its open amount on
//! any date.
//!
//! An invoice's history is replayed rather than read from a running balance, so that the open
//! amount on a past date counts only what had happened by then: the invoice itself if issued
//! on or before the date, payments by value date, credit notes by issue date, write-offs by
//! approval date, each on or before the date (the rule of `GetAging` in collections.proto).

use std::fmt;

use chrono::NaiveDate;
use credit_core::Currency;
use rust_decimal::Decimal;

/// Longest identifier accepted; ids are generated (UUIDs) or short business numbers.
const MAX_ID_LEN: usize = 128;

/// Why an identifier was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdError {
    #[error("is required")]
    Empty,
    #[error("is longer than {MAX_ID_LEN} characters")]
    TooLong,
    #[error("must not contain control characters or surrounding spaces")]
    Malformed,
}

fn check_id(text: &str) -> Result<(), IdError> {
    if text.is_empty() {
        return Err(IdError::Empty);
    }
    if text.chars().count() > MAX_ID_LEN {
        return Err(IdError::TooLong);
    }
    if text.trim() != text || text.chars().any(char::is_control) {
        return Err(IdError::Malformed);
    }
    Ok(())
}

macro_rules! identifier {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name(String);

        impl $name {
            /// Accepts a non-empty id of at most 128 characters without control characters or
            /// surrounding spaces.
            pub fn parse(text: &str) -> Result<Self, IdError> {
                check_id(text)?;
                Ok(Self(text.to_owned()))
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
                formatter.write_str(&self.0)
            }
        }
    };
}

identifier!(
    /// A customer id, as assigned by intake.
    CustomerId
);
identifier!(
    /// An invoice id, as assigned by collections.
    InvoiceId
);
identifier!(
    /// A collection case id.
    CaseId
);
identifier!(
    /// A promise-to-pay id.
    PromiseId
);

/// Days past due of an invoice on `as_of`: `as_of − due_date`, 0 when not yet due (the
/// glossary of DESIGN.md).
pub fn days_past_due(due_date: NaiveDate, as_of: NaiveDate) -> u32 {
    let days = as_of.signed_duration_since(due_date).num_days();
    u32::try_from(days.max(0)).unwrap_or(u32::MAX)
}

/// An invoice as posted. Plain data: the handler builds it from a validated request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invoice {
    pub invoice_id: InvoiceId,
    pub customer_id: CustomerId,
    /// The seller's number, unique per customer; the last tie-breaker of allocation order.
    pub invoice_number: String,
    pub currency: Currency,
    /// Invoiced amount, positive.
    pub amount: Decimal,
    pub issue_date: NaiveDate,
    pub due_date: NaiveDate,
}

impl Invoice {
    /// Days past due on `as_of` (0 when not yet due).
    pub fn days_past_due(&self, as_of: NaiveDate) -> u32 {
        days_past_due(self.due_date, as_of)
    }
}

/// What reduced an invoice's open amount.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum MovementKind {
    /// A payment allocation (including applied unapplied credit), dated by value date.
    Payment,
    /// A credit note, dated by issue date.
    CreditNote,
    /// An approved write-off, dated by approval date.
    WriteOff,
    /// An early-payment discount (现金折扣) a payment within the discount window earned,
    /// dated like the payment.
    Discount,
}

/// One reduction of an invoice's open amount.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Movement {
    pub kind: MovementKind,
    /// Positive amount in the invoice's currency.
    pub amount: Decimal,
    /// The date that counts for "as of": value date, issue date or approval date.
    pub date: NaiveDate,
}

/// How an invoice ended, when its open amount reached zero.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Closure {
    /// Paid and/or credited in full (INVOICE_STATUS_SETTLED) on this date.
    Settled(NaiveDate),
    /// Open amount zero with at least part written off (INVOICE_STATUS_WRITTEN_OFF).
    WrittenOff(NaiveDate),
}

/// State of an invoice (`InvoiceStatus`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum InvoiceStatus {
    /// Open amount above zero (possibly partly paid, credited or disputed).
    Open,
    /// Fully paid and/or credited.
    Settled,
    /// Open amount zero, at least part of it written off.
    WrittenOff,
}

/// An invoice with every movement against it: enough to know its state on any date.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvoiceHistory {
    pub invoice: Invoice,
    pub movements: Vec<Movement>,
}

impl InvoiceHistory {
    pub fn new(invoice: Invoice, movements: Vec<Movement>) -> Self {
        Self { invoice, movements }
    }

    /// True when the invoice had been issued by `as_of`.
    pub fn is_issued_by(&self, as_of: NaiveDate) -> bool {
        self.invoice.issue_date <= as_of
    }

    /// Sum of the movements of `kind` dated on or before `as_of`.
    pub fn reduced_by(&self, kind: MovementKind, as_of: NaiveDate) -> Decimal {
        self.movements
            .iter()
            .filter(|movement| movement.kind == kind && movement.date <= as_of)
            .map(|movement| movement.amount)
            .sum()
    }

    /// Open amount at the end of `as_of`: the amount less every movement dated on or before
    /// it; `None` when the invoice was not issued yet. Never negative: the store refuses a
    /// movement above the open amount, and a clamp here keeps a bad row from showing a
    /// negative receivable.
    pub fn open_amount_as_of(&self, as_of: NaiveDate) -> Option<Decimal> {
        if !self.is_issued_by(as_of) {
            return None;
        }
        // Checked: a sum of movements beyond `Decimal` is certainly more than the amount, so
        // nothing is open (the same clamp as below), rather than a panic.
        let reduced = self
            .movements
            .iter()
            .filter(|movement| movement.date <= as_of)
            .try_fold(Decimal::ZERO, |sum, movement| {
                sum.checked_add(movement.amount)
            });
        let open = reduced
            .and_then(|reduced| self.invoice.amount.checked_sub(reduced))
            .unwrap_or(Decimal::ZERO);
        Some(open.max(Decimal::ZERO))
    }

    /// When and how the invoice closed, if its open amount reached zero: the date of the
    /// movement that brought it to zero (movements replayed by date). Written off when any
    /// write-off is part of what closed it.
    pub fn closure(&self) -> Option<Closure> {
        let mut movements: Vec<&Movement> = self.movements.iter().collect();
        movements.sort_by_key(|movement| movement.date);
        let mut open = self.invoice.amount;
        let mut any_write_off = false;
        for movement in movements {
            open -= movement.amount;
            any_write_off |= movement.kind == MovementKind::WriteOff;
            if open <= Decimal::ZERO {
                return Some(if any_write_off {
                    Closure::WrittenOff(movement.date)
                } else {
                    Closure::Settled(movement.date)
                });
            }
        }
        None
    }

    /// State after every movement recorded (the contract's `Invoice.status`).
    pub fn status(&self) -> InvoiceStatus {
        match self.closure() {
            None => InvoiceStatus::Open,
            Some(Closure::Settled(_)) => InvoiceStatus::Settled,
            Some(Closure::WrittenOff(_)) => InvoiceStatus::WrittenOff,
        }
    }

    /// Days past due on `as_of`, 0 when not due or when nothing is open on that date.
    pub fn days_past_due_as_of(&self, as_of: NaiveDate) -> u32 {
        match self.open_amount_as_of(as_of) {
            Some(open) if open > Decimal::ZERO => self.invoice.days_past_due(as_of),
            _ => 0,
        }
    }
}

#[cfg(test)]
pub(crate) mod test_support {
    //! Builders shared by the domain tests.
    use super::*;

    pub fn date(text: &str) -> NaiveDate {
        NaiveDate::parse_from_str(text, "%Y-%m-%d").unwrap()
    }

    pub fn cny() -> Currency {
        Currency::parse("CNY").unwrap()
    }

    pub fn usd() -> Currency {
        Currency::parse("USD").unwrap()
    }

    pub fn invoice(
        customer: &str,
        number: &str,
        amount: Decimal,
        issue: &str,
        due: &str,
    ) -> Invoice {
        Invoice {
            invoice_id: InvoiceId::parse(&format!("inv-{number}")).unwrap(),
            customer_id: CustomerId::parse(customer).unwrap(),
            invoice_number: number.to_owned(),
            currency: cny(),
            amount,
            issue_date: date(issue),
            due_date: date(due),
        }
    }

    pub fn movement(kind: MovementKind, amount: Decimal, on: &str) -> Movement {
        Movement {
            kind,
            amount,
            date: date(on),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::test_support::*;
    use super::*;
    use rust_decimal_macros::dec;

    #[test]
    fn days_past_due_is_zero_until_the_day_after_due() {
        assert_eq!(days_past_due(date("2026-03-31"), date("2026-03-30")), 0);
        assert_eq!(days_past_due(date("2026-03-31"), date("2026-03-31")), 0);
        assert_eq!(days_past_due(date("2026-03-31"), date("2026-04-01")), 1);
        // March 31 → June 29: 30 (April) + 31 (May) + 29 = 90.
        assert_eq!(days_past_due(date("2026-03-31"), date("2026-06-29")), 90);
    }

    #[test]
    fn open_amount_counts_only_what_happened_by_the_date() {
        let history = InvoiceHistory::new(
            invoice("c1", "A-1", dec!(1000.00), "2026-01-10", "2026-02-09"),
            vec![
                movement(MovementKind::Payment, dec!(300.00), "2026-02-01"),
                movement(MovementKind::CreditNote, dec!(200.00), "2026-03-01"),
                movement(MovementKind::WriteOff, dec!(500.00), "2026-04-01"),
            ],
        );
        assert_eq!(history.open_amount_as_of(date("2026-01-09")), None);
        assert_eq!(
            history.open_amount_as_of(date("2026-01-10")),
            Some(dec!(1000.00))
        );
        // 1000 − 300 on the payment's value date itself.
        assert_eq!(
            history.open_amount_as_of(date("2026-02-01")),
            Some(dec!(700.00))
        );
        // 1000 − 300 − 200.
        assert_eq!(
            history.open_amount_as_of(date("2026-03-15")),
            Some(dec!(500.00))
        );
        assert_eq!(
            history.open_amount_as_of(date("2026-04-01")),
            Some(dec!(0.00))
        );
        assert_eq!(
            history.closure(),
            Some(Closure::WrittenOff(date("2026-04-01")))
        );
        assert_eq!(history.status(), InvoiceStatus::WrittenOff);
        assert_eq!(
            history.reduced_by(MovementKind::CreditNote, date("2026-02-28")),
            dec!(0)
        );
        assert_eq!(
            history.reduced_by(MovementKind::CreditNote, date("2026-03-01")),
            dec!(200.00)
        );
        // Due 2026-02-09; on 2026-03-15 that is 19 (Feb 10–28) + 15 = 34 days.
        assert_eq!(history.days_past_due_as_of(date("2026-03-15")), 34);
        assert_eq!(history.days_past_due_as_of(date("2026-04-02")), 0);
    }

    #[test]
    fn a_fully_paid_invoice_is_settled_on_the_last_payment() {
        let history = InvoiceHistory::new(
            invoice("c1", "A-2", dec!(100.00), "2026-01-01", "2026-01-31"),
            vec![
                movement(MovementKind::Payment, dec!(60.00), "2026-02-10"),
                movement(MovementKind::Payment, dec!(40.00), "2026-01-20"),
            ],
        );
        assert_eq!(
            history.closure(),
            Some(Closure::Settled(date("2026-02-10")))
        );
    }

    #[test]
    fn ids_refuse_empty_and_padded_text() {
        assert_eq!(InvoiceId::parse(""), Err(IdError::Empty));
        assert_eq!(InvoiceId::parse(" a"), Err(IdError::Malformed));
        assert_eq!(CustomerId::parse("cus_1").unwrap().as_str(), "cus_1");
    }
}
