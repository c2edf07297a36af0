//! A customer's account as people read it: one invoice, the invoice list, the ledger with its
//! running balance, aging (one customer and the portfolio) and payment behaviour.

use std::collections::BTreeMap;

use chrono::{NaiveDate, Utc};
use credit_core::{Currency, Money, ServiceError};
use credit_proto::v1 as pb;
use credit_runtime::sql::Page;
use rust_decimal::Decimal;

use super::Collections;
use crate::api::convert::{
    self, aging_summary, as_of_date, money, required_id, to_date, too_large,
};
use crate::domain::{
    CustomerId, DueDateTotal, InvoiceHistory, age, payment_behaviour, summarize_due_dates,
};
use crate::store::{InvoiceFilter, LedgerDocument, OpenInvoiceKey};
use credit_core::both;

use super::receivables::{customer_id, domain_id};

impl Collections {
    pub(crate) async fn get_invoice_now(
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
            .map_err(ServiceError::from)?
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

    pub(crate) async fn list_invoices_now(
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
            .map_err(ServiceError::from)?;
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

    pub(crate) async fn customer_ledger(
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
        let documents = self
            .store
            .ledger(&customer_id)
            .await
            .map_err(ServiceError::from)?;
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
            .map_err(ServiceError::from)?;
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

    pub(crate) async fn aging(
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
            .map_err(ServiceError::from)?
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
            .map_err(ServiceError::from)?;
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
            .map_err(ServiceError::from)?;
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

    pub(crate) async fn payment_behaviour_now(
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
            .map_err(ServiceError::from)?;
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
            // A payment's discounts share its document: the invoice tells them apart.
            entry_id: if self.entry_type == pb::LedgerEntryType::Discount {
                format!(
                    "{}:{}:{}",
                    self.entry_type.as_str_name(),
                    self.document_id,
                    self.invoice_id
                )
            } else {
                format!("{}:{}", self.entry_type.as_str_name(), self.document_id)
            },
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
        LedgerDocument::Discount(discount) => LedgerLine {
            entry_type: pb::LedgerEntryType::Discount,
            posting_date: discount.value_date,
            document_id: discount.payment_id.clone(),
            document_number: discount.reference.clone(),
            invoice_id: discount.invoice_id.clone(),
            currency: discount.currency,
            debit: Decimal::ZERO,
            credit: discount.amount,
            description: format!(
                "early-payment discount on invoice {}, paid within the discount window by payment {}",
                discount.invoice_id, discount.reference
            ),
            recorded_at: discount.recorded_at,
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
