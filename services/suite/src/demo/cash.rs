//! The story's cash: invoices posted, a part paid, an invoice going overdue and blocking new
//! credit, dunning, and the rest paid to unblock it.

use std::io::Write;
use std::time::Instant;

use credit_proto::v1 as pb;
use rust_decimal::Decimal;
use tonic::Code;

use super::{
    DEMO_CURRENCY, DemoError, DunningOutcome, EVENT_DEADLINE, OVERDUE_DAYS, Order, OrderOutcome,
    Position, Story, decision_name, optional, share, show, shown_date,
};

impl<W: Write> Story<'_, W> {
    pub(super) async fn post_invoice(
        &mut self,
        customer_id: &str,
        number: &str,
        amount: Decimal,
        hold_id: &str,
        issued: pb::Date,
        due: pb::Date,
    ) -> Result<pb::Invoice, DemoError> {
        let result = self
            .billing
            .post_invoice(pb::PostInvoiceRequest {
                customer_id: customer_id.into(),
                invoice_number: number.into(),
                order_id: String::new(),
                hold_id: hold_id.into(),
                amount: self.money(amount),
                issue_date: Some(issued),
                due: Some(pb::post_invoice_request::Due::DueDate(due)),
            })
            .await;
        self.failed("PostInvoice", result)?
            .invoice
            .ok_or_else(|| self.unexpected("PostInvoice answered no invoice"))
    }

    pub(super) async fn invoice_and_pay_partly(
        &mut self,
        customer_id: &str,
        approved: &Order,
        referred: &Order,
    ) -> Result<Decimal, DemoError> {
        self.begin("invoice");
        let mut invoices = Vec::new();
        for (number, order) in [(1, approved), (2, referred)] {
            let invoice_number = format!("INV-{}-{number}", self.run_id);
            let invoice = self
                .post_invoice(
                    customer_id,
                    &invoice_number,
                    order.outcome.amount,
                    &order.hold_id,
                    self.date(0),
                    self.date_ahead(30),
                )
                .await?;
            let text = format!(
                "{} ({}) for {}, capturing hold {}, due {}",
                invoice.invoice_number,
                invoice.invoice_id,
                show(invoice.amount.as_ref()),
                order.hold_id,
                shown_date(invoice.due_date.as_ref()),
            );
            if number == 1 {
                self.line(&text)?;
            } else {
                self.detail(&text)?;
            }
            invoices.push(invoice);
        }
        let invoiced = approved.outcome.amount + referred.outcome.amount;
        let position = self
            .wait_for_position(customer_id, Decimal::ZERO, invoiced)
            .await?;
        self.detail(&format!(
            "holds became receivables: exposure {} = holds {} + receivables {}",
            position.exposure, position.holds, position.receivables
        ))?;

        self.begin("partial payment");
        let first = invoices
            .first()
            .cloned()
            .ok_or_else(|| self.unexpected("no invoice to pay"))?;
        let paid = self.amount_of("invoice amount", first.amount.as_ref())? * Decimal::new(2, 0)
            / Decimal::new(3, 0);
        let paid = paid.round_dp(2);
        let result = self
            .billing
            .record_payment(pb::RecordPaymentRequest {
                customer_id: customer_id.into(),
                amount: self.money(paid),
                value_date: Some(self.date(0)),
                reference: format!("BANK-{}-1", self.run_id),
                allocations: vec![pb::AllocationInstruction {
                    invoice_id: first.invoice_id.clone(),
                    amount: self.money(paid),
                }],
            })
            .await;
        let payment = self.failed("RecordPayment", result)?;
        let open = payment
            .invoices
            .iter()
            .find(|invoice| invoice.invoice_id == first.invoice_id)
            .map(|invoice| show(invoice.open_amount.as_ref()))
            .unwrap_or_else(|| "unknown".into());
        let position = self
            .wait_for_position(customer_id, Decimal::ZERO, invoiced - paid)
            .await?;
        self.line(&format!(
            "{paid:.2} {DEMO_CURRENCY} on {}: open amount {open}; exposure {}, available {}",
            first.invoice_number,
            position.exposure,
            optional(position.available)
        ))?;
        Ok(position.receivables)
    }

    pub(super) async fn go_overdue(
        &mut self,
        customer_id: &str,
        limit: Decimal,
        receivables_before: Decimal,
    ) -> Result<(i32, OrderOutcome), DemoError> {
        self.begin("overdue invoice");
        let amount = share(limit, 10);
        let invoice_number = format!("INV-{}-0", self.run_id);
        let issued = self.date(OVERDUE_DAYS + 30);
        let due = self.date(OVERDUE_DAYS);
        let invoice = self
            .post_invoice(customer_id, &invoice_number, amount, "", issued, due)
            .await?;
        let position = self
            .wait_for_position(customer_id, Decimal::ZERO, receivables_before + amount)
            .await?;
        self.line(&format!(
            "{} ({}) for {:.2} {DEMO_CURRENCY}, an earlier delivery billed late: issued {}, due {} ({OVERDUE_DAYS} days ago)",
            invoice.invoice_number,
            invoice.invoice_id,
            amount,
            shown_date(invoice.issue_date.as_ref()),
            shown_date(invoice.due_date.as_ref()),
        ))?;
        self.detail(&format!(
            "no hold to capture, so receivables grow: exposure {}, available {}",
            position.exposure,
            optional(position.available)
        ))?;

        self.begin("overdue detection");
        let result = self
            .collector
            .detect_overdue(pb::DetectOverdueRequest {
                as_of_date: None,
                customer_ids: vec![customer_id.into()],
            })
            .await;
        let detected = self.failed("DetectOverdue", result)?;
        let change = detected
            .changed
            .iter()
            .find(|change| change.customer_id == customer_id)
            .cloned()
            .ok_or_else(|| self.unexpected("DetectOverdue announced no change for the customer"))?;
        let overdue: Vec<String> = change
            .overdue_amounts
            .iter()
            .map(|money| show(Some(money)))
            .collect();
        self.line(&format!(
            "oldest overdue {} days (was {}), overdue {}; announced as InvoiceOverdue",
            change.oldest_overdue_days,
            change.previous_oldest_overdue_days,
            overdue.join(", ")
        ))?;

        self.begin("blocked");
        let probe = share(limit, 2);
        self.wait_for_check(
            customer_id,
            probe,
            "limits to block the customer",
            |_, codes| codes.iter().any(|code| code == "OVERDUE"),
        )
        .await?;
        let position = self.position(customer_id).await?;
        self.line(&format!(
            "credit blocks: {} (oldest overdue {} days)",
            position.blocks.join(", "),
            position.oldest_overdue_days
        ))?;
        self.begin("order while blocked");
        let (answer, blocked) = self.authorize(customer_id, 4, probe).await?;
        if blocked.decision != pb::AuthorizationDecision::Referred {
            return Err(self.unexpected(format!(
                "expected REFERRED, got {} {:?}",
                decision_name(blocked.decision),
                blocked.reasons
            )));
        }
        // More than 30 days overdue: step 7.2, where the general manager refuses new credit.
        self.walk_referral_chain(
            customer_id,
            &answer.referral_id,
            "no new credit while invoices are overdue",
        )
        .await?;
        Ok((change.oldest_overdue_days, blocked))
    }

    pub(super) async fn dun(&mut self, customer_id: &str) -> Result<DunningOutcome, DemoError> {
        self.begin("dunning");
        let request_id = self.key("dunning");
        let attempt = self
            .collector
            .run_dunning(pb::RunDunningRequest {
                request_id,
                as_of_date: None,
                customer_ids: vec![customer_id.into()],
                dry_run: false,
            })
            .await;
        match attempt {
            Ok(response) => {
                let ran = response.into_inner();
                let levels: Vec<String> = ran
                    .actions
                    .iter()
                    .map(|action| {
                        let channel = pb::ContactChannel::try_from(action.channel)
                            .map(|channel| {
                                channel.as_str_name().trim_start_matches("CONTACT_CHANNEL_")
                            })
                            .unwrap_or("UNKNOWN");
                        format!(
                            "level {} by {channel} for {} ({} days past due, {})",
                            action.level,
                            action.invoice_number,
                            action.days_past_due,
                            show(action.amount.as_ref())
                        )
                    })
                    .collect();
                self.line(&format!("{} dunning actions created", ran.actions.len()))?;
                for action in levels {
                    self.detail(&action)?;
                }
                Ok(DunningOutcome::Ran {
                    actions: ran.actions.len(),
                })
            }
            Err(status) if status.code() == Code::Unimplemented => {
                self.line("dunning: not available in this version")?;
                Ok(DunningOutcome::NotAvailable)
            }
            Err(status) => Err(self.call_error("RunDunning", &status)),
        }
    }

    pub(super) async fn pay_the_rest(
        &mut self,
        customer_id: &str,
        limit: Decimal,
    ) -> Result<(OrderOutcome, Position, Decimal), DemoError> {
        self.begin("payment of the rest");
        // What collections says is owed (limits learns of it a moment later).
        let result = self
            .collector
            .get_customer_ledger(pb::GetCustomerLedgerRequest {
                customer_id: customer_id.into(),
                ..Default::default()
            })
            .await;
        let ledger = self.failed("GetCustomerLedger", result)?;
        let balance = ledger
            .balances
            .iter()
            .find(|balance| {
                balance
                    .open_receivables
                    .as_ref()
                    .is_some_and(|money| money.currency == DEMO_CURRENCY)
            })
            .ok_or_else(|| self.unexpected("the ledger has no balance in the demo's currency"))?;
        let rest = self.amount_of("open_receivables", balance.open_receivables.as_ref())?;
        let result = self
            .billing
            .record_payment(pb::RecordPaymentRequest {
                customer_id: customer_id.into(),
                amount: self.money(rest),
                value_date: Some(self.date(0)),
                reference: format!("BANK-{}-2", self.run_id),
                allocations: Vec::new(),
            })
            .await;
        let payment = self.failed("RecordPayment", result)?;
        let settled: Vec<String> = payment
            .invoices
            .iter()
            .map(|invoice| {
                format!(
                    "{} {}",
                    invoice.invoice_number,
                    pb::InvoiceStatus::try_from(invoice.status)
                        .map(|status| status.as_str_name().trim_start_matches("INVOICE_STATUS_"))
                        .unwrap_or("UNKNOWN")
                )
            })
            .collect();
        self.line(&format!(
            "{rest:.2} {DEMO_CURRENCY}, oldest due first: {}",
            settled.join(", ")
        ))?;
        let probe = share(limit, 2);
        self.wait_for_check(
            customer_id,
            probe,
            "limits to clear the block",
            |decision, codes| decision == pb::AuthorizationDecision::Approved && codes.is_empty(),
        )
        .await?;
        // Referrals nobody in the cast could decide are released by the system now that the
        // payment cleared their cause; they hold credit like any order.
        let released_by_system = self.settled_referrals(customer_id).await?;
        let position = self
            .wait_for_position(customer_id, released_by_system, Decimal::ZERO)
            .await?;
        self.detail(&format!(
            "unblocked: no credit blocks, oldest overdue {} days, exposure {}",
            position.oldest_overdue_days, position.exposure
        ))?;

        self.begin("order after payment");
        let (_, final_order) = self.authorize(customer_id, 5, probe).await?;
        if final_order.decision != pb::AuthorizationDecision::Approved {
            return Err(self.unexpected(format!(
                "expected APPROVED, got {} {:?}",
                decision_name(final_order.decision),
                final_order.reasons
            )));
        }
        let position = self.position(customer_id).await?;
        self.detail(&format!(
            "exposure {} = open holds {} + open receivables {}; available {}; grade in limits {}",
            position.exposure,
            position.holds,
            position.receivables,
            optional(position.available),
            if position.grade.is_empty() {
                "none"
            } else {
                position.grade.as_str()
            },
        ))?;
        Ok((final_order, position, released_by_system))
    }

    /// Waits until none of the customer's referrals is open any more: the ones people left
    /// waiting are released by the system once the payment has cleared their cause. Prints
    /// those and returns what they hold.
    async fn settled_referrals(&mut self, customer_id: &str) -> Result<Decimal, DemoError> {
        let deadline = Instant::now() + EVENT_DEADLINE;
        loop {
            let result = self
                .checker
                .list_referrals(pb::ListReferralsRequest {
                    customer_id: customer_id.to_owned(),
                    ..Default::default()
                })
                .await;
            let referrals = self.failed("ListReferrals", result)?.referrals;
            let open = referrals
                .iter()
                .filter(|referral| referral.status() == pb::ReferralStatus::Open)
                .count();
            if open == 0 {
                let mut held = Decimal::ZERO;
                for referral in referrals.iter().filter(|referral| {
                    referral
                        .decided_by
                        .as_ref()
                        .is_some_and(|actor| actor.principal == "system:limits")
                }) {
                    let amount = self.amount_of("amount", referral.amount.as_ref())?;
                    held += amount;
                    self.detail(&format!(
                        "{} ({} {DEMO_CURRENCY}) released by the system: {}",
                        referral.referral_id, amount, referral.decision_reason
                    ))?;
                }
                return Ok(held);
            }
            self.pause(
                deadline,
                "the open referrals to be decided or released",
                || format!("{open} open"),
            )
            .await?;
        }
    }
}
