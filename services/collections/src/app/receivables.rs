//! Receivables: invoices, credit notes and payments posted to a customer's account, the
//! ledger, aging and payment behaviour. Each write is planned by pure domain functions against
//! the account as the store reads it inside the write (see `store::Plan`).

use chrono::{NaiveDate, Utc};
use credit_core::{Currency, Money, Principal, ServiceError};
use credit_proto::service_names::COLLECTIONS;
use credit_proto::v1 as pb;
use credit_proto::v1::event::Payload;
use credit_runtime::events::new_event;
use credit_runtime::sql::fingerprint;
use rust_decimal::Decimal;

use super::Collections;
use super::credit_notes::waiting_credit_note;
use crate::api::convert::{
    self, allocation_instructions, check_terms, money, optional_id, past_date, positive_money,
    required_id, to_date, too_large,
};
use crate::domain::{
    CustomerId, Funds, Invoice, InvoiceHistory, InvoiceId, Movement, MovementKind, OpenItem,
    allocate_payment, apply_unapplied_credit, early_payment_discount,
};
use crate::store::{
    Account, AccountScope, Changes, CreditNoteRecord, InvoiceRecord, NaturalKey, NewMovement,
    PaymentRecord, StoredInvoice, Terms,
};
use credit_core::both;

const MAX_NUMBER_LEN: usize = 100;
const MAX_REASON_LEN: usize = 1_000;

impl Collections {
    pub(crate) async fn post_invoice_now(
        &self,
        principal: &Principal,
        request: pb::PostInvoiceRequest,
    ) -> Result<pb::PostInvoiceResponse, ServiceError> {
        let today = Utc::now().date_naive();
        let customer_id = customer_id(&request.customer_id);
        let number = document_number("invoice_number", &request.invoice_number);
        let amount = positive_money("amount", request.amount.as_ref());
        let issue_date = past_date("issue_date", request.issue_date.as_ref(), today);
        let order_id = optional_id("order_id", &request.order_id);
        let hold_id = optional_id("hold_id", &request.hold_id);
        let ((customer_id, number), ((amount, issue_date), (order_id, hold_id))) = both(
            both(customer_id, number),
            both(both(amount, issue_date), both(order_id, hold_id)),
        )?;
        let (due_date, terms) = self.due_date(&request, &customer_id, issue_date).await?;
        let fingerprint = fingerprint(&request);
        let invoice_id = format!("inv_{}", uuid::Uuid::now_v7().simple());
        let posted_by = principal.name.clone();
        let plan = |account: &Account| -> Result<Changes, ServiceError> {
            let invoice = Invoice {
                invoice_id: domain_id(InvoiceId::parse(&invoice_id))?,
                customer_id: domain_id(CustomerId::parse(&customer_id))?,
                invoice_number: number.clone(),
                currency: amount.currency(),
                amount: amount.amount(),
                issue_date,
                due_date,
            };
            // Earlier overpayments in the invoice's currency pay it at once, oldest first.
            let mut movements = Vec::new();
            let mut credits_left = Vec::new();
            let mut open = invoice.amount;
            for credit in account
                .credits
                .iter()
                .filter(|credit| credit.currency == invoice.currency)
            {
                if open <= Decimal::ZERO {
                    break;
                }
                let applied = apply_unapplied_credit(
                    &Funds {
                        customer_id: invoice.customer_id.clone(),
                        currency: invoice.currency,
                        amount: credit.unapplied,
                    },
                    &[open_item(&invoice, open)],
                );
                let used = applied.applied();
                if used <= Decimal::ZERO {
                    continue;
                }
                open -= used;
                credits_left.push((credit.payment_id.clone(), applied.unapplied));
                movements.push(NewMovement {
                    invoice_id: invoice_id.clone(),
                    kind: MovementKind::Payment,
                    amount: used,
                    date: issue_date.max(credit.value_date),
                    document_id: credit.payment_id.clone(),
                });
            }
            let history =
                InvoiceHistory::new(invoice.clone(), movements.iter().map(movement_of).collect());
            let closed = history
                .closure()
                .map(|closure| vec![(invoice_id.clone(), closure_date(closure))])
                .unwrap_or_default();
            let event = pb::Event {
                aggregate_id: invoice_id.clone(),
                customer_id: customer_id.clone(),
                actor: convert::actor(&posted_by),
                ..new_event(
                    COLLECTIONS,
                    Payload::InvoicePosted(pb::InvoicePosted {
                        invoice_id: invoice_id.clone(),
                        customer_id: customer_id.clone(),
                        invoice_number: number.clone(),
                        order_id: order_id.clone(),
                        hold_id: hold_id.clone(),
                        amount: money(invoice.amount, invoice.currency),
                        open_amount: money(open, invoice.currency),
                        issue_date: Some(to_date(issue_date)),
                        due_date: Some(to_date(due_date)),
                    }),
                )
            };
            Ok(Changes {
                document_id: invoice_id.clone(),
                invoice: Some(InvoiceRecord {
                    invoice,
                    order_id: order_id.clone(),
                    hold_id: hold_id.clone(),
                    terms: terms.clone(),
                    closed_date: None,
                    posted_at: Utc::now(),
                    posted_by: posted_by.clone(),
                }),
                movements,
                credits_left,
                closed,
                events: vec![event],
                fingerprint: fingerprint.clone(),
                ..Changes::default()
            })
        };
        let outcome = self
            .store
            .commit(
                &customer_id,
                &NaturalKey::Invoice(number.clone()),
                &fingerprint,
                // Only the credit that can pay the new invoice: none of the open invoices.
                &AccountScope::Credit(amount.currency()),
                &plan,
            )
            .await
            .map_err(ServiceError::from)?;
        let replayed = outcome.is_replay();
        let stored = self.stored_invoice(&outcome.into_inner()).await?;
        // Credit applied at posting: allocations of payments recorded before the invoice.
        let mut credit_applied = Decimal::ZERO;
        for (movement, document) in stored
            .history
            .movements
            .iter()
            .zip(&stored.movement_documents)
        {
            if movement.kind != MovementKind::Payment {
                continue;
            }
            if let Some(payment) = self
                .store
                .payment(document)
                .await
                .map_err(ServiceError::from)?
                && payment.recorded_at <= stored.record.posted_at
            {
                credit_applied = credit_applied
                    .checked_add(movement.amount)
                    .ok_or_else(|| too_large("the credit applied"))?;
            }
        }
        if !replayed {
            tracing::info!(invoice_id = %stored.record.invoice.invoice_id, customer_id = %customer_id, "invoice posted");
        }
        Ok(pb::PostInvoiceResponse {
            credit_applied: money(credit_applied, stored.record.invoice.currency),
            invoice: Some(convert::invoice(&stored, today, &self.classification)),
            replayed,
        })
    }

