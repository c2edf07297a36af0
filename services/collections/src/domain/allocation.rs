//! Payment allocation (`RecordPayment`, and unapplied credit at `PostInvoice`).
//!
//! A payment is applied either by the payer's explicit allocations or, when there are none,
//! to undisputed open amounts in the payment's currency, oldest due date first, then issue
//! date, then invoice number. What is not applied stays as unapplied credit of the customer
//! in that currency, and is applied by the same oldest-due-first rule to the next invoice
//! posted or at the next allocation ([`apply_unapplied_credit`]).
//!
//! Choice where the contract is silent: with explicit allocations, the rest of the payment is
//! *not* spread over other invoices; it stays unapplied. A payer who names invoices has told
//! us what the money is for, and guessing the rest could contradict the remittance advice.

use std::collections::BTreeSet;

use chrono::NaiveDate;
use credit_core::{Currency, FieldViolation};
use rust_decimal::Decimal;

use super::receivable::{CustomerId, InvoiceId};

/// An invoice that may receive money, as the store reads it at the moment of allocation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpenItem {
    pub invoice_id: InvoiceId,
    pub customer_id: CustomerId,
    pub invoice_number: String,
    pub currency: Currency,
    pub issue_date: NaiveDate,
    pub due_date: NaiveDate,
    /// Still owed; zero for a settled or written-off invoice.
    pub open_amount: Decimal,
    /// Part of the open amount under open disputes; automatic allocation leaves it alone,
    /// an explicit allocation may pay it (the payer chose to).
    pub disputed_amount: Decimal,
    /// The early-payment discount (现金折扣, the "2" of "2/10 net 30") this payment may take:
    /// zero outside the discount window ([`early_payment_discount`]).
    pub discount: Decimal,
}

impl OpenItem {
    /// What automatic allocation may apply: the open amount less the disputed part.
    pub fn undisputed_open_amount(&self) -> Decimal {
        (self.open_amount - self.disputed_amount).max(Decimal::ZERO)
    }

    /// The discount a payment of `amount` earns: what is left of the open amount once the
    /// payment reaches the open amount less the discount (the whole discount for exactly the
    /// net amount, less for more), nothing for a smaller payment or a disputed invoice.
    fn discount_earned(&self, amount: Decimal) -> Decimal {
        let net = self.open_amount - self.discount;
        if self.discount > Decimal::ZERO && self.disputed_amount.is_zero() && amount >= net {
            (self.open_amount - amount).max(Decimal::ZERO)
        } else {
            Decimal::ZERO
        }
    }

    /// What automatic allocation applies to settle the item: the undisputed open amount, less
    /// the discount when one may be taken.
    fn settling_amount(&self) -> Decimal {
        if self.disputed_amount.is_zero() {
            (self.open_amount - self.discount).max(Decimal::ZERO)
        } else {
            self.undisputed_open_amount()
        }
    }
}

/// The early-payment discount of an invoice of `invoice_amount` issued on `issue_date` with
/// terms of `discount_percent` within `discount_days`, for money received on `value_date`: the
/// percent of the invoice amount (rounded once, `rounding::round_money`) when the money arrives
/// within the window (issue date + discount days, inclusive), else zero. Never more than what
/// is still open.
pub fn early_payment_discount(
    invoice_amount: Decimal,
    open_amount: Decimal,
    issue_date: NaiveDate,
    discount_percent: Decimal,
    discount_days: u32,
    value_date: NaiveDate,
) -> Decimal {
    if discount_percent <= Decimal::ZERO || discount_days == 0 {
        return Decimal::ZERO;
    }
    let within = issue_date
        .checked_add_days(chrono::Days::new(u64::from(discount_days)))
        .is_some_and(|last_day| value_date <= last_day && value_date >= issue_date);
    if !within {
        return Decimal::ZERO;
    }
    let discount =
        super::rounding::round_money(invoice_amount * discount_percent / Decimal::ONE_HUNDRED);
    discount.min(open_amount).max(Decimal::ZERO)
}

/// The money to apply: a payment, or a customer's unapplied credit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Funds {
    pub customer_id: CustomerId,
    pub currency: Currency,
    /// Positive.
    pub amount: Decimal,
}

