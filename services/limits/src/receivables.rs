//! Collections' receivable events in the exposure ledger: an invoice adds receivable exposure
//! (capturing the order's hold when it names one), a payment's allocations, a credit note or
//! a write-off lower it. Each event is recorded once, by event id, in the same transaction as
//! its movement; the cached exposure then moves by the net change, fenced by the epochs the
//! ledger wrote under, so a rebuild in between never counts a movement twice.
//!
//! # Currencies
//! A customer's exposure is kept in one currency (its limit's, else the suite's base
//! currency); every amount is converted into it with the FX table on entry. An amount no rate
//! converts yet is neither dropped nor added in the wrong currency, and it holds back neither
//! this customer's later events nor anyone else's: it is kept in `unconverted_receivables`
//! and the customer gets an FX_RATE_MISSING credit block, so its orders are referred, not
//! decided on exposure that leaves the amount out. [`ReceivablesProjection::convert_waiting`]
//! (run by the background sweep and right after SetFxRate) converts what a rate now covers
//! and lifts the block once nothing waits. An invoice that waits does not capture its hold:
//! the hold keeps counting until it expires, which overstates exposure, never understates it.

use std::collections::BTreeSet;

use async_trait::async_trait;
use chrono::Utc;
use credit_core::{Currency, Money, ServiceError};
use credit_proto::v1 as pb;
use credit_proto::v1::Event;
use credit_proto::v1::event::Payload;
use credit_runtime::events::{EventError, EventHandler};

use crate::app::{HotPath, credit_block_event, hold_event, ledger_error, system_actor, to_minor};
use crate::domain::limits::{CreditBlock, Scope};
use crate::exposure::{Adjustment, Fence};
use crate::ledger::{Hold, HoldStatus, ReceivableChange, Unconverted};

/// The consumer group (and processed-events key) of the receivables projection; apart from
/// the customer projection's, so each reads the stream at its own pace.
pub const CONSUMER: &str = "limits-receivables";

/// The processed-events key under which an event's waiting amounts are recorded (apart from
/// its converted movement, recorded under [`CONSUMER`]).
const WAITING: &str = "limits-receivables-waiting";

/// The processed-events key of conversions of waiting amounts.
const CONVERSION: &str = "limits-fx-conversion";

/// Waiting amounts converted per pass; the rest waits for the next pass.
const CONVERSION_BATCH: i64 = 500;

/// An amount in the customer's exposure currency, or why it is not (yet).
enum Converted {
    /// Minor units of the exposure currency (0 for nothing to count).
    Minor(i64),
    /// No rate converts `amount` into `into` yet.
    NoRate { amount: Money, into: Currency },
}

#[derive(Debug, Clone)]
pub struct ReceivablesProjection {
    hot: HotPath,
}

impl ReceivablesProjection {
    pub fn new(hot: HotPath) -> Self {
        Self { hot }
    }

    /// `money` (when positive) in minor units of the currency the customer's exposure is
    /// kept in.
    async fn in_exposure_currency(
        &self,
        customer_id: &str,
        money: Option<&pb::Money>,
    ) -> Result<Converted, ServiceError> {
        let Some(money) = money else {
            return Ok(Converted::Minor(0));
        };
        let amount = Money::try_from(money)
            .map_err(|error| ServiceError::invalid("amount", error.to_string()))?;
        if amount.is_negative() || amount.amount().is_zero() {
            return Ok(Converted::Minor(0));
        }
        let into = self
            .hot
            .exposure_currency(&Scope::Customer(customer_id.to_owned()))
            .await?;
        if into == amount.currency() {
            return to_minor(&amount).map(Converted::Minor);
        }
        match self.hot.convert(amount, into).await {
            Ok((converted, _)) => to_minor(&converted).map(Converted::Minor),
            Err(ServiceError::FailedPrecondition {
                reason: "FX_RATE_MISSING",
                ..
            }) => Ok(Converted::NoRate { amount, into }),
            Err(error) => Err(error),
        }
    }

