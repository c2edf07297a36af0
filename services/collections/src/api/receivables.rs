//! Receivables: invoices, credit notes and payments posted to a customer's account, the
//! ledger, aging and payment behaviour. Each write is planned by pure domain functions against
//! the account as the store reads it inside the write (see `store::Plan`).

use std::collections::BTreeMap;

use chrono::{NaiveDate, Utc};
use credit_core::{Currency, Money, Principal, ServiceError};
use credit_proto::service_names::COLLECTIONS;
use credit_proto::v1 as pb;
use credit_proto::v1::event::Payload;
use credit_runtime::events::new_event;
use credit_runtime::sql::{Page, fingerprint};
use rust_decimal::Decimal;

use super::convert::{
    self, aging_summary, as_of_date, money, optional_id, past_date, positive_money, required_id,
    to_date, too_large,
};
use super::{CollectionsApi, store_error};
use crate::domain::{
    AllocationInstruction, CustomerId, DueDateTotal, Funds, Invoice, InvoiceHistory, InvoiceId,
    Movement, MovementKind, OpenItem, age, allocate_payment, apply_unapplied_credit,
    payment_behaviour, summarize_due_dates,
};
use crate::store::{
    Account, AccountScope, Changes, CreditNoteRecord, InvoiceFilter, InvoiceRecord, LedgerDocument,
    NaturalKey, NewMovement, OpenInvoiceKey, PaymentRecord, StoredInvoice, Terms,
};
use credit_core::both;

const MAX_NUMBER_LEN: usize = 100;
const MAX_REASON_LEN: usize = 1_000;
/// Net days longer than this are a typing error, not terms.
const MAX_NET_DAYS: i32 = 3_650;