    /// The due date: given, from given terms, or from the customer's terms in limits.
    async fn due_date(
        &self,
        request: &pb::PostInvoiceRequest,
        customer_id: &str,
        issue_date: NaiveDate,
    ) -> Result<(NaiveDate, Option<Terms>), ServiceError> {
        use pb::post_invoice_request::Due;
        let terms = match &request.due {
            Some(Due::DueDate(date)) => {
                let due = convert::from_date(date).ok_or_else(|| {
                    ServiceError::invalid("due_date", "is not a valid calendar date")
                })?;
                if due < issue_date {
                    return Err(ServiceError::invalid(
                        "due_date",
                        "must not be before the issue date",
                    ));
                }
                return Ok((due, None));
            }
            Some(Due::PaymentTerms(terms)) => {
                check_terms("payment_terms", terms)?;
                terms.clone()
            }
            None => self.customer_terms(customer_id).await?,
        };
        let net_days = u32::try_from(terms.net_days).unwrap_or(0);
        let due = issue_date
            .checked_add_days(chrono::Days::new(u64::from(net_days)))
            .ok_or_else(|| ServiceError::invalid("payment_terms.net_days", "is too far out"))?;
        Ok((
            due,
            Some(Terms {
                net_days,
                discount_percent: terms.discount_percent.clone(),
                discount_days: u32::try_from(terms.discount_days).unwrap_or(0),
            }),
        ))
    }

