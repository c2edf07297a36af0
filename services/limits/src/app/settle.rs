//! Settling holds: Capture, Release, and the expiry of holds whose lifetime ran out.

use chrono::{DateTime, Utc};
use credit_core::{Currency, Money, ServiceError};
use credit_proto::v1 as pb;

use crate::api::convert::to_timestamp;
use crate::ledger::{Hold, HoldStatus, LedgerError};
use credit_proto::service_names::LIMITS;
use credit_proto::v1::event::Payload;
use credit_runtime::events::new_event;

use super::{HotPath, from_minor, ledger_error, to_minor};

/// HoldCaptured or HoldReleased for a hold being closed.
pub(crate) fn hold_event(closed: &Hold) -> Option<pb::Event> {
    let currency = Currency::parse(&closed.currency).ok()?;
    let money = |minor: i64| Some(from_minor(minor, currency).into());
    let payload = match closed.status {
        HoldStatus::Open => return None,
        HoldStatus::Captured => Payload::HoldCaptured(pb::HoldCaptured {
            hold_id: closed.id.clone(),
            customer_id: closed.customer_id.clone(),
            order_id: closed.order_id.clone(),
            invoice_id: closed.invoice_id.clone(),
            captured_amount: money(closed.captured_minor),
            released_amount: money(closed.released_minor),
        }),
        HoldStatus::Released | HoldStatus::Expired => Payload::HoldReleased(pb::HoldReleased {
            hold_id: closed.id.clone(),
            customer_id: closed.customer_id.clone(),
            order_id: closed.order_id.clone(),
            amount: money(closed.released_minor),
            cause: if closed.status == HoldStatus::Expired {
                pb::HoldReleaseCause::Expired
            } else {
                pb::HoldReleaseCause::Released
            } as i32,
            reason: closed.release_reason.clone(),
        }),
    };
    Some(pb::Event {
        aggregate_id: closed.id.clone(),
        customer_id: closed.customer_id.clone(),
        group_id: closed.group_id.clone().unwrap_or_default(),
        ..new_event(LIMITS, payload)
    })
}

pub fn hold_to_proto(hold: &Hold) -> pb::Hold {
    let currency = Currency::parse(&hold.currency).ok();
    let money = |minor: i64| currency.map(|currency| from_minor(minor, currency).into());
    pb::Hold {
        hold_id: hold.id.clone(),
        customer_id: hold.customer_id.clone(),
        group_id: hold.group_id.clone().unwrap_or_default(),
        order_id: hold.order_id.clone(),
        amount: money(hold.amount_minor),
        reserved_amount: money(hold.amount_minor),
        status: match hold.status {
            HoldStatus::Open => pb::HoldStatus::Open,
            HoldStatus::Captured => pb::HoldStatus::Captured,
            HoldStatus::Released => pb::HoldStatus::Released,
            HoldStatus::Expired => pb::HoldStatus::Expired,
        } as i32,
        captured_amount: money(hold.captured_minor),
        released_amount: money(hold.released_minor),
        invoice_id: hold.invoice_id.clone(),
        release_reason: hold.release_reason.clone(),
        decision_id: hold.decision_id.clone(),
        idempotency_key: hold.idempotency_key.clone(),
        created_at: Some(to_timestamp(hold.created_at)),
        expires_at: Some(to_timestamp(hold.expires_at)),
        closed_at: hold.closed_at.map(to_timestamp),
        created_by: Some(pb::Actor::from(&hold.created_by)),
        referral_id: hold.referral_id.clone(),
        ..Default::default()
    }
}

impl HotPath {
    /// One hold, NOT_FOUND when there is none.
    pub async fn hold(&self, hold_id: &str) -> Result<Hold, ServiceError> {
        self.open_hold(hold_id).await
    }

    async fn open_hold(&self, hold_id: &str) -> Result<Hold, ServiceError> {
        let hold_id = hold_id.trim();
        if hold_id.is_empty() {
            return Err(ServiceError::invalid("hold_id", "is required"));
        }
        self.ledger
            .hold(hold_id)
            .await
            .map_err(ledger_error)?
            .ok_or_else(|| ServiceError::not_found("hold", hold_id))
    }

    /// Closes `closed` in the ledger, then gives back `release_minor` in the cache. The
    /// ledger goes first: in between, exposure is overstated, never understated.
    async fn close(
        &self,
        closed: Hold,
        release_minor: i64,
    ) -> Result<Result<Hold, Hold>, ServiceError> {
        let event = hold_event(&closed);
        let fence = match self.ledger.close_hold(&closed, event.as_ref()).await {
            Ok(fence) => fence,
            Err(LedgerError::HoldNotOpen(current)) => return Ok(Err(*current)),
            Err(error) => return Err(ledger_error(error)),
        };
        if release_minor > 0 {
            // A cold profile has nothing to give back: its rebuild reads the closed hold.
            if let Err(error) = self
                .cache
                .release(
                    &closed.customer_id,
                    closed.group_id.as_deref(),
                    release_minor,
                    fence,
                )
                .await
            {
                tracing::warn!(error = %error, hold_id = %closed.id, "released in the ledger but not in the cache; exposure overstated until the next rebuild");
            }
        }
        Ok(Ok(closed))
    }