impl CollectionsApi {
    pub(super) async fn post_invoice_now(
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
            .map_err(store_error)?;
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
            if let Some(payment) = self.store.payment(document).await.map_err(store_error)?
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

    pub(super) async fn post_credit_note_now(
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
        let plan = |account: &Account| -> Result<Changes, ServiceError> {
            let stored = open_invoice(account, &invoice_id)?;
            credit_note_changes(
                stored,
                &NewCreditNote {
                    credit_note_id: credit_note_id.clone(),
                    number: number.clone(),
                    amount,
                    issue_date,
                    reason: reason.clone(),
                    dispute_id: String::new(),
                    posted_by: posted_by.clone(),
                    fingerprint: fingerprint.clone(),
                },
            )
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
            .map_err(store_error)?;
        let replayed = outcome.is_replay();
        let note = self
            .store
            .credit_note(&outcome.into_inner())
            .await
            .map_err(store_error)?
            .ok_or_else(|| ServiceError::internal("a credit note just written is missing"))?;
        let invoice = self.stored_invoice(&note.invoice_id).await?;
        Ok(pb::PostCreditNoteResponse {
            credit_note: Some(convert::credit_note(&note)),
            invoice: Some(convert::invoice(&invoice, today, &self.classification)),
            replayed,
        })
    }

    pub(super) async fn record_payment_now(
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
                .map(|stored| OpenItem {
                    disputed_amount: stored.disputed_amount,
                    ..open_item(&stored.history.invoice, open_now(&stored.history))
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
            let movements: Vec<NewMovement> = application
                .allocations
                .iter()
                .map(|allocation| NewMovement {
                    invoice_id: allocation.invoice_id.to_string(),
                    kind: MovementKind::Payment,
                    amount: allocation.amount,
                    date: value_date,
                    document_id: payment_id.clone(),
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
            .map_err(store_error)?;
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
            .map_err(store_error)?;
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
            .map_err(store_error)?;
        if oldest_overdue_days != announced {
            return Ok(true);
        }
        let promises = self
            .cases
            .open_promises(Some(customer_id))
            .await
            .map_err(store_error)?;
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
            .map_err(store_error)?
            .ok_or_else(|| ServiceError::internal("a payment just written is missing"))?;
        let allocations = self
            .store
            .payment_allocations(payment_id)
            .await
            .map_err(store_error)?;
        let mut described = Vec::new();
        let mut invoices: Vec<StoredInvoice> = Vec::new();
        for movement in allocations {
            let stored = self.stored_invoice(&movement.invoice_id).await?;
            // The open amount right after this payment: the amount less every movement
            // recorded up to and including this payment's.
            let mut open = stored.history.invoice.amount;
            for (earlier, document) in stored
                .history
                .movements
                .iter()
                .zip(&stored.movement_documents)
            {
                open -= earlier.amount;
                if document == payment_id {
                    break;
                }
            }
            described.push((
                movement,
                stored.history.invoice.invoice_number.clone(),
                open.max(Decimal::ZERO),
            ));
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

    pub(super) async fn get_invoice_now(
        &self,
        request: &pb::GetInvoiceRequest,
    ) -> Result<pb::Invoice, ServiceError> {
        let invoice_id = required_id("invoice_id", &request.invoice_id)?;
        let stored = self.stored_invoice(&invoice_id).await?;
        let mut invoice = convert::invoice(&stored, Utc::now().date_naive(), &self.classification);
        self.set_dunning_levels(std::slice::from_mut(&mut invoice))
            .await?;
        Ok(invoice)
    }

    /// Each invoice's highest dunning level reached (0 when never dunned).
    async fn set_dunning_levels(&self, invoices: &mut [pb::Invoice]) -> Result<(), ServiceError> {
        let customers: Vec<String> = invoices
            .iter()
            .map(|invoice| invoice.customer_id.clone())
            .collect::<std::collections::BTreeSet<_>>()
            .into_iter()
            .collect();
        if customers.is_empty() {
            return Ok(());
        }
        let mut highest: BTreeMap<String, u32> = BTreeMap::new();
        for taken in self
            .dunning()
            .taken_levels(Some(&customers))
            .await
            .map_err(store_error)?
        {
            let level = highest.entry(taken.invoice_id).or_default();
            *level = (*level).max(taken.level);
        }
        for invoice in invoices {
            invoice.dunning_level = highest
                .get(&invoice.invoice_id)
                .map_or(0, |level| i32::try_from(*level).unwrap_or(i32::MAX));
        }
        Ok(())
    }

    pub(super) async fn list_invoices_now(
        &self,
        request: &pb::ListInvoicesRequest,
    ) -> Result<pb::ListInvoicesResponse, ServiceError> {
        let today = Utc::now().date_naive();
        let customer_id = customer_id(&request.customer_id);
        let status = match pb::InvoiceStatus::try_from(request.status) {
            Ok(status) => Ok(status),
            Err(_) => Err(ServiceError::invalid(
                "status",
                format!("unknown value {}", request.status),
            )),
        };
        let page = Page::parse(request.page_size, &request.page_token);
        let ((customer_id, status), page) = both(both(customer_id, status), page)?;
        let filter = InvoiceFilter {
            open_only: status == pb::InvoiceStatus::Open || request.overdue_only,
            closed_only: matches!(
                status,
                pb::InvoiceStatus::Settled | pb::InvoiceStatus::WrittenOff
            ),
        };
        let stored = self
            .store
            .invoices(
                &customer_id,
                &filter,
                page.after.as_deref(),
                page.fetch_limit(),
            )
            .await
            .map_err(store_error)?;
        let mut keyed: Vec<(String, pb::Invoice)> = stored
            .iter()
            .map(|stored| {
                let invoice = &stored.history.invoice;
                (
                    format!("{}|{}", invoice.due_date, invoice.invoice_number),
                    convert::invoice(stored, today, &self.classification),
                )
            })
            .collect();
        let next_page_token = page.finish(&mut keyed, |(key, _)| key);
        let mut invoices: Vec<pb::Invoice> = keyed
            .into_iter()
            .map(|(_, invoice)| invoice)
            .filter(|invoice| {
                (status == pb::InvoiceStatus::Unspecified || invoice.status == status as i32)
                    && (!request.overdue_only || invoice.days_past_due > 0)
            })
            .collect();
        self.set_dunning_levels(&mut invoices).await?;
        Ok(pb::ListInvoicesResponse {
            invoices,
            next_page_token,
        })
    }

    pub(super) async fn customer_ledger(
        &self,
        request: &pb::GetCustomerLedgerRequest,
    ) -> Result<pb::GetCustomerLedgerResponse, ServiceError> {
        let customer_id = customer_id(&request.customer_id);
        let page = Page::parse(request.page_size, &request.page_token);
        let currency = match request.currency.trim() {
            "" => Ok(None),
            code => Currency::parse(code)
                .map(Some)
                .map_err(|error| ServiceError::invalid("currency", error.to_string())),
        };
        let period = match &request.period {
            None => Ok(None),
            Some(range) => {
                let start = range.start_date.as_ref().and_then(convert::from_date);
                let end = range.end_date.as_ref().and_then(convert::from_date);
                match (start, end) {
                    (Some(start), Some(end)) if start <= end => Ok(Some((start, end))),
                    _ => Err(ServiceError::invalid(
                        "period",
                        "needs a valid start_date on or before a valid end_date",
                    )),
                }
            }
        };
        let ((customer_id, page), (currency, period)) =
            both(both(customer_id, page), both(currency, period))?;
        let documents = self.store.ledger(&customer_id).await.map_err(store_error)?;
        let mut balances: BTreeMap<Currency, Decimal> = BTreeMap::new();
        let mut entries = Vec::new();
        for (index, document) in documents.iter().enumerate() {
            let entry = ledger_entry(document);
            let balance = balances.entry(entry.currency).or_insert(Decimal::ZERO);
            *balance = balance
                .checked_add(entry.debit)
                .and_then(|balance| balance.checked_sub(entry.credit))
                .ok_or_else(|| too_large("the ledger's running balance"))?;
            let in_currency = currency.is_none_or(|wanted| wanted == entry.currency);
            let in_period = period.is_none_or(|(start, end)| {
                start <= entry.posting_date && entry.posting_date <= end
            });
            if in_currency && in_period {
                entries.push((format!("{index:010}"), entry.into_proto(*balance)));
            }
        }
        let after = page.after.as_deref().unwrap_or("");
        let mut page_entries: Vec<(String, pb::LedgerEntry)> = entries
            .into_iter()
            .filter(|(key, _)| key.as_str() > after)
            .take(page.size + 1)
            .collect();
        let next_page_token = page.finish(&mut page_entries, |(key, _)| key);
        // The running balances, not a sum over every open invoice (issue #19).
        let stored = self
            .store
            .balances(&customer_id)
            .await
            .map_err(store_error)?;
        let mut balances = Vec::new();
        for (code, balance) in &stored.currencies {
            let shown = currency.is_none_or(|wanted| wanted == *code)
                && (balance.open_receivables > Decimal::ZERO
                    || balance.unapplied_credit > Decimal::ZERO);
            if !shown {
                continue;
            }
            let net = balance
                .open_receivables
                .checked_sub(balance.unapplied_credit)
                .ok_or_else(|| too_large("the balance"))?;
            balances.push(pb::CurrencyBalance {
                currency: code.code().to_owned(),
                open_receivables: money(balance.open_receivables, *code),
                unapplied_credit: money(balance.unapplied_credit, *code),
                balance: money(net, *code),
            });
        }
        Ok(pb::GetCustomerLedgerResponse {
            entries: page_entries.into_iter().map(|(_, entry)| entry).collect(),
            next_page_token,
            balances,
        })
    }

    pub(super) async fn aging(
        &self,
        request: &pb::GetAgingRequest,
    ) -> Result<pb::GetAgingResponse, ServiceError> {
        use pb::get_aging_request::Scope;
        let today = Utc::now().date_naive();
        let scope = match &request.scope {
            Some(Scope::CustomerId(customer)) => customer_id(customer).map(Some),
            Some(Scope::Portfolio(_)) => Ok(None),
            None => Err(ServiceError::invalid(
                "scope",
                "give customer_id or portfolio",
            )),
        };
        let as_of = as_of_date("as_of_date", request.as_of_date.as_ref(), today);
        let currency = match request.currency.trim() {
            "" => Ok(None),
            code => Currency::parse(code)
                .map(Some)
                .map_err(|error| ServiceError::invalid("currency", error.to_string())),
        };
        let page = Page::parse(request.page_size, &request.page_token);
        let ((scope, as_of), (currency, page)) = both(both(scope, as_of), both(currency, page))?;
        if let Some(customer_id) = &scope
            && as_of >= today
        {
            return self
                .customer_aging_now(customer_id, as_of, currency, &page)
                .await;
        }
        let histories: Vec<InvoiceHistory> = self
            .store
            .histories(scope.as_deref(), as_of, as_of)
            .await
            .map_err(store_error)?
            .into_iter()
            .filter(|history| currency.is_none_or(|wanted| wanted == history.invoice.currency))
            .collect();
        let aging = age(&histories, as_of).map_err(|_| too_large("an aging total"))?;
        let totals = aging
            .summaries
            .values()
            .map(aging_summary)
            .collect::<Result<_, _>>()?;
        let mut response = pb::GetAgingResponse {
            as_of_date: Some(to_date(as_of)),
            totals,
            ..Default::default()
        };
        let after = page.after.clone().unwrap_or_default();
        if scope.is_some() {
            let mut lines: Vec<(String, pb::AgedInvoice)> = aging
                .invoices
                .iter()
                .enumerate()
                .map(|(index, line)| (format!("{index:010}"), aged_invoice(line)))
                .filter(|(key, _)| *key > after)
                .take(page.size.saturating_add(1))
                .collect();
            response.next_page_token = page.finish(&mut lines, |(key, _)| key);
            response.invoices = lines.into_iter().map(|(_, line)| line).collect();
        } else {
            let by_customer = crate::domain::age_by_customer(&histories, as_of)
                .map_err(|_| too_large("an aging total"))?;
            let mut customers: Vec<(Decimal, String, pb::CustomerAging)> = Vec::new();
            for (customer, summaries) in &by_customer {
                let mut overdue = Decimal::ZERO;
                for summary in summaries.values() {
                    overdue = summary
                        .overdue_total()
                        .ok()
                        .and_then(|total| overdue.checked_add(total))
                        .ok_or_else(|| too_large("an aging total"))?;
                }
                customers.push((
                    overdue,
                    customer.to_string(),
                    pb::CustomerAging {
                        customer_id: customer.to_string(),
                        summaries: summaries
                            .values()
                            .map(aging_summary)
                            .collect::<Result<_, _>>()?,
                    },
                ));
            }
            // Largest overdue first, then customer id.
            customers
                .sort_by(|left, right| right.0.cmp(&left.0).then_with(|| left.1.cmp(&right.1)));
            let mut lines: Vec<(String, pb::CustomerAging)> = customers
                .into_iter()
                .enumerate()
                .map(|(index, (_, _, line))| (format!("{index:010}"), line))
                .filter(|(key, _)| *key > after)
                .take(page.size.saturating_add(1))
                .collect();
            response.next_page_token = page.finish(&mut lines, |(key, _)| key);
            response.customers = lines.into_iter().map(|(_, line)| line).collect();
        }
        Ok(response)
    }

    /// One customer's aging as of today (or later): totals from the running balances per due
    /// date and one keyset page of the open invoices, so the cost does not grow with the
    /// customer's open items (issue #19). An aging of a past date cannot use them (they hold
    /// no history) and ages the invoices instead.
    async fn customer_aging_now(
        &self,
        customer_id: &str,
        as_of: NaiveDate,
        currency: Option<Currency>,
        page: &Page,
    ) -> Result<pb::GetAgingResponse, ServiceError> {
        let balances = self
            .store
            .balances(customer_id)
            .await
            .map_err(store_error)?;
        let due_totals = balances
            .due_dates
            .iter()
            .filter(|((code, _), _)| currency.is_none_or(|wanted| wanted == *code))
            .map(|(&(code, due_date), due)| DueDateTotal {
                currency: code,
                due_date,
                open_amount: due.open_amount,
                open_invoices: due.open_invoices,
            });
        let totals = summarize_due_dates(due_totals, as_of)
            .map_err(|_| too_large("an aging total"))?
            .values()
            .map(aging_summary)
            .collect::<Result<_, _>>()?;
        let after = match page.after.as_deref() {
            None => None,
            Some(key) => Some(parse_aging_key(key)?),
        };
        let stored = self
            .store
            .open_invoice_page(customer_id, currency, after.as_ref(), page.fetch_limit())
            .await
            .map_err(store_error)?;
        let histories: Vec<InvoiceHistory> =
            stored.into_iter().map(|stored| stored.history).collect();
        let mut lines: Vec<(String, pb::AgedInvoice)> =
            crate::domain::aging::aged_invoices(&histories, as_of)
                .iter()
                .map(|line| {
                    (
                        format!(
                            "{}|{}|{}",
                            line.due_date, line.invoice_id, line.invoice_number
                        ),
                        aged_invoice(line),
                    )
                })
                .collect();
        let next_page_token = page.finish(&mut lines, |(key, _)| key);
        Ok(pb::GetAgingResponse {
            as_of_date: Some(to_date(as_of)),
            totals,
            invoices: lines.into_iter().map(|(_, line)| line).collect(),
            next_page_token,
            ..Default::default()
        })
    }

    pub(super) async fn payment_behaviour_now(
        &self,
        request: &pb::GetPaymentBehaviourRequest,
    ) -> Result<pb::PaymentBehaviour, ServiceError> {
        let today = Utc::now().date_naive();
        let (customer_id, as_of) = both(
            customer_id(&request.customer_id),
            as_of_date("as_of_date", request.as_of_date.as_ref(), today),
        )?;
        let (window_start, _) = crate::domain::behaviour::twelve_month_window(as_of);
        let histories = self
            .store
            .histories(Some(&customer_id), as_of, window_start)
            .await
            .map_err(store_error)?;
        let customer = domain_id(CustomerId::parse(&customer_id))?;
        let behaviour = payment_behaviour(&customer, &histories, &[], as_of).ok_or_else(|| {
            ServiceError::NotFound {
                resource: "payment history of customer",
                id: customer_id.clone(),
            }
        })?;
        Ok(pb::PaymentBehaviour {
            customer_id,
            window: Some(pb::DateRange {
                start_date: Some(to_date(behaviour.window_start)),
                end_date: Some(to_date(behaviour.window_end)),
            }),
            max_days_overdue_12m: i32::try_from(behaviour.max_days_overdue_12m).unwrap_or(i32::MAX),
            on_time_payment_ratio: behaviour
                .on_time_payment_ratio
                .map(|ratio| ratio.to_string()),
            average_days_to_pay: behaviour.average_days_to_pay.map(|days| days.to_string()),
            broken_promises_12m: i32::try_from(behaviour.broken_promises_12m).unwrap_or(i32::MAX),
            kept_promises_12m: i32::try_from(behaviour.kept_promises_12m).unwrap_or(i32::MAX),
            invoices_settled_12m: i32::try_from(behaviour.invoices_settled_12m).unwrap_or(i32::MAX),
        })
    }

    pub(super) async fn stored_invoice(
        &self,
        invoice_id: &str,
    ) -> Result<StoredInvoice, ServiceError> {
        self.store
            .invoice(invoice_id)
            .await
            .map_err(store_error)?
            .ok_or_else(|| ServiceError::not_found("invoice", invoice_id))
    }
}

/// One line of the ledger before its running balance is known.
struct LedgerLine {
    entry_type: pb::LedgerEntryType,
    posting_date: NaiveDate,
    document_id: String,
    document_number: String,
    invoice_id: String,
    currency: Currency,
    debit: Decimal,
    credit: Decimal,
    description: String,
    recorded_at: chrono::DateTime<Utc>,
}

impl LedgerLine {
    fn into_proto(self, balance: Decimal) -> pb::LedgerEntry {
        pb::LedgerEntry {
            entry_id: format!("{}:{}", self.entry_type.as_str_name(), self.document_id),
            entry_type: self.entry_type.into(),
            posting_date: Some(to_date(self.posting_date)),
            document_id: self.document_id,
            document_number: self.document_number,
            invoice_id: self.invoice_id,
            debit: money(self.debit, self.currency),
            credit: money(self.credit, self.currency),
            balance: money(balance, self.currency),
            description: self.description,
            recorded_at: Some(convert::timestamp(self.recorded_at)),
        }
    }
}

fn ledger_entry(document: &LedgerDocument) -> LedgerLine {
    match document {
        LedgerDocument::Invoice(record) => LedgerLine {
            entry_type: pb::LedgerEntryType::Invoice,
            posting_date: record.invoice.issue_date,
            document_id: record.invoice.invoice_id.to_string(),
            document_number: record.invoice.invoice_number.clone(),
            invoice_id: record.invoice.invoice_id.to_string(),
            currency: record.invoice.currency,
            debit: record.invoice.amount,
            credit: Decimal::ZERO,
            description: format!(
                "invoice {}, due {}",
                record.invoice.invoice_number, record.invoice.due_date
            ),
            recorded_at: record.posted_at,
        },
        LedgerDocument::CreditNote(note) => LedgerLine {
            entry_type: pb::LedgerEntryType::CreditNote,
            posting_date: note.issue_date,
            document_id: note.credit_note_id.clone(),
            document_number: note.credit_note_number.clone(),
            invoice_id: note.invoice_id.clone(),
            currency: note.currency,
            debit: Decimal::ZERO,
            credit: note.amount,
            description: format!("credit note: {}", note.reason),
            recorded_at: note.posted_at,
        },
        LedgerDocument::Payment(payment) => LedgerLine {
            entry_type: pb::LedgerEntryType::Payment,
            posting_date: payment.value_date,
            document_id: payment.payment_id.clone(),
            document_number: payment.reference.clone(),
            invoice_id: String::new(),
            currency: payment.currency,
            debit: Decimal::ZERO,
            credit: payment.amount,
            description: format!("payment {}", payment.reference),
            recorded_at: payment.recorded_at,
        },
        LedgerDocument::WriteOff(write_off) => LedgerLine {
            entry_type: pb::LedgerEntryType::WriteOff,
            posting_date: write_off.decision_date.unwrap_or_default(),
            document_id: write_off.write_off_id.clone(),
            document_number: write_off.write_off_id.clone(),
            invoice_id: write_off.invoice_id.clone(),
            currency: write_off.currency,
            debit: Decimal::ZERO,
            credit: write_off.amount,
            description: format!("write-off: {}", write_off.reason),
            recorded_at: write_off.decided_at.unwrap_or(write_off.requested_at),
        },
        // A memo: the amount is in the description, debit and credit stay zero.
        LedgerDocument::Recovery(recovery) => LedgerLine {
            entry_type: pb::LedgerEntryType::Recovery,
            posting_date: recovery.value_date,
            document_id: recovery.recovery_id.clone(),
            document_number: recovery.reference.clone(),
            invoice_id: recovery.invoice_id.clone(),
            currency: recovery.currency,
            debit: Decimal::ZERO,
            credit: Decimal::ZERO,
            description: format!(
                "recovery of {} on write-off {} (memo)",
                Money::new(recovery.amount, recovery.currency),
                recovery.write_off_id
            ),
            recorded_at: recovery.recorded_at,
        },
    }
}

fn aged_invoice(line: &crate::domain::aging::AgedInvoice) -> pb::AgedInvoice {
    pb::AgedInvoice {
        invoice_id: line.invoice_id.to_string(),
        invoice_number: line.invoice_number.clone(),
        due_date: Some(to_date(line.due_date)),
        days_past_due: i32::try_from(line.days_past_due).unwrap_or(i32::MAX),
        bucket: convert::bucket_to_proto(line.bucket).into(),
        open_amount: money(line.open_amount, line.currency),
    }
}

/// The key of the last line of an aging page: "<due date>|<invoice id>|<invoice number>" (the
/// number last, as it may itself contain '|').
fn parse_aging_key(key: &str) -> Result<OpenInvoiceKey, ServiceError> {
    let mut parts = key.splitn(3, '|');
    let due_date = parts.next().and_then(|due| due.parse::<NaiveDate>().ok());
    match (due_date, parts.next(), parts.next()) {
        (Some(due_date), Some(invoice_id), Some(invoice_number)) => Ok(OpenInvoiceKey {
            due_date,
            invoice_number: invoice_number.to_owned(),
            invoice_id: invoice_id.to_owned(),
        }),
        _ => Err(ServiceError::invalid(
            "page_token",
            "is not a token of this aging",
        )),
    }
}

fn customer_id(value: &str) -> Result<String, ServiceError> {
    required_id("customer_id", value)
}

fn document_number(field: &str, value: &str) -> Result<String, ServiceError> {
    credit_core::required_text(field, value, MAX_NUMBER_LEN)
}

pub(super) fn required_text(field: &str, value: &str) -> Result<String, ServiceError> {
    credit_core::required_text(field, value, MAX_REASON_LEN)
}

fn check_terms(field: &str, terms: &pb::PaymentTerms) -> Result<(), ServiceError> {
    if !(0..=MAX_NET_DAYS).contains(&terms.net_days) {
        return Err(ServiceError::invalid(
            format!("{field}.net_days"),
            format!("must be between 0 and {MAX_NET_DAYS}"),
        ));
    }
    Ok(())
}

fn allocation_instructions(
    wire: &[pb::AllocationInstruction],
) -> Result<Vec<AllocationInstruction>, ServiceError> {
    let mut violations = Vec::new();
    let mut instructions = Vec::new();
    for (index, allocation) in wire.iter().enumerate() {
        let invoice_id = InvoiceId::parse(allocation.invoice_id.trim()).map_err(|error| {
            ServiceError::invalid(
                format!("allocations[{index}].invoice_id"),
                error.to_string(),
            )
        });
        let amount = positive_money(
            &format!("allocations[{index}].amount"),
            allocation.amount.as_ref(),
        );
        match both(invoice_id, amount) {
            Ok((invoice_id, amount)) => instructions.push(AllocationInstruction {
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
    }
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

fn domain_id<T>(parsed: Result<T, crate::domain::IdError>) -> Result<T, ServiceError> {
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