    /// Keeps amounts no rate converts yet (signed: + raises exposure) and blocks the
    /// customer's credit until they are converted. The block is set first: redelivered after
    /// a crash in between, the event finds it set and records the amounts.
    async fn wait_for_rate(
        &self,
        event: &Event,
        customer_id: &str,
        waiting: Vec<(String, Money)>,
        into: Currency,
    ) -> Result<(), ServiceError> {
        let described: Vec<String> = waiting
            .iter()
            .map(|(source, amount)| {
                format!(
                    "{} {} ({source})",
                    amount.amount_string(),
                    amount.currency()
                )
            })
            .collect();
        let reason = format!(
            "{} not in exposure yet: no rate converts it into {into}; set one with SetFxRate",
            described.join(", ")
        );
        tracing::warn!(customer_id = %customer_id, waiting = %described.join(", "), exposure_currency = %into, "receivable waits for an FX rate; the customer's credit is blocked until it is converted");
        let system = system_actor();
        let block = CreditBlock {
            customer_id: customer_id.to_owned(),
            block_type: CreditBlock::FX_RATE_MISSING.to_owned(),
            reason: reason.clone(),
            set_at: Utc::now(),
            set_by: system.clone(),
            source_event_id: event.event_id.clone(),
        };
        let block_event = credit_block_event(
            &system,
            customer_id,
            pb::CreditBlockType::FxRateMissing,
            true,
            &reason,
        );
        self.hot
            .limits()
            .set_block(&block, &block_event)
            .await
            .map_err(ServiceError::from)?;
        let rows: Vec<Unconverted> = waiting
            .into_iter()
            .map(|(source, amount)| Unconverted {
                source,
                event_id: event.event_id.clone(),
                customer_id: customer_id.to_owned(),
                currency: amount.currency().code().to_owned(),
                amount: amount.amount_string(),
                recorded_at: Utc::now(),
            })
            .collect();
        self.hot
            .ledger()
            .record_unconverted(WAITING, &event.event_id, &rows)
            .await
            .map_err(ledger_error)?;
        // The cached profile carries the block.
        self.hot
            .invalidate(&Scope::Customer(customer_id.to_owned()))
            .await;
        Ok(())
    }

    /// Converts the waiting amounts a rate now covers into exposure and lifts the
    /// FX_RATE_MISSING block of every customer with nothing left waiting. Returns how many
    /// amounts it converted.
    pub async fn convert_waiting(&self) -> Result<usize, ServiceError> {
        let waiting = self
            .hot
            .ledger()
            .unconverted(CONVERSION_BATCH)
            .await
            .map_err(ledger_error)?;
        let mut converted = 0;
        let mut customers = BTreeSet::new();
        for row in waiting {
            customers.insert(row.customer_id.clone());
            let amount =
                Money::parse(&row.amount, &row.currency).map_err(ServiceError::internal)?;
            let magnitude = Money::new(amount.amount().abs(), amount.currency());
            let into = self
                .hot
                .exposure_currency(&Scope::Customer(row.customer_id.clone()))
                .await?;
            let in_exposure = if into == magnitude.currency() {
                magnitude
            } else {
                match self.hot.convert(magnitude, into).await {
                    Ok((converted, _)) => converted,
                    Err(ServiceError::FailedPrecondition {
                        reason: "FX_RATE_MISSING",
                        ..
                    }) => continue,
                    Err(error) => return Err(error),
                }
            };
            let minor = to_minor(&in_exposure)?;
            let group_id = self.group_of(&row.customer_id).await?;
            let change = ReceivableChange {
                customer_id: &row.customer_id,
                group_id: group_id.as_deref(),
                amount_minor: if amount.is_negative() { -minor } else { minor },
                source: row.source.clone(),
                captured: None,
                at: Utc::now(),
            };
            // Keyed by the amount's source: a pass that dies before forgetting the row
            // finds the movement recorded the next time and only forgets it.
            let key = format!("{}#{}", row.event_id, row.source);
            self.record(CONVERSION, &key, &change).await?;
            self.hot
                .ledger()
                .forget_unconverted(&row.source)
                .await
                .map_err(ledger_error)?;
            converted += 1;
        }
        for customer_id in customers {
            if self
                .hot
                .ledger()
                .has_unconverted(&customer_id)
                .await
                .map_err(ledger_error)?
            {
                continue;
            }
            let system = system_actor();
            let reason = "every waiting amount is converted into exposure";
            let event = credit_block_event(
                &system,
                &customer_id,
                pb::CreditBlockType::FxRateMissing,
                false,
                reason,
            );
            self.hot
                .limits()
                .clear_block(&customer_id, CreditBlock::FX_RATE_MISSING, &event)
                .await
                .map_err(ServiceError::from)?;
            self.hot
                .invalidate(&Scope::Customer(customer_id.clone()))
                .await;
        }
        if converted > 0 {
            tracing::info!(
                converted,
                "receivables that waited for an FX rate are in exposure"
            );
        }
        Ok(converted)
    }

