//! Between the contract and the domain: request fields parsed into domain values (each problem
//! named by its field), stored records turned into the contract's messages.

use chrono::NaiveDate;
use credit_core::{Currency, Money, ServiceError};
use credit_proto::v1 as pb;
use rust_decimal::Decimal;

use crate::domain::{
    AgingBucket, AgingSummary, AssetClassification, ClassificationPolicy, CreditNoteApproval,
    InvoiceStatus, MovementKind, round_money,
};
use crate::store::{
    CreditNoteApprovalRecord, CreditNoteRecord, NewMovement, PaymentRecord, StoredInvoice,
};

pub use credit_proto::time::{from_date, timestamp, to_date};

pub const MAX_ID_LEN: usize = 100;

pub fn money(amount: Decimal, currency: Currency) -> Option<pb::Money> {
    Some(Money::new(round_money(amount), currency).into())
}

/// Collections records who acted by name only (no roles): the suite's actor with just that.
pub fn actor(name: &str) -> Option<pb::Actor> {
    Some(pb::Actor::from(&credit_core::Actor::named(name)))
}

/// A checker's decision (`ApprovalDecision`): `true` to approve, `false` to reject.
pub fn approve_or_reject(decision: i32) -> Result<bool, ServiceError> {
    match pb::ApprovalDecision::try_from(decision) {
        Ok(pb::ApprovalDecision::Approve) => Ok(true),
        Ok(pb::ApprovalDecision::Reject) => Ok(false),
        _ => Err(ServiceError::invalid(
            "decision",
            "must be APPROVE or REJECT",
        )),
    }
}

/// A required id of at most [`MAX_ID_LEN`] characters.
pub fn required_id(field: &str, value: &str) -> Result<String, ServiceError> {
    credit_core::required_text(field, value, MAX_ID_LEN)
}

/// An optional id: empty, or at most [`MAX_ID_LEN`] characters.
pub fn optional_id(field: &str, value: &str) -> Result<String, ServiceError> {
    credit_core::optional_text(field, value, MAX_ID_LEN)
}

/// A positive amount with its currency.
pub fn positive_money(field: &str, money: Option<&pb::Money>) -> Result<Money, ServiceError> {
    let Some(money) = money else {
        return Err(ServiceError::invalid(field, "is required"));
    };
    let parsed =
        Money::try_from(money).map_err(|error| ServiceError::invalid(field, error.to_string()))?;
    if !parsed.is_positive() {
        return Err(ServiceError::invalid(field, "must be positive"));
    }
    let minor_units = parsed.currency().minor_units();
    if parsed.amount().scale() > minor_units {
        return Err(ServiceError::invalid(
            field,
            format!(
                "has more decimals than {} allows ({minor_units})",
                parsed.currency().code()
            ),
        ));
    }
    Ok(parsed)
}

/// A required date that is not after `today`.
pub fn past_date(
    field: &str,
    date: Option<&pb::Date>,
    today: NaiveDate,
) -> Result<NaiveDate, ServiceError> {
    let date = date.ok_or_else(|| ServiceError::invalid(field, "is required"))?;
    let date = from_date(date)
        .ok_or_else(|| ServiceError::invalid(field, "is not a valid calendar date"))?;
    if date > today {
        return Err(ServiceError::invalid(field, "must not be in the future"));
    }
    Ok(date)
}

/// An as-of date; unset is today (UTC).
pub fn as_of_date(
    field: &str,
    date: Option<&pb::Date>,
    today: NaiveDate,
) -> Result<NaiveDate, ServiceError> {
    match date {
        None => Ok(today),
        Some(date) => from_date(date)
            .ok_or_else(|| ServiceError::invalid(field, "is not a valid calendar date")),
    }
}

pub fn bucket_to_proto(bucket: AgingBucket) -> pb::AgingBucket {
    match bucket {
        AgingBucket::Current => pb::AgingBucket::Current,
        AgingBucket::Days1To30 => pb::AgingBucket::Days1To30,
        AgingBucket::Days31To60 => pb::AgingBucket::Days31To60,
        AgingBucket::Days61To90 => pb::AgingBucket::Days61To90,
        AgingBucket::Days91To180 => pb::AgingBucket::Days91To180,
        AgingBucket::Days181To360 => pb::AgingBucket::Days181To360,
        AgingBucket::Over360Days => pb::AgingBucket::Over360Days,
    }
}

pub fn classification_to_proto(classification: AssetClassification) -> pb::AssetClassification {
    match classification {
        AssetClassification::Normal => pb::AssetClassification::Normal,
        AssetClassification::SpecialMention => pb::AssetClassification::SpecialMention,
        AssetClassification::Substandard => pb::AssetClassification::Substandard,
        AssetClassification::Doubtful => pb::AssetClassification::Doubtful,
        AssetClassification::Loss => pb::AssetClassification::Loss,
    }
}