    pub async fn release(
        &self,
        request: &pb::ReleaseRequest,
    ) -> Result<pb::ReleaseResponse, ServiceError> {
        let hold = self.open_hold(&request.hold_id).await?;
        if hold.status == HoldStatus::Released || hold.status == HoldStatus::Expired {
            return Ok(pb::ReleaseResponse {
                hold: Some(hold_to_proto(&hold)),
            });
        }
        if hold.status == HoldStatus::Captured {
            return Err(ServiceError::failed_precondition(
                "HOLD_NOT_OPEN",
                "the hold was captured",
            ));
        }
        let released = Hold {
            status: HoldStatus::Released,
            released_minor: hold.amount_minor,
            release_reason: request.reason.trim().to_owned(),
            closed_at: Some(Utc::now()),
            ..hold.clone()
        };
        let closed = match self.close(released, hold.amount_minor).await? {
            Ok(closed) => closed,
            Err(current) if current.status == HoldStatus::Released => current,
            Err(_) => {
                return Err(ServiceError::failed_precondition(
                    "HOLD_NOT_OPEN",
                    "the hold was captured meanwhile",
                ));
            }
        };
        Ok(pb::ReleaseResponse {
            hold: Some(hold_to_proto(&closed)),
        })
    }

    pub async fn capture(
        &self,
        request: &pb::CaptureRequest,
    ) -> Result<pb::CaptureResponse, ServiceError> {
        let hold = self.open_hold(&request.hold_id).await?;
        let invoice_id = request.invoice_id.trim();
        if invoice_id.is_empty() || invoice_id.len() > 100 {
            return Err(ServiceError::invalid(
                "invoice_id",
                "is required, at most 100 characters",
            ));
        }
        let currency = Currency::parse(&hold.currency).map_err(ServiceError::internal)?;
        let amount = match request.amount.as_ref() {
            None => from_minor(hold.amount_minor, currency),
            Some(amount) => Money::try_from(amount)
                .and_then(Money::positive)
                .map_err(|error| ServiceError::invalid("amount", error.to_string()))?,
        };
        if hold.status == HoldStatus::Captured && hold.invoice_id == invoice_id {
            return Ok(pb::CaptureResponse {
                released_amount: Some(from_minor(hold.released_minor, currency).into()),
                hold: Some(hold_to_proto(&hold)),
            });
        }
        if hold.status == HoldStatus::Expired {
            return Err(ServiceError::failed_precondition(
                "HOLD_EXPIRED",
                "the hold expired; authorize the order again",
            ));
        }
        if hold.status != HoldStatus::Open {
            return Err(ServiceError::failed_precondition(
                "HOLD_NOT_OPEN",
                format!("the hold is {}", hold.status.as_str()),
            ));
        }
        if hold.expires_at <= Utc::now() {
            return Err(ServiceError::failed_precondition(
                "HOLD_EXPIRED",
                "the hold expired; authorize the order again",
            ));
        }
        if amount.currency() != currency {
            return Err(ServiceError::invalid(
                "amount",
                format!("must be in the hold's currency {currency}"),
            ));
        }
        let captured_minor = to_minor(&amount)?;
        if captured_minor > hold.amount_minor {
            return Err(ServiceError::failed_precondition(
                "CAPTURE_EXCEEDS_HOLD",
                format!(
                    "the hold is for {}",
                    from_minor(hold.amount_minor, currency)
                ),
            ));
        }
        let released_minor = hold.amount_minor - captured_minor;
        let captured = Hold {
            status: HoldStatus::Captured,
            captured_minor,
            released_minor,
            invoice_id: invoice_id.to_owned(),
            closed_at: Some(Utc::now()),
            ..hold.clone()
        };
        let closed = match self.close(captured, released_minor).await? {
            Ok(closed) => closed,
            Err(current)
                if current.status == HoldStatus::Captured && current.invoice_id == invoice_id =>
            {
                current
            }
            Err(current) if current.status == HoldStatus::Expired => {
                return Err(ServiceError::failed_precondition(
                    "HOLD_EXPIRED",
                    "the hold expired; authorize the order again",
                ));
            }
            Err(current) => {
                return Err(ServiceError::failed_precondition(
                    "HOLD_NOT_OPEN",
                    format!("the hold is {}", current.status.as_str()),
                ));
            }
        };
        Ok(pb::CaptureResponse {
            released_amount: Some(from_minor(closed.released_minor, currency).into()),
            hold: Some(hold_to_proto(&closed)),
        })
    }

    /// Expires every open hold whose TTL has passed at `now`: EXPIRED in the ledger (with
    /// HoldReleased), then the amount given back in the cache. Returns the holds it expired.
    pub async fn expire_holds(&self, now: DateTime<Utc>) -> Result<Vec<Hold>, ServiceError> {
        const BATCH: i64 = 200;
        let mut expired = Vec::new();
        loop {
            let due = self
                .ledger
                .expired_holds(now, BATCH)
                .await
                .map_err(ledger_error)?;
            let full_batch = i64::try_from(due.len()).unwrap_or(i64::MAX) >= BATCH;
            let mut progress = false;
            for hold in due {
                if hold.expires_at > now {
                    continue;
                }
                let closed = Hold {
                    status: HoldStatus::Expired,
                    released_minor: hold.amount_minor,
                    release_reason: "expired".to_owned(),
                    closed_at: Some(hold.expires_at),
                    ..hold.clone()
                };
                // Err: captured or released meanwhile, nothing to expire.
                if let Ok(closed) = self.close(closed, hold.amount_minor).await? {
                    progress = true;
                    expired.push(closed);
                }
            }
            if !full_batch || !progress {
                return Ok(expired);
            }
        }
    }
}