    async fn group_of(&self, customer_id: &str) -> Result<Option<String>, ServiceError> {
        Ok(self
            .hot
            .limits()
            .customer(customer_id)
            .await
            .map_err(ServiceError::from)?
            .and_then(|facts| facts.group_id))
    }

    async fn invoice_posted(
        &self,
        event: &Event,
        invoice: &pb::InvoicePosted,
    ) -> Result<(), ServiceError> {
        let customer_id = invoice.customer_id.as_str();
        let open_minor = match self
            .in_exposure_currency(customer_id, invoice.open_amount.as_ref())
            .await?
        {
            Converted::Minor(minor) => minor,
            Converted::NoRate { amount, into } => {
                let source = format!("invoice:{}", invoice.invoice_id);
                return self
                    .wait_for_rate(event, customer_id, vec![(source, amount)], into)
                    .await;
            }
        };
        let hold = match invoice.hold_id.trim() {
            "" => None,
            hold_id => self
                .hot
                .ledger()
                .hold(hold_id)
                .await
                .map_err(ledger_error)?,
        };
        let hold = hold.filter(|hold| hold.customer_id == customer_id);
        if let Some(hold) = &hold
            && hold.status == HoldStatus::Captured
            && hold.invoice_id == invoice.invoice_id
        {
            // Order entry captured it with this invoice already (Capture): counted then.
            return Ok(());
        }
        let now = Utc::now();
        let captured = hold
            .filter(|hold| hold.status == HoldStatus::Open)
            .map(|hold| {
                let captured_minor = hold.amount_minor.min(open_minor);
                Hold {
                    status: HoldStatus::Captured,
                    captured_minor,
                    released_minor: hold.amount_minor - captured_minor,
                    invoice_id: invoice.invoice_id.clone(),
                    closed_at: Some(now),
                    ..hold
                }
            });
        let group_id = match &captured {
            Some(hold) => hold.group_id.clone(),
            None => self.group_of(customer_id).await?,
        };
        let captured_event = captured.as_ref().and_then(hold_event);
        let change = ReceivableChange {
            customer_id,
            group_id: group_id.as_deref(),
            amount_minor: open_minor,
            source: format!("invoice:{}", invoice.invoice_id),
            captured: captured.as_ref().zip(captured_event.as_ref()),
            at: now,
        };
        self.record(CONSUMER, &event.event_id, &change).await
    }

    /// A payment, credit note or write-off: lowers receivables by `minor`.
    async fn lowered(
        &self,
        event: &Event,
        customer_id: &str,
        minor: i64,
        source: String,
    ) -> Result<(), ServiceError> {
        if minor == 0 {
            return Ok(());
        }
        let group_id = self.group_of(customer_id).await?;
        let change = ReceivableChange {
            customer_id,
            group_id: group_id.as_deref(),
            amount_minor: -minor,
            source,
            captured: None,
            at: Utc::now(),
        };
        self.record(CONSUMER, &event.event_id, &change).await
    }

    /// Writes the movement once (per `consumer` and `key`) and moves the cached exposure by
    /// the net change.
    async fn record(
        &self,
        consumer: &str,
        key: &str,
        change: &ReceivableChange<'_>,
    ) -> Result<(), ServiceError> {
        let Some(recorded) = self
            .hot
            .ledger()
            .record_receivable(consumer, key, change)
            .await
            .map_err(ledger_error)?
        else {
            // Delivered again: the ledger has the movement, but whether the cache got it too
            // is unknown (the process that recorded it may have died in between). Evict the
            // entries so the next decision rebuilds them from the ledger, which is exact.
            self.evict(change).await;
            return Ok(());
        };
        let net = change.amount_minor - recorded.hold_released_minor;
        self.move_cached(change, net, recorded.fence).await;
        Ok(())
    }

    async fn move_cached(&self, change: &ReceivableChange<'_>, net: i64, fence: Fence) {
        let cache = self.hot.cache();
        let moved = match net {
            0 => return,
            raise if raise > 0 => {
                cache
                    .add(change.customer_id, change.group_id, raise, fence)
                    .await
            }
            lower => {
                cache
                    .release(change.customer_id, change.group_id, -lower, fence)
                    .await
            }
        };
        match moved {
            Ok(Adjustment::Applied { .. } | Adjustment::Cold { .. }) => {}
            // The ledger has the movement but the cache could not take it: rebuild from the
            // ledger rather than leave exposure wrong (understated, for an invoice).
            Err(error) => {
                tracing::warn!(error = %error, customer_id = %change.customer_id, "receivable movement not applied to the cache; evicting it for a rebuild");
                self.evict(change).await;
            }
        }
    }