/// One explicit allocation instruction (`AllocationInstruction`), already parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AllocationInstruction {
    pub invoice_id: InvoiceId,
    pub amount: Decimal,
    /// The currency of the instruction's amount.
    pub currency: Currency,
}

/// Part of the funds applied to one invoice (`PaymentAllocation`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Allocation {
    pub invoice_id: InvoiceId,
    pub invoice_number: String,
    pub amount: Decimal,
    /// The early-payment discount the allocation earned, closing the rest of the invoice.
    pub discount: Decimal,
    /// The invoice's open amount after this allocation.
    pub open_amount_after: Decimal,
}

/// The outcome of applying funds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Application {
    /// In the order applied.
    pub allocations: Vec<Allocation>,
    /// What is left: unapplied credit of the customer in the funds' currency.
    pub unapplied: Decimal,
}

impl Application {
    /// Total applied to invoices.
    pub fn applied(&self) -> Decimal {
        self.allocations
            .iter()
            .map(|allocation| allocation.amount)
            .sum()
    }
}

/// Why an explicit allocation was refused. Each names the request field at fault
/// (`allocations[1].amount`); [`AllocationError::reason`] is the contract's `ErrorInfo`
/// reason.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AllocationError {
    #[error("{field}: must be greater than zero")]
    NotPositive { field: String },
    #[error("{field}: invoice '{invoice_id}' is not an invoice of this customer")]
    UnknownInvoice {
        field: String,
        invoice_id: InvoiceId,
    },
    #[error("{field}: invoice '{invoice_id}' appears more than once")]
    DuplicateInvoice {
        field: String,
        invoice_id: InvoiceId,
    },
    #[error("{field}: invoice '{invoice_id}' is not open")]
    InvoiceNotOpen {
        field: String,
        invoice_id: InvoiceId,
    },
    #[error("{field}: currency {found} differs from the payment's {expected}")]
    CurrencyMismatch {
        field: String,
        expected: Currency,
        found: Currency,
    },
    #[error("{field}: {amount} exceeds the invoice's open amount {open_amount}")]
    ExceedsOpenAmount {
        field: String,
        amount: Decimal,
        open_amount: Decimal,
    },
    #[error("{field}: allocations up to here total {total}, more than the payment's {payment}")]
    ExceedsPayment {
        field: String,
        total: Decimal,
        payment: Decimal,
    },
}

impl AllocationError {
    /// The request field at fault.
    pub fn field(&self) -> &str {
        match self {
            Self::NotPositive { field }
            | Self::UnknownInvoice { field, .. }
            | Self::DuplicateInvoice { field, .. }
            | Self::InvoiceNotOpen { field, .. }
            | Self::CurrencyMismatch { field, .. }
            | Self::ExceedsOpenAmount { field, .. }
            | Self::ExceedsPayment { field, .. } => field,
        }
    }

    /// The stable `ErrorInfo` reason of collections.proto, `None` for plain bad input.
    pub fn reason(&self) -> Option<&'static str> {
        match self {
            Self::NotPositive { .. }
            | Self::UnknownInvoice { .. }
            | Self::DuplicateInvoice { .. } => None,
            Self::InvoiceNotOpen { .. } => Some("INVOICE_NOT_OPEN"),
            Self::CurrencyMismatch { .. } => Some("CURRENCY_MISMATCH"),
            Self::ExceedsOpenAmount { .. } => Some("AMOUNT_EXCEEDS_OPEN_AMOUNT"),
            Self::ExceedsPayment { .. } => Some("ALLOCATION_EXCEEDS_PAYMENT"),
        }
    }

    /// As a field violation for a `BadRequest` detail.
    pub fn to_field_violation(&self) -> FieldViolation {
        let text = self.to_string();
        let description = text
            .strip_prefix(self.field())
            .and_then(|rest| rest.strip_prefix(": "))
            .unwrap_or(&text);
        FieldViolation::new(self.field(), description)
    }
}