    /// The customer's payment terms as limits keeps them (its own, else its grade's).
    async fn customer_terms(&self, customer_id: &str) -> Result<pb::PaymentTerms, ServiceError> {
        let Some(limits) = &self.limits else {
            return Err(ServiceError::invalid(
                "due",
                "give due_date or payment_terms: no limits service is reachable for the customer's terms",
            ));
        };
        let mut limits = limits.clone();
        let response = limits
            .get_credit_terms(pb::GetCreditTermsRequest {
                customer_id: customer_id.to_owned(),
            })
            .await
            .map_err(|status| match status.code() {
                tonic::Code::NotFound => ServiceError::invalid(
                    "due",
                    "limits has no terms for this customer: give due_date or payment_terms",
                ),
                _ => {
                    tracing::warn!(code = ?status.code(), "limits did not answer for credit terms");
                    ServiceError::unavailable(
                        "limits did not answer for the customer's terms",
                        status,
                    )
                }
            })?;
        response
            .into_inner()
            .terms
            .and_then(|terms| terms.payment_terms)
            .ok_or_else(|| {
                ServiceError::invalid(
                    "due",
                    "the customer has no payment terms: give due_date or payment_terms",
                )
            })
    }

    pub(crate) async fn post_credit_note_now(
        &self,
        principal: &Principal,
        request: pb::PostCreditNoteRequest,
    ) -> Result<pb::PostCreditNoteResponse, ServiceError> {
        let today = Utc::now().date_naive();
        let customer_id = customer_id(&request.customer_id);
        let invoice_id = required_id("invoice_id", &request.invoice_id);
        let number = document_number("credit_note_number", &request.credit_note_number);
        let amount = positive_money("amount", request.amount.as_ref());
        let issue_date = past_date("issue_date", request.issue_date.as_ref(), today);
        let reason = required_text("reason", &request.reason);
        let (((customer_id, invoice_id), (number, amount)), (issue_date, reason)) = both(
            both(both(customer_id, invoice_id), both(number, amount)),
            both(issue_date, reason),
        )?;
        let fingerprint = fingerprint(&request);
        let credit_note_id = format!("crn_{}", uuid::Uuid::now_v7().simple());
        let posted_by = principal.name.clone();
        // Four eyes: beyond the poster's authority or the threshold, the credit note waits.
        let alone = self.may_post_credit_alone(principal, amount);
        let plan = |account: &Account| -> Result<Changes, ServiceError> {
            let stored = open_invoice(account, &invoice_id)?;
            let note = NewCreditNote {
                credit_note_id: credit_note_id.clone(),
                number: number.clone(),
                amount,
                issue_date,
                reason: reason.clone(),
                dispute_id: String::new(),
                posted_by: posted_by.clone(),
                fingerprint: fingerprint.clone(),
            };
            // Checked as if it were posted now, so a request that could never be approved as
            // it stands (another currency, more than is open) is refused at once.
            let posting = credit_note_changes(stored, &note)?;
            if alone {
                return Ok(posting);
            }
            Ok(Changes {
                document_id: credit_note_id.clone(),
                credit_note_request: Some(waiting_credit_note(
                    &customer_id,
                    &invoice_id,
                    &note,
                    principal,
                )),
                fingerprint: fingerprint.clone(),
                ..Changes::default()
            })
        };
        let outcome = self
            .store
            .commit(
                &customer_id,
                &NaturalKey::CreditNote(number.clone()),
                &fingerprint,
                &AccountScope::Invoices(vec![invoice_id.clone()]),
                &plan,
            )
            .await
            .map_err(ServiceError::from)?;
        let replayed = outcome.is_replay();
        let note = self.credit_note_view(&outcome.into_inner()).await?;
        let invoice = self.stored_invoice(&note.invoice_id).await?;
        Ok(pb::PostCreditNoteResponse {
            credit_note: Some(note),
            invoice: Some(convert::invoice(&invoice, today, &self.classification)),
            replayed,
        })
    }