    /// Drops the cached entries `change` moves, to be rebuilt from the ledger.
    async fn evict(&self, change: &ReceivableChange<'_>) {
        self.hot
            .invalidate(&Scope::Customer(change.customer_id.to_owned()))
            .await;
        if let Some(group_id) = change.group_id {
            self.hot
                .invalidate(&Scope::Group(group_id.to_owned()))
                .await;
        }
    }

    /// A payment, credit note or write-off: its amounts (the payment's allocations), each
    /// converted into exposure or kept waiting for a rate, lower the customer's receivables.
    async fn lowered_by(
        &self,
        event: &Event,
        customer_id: &str,
        source: String,
        amounts: &[Option<&pb::Money>],
    ) -> Result<(), ServiceError> {
        let mut minor = 0_i64;
        let mut waiting: Vec<(String, Money)> = Vec::new();
        let mut waiting_into = None;
        for amount in amounts {
            match self.in_exposure_currency(customer_id, *amount).await? {
                Converted::Minor(converted) => {
                    minor = minor.checked_add(converted).ok_or_else(|| {
                        ServiceError::invalid("amount", "the amounts add up beyond the bound")
                    })?;
                }
                Converted::NoRate { amount, into } => {
                    waiting_into = Some(into);
                    // One waiting row per currency: a payment's allocations add up.
                    let lowering = Money::new(-amount.amount(), amount.currency());
                    match waiting
                        .iter_mut()
                        .find(|(_, kept)| kept.currency() == amount.currency())
                    {
                        Some((_, kept)) => {
                            *kept = kept.checked_add(lowering).map_err(|error| {
                                ServiceError::invalid("amount", error.to_string())
                            })?;
                        }
                        None => waiting.push((format!("{source}:{}", amount.currency()), lowering)),
                    }
                }
            }
        }
        if let Some(into) = waiting_into {
            self.wait_for_rate(event, customer_id, waiting, into)
                .await?;
        }
        self.lowered(event, customer_id, minor, source).await
    }

    async fn apply(&self, event: &Event) -> Result<(), ServiceError> {
        match &event.payload {
            Some(Payload::InvoicePosted(invoice)) => self.invoice_posted(event, invoice).await,
            Some(Payload::PaymentReceived(payment)) => {
                // What was paid, and the early-payment discounts that closed the rest.
                let amounts: Vec<_> = payment
                    .allocations
                    .iter()
                    .flat_map(|allocation| {
                        std::iter::once(allocation.amount.as_ref())
                            .chain(allocation.discount.as_ref().map(Some))
                    })
                    .collect();
                let source = format!("payment:{}", payment.payment_id);
                self.lowered_by(event, &payment.customer_id, source, &amounts)
                    .await?;
                // The payment may have cleared what referred the customer's orders. Best
                // effort: the payment is applied whatever the re-examination finds, and never
                // waits for it (the next event examines them again).
                self.hot
                    .referrals_may_have_cleared(&payment.customer_id, "a payment arrived");
                Ok(())
            }
            Some(Payload::CreditNotePosted(note)) => {
                let source = format!("credit_note:{}", note.credit_note_id);
                self.lowered_by(event, &note.customer_id, source, &[note.amount.as_ref()])
                    .await
            }
            Some(Payload::ReceivableWrittenOff(write_off)) => {
                let source = format!("write_off:{}", write_off.write_off_id);
                self.lowered_by(
                    event,
                    &write_off.customer_id,
                    source,
                    &[write_off.amount.as_ref()],
                )
                .await
            }
            _ => Ok(()),
        }
    }
}

#[async_trait]
impl EventHandler for ReceivablesProjection {
    fn consumer(&self) -> &'static str {
        CONSUMER
    }

    fn producers(&self) -> &'static [&'static str] {
        &[credit_proto::service_names::COLLECTIONS]
    }

    fn handles(&self, event_type: &str) -> bool {
        matches!(
            event_type,
            "InvoicePosted" | "PaymentReceived" | "CreditNotePosted" | "ReceivableWrittenOff"
        )
    }

    async fn handle(&self, event: &Event) -> Result<(), EventError> {
        self.apply(event).await.map_err(EventError::from)
    }
}