/// Orders items for automatic allocation: oldest due date, then issue date, then invoice
/// number (then id, so the order is total).
fn allocation_order(items: &mut [&OpenItem]) {
    items.sort_by(|left, right| {
        (
            left.due_date,
            left.issue_date,
            &left.invoice_number,
            &left.invoice_id,
        )
            .cmp(&(
                right.due_date,
                right.issue_date,
                &right.invoice_number,
                &right.invoice_id,
            ))
    });
}

/// Applies `funds` oldest due first to the undisputed open amounts of the funds' customer and
/// currency among `items`; the rest is unapplied. Items of other customers or currencies are
/// ignored, so the store may pass everything it read.
pub fn allocate_oldest_due_first(funds: &Funds, items: &[OpenItem]) -> Application {
    let mut candidates: Vec<&OpenItem> = items
        .iter()
        .filter(|item| item.customer_id == funds.customer_id && item.currency == funds.currency)
        .collect();
    allocation_order(&mut candidates);
    let mut remaining = funds.amount.max(Decimal::ZERO);
    let mut allocations = Vec::new();
    for item in candidates {
        if remaining <= Decimal::ZERO {
            break;
        }
        let amount = remaining.min(item.settling_amount());
        if amount <= Decimal::ZERO {
            continue;
        }
        remaining -= amount;
        let discount = item.discount_earned(amount);
        allocations.push(Allocation {
            invoice_id: item.invoice_id.clone(),
            invoice_number: item.invoice_number.clone(),
            amount,
            discount,
            open_amount_after: item.open_amount - amount - discount,
        });
    }
    Application {
        allocations,
        unapplied: remaining,
    }
}

/// Applies a payment: by `instructions` when there are any (all checked first, every problem
/// reported with its field path), otherwise oldest due first. Never partly applies a payment
/// whose instructions are invalid.
pub fn allocate_payment(
    payment: &Funds,
    instructions: &[AllocationInstruction],
    items: &[OpenItem],
) -> Result<Application, Vec<AllocationError>> {
    if instructions.is_empty() {
        return Ok(allocate_oldest_due_first(payment, items));
    }
    let mut errors = Vec::new();
    let mut seen = BTreeSet::new();
    let mut total = Decimal::ZERO;
    let mut allocations = Vec::new();
    for (index, instruction) in instructions.iter().enumerate() {
        let invoice_field = format!("allocations[{index}].invoice_id");
        let amount_field = format!("allocations[{index}].amount");
        if !seen.insert(&instruction.invoice_id) {
            errors.push(AllocationError::DuplicateInvoice {
                field: invoice_field,
                invoice_id: instruction.invoice_id.clone(),
            });
            continue;
        }
        if instruction.amount <= Decimal::ZERO {
            errors.push(AllocationError::NotPositive {
                field: amount_field,
            });
            continue;
        }
        if instruction.currency != payment.currency {
            errors.push(AllocationError::CurrencyMismatch {
                field: format!("{amount_field}.currency"),
                expected: payment.currency,
                found: instruction.currency,
            });
            continue;
        }
        let Some(item) = items.iter().find(|item| {
            item.invoice_id == instruction.invoice_id && item.customer_id == payment.customer_id
        }) else {
            errors.push(AllocationError::UnknownInvoice {
                field: invoice_field,
                invoice_id: instruction.invoice_id.clone(),
            });
            continue;
        };
        if item.currency != payment.currency {
            errors.push(AllocationError::CurrencyMismatch {
                field: invoice_field,
                expected: payment.currency,
                found: item.currency,
            });
            continue;
        }
        if item.open_amount <= Decimal::ZERO {
            errors.push(AllocationError::InvoiceNotOpen {
                field: invoice_field,
                invoice_id: item.invoice_id.clone(),
            });
            continue;
        }
        if instruction.amount > item.open_amount {
            errors.push(AllocationError::ExceedsOpenAmount {
                field: amount_field,
                amount: instruction.amount,
                open_amount: item.open_amount,
            });
            continue;
        }
        total += instruction.amount;
        if total > payment.amount {
            errors.push(AllocationError::ExceedsPayment {
                field: amount_field,
                total,
                payment: payment.amount,
            });
            continue;
        }
        let discount = item.discount_earned(instruction.amount);
        allocations.push(Allocation {
            invoice_id: item.invoice_id.clone(),
            invoice_number: item.invoice_number.clone(),
            amount: instruction.amount,
            discount,
            open_amount_after: item.open_amount - instruction.amount - discount,
        });
    }
    if !errors.is_empty() {
        return Err(errors);
    }
    Ok(Application {
        allocations,
        unapplied: payment.amount - total,
    })
}