    pub(crate) async fn record_payment_now(
        &self,
        principal: &Principal,
        request: pb::RecordPaymentRequest,
    ) -> Result<pb::RecordPaymentResponse, ServiceError> {
        let today = Utc::now().date_naive();
        let customer_id = customer_id(&request.customer_id);
        let amount = positive_money("amount", request.amount.as_ref());
        let value_date = past_date("value_date", request.value_date.as_ref(), today);
        let reference = document_number("reference", &request.reference);
        let instructions = allocation_instructions(&request.allocations);
        let ((customer_id, amount), ((value_date, reference), instructions)) = both(
            both(customer_id, amount),
            both(both(value_date, reference), instructions),
        )?;
        let fingerprint = fingerprint(&request);
        let payment_id = format!("pay_{}", uuid::Uuid::now_v7().simple());
        let recorded_by = principal.name.clone();
        let plan = |account: &Account| -> Result<Changes, ServiceError> {
            let customer = domain_id(CustomerId::parse(&customer_id))?;
            let items: Vec<OpenItem> = account
                .open_invoices
                .iter()
                .map(|stored| {
                    let open = open_now(&stored.history);
                    OpenItem {
                        disputed_amount: stored.disputed_amount,
                        discount: discount_on(stored, open, value_date),
                        ..open_item(&stored.history.invoice, open)
                    }
                })
                .collect();
            let application = allocate_payment(
                &Funds {
                    customer_id: customer,
                    currency: amount.currency(),
                    amount: amount.amount(),
                },
                &instructions,
                &items,
            )
            .map_err(|errors| allocation_refusal(&errors))?;
            // Each allocation, and the early-payment discount it earned beside it: the
            // discount closes the invoice in the ledger, dated like the payment.
            let movements: Vec<NewMovement> = application
                .allocations
                .iter()
                .flat_map(|allocation| {
                    let paid = NewMovement {
                        invoice_id: allocation.invoice_id.to_string(),
                        kind: MovementKind::Payment,
                        amount: allocation.amount,
                        date: value_date,
                        document_id: payment_id.clone(),
                    };
                    let discount = (allocation.discount > Decimal::ZERO).then(|| NewMovement {
                        kind: MovementKind::Discount,
                        amount: allocation.discount,
                        ..paid.clone()
                    });
                    std::iter::once(paid).chain(discount)
                })
                .collect();
            let mut closed = Vec::new();
            for stored in &account.open_invoices {
                let invoice_id = stored.history.invoice.invoice_id.as_str();
                let own: Vec<NewMovement> = movements
                    .iter()
                    .filter(|movement| movement.invoice_id == invoice_id)
                    .cloned()
                    .collect();
                if !own.is_empty() {
                    closed.extend(closure_after(&stored.history, &own, invoice_id));
                }
            }
            let event = pb::Event {
                aggregate_id: payment_id.clone(),
                customer_id: customer_id.clone(),
                actor: convert::actor(&recorded_by),
                ..new_event(
                    COLLECTIONS,
                    Payload::PaymentReceived(pb::PaymentReceived {
                        payment_id: payment_id.clone(),
                        customer_id: customer_id.clone(),
                        amount: money(amount.amount(), amount.currency()),
                        value_date: Some(to_date(value_date)),
                        reference: reference.clone(),
                        allocations: application
                            .allocations
                            .iter()
                            .map(|allocation| pb::PaymentAllocationApplied {
                                invoice_id: allocation.invoice_id.to_string(),
                                amount: money(allocation.amount, amount.currency()),
                                invoice_open_amount: money(
                                    allocation.open_amount_after,
                                    amount.currency(),
                                ),
                                discount: (allocation.discount > Decimal::ZERO)
                                    .then(|| money(allocation.discount, amount.currency()))
                                    .flatten(),
                            })
                            .collect(),
                        unapplied_amount: money(application.unapplied, amount.currency()),
                    }),
                )
            };
            Ok(Changes {
                document_id: payment_id.clone(),
                payment: Some(PaymentRecord {
                    payment_id: payment_id.clone(),
                    customer_id: customer_id.clone(),
                    reference: reference.clone(),
                    currency: amount.currency(),
                    amount: amount.amount(),
                    value_date,
                    unapplied_at_recording: application.unapplied,
                    unapplied: application.unapplied,
                    recorded_at: Utc::now(),
                    recorded_by: recorded_by.clone(),
                }),
                movements,
                closed,
                events: vec![event],
                fingerprint: fingerprint.clone(),
                ..Changes::default()
            })
        };
        // Explicit allocations read the invoices they name; an automatic one walks the open
        // invoices oldest due first only as far as the payment reaches.
        let scope = if instructions.is_empty() {
            AccountScope::OldestOpen {
                currency: amount.currency(),
                amount: amount.amount(),
            }
        } else {
            // Each invoice once, even when named twice (the plan refuses that request, but
            // must see each invoice once to say so).
            AccountScope::Invoices(
                instructions
                    .iter()
                    .map(|instruction| instruction.invoice_id.to_string())
                    .collect::<std::collections::BTreeSet<String>>()
                    .into_iter()
                    .collect(),
            )
        };
        let outcome = self
            .store
            .commit(
                &customer_id,
                &NaturalKey::Payment(reference.clone()),
                &fingerprint,
                &scope,
                &plan,
            )
            .await
            .map_err(ServiceError::from)?;
        let replayed = outcome.is_replay();
        let payment_id = outcome.into_inner();
        if !replayed && self.payment_may_move_overdue(&customer_id, today).await? {
            // A payment may end the customer's overdue: announce it now rather than at the
            // next scheduled run.
            if let Err(error) = self
                .detect_overdue_for(today, Some(std::slice::from_ref(&customer_id)))
                .await
            {
                tracing::warn!(%customer_id, %error, "overdue detection after a payment failed; the scheduled run will catch up");
            }
        }
        self.payment_response(&payment_id, replayed, today).await
    }