/// A sum of stored amounts too large to compute (see `domain::AmountOverflow`): the figure
/// cannot be given, and saying so is better than a panic or a wrong total.
pub fn too_large(what: &str) -> ServiceError {
    ServiceError::FailedPrecondition {
        reason: "AMOUNT_OUT_OF_RANGE",
        message: format!("{what} is too large to compute"),
        metadata: Vec::new(),
    }
}

pub fn aging_summary(summary: &AgingSummary) -> Result<pb::AgingSummary, ServiceError> {
    let total = summary.total().map_err(|_| too_large("an aging total"))?;
    let overdue_total = summary
        .overdue_total()
        .map_err(|_| too_large("an aging total"))?;
    Ok(pb::AgingSummary {
        currency: summary.currency.code().to_owned(),
        buckets: summary
            .buckets()
            .map(|(bucket, amount)| pb::AgingBucketAmount {
                bucket: bucket_to_proto(bucket).into(),
                amount: money(amount.amount, summary.currency),
                invoice_count: i32::try_from(amount.invoice_count).unwrap_or(i32::MAX),
            })
            .collect(),
        total: money(total, summary.currency),
        overdue_total: money(overdue_total, summary.currency),
    })
}

/// The contract's invoice: amounts from its movements, days past due and classification as
/// of `today`.
pub fn invoice(
    stored: &StoredInvoice,
    today: NaiveDate,
    classification: &ClassificationPolicy,
) -> pb::Invoice {
    let record = &stored.record;
    let history = &stored.history;
    let invoice = &record.invoice;
    let sum = |kind: MovementKind| -> Decimal {
        history
            .movements
            .iter()
            .filter(|movement| movement.kind == kind)
            .map(|movement| movement.amount)
            .sum()
    };
    let paid = sum(MovementKind::Payment);
    let credited = sum(MovementKind::CreditNote);
    let written_off = sum(MovementKind::WriteOff);
    let discounted = sum(MovementKind::Discount);
    let open = (invoice.amount - paid - credited - written_off - discounted).max(Decimal::ZERO);
    let status = history.status();
    let days_past_due = if status == InvoiceStatus::Open {
        invoice.days_past_due(today)
    } else {
        0
    };
    let currency = invoice.currency;
    pb::Invoice {
        invoice_id: invoice.invoice_id.to_string(),
        customer_id: invoice.customer_id.to_string(),
        invoice_number: invoice.invoice_number.clone(),
        order_id: record.order_id.clone(),
        hold_id: record.hold_id.clone(),
        amount: money(invoice.amount, currency),
        open_amount: money(open, currency),
        paid_amount: money(paid, currency),
        credited_amount: money(credited, currency),
        written_off_amount: money(written_off, currency),
        discount_amount: money(discounted, currency),
        disputed_amount: money(stored.disputed_amount.min(open), currency),
        issue_date: Some(to_date(invoice.issue_date)),
        due_date: Some(to_date(invoice.due_date)),
        payment_terms: record.terms.as_ref().map(|terms| pb::PaymentTerms {
            net_days: i32::try_from(terms.net_days).unwrap_or(i32::MAX),
            discount_percent: terms.discount_percent.clone(),
            discount_days: i32::try_from(terms.discount_days).unwrap_or(0),
        }),
        status: match status {
            InvoiceStatus::Open => pb::InvoiceStatus::Open,
            InvoiceStatus::Settled => pb::InvoiceStatus::Settled,
            InvoiceStatus::WrittenOff => pb::InvoiceStatus::WrittenOff,
        }
        .into(),
        days_past_due: i32::try_from(days_past_due).unwrap_or(i32::MAX),
        classification: classification_to_proto(classification.classify(days_past_due)).into(),
        dunning_level: 0,
        closed_date: record.closed_date.map(to_date),
        posted_at: Some(timestamp(record.posted_at)),
        posted_by: actor(&record.posted_by),
    }
}

/// One allocation of a payment as shown: the movement, the invoice's number, its open amount
/// right after the payment, and the early-payment discount the allocation earned.
#[derive(Debug, Clone)]
pub struct DescribedAllocation {
    pub movement: NewMovement,
    pub invoice_number: String,
    pub open_after: Decimal,
    pub discount: Decimal,
}

