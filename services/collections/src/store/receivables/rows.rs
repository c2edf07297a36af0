//! The rows receivables are read as, and the invoice histories joined from them.

use std::collections::BTreeMap;

use chrono::{DateTime, NaiveDate, Utc};
use rust_decimal::Decimal;

use super::super::{
    CreditNoteRecord, DiscountRecord, InvoiceRecord, NewMovement, PaymentRecord, StoreError,
    StoreResult, StoredInvoice, Terms, currency, decimal,
};
use crate::domain::{CustomerId, Invoice, InvoiceHistory, InvoiceId, Movement, MovementKind};

pub(super) fn kind_name(kind: MovementKind) -> &'static str {
    match kind {
        MovementKind::Payment => "PAYMENT",
        MovementKind::CreditNote => "CREDIT_NOTE",
        MovementKind::WriteOff => "WRITE_OFF",
        MovementKind::Discount => "DISCOUNT",
    }
}

pub(super) fn parse_kind(text: &str) -> StoreResult<MovementKind> {
    match text {
        "PAYMENT" => Ok(MovementKind::Payment),
        "CREDIT_NOTE" => Ok(MovementKind::CreditNote),
        "WRITE_OFF" => Ok(MovementKind::WriteOff),
        "DISCOUNT" => Ok(MovementKind::Discount),
        other => Err(StoreError::Corrupt(format!("movement kind {other}"))),
    }
}

#[derive(Debug, sqlx::FromRow)]
pub(super) struct InvoiceRow {
    pub(super) invoice_id: String,
    pub(super) customer_id: String,
    pub(super) invoice_number: String,
    pub(super) currency: String,
    pub(super) amount: String,
    pub(super) issue_date: NaiveDate,
    pub(super) due_date: NaiveDate,
    pub(super) order_id: String,
    pub(super) hold_id: String,
    pub(super) net_days: Option<i32>,
    pub(super) discount_percent: String,
    pub(super) discount_days: i32,
    pub(super) closed_date: Option<NaiveDate>,
    pub(super) posted_at: DateTime<Utc>,
    pub(super) posted_by: String,
}

impl InvoiceRow {
    pub(super) fn into_record(self) -> StoreResult<InvoiceRecord> {
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
pub(super) struct MovementRow {
    pub(super) invoice_id: String,
    pub(super) kind: String,
    pub(super) amount: String,
    pub(super) effective_date: NaiveDate,
    pub(super) document_id: String,
}

impl MovementRow {
    pub(super) fn into_movement(self) -> StoreResult<NewMovement> {
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
pub(super) struct PaymentRow {
    pub(super) payment_id: String,
    pub(super) customer_id: String,
    pub(super) reference: String,
    pub(super) currency: String,
    pub(super) amount: String,
    pub(super) value_date: NaiveDate,
    pub(super) unapplied_at_recording: String,
    pub(super) unapplied: String,
    pub(super) recorded_at: DateTime<Utc>,
    pub(super) recorded_by: String,
}

impl PaymentRow {
    pub(super) fn into_record(self) -> StoreResult<PaymentRecord> {
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

/// A DISCOUNT movement with its payment's reference and currency.
#[derive(Debug, sqlx::FromRow)]
pub(super) struct DiscountRow {
    pub(super) payment_id: String,
    pub(super) reference: String,
    pub(super) invoice_id: String,
    pub(super) currency: String,
    pub(super) amount: String,
    pub(super) value_date: NaiveDate,
    pub(super) recorded_at: DateTime<Utc>,
    pub(super) ledger_seq: i64,
}

impl DiscountRow {
    pub(super) fn into_record(self) -> StoreResult<(i64, DiscountRecord)> {
        let place = format!("discount of payment {}", self.payment_id);
        Ok((
            self.ledger_seq,
            DiscountRecord {
                currency: currency(&place, &self.currency)?,
                amount: decimal(&place, &self.amount)?,
                payment_id: self.payment_id,
                reference: self.reference,
                invoice_id: self.invoice_id,
                value_date: self.value_date,
                recorded_at: self.recorded_at,
            },
        ))
    }
}

#[derive(Debug, sqlx::FromRow)]
pub(super) struct CreditNoteRow {
    pub(super) credit_note_id: String,
    pub(super) customer_id: String,
    pub(super) credit_note_number: String,
    pub(super) invoice_id: String,
    pub(super) currency: String,
    pub(super) amount: String,
    pub(super) issue_date: NaiveDate,
    pub(super) reason: String,
    pub(super) dispute_id: String,
    pub(super) posted_at: DateTime<Utc>,
    pub(super) posted_by: String,
}

impl CreditNoteRow {
    pub(super) fn into_record(self) -> StoreResult<CreditNoteRecord> {
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
pub(super) fn join_histories(
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