    /// Whether a detection for the customer after a payment could change anything: its
    /// oldest overdue days moved away from what was announced, or it has an open promise the
    /// payment may keep. Answered from the running balances and two keyed reads, because the
    /// detection itself reads every open invoice of the customer (the InvoiceOverdue event
    /// lists them) and would make every payment cost as much as the customer's history.
    async fn payment_may_move_overdue(
        &self,
        customer_id: &str,
        today: NaiveDate,
    ) -> Result<bool, ServiceError> {
        let balances = self
            .store
            .balances(customer_id)
            .await
            .map_err(ServiceError::from)?;
        // Every due date with a row has an open invoice; the earliest is the oldest.
        let oldest_overdue_days = balances
            .due_dates
            .keys()
            .map(|(_, due_date)| crate::domain::days_past_due(*due_date, today))
            .max()
            .unwrap_or(0);
        let announced = self
            .store
            .overdue_position(customer_id)
            .await
            .map_err(ServiceError::from)?;
        if oldest_overdue_days != announced {
            return Ok(true);
        }
        let promises = self
            .cases
            .open_promises(Some(customer_id))
            .await
            .map_err(ServiceError::from)?;
        Ok(!promises.is_empty())
    }

    async fn payment_response(
        &self,
        payment_id: &str,
        replayed: bool,
        today: NaiveDate,
    ) -> Result<pb::RecordPaymentResponse, ServiceError> {
        let record = self
            .store
            .payment(payment_id)
            .await
            .map_err(ServiceError::from)?
            .ok_or_else(|| ServiceError::internal("a payment just written is missing"))?;
        let allocations = self
            .store
            .payment_allocations(payment_id)
            .await
            .map_err(ServiceError::from)?;
        let mut described = Vec::new();
        let mut invoices: Vec<StoredInvoice> = Vec::new();
        // The payment's own movements are its allocations; a discount it earned stands beside
        // the allocation to the same invoice.
        let discount_on = |invoice_id: &str| -> Decimal {
            allocations
                .iter()
                .filter(|movement| {
                    movement.kind == MovementKind::Discount && movement.invoice_id == invoice_id
                })
                .map(|movement| movement.amount)
                .sum()
        };
        for movement in allocations
            .iter()
            .filter(|movement| movement.kind == MovementKind::Payment)
        {
            let stored = self.stored_invoice(&movement.invoice_id).await?;
            // The open amount right after this payment: the amount less every movement
            // recorded up to and including this payment's (its discount included).
            let mut open = stored.history.invoice.amount;
            let mut reached = false;
            for (earlier, document) in stored
                .history
                .movements
                .iter()
                .zip(&stored.movement_documents)
            {
                if reached && document != payment_id {
                    break;
                }
                open -= earlier.amount;
                reached |= document == payment_id;
            }
            described.push(convert::DescribedAllocation {
                movement: movement.clone(),
                invoice_number: stored.history.invoice.invoice_number.clone(),
                open_after: open.max(Decimal::ZERO),
                discount: discount_on(&movement.invoice_id),
            });
            invoices.push(stored);
        }
        Ok(pb::RecordPaymentResponse {
            payment: Some(convert::payment(&record, &described)),
            invoices: invoices
                .iter()
                .map(|stored| convert::invoice(stored, today, &self.classification))
                .collect(),
            replayed,
        })
    }