/// Applies a customer's unapplied credit (`credit.amount`, the sum of earlier overpayments in
/// one currency) to `items`, oldest due first: at `PostInvoice` pass the new invoice (with
/// the other open ones if the store wants the credit to reach older debts first), at the next
/// allocation pass every open item. The application's `unapplied` is the credit left.
pub fn apply_unapplied_credit(credit: &Funds, items: &[OpenItem]) -> Application {
    allocate_oldest_due_first(credit, items)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::receivable::test_support::*;
    use rust_decimal_macros::dec;

    fn item(number: &str, open: Decimal, issue: &str, due: &str) -> OpenItem {
        OpenItem {
            invoice_id: InvoiceId::parse(&format!("inv-{number}")).unwrap(),
            customer_id: CustomerId::parse("c1").unwrap(),
            invoice_number: number.to_owned(),
            currency: cny(),
            issue_date: date(issue),
            due_date: date(due),
            open_amount: open,
            disputed_amount: Decimal::ZERO,
            discount: Decimal::ZERO,
        }
    }

    #[test]
    fn a_payment_of_the_net_amount_within_the_window_earns_the_discount() {
        // 2/10 net 30 on 10,000.00 issued on 1 March: 200.00 off until 11 March.
        let discount = |value_date: &str| {
            early_payment_discount(
                dec!(10000.00),
                dec!(10000.00),
                date("2026-03-01"),
                dec!(2),
                10,
                date(value_date),
            )
        };
        assert_eq!(discount("2026-03-09"), dec!(200.00));
        assert_eq!(discount("2026-03-11"), dec!(200.00), "the last day counts");
        assert_eq!(discount("2026-03-12"), Decimal::ZERO);

        let open = OpenItem {
            discount: dec!(200.00),
            ..item("A", dec!(10000.00), "2026-03-01", "2026-03-31")
        };
        let later = item("B", dec!(500.00), "2026-03-02", "2026-04-01");
        // Automatic allocation pays the net amount and the discount closes the invoice; the
        // rest goes on to the next invoice.
        let paid = allocate_oldest_due_first(&funds(dec!(10300.00)), &[open.clone(), later]);
        assert_eq!(paid.allocations[0].amount, dec!(9800.00));
        assert_eq!(paid.allocations[0].discount, dec!(200.00));
        assert_eq!(paid.allocations[0].open_amount_after, Decimal::ZERO);
        assert_eq!(paid.allocations[1].amount, dec!(500.00));
        // Short of the net amount: no discount.
        let short = allocate_oldest_due_first(&funds(dec!(9000.00)), std::slice::from_ref(&open));
        assert_eq!(short.allocations[0].discount, Decimal::ZERO);
        assert_eq!(short.allocations[0].open_amount_after, dec!(1000.00));
        // An explicit allocation of a little more than the net earns the rest.
        let named = allocate_payment(
            &funds(dec!(9900.00)),
            &[instruction("A", dec!(9900.00))],
            std::slice::from_ref(&open),
        )
        .unwrap();
        assert_eq!(named.allocations[0].discount, dec!(100.00));
        assert_eq!(named.allocations[0].open_amount_after, Decimal::ZERO);
        // A disputed invoice takes no discount.
        let disputed = OpenItem {
            disputed_amount: dec!(1.00),
            ..open
        };
        let paid = allocate_payment(
            &funds(dec!(9800.00)),
            &[instruction("A", dec!(9800.00))],
            &[disputed],
        )
        .unwrap();
        assert_eq!(paid.allocations[0].discount, Decimal::ZERO);
    }

    fn funds(amount: Decimal) -> Funds {
        Funds {
            customer_id: CustomerId::parse("c1").unwrap(),
            currency: cny(),
            amount,
        }
    }

    fn instruction(number: &str, amount: Decimal) -> AllocationInstruction {
        AllocationInstruction {
            invoice_id: InvoiceId::parse(&format!("inv-{number}")).unwrap(),
            amount,
            currency: cny(),
        }
    }

    fn applied(application: &Application) -> Vec<(&str, Decimal, Decimal)> {
        application
            .allocations
            .iter()
            .map(|allocation| {
                (
                    allocation.invoice_number.as_str(),
                    allocation.amount,
                    allocation.open_amount_after,
                )
            })
            .collect()
    }

    #[test]
    fn oldest_due_first_with_ties_by_issue_date_then_number() {
        let items = [
            item("B-2", dec!(100.00), "2026-01-05", "2026-02-01"),
            item("B-1", dec!(100.00), "2026-01-05", "2026-02-01"),
            item("C-9", dec!(100.00), "2026-01-01", "2026-02-01"),
            item("Z-1", dec!(100.00), "2025-12-01", "2026-01-15"),
        ];
        // Order: Z-1 (due 01-15), then the three due 02-01: C-9 (issued 01-01) before B-1
        // and B-2 (issued 01-05, then by number), although "C-9" sorts after "B-…".
        // 250 = 100 + 100 + 50 (partial on B-1).
        let application = allocate_payment(&funds(dec!(250.00)), &[], &items).unwrap();
        assert_eq!(
            applied(&application),
            [
                ("Z-1", dec!(100.00), dec!(0.00)),
                ("C-9", dec!(100.00), dec!(0.00)),
                ("B-1", dec!(50.00), dec!(50.00)),
            ]
        );
        assert_eq!(application.unapplied, dec!(0.00));
    }

    #[test]
    fn automatic_allocation_skips_disputed_amounts_other_currencies_and_customers() {
        let mut disputed = item("A", dec!(300.00), "2026-01-01", "2026-01-31");
        disputed.disputed_amount = dec!(200.00);
        let mut dollars = item("B", dec!(50.00), "2026-01-01", "2026-01-10");
        dollars.currency = usd();
        let mut other = item("C", dec!(50.00), "2026-01-01", "2026-01-05");
        other.customer_id = CustomerId::parse("c2").unwrap();
        let items = [disputed, dollars, other];
        // Only A's undisputed 300 − 200 = 100 may be paid; 150 − 100 = 50 stays unapplied.
        let application = allocate_payment(&funds(dec!(150.00)), &[], &items).unwrap();
        assert_eq!(applied(&application), [("A", dec!(100.00), dec!(200.00))]);
        assert_eq!(application.unapplied, dec!(50.00));
    }

    #[test]
    fn an_overpayment_is_kept_and_applied_to_the_next_invoice() {
        let first = [item("A", dec!(400.00), "2026-01-01", "2026-01-31")];
        // 1000 paid against 400 open: 600 stays as credit.
        let payment = allocate_payment(&funds(dec!(1000.00)), &[], &first).unwrap();
        assert_eq!(applied(&payment), [("A", dec!(400.00), dec!(0.00))]);
        assert_eq!(payment.unapplied, dec!(600.00));

        // The next invoice, 250, takes 250 of the 600: 350 credit left, invoice settled.
        let next = [item("B", dec!(250.00), "2026-02-01", "2026-03-03")];
        let credit = apply_unapplied_credit(&funds(payment.unapplied), &next);
        assert_eq!(applied(&credit), [("B", dec!(250.00), dec!(0.00))]);
        assert_eq!(credit.unapplied, dec!(350.00));

        // Then an invoice of 500 takes the last 350 and stays open for 150.
        let last = [item("C", dec!(500.00), "2026-03-01", "2026-03-31")];
        let credit = apply_unapplied_credit(&funds(credit.unapplied), &last);
        assert_eq!(applied(&credit), [("C", dec!(350.00), dec!(150.00))]);
        assert_eq!(credit.unapplied, dec!(0.00));
    }

    #[test]
    fn explicit_allocations_are_applied_as_given_and_the_rest_stays_unapplied() {
        let items = [
            item("A", dec!(100.00), "2026-01-01", "2026-01-31"),
            item("B", dec!(200.00), "2026-02-01", "2026-03-03"),
        ];
        // The payer pays B only, 120 of 200, out of 150: A untouched, 30 unapplied.
        let application = allocate_payment(
            &funds(dec!(150.00)),
            &[instruction("B", dec!(120.00))],
            &items,
        )
        .unwrap();
        assert_eq!(applied(&application), [("B", dec!(120.00), dec!(80.00))]);
        assert_eq!(application.unapplied, dec!(30.00));
        assert_eq!(application.applied(), dec!(120.00));
    }

    #[test]
    fn invalid_allocations_name_the_field_at_fault() {
        let mut dollars = item("D", dec!(10.00), "2026-01-01", "2026-01-31");
        dollars.currency = usd();
        let mut other_customer = item("E", dec!(10.00), "2026-01-01", "2026-01-31");
        other_customer.customer_id = CustomerId::parse("c2").unwrap();
        let items = [
            item("A", dec!(100.00), "2026-01-01", "2026-01-31"),
            item("B", dec!(200.00), "2026-02-01", "2026-03-03"),
            item("C", dec!(0.00), "2026-02-01", "2026-03-03"),
            dollars,
            other_customer,
        ];
        let mut in_dollars = instruction("A", dec!(1.00));
        in_dollars.currency = usd();
        let instructions = [
            instruction("A", dec!(100.00)), // fine: 100 so far
            instruction("B", dec!(201.00)), // above B's open 200
            instruction("C", dec!(5.00)),   // C is settled
            instruction("D", dec!(5.00)),   // D is in USD
            instruction("E", dec!(5.00)),   // E belongs to c2
            instruction("A", dec!(1.00)),   // A twice
            instruction("B", dec!(0.00)),   // B twice as well (caught before the amount)
            in_dollars,                     // A a third time
        ];
        let errors = allocate_payment(&funds(dec!(150.00)), &instructions, &items).unwrap_err();
        let fields: Vec<(&str, Option<&str>)> = errors
            .iter()
            .map(|error| (error.field(), error.reason()))
            .collect();
        assert_eq!(
            fields,
            [
                ("allocations[1].amount", Some("AMOUNT_EXCEEDS_OPEN_AMOUNT")),
                ("allocations[2].invoice_id", Some("INVOICE_NOT_OPEN")),
                ("allocations[3].invoice_id", Some("CURRENCY_MISMATCH")),
                ("allocations[4].invoice_id", None),
                ("allocations[5].invoice_id", None),
                ("allocations[6].invoice_id", None),
                ("allocations[7].invoice_id", None),
            ]
        );
        assert_eq!(
            errors[0].to_field_violation().description,
            "201.00 exceeds the invoice's open amount 200.00"
        );
    }

    #[test]
    fn allocations_above_the_payment_point_at_the_instruction_that_crosses_it() {
        let items = [
            item("A", dec!(100.00), "2026-01-01", "2026-01-31"),
            item("B", dec!(200.00), "2026-02-01", "2026-03-03"),
        ];
        let mut in_dollars = instruction("B", dec!(1.00));
        in_dollars.currency = usd();
        // 100 + 60 = 160 > 150: the second instruction is at fault.
        let errors = allocate_payment(
            &funds(dec!(150.00)),
            &[
                instruction("A", dec!(100.00)),
                instruction("B", dec!(60.00)),
            ],
            &items,
        )
        .unwrap_err();
        assert_eq!(
            errors,
            [AllocationError::ExceedsPayment {
                field: "allocations[1].amount".into(),
                total: dec!(160.00),
                payment: dec!(150.00),
            }]
        );
        let errors = allocate_payment(&funds(dec!(150.00)), &[in_dollars], &items).unwrap_err();
        assert_eq!(errors[0].field(), "allocations[0].amount.currency");
        assert_eq!(errors[0].reason(), Some("CURRENCY_MISMATCH"));
    }
}