pub fn payment(record: &PaymentRecord, allocations: &[DescribedAllocation]) -> pb::Payment {
    pb::Payment {
        payment_id: record.payment_id.clone(),
        customer_id: record.customer_id.clone(),
        amount: money(record.amount, record.currency),
        value_date: Some(to_date(record.value_date)),
        reference: record.reference.clone(),
        allocations: allocations
            .iter()
            .map(|allocation| pb::PaymentAllocation {
                invoice_id: allocation.movement.invoice_id.clone(),
                invoice_number: allocation.invoice_number.clone(),
                amount: money(allocation.movement.amount, record.currency),
                invoice_open_amount: money(allocation.open_after, record.currency),
                discount: money(allocation.discount, record.currency),
            })
            .collect(),
        unapplied_amount: money(record.unapplied_at_recording, record.currency),
        recorded_at: Some(timestamp(record.recorded_at)),
        recorded_by: actor(&record.recorded_by),
    }
}

pub fn credit_note(record: &CreditNoteRecord) -> pb::CreditNote {
    pb::CreditNote {
        credit_note_id: record.credit_note_id.clone(),
        customer_id: record.customer_id.clone(),
        invoice_id: record.invoice_id.clone(),
        credit_note_number: record.credit_note_number.clone(),
        amount: money(record.amount, record.currency),
        issue_date: Some(to_date(record.issue_date)),
        reason: record.reason.clone(),
        dispute_id: record.dispute_id.clone(),
        posted_at: Some(timestamp(record.posted_at)),
        posted_by: actor(&record.posted_by),
        approval_status: pb::ApprovalStatus::Approved as i32,
        decided_by: None,
        decided_at: None,
        decision_reason: String::new(),
    }
}

/// A credit note that needed a second person, as it stands: waiting, refused, or approved
/// (then `posted` is the credit note on the ledger).
pub fn credit_note_approval(
    approval: &CreditNoteApprovalRecord,
    posted: Option<&CreditNoteRecord>,
) -> pb::CreditNote {
    pb::CreditNote {
        credit_note_id: approval.credit_note_id.clone(),
        customer_id: approval.customer_id.clone(),
        invoice_id: approval.invoice_id.clone(),
        credit_note_number: approval.credit_note_number.clone(),
        amount: money(approval.amount, approval.currency),
        issue_date: Some(to_date(approval.issue_date)),
        reason: approval.reason.clone(),
        dispute_id: approval.dispute_id.clone(),
        posted_at: posted.map(|note| timestamp(note.posted_at)),
        posted_by: Some(pb::Actor::from(&approval.requested_by)),
        approval_status: match approval.status {
            CreditNoteApproval::Pending => pb::ApprovalStatus::Pending,
            CreditNoteApproval::Approved => pb::ApprovalStatus::Approved,
            CreditNoteApproval::Rejected => pb::ApprovalStatus::Rejected,
        } as i32,
        decided_by: (!approval.decided_by.is_empty())
            .then(|| actor(&approval.decided_by))
            .flatten(),
        decided_at: approval.decided_at.map(timestamp),
        decision_reason: approval.decision_reason.clone(),
    }
}

/// Net days longer than this are a typing error, not terms.
const MAX_NET_DAYS: i32 = 3_650;

/// Payment terms' ranges a request must keep.
pub fn check_terms(field: &str, terms: &pb::PaymentTerms) -> Result<(), ServiceError> {
    if !(0..=MAX_NET_DAYS).contains(&terms.net_days) {
        return Err(ServiceError::invalid(
            format!("{field}.net_days"),
            format!("must be between 0 and {MAX_NET_DAYS}"),
        ));
    }
    Ok(())
}

/// The allocations a payment asks for; every bad one is a field violation.
pub fn allocation_instructions(
    wire: &[pb::AllocationInstruction],
) -> Result<Vec<crate::domain::AllocationInstruction>, ServiceError> {
    let mut violations = Vec::new();
    let mut instructions = Vec::new();
    for (index, allocation) in wire.iter().enumerate() {
        let invoice_id =
            crate::domain::InvoiceId::parse(allocation.invoice_id.trim()).map_err(|error| {
                ServiceError::invalid(
                    format!("allocations[{index}].invoice_id"),
                    error.to_string(),
                )
            });
        let amount = positive_money(
            &format!("allocations[{index}].amount"),
            allocation.amount.as_ref(),
        );
        match credit_core::both(invoice_id, amount) {
            Ok((invoice_id, amount)) => instructions.push(crate::domain::AllocationInstruction {
                invoice_id,
                amount: amount.amount(),
                currency: amount.currency(),
            }),
            Err(ServiceError::InvalidArgument(found)) => violations.extend(found),
            Err(other) => return Err(other),
        }
    }
    if violations.is_empty() {
        Ok(instructions)
    } else {
        Err(ServiceError::InvalidArgument(violations))
    }
}