    pub(crate) async fn stored_invoice(
        &self,
        invoice_id: &str,
    ) -> Result<StoredInvoice, ServiceError> {
        self.store
            .invoice(invoice_id)
            .await
            .map_err(ServiceError::from)?
            .ok_or_else(|| ServiceError::not_found("invoice", invoice_id))
    }
}

pub(super) fn customer_id(value: &str) -> Result<String, ServiceError> {
    required_id("customer_id", value)
}

fn document_number(field: &str, value: &str) -> Result<String, ServiceError> {
    credit_core::required_text(field, value, MAX_NUMBER_LEN)
}

pub(super) fn required_text(field: &str, value: &str) -> Result<String, ServiceError> {
    credit_core::required_text(field, value, MAX_REASON_LEN)
}

/// Allocation problems: all of them as field violations, or the first stable reason when one
/// is about the account's state rather than the request's shape.
fn allocation_refusal(errors: &[crate::domain::AllocationError]) -> ServiceError {
    if let Some((error, reason)) = errors
        .iter()
        .find_map(|error| error.reason().map(|reason| (error, reason)))
    {
        return ServiceError::FailedPrecondition {
            reason,
            message: error.to_string(),
            metadata: vec![("field", error.field().to_owned())],
        };
    }
    ServiceError::InvalidArgument(
        errors
            .iter()
            .map(crate::domain::AllocationError::to_field_violation)
            .collect(),
    )
}

pub(super) fn currency_mismatch(field: &str, expected: Currency) -> ServiceError {
    ServiceError::FailedPrecondition {
        reason: "CURRENCY_MISMATCH",
        message: format!(
            "{field} must be in the invoice's currency {}",
            expected.code()
        ),
        metadata: vec![("currency", expected.code().to_owned())],
    }
}

pub(super) fn open_invoice<'a>(
    account: &'a Account,
    invoice_id: &str,
) -> Result<&'a StoredInvoice, ServiceError> {
    account
        .open_invoices
        .iter()
        .find(|stored| stored.history.invoice.invoice_id.as_str() == invoice_id)
        .ok_or_else(|| ServiceError::FailedPrecondition {
            reason: "INVOICE_NOT_OPEN",
            message: format!("invoice {invoice_id} is not an open invoice of this customer"),
            metadata: Vec::new(),
        })
}

/// Open amount after every movement recorded, whatever its date.
pub(super) fn open_now(history: &InvoiceHistory) -> Decimal {
    let reduced: Decimal = history
        .movements
        .iter()
        .map(|movement| movement.amount)
        .sum();
    (history.invoice.amount - reduced).max(Decimal::ZERO)
}

fn open_item(invoice: &Invoice, open_amount: Decimal) -> OpenItem {
    OpenItem {
        invoice_id: invoice.invoice_id.clone(),
        customer_id: invoice.customer_id.clone(),
        invoice_number: invoice.invoice_number.clone(),
        currency: invoice.currency,
        issue_date: invoice.issue_date,
        due_date: invoice.due_date,
        open_amount,
        disputed_amount: Decimal::ZERO,
        discount: Decimal::ZERO,
    }
}

/// The early-payment discount a payment received on `value_date` may take on `stored`, by
/// the terms the invoice was posted with.
fn discount_on(stored: &StoredInvoice, open_amount: Decimal, value_date: NaiveDate) -> Decimal {
    let Some(terms) = stored.record.terms.as_ref() else {
        return Decimal::ZERO;
    };
    let percent = terms
        .discount_percent
        .parse::<Decimal>()
        .unwrap_or(Decimal::ZERO);
    let invoice = &stored.history.invoice;
    early_payment_discount(
        invoice.amount,
        open_amount,
        invoice.issue_date,
        percent,
        terms.discount_days,
        value_date,
    )
}

