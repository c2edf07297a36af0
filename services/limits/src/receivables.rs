//! Collections' receivable events in the exposure ledger: an invoice adds receivable exposure
//! (capturing the order's hold when it names one), a payment's allocations, a credit note or
//! a write-off lower it. Each event is recorded once, by event id, in the same transaction as
//! its movement; the cached exposure then moves by the net change, fenced by the epochs the
//! ledger wrote under, so a rebuild in between never counts a movement twice.
//!
//! Amounts are converted into the currency of the customer's limit with the FX table. An
//! event whose currency has no rate yet fails and is delivered again later: the ledger never
//! holds an amount in the wrong currency (set the rate, and the consumer catches up).

use async_trait::async_trait;
use chrono::Utc;
use credit_core::{Money, ServiceError};
use credit_proto::v1 as pb;
use credit_proto::v1::Event;
use credit_proto::v1::event::Payload;
use credit_runtime::events::{EventError, EventHandler};

use crate::domain::limits::Scope;
use crate::exposure::{Adjustment, Fence};
use crate::hot_path::{HotPath, hold_event, ledger_error, store_error, to_minor};
use crate::ledger::{Hold, HoldStatus, ReceivableChange};

/// The consumer group (and processed-events key) of the receivables projection; apart from
/// the customer projection's, so each reads the stream at its own pace.
pub const CONSUMER: &str = "limits-receivables";

#[derive(Debug, Clone)]
pub struct ReceivablesProjection {
    hot: HotPath,
}

impl ReceivablesProjection {
    pub fn new(hot: HotPath) -> Self {
        Self { hot }
    }

    /// `money` in minor units of the currency the customer's exposure is kept in.
    async fn in_limit_currency(
        &self,
        customer_id: &str,
        money: Option<&pb::Money>,
    ) -> Result<i64, ServiceError> {
        let Some(money) = money else {
            return Ok(0);
        };
        let amount = Money::try_from(money)
            .map_err(|error| ServiceError::invalid("amount", error.to_string()))?;
        if amount.is_negative() || amount.amount().is_zero() {
            return Ok(0);
        }
        let (_, currency) = self
            .hot
            .cached_limit(&Scope::Customer(customer_id.to_owned()))
            .await?;
        let amount = match currency {
            Some(currency) if currency != amount.currency() => {
                self.hot.convert(amount, currency).await?.0
            }
            _ => amount,
        };
        to_minor(&amount)
    }

    async fn group_of(&self, customer_id: &str) -> Result<Option<String>, ServiceError> {
        Ok(self
            .hot
            .limits()
            .customer(customer_id)
            .await
            .map_err(store_error)?
            .and_then(|facts| facts.group_id))
    }

    async fn invoice_posted(
        &self,
        event: &Event,
        invoice: &pb::InvoicePosted,
    ) -> Result<(), ServiceError> {
        let customer_id = invoice.customer_id.as_str();
        let open_minor = self
            .in_limit_currency(customer_id, invoice.open_amount.as_ref())
            .await?;
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
        self.record(event, &change).await
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
        self.record(event, &change).await
    }

    /// Writes the movement once and moves the cached exposure by the net change.
    async fn record(
        &self,
        event: &Event,
        change: &ReceivableChange<'_>,
    ) -> Result<(), ServiceError> {
        let Some(recorded) = self
            .hot
            .ledger()
            .record_receivable(CONSUMER, &event.event_id, change)
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

    async fn apply(&self, event: &Event) -> Result<(), ServiceError> {
        match &event.payload {
            Some(Payload::InvoicePosted(invoice)) => self.invoice_posted(event, invoice).await,
            Some(Payload::PaymentReceived(payment)) => {
                let mut minor = 0_i64;
                for allocation in &payment.allocations {
                    minor = minor.saturating_add(
                        self.in_limit_currency(&payment.customer_id, allocation.amount.as_ref())
                            .await?,
                    );
                }
                let source = format!("payment:{}", payment.payment_id);
                self.lowered(event, &payment.customer_id, minor, source)
                    .await
            }
            Some(Payload::CreditNotePosted(note)) => {
                let minor = self
                    .in_limit_currency(&note.customer_id, note.amount.as_ref())
                    .await?;
                let source = format!("credit_note:{}", note.credit_note_id);
                self.lowered(event, &note.customer_id, minor, source).await
            }
            Some(Payload::ReceivableWrittenOff(write_off)) => {
                let minor = self
                    .in_limit_currency(&write_off.customer_id, write_off.amount.as_ref())
                    .await?;
                let source = format!("write_off:{}", write_off.write_off_id);
                self.lowered(event, &write_off.customer_id, minor, source)
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