fn movement_of(movement: &NewMovement) -> Movement {
    Movement {
        kind: movement.kind,
        amount: movement.amount,
        date: movement.date,
    }
}

fn closure_date(closure: crate::domain::Closure) -> NaiveDate {
    match closure {
        crate::domain::Closure::Settled(date) | crate::domain::Closure::WrittenOff(date) => date,
    }
}

/// The closing date of an invoice once `added` movements are recorded, when they close it.
fn closure_after(
    history: &InvoiceHistory,
    added: &[NewMovement],
    invoice_id: &str,
) -> Vec<(String, NaiveDate)> {
    let mut after = history.clone();
    after.movements.extend(added.iter().map(movement_of));
    after
        .closure()
        .map(|closure| vec![(invoice_id.to_owned(), closure_date(closure))])
        .unwrap_or_default()
}

pub(super) fn domain_id<T>(parsed: Result<T, crate::domain::IdError>) -> Result<T, ServiceError> {
    parsed.map_err(|error| {
        ServiceError::internal(format!("an id checked before is refused: {error}"))
    })
}

/// A credit note to post against an invoice (PostCreditNote, or a dispute resolved VALID).
pub(super) struct NewCreditNote {
    pub credit_note_id: String,
    pub number: String,
    pub amount: Money,
    pub issue_date: NaiveDate,
    pub reason: String,
    /// The dispute it resolves; '' when none.
    pub dispute_id: String,
    pub posted_by: String,
    pub fingerprint: String,
}

/// What posting `note` against the open invoice `stored` writes: the credit note, its
/// movement, the invoice's closure when it closes it, and CreditNotePosted.
pub(super) fn credit_note_changes(
    stored: &StoredInvoice,
    note: &NewCreditNote,
) -> Result<Changes, ServiceError> {
    let invoice = &stored.history.invoice;
    let invoice_id = invoice.invoice_id.to_string();
    let customer_id = invoice.customer_id.to_string();
    let amount = note.amount;
    if invoice.currency != amount.currency() {
        return Err(currency_mismatch("amount", invoice.currency));
    }
    let open = open_now(&stored.history);
    if amount.amount() > open {
        return Err(ServiceError::FailedPrecondition {
            reason: "AMOUNT_EXCEEDS_OPEN_AMOUNT",
            message: format!(
                "the credit note exceeds the invoice's open amount {}",
                Money::new(open, invoice.currency)
            ),
            metadata: vec![("open_amount", open.to_string())],
        });
    }
    let movement = NewMovement {
        invoice_id: invoice_id.clone(),
        kind: MovementKind::CreditNote,
        amount: amount.amount(),
        date: note.issue_date,
        document_id: note.credit_note_id.clone(),
    };
    let closed = closure_after(
        &stored.history,
        std::slice::from_ref(&movement),
        &invoice_id,
    );
    let open_after = open - amount.amount();
    let event = pb::Event {
        aggregate_id: note.credit_note_id.clone(),
        customer_id: customer_id.clone(),
        actor: convert::actor(&note.posted_by),
        ..new_event(
            COLLECTIONS,
            Payload::CreditNotePosted(pb::CreditNotePosted {
                credit_note_id: note.credit_note_id.clone(),
                customer_id: customer_id.clone(),
                invoice_id: invoice_id.clone(),
                amount: money(amount.amount(), invoice.currency),
                invoice_open_amount: money(open_after, invoice.currency),
            }),
        )
    };
    Ok(Changes {
        document_id: note.credit_note_id.clone(),
        credit_note: Some(CreditNoteRecord {
            credit_note_id: note.credit_note_id.clone(),
            customer_id,
            credit_note_number: note.number.clone(),
            invoice_id,
            currency: invoice.currency,
            amount: amount.amount(),
            issue_date: note.issue_date,
            reason: note.reason.clone(),
            dispute_id: note.dispute_id.clone(),
            posted_at: Utc::now(),
            posted_by: note.posted_by.clone(),
        }),
        movements: vec![movement],
        closed,
        events: vec![event],
        fingerprint: note.fingerprint.clone(),
        ..Changes::default()
    })
}
