//! The referral queue: orders Authorize referred, listed for credit managers and released or
//! rejected by them.

use std::time::Duration;

use chrono::Utc;
use credit_core::{Currency, Principal, ServiceError};
use credit_proto::v1 as pb;

use crate::api::convert::to_timestamp;
use crate::domain::limits::{Actor, Scope};
use crate::exposure::{Adjustment, Fence};
use crate::ledger::{
    DecidedReferral, FencedHold, Hold, HoldStatus, LedgerError, Referral, ReferralStatus,
};
use credit_proto::service_names::LIMITS;
use credit_proto::v1::event::Payload;
use credit_runtime::events::new_event;
use credit_runtime::sql::{IdempotencyKey, Page};

use super::authorize::{position, wire_reasons};
use super::settle::hold_to_proto;
use super::{HotPath, from_minor, ledger_error, new_id};

fn decision_answer(
    stored: Result<DecidedReferral, LedgerError>,
) -> Result<pb::DecideReferralResponse, ServiceError> {
    match stored {
        Ok(stored) => Ok(decided_to_proto(stored)),
        Err(LedgerError::ReferralNotOpen(current)) => Err(ServiceError::FailedPrecondition {
            reason: "REFERRAL_NOT_OPEN",
            message: format!("the referral was {} before", current.status.as_str()),
            metadata: vec![("status", current.status.as_str().to_owned())],
        }),
        Err(LedgerError::KeyReused(_)) => Err(ServiceError::AlreadyExists {
            reason: "IDEMPOTENCY_KEY_REUSED",
            message: "request_id was used before with different content".to_owned(),
            metadata: Vec::new(),
        }),
        Err(error) => Err(ledger_error(error)),
    }
}

fn decided_to_proto(stored: DecidedReferral) -> pb::DecideReferralResponse {
    pb::DecideReferralResponse {
        referral: Some(referral_to_proto(&stored.referral)),
        hold: stored.hold.as_ref().map(hold_to_proto),
    }
}

fn referral_decided_event(decided: &Referral, key: &IdempotencyKey) -> pb::Event {
    let decider = decided
        .decided_by
        .clone()
        .unwrap_or_else(|| decided.created_by.clone());
    pb::Event {
        aggregate_id: decided.id.clone(),
        customer_id: decided.customer_id.clone(),
        group_id: decided.group_id.clone().unwrap_or_default(),
        actor: Some(pb::Actor::from(&decider)),
        request_id: key.request_id.clone(),
        ..new_event(
            LIMITS,
            Payload::ReferralDecided(pb::ReferralDecided {
                referral_id: decided.id.clone(),
                customer_id: decided.customer_id.clone(),
                order_id: decided.order_id.clone(),
                outcome: match decided.status {
                    ReferralStatus::Released => pb::ReferralOutcome::Release,
                    _ => pb::ReferralOutcome::Reject,
                } as i32,
                hold_id: decided.hold_id.clone(),
                decided_by: decider.name.clone(),
                reason: decided.decision_reason.clone(),
            }),
        )
    }
}

pub fn referral_to_proto(referral: &Referral) -> pb::Referral {
    let currency = Currency::parse(&referral.currency).ok();
    let amount = currency.map(|currency| from_minor(referral.amount_minor, currency).into());
    pb::Referral {
        referral_id: referral.id.clone(),
        customer_id: referral.customer_id.clone(),
        group_id: referral.group_id.clone().unwrap_or_default(),
        order_id: referral.order_id.clone(),
        amount: amount.clone(),
        amount_in_limit_currency: amount,
        reasons: wire_reasons(&referral.reasons),
        decision_id: referral.decision_id.clone(),
        idempotency_key: referral.idempotency_key.clone(),
        status: match referral.status {
            ReferralStatus::Open => pb::ReferralStatus::Open,
            ReferralStatus::Released => pb::ReferralStatus::Released,
            ReferralStatus::Rejected => pb::ReferralStatus::Rejected,
        } as i32,
        customer_position: currency.map(|currency| {
            position(
                Scope::Customer(referral.customer_id.clone()),
                referral.limit_minor,
                referral.exposure_minor,
                currency,
            )
        }),
        group_position: currency.and_then(|currency| {
            referral.group_id.as_ref().map(|group_id| {
                position(
                    Scope::Group(group_id.clone()),
                    referral.group_limit_minor,
                    referral.group_exposure_minor.unwrap_or(0),
                    currency,
                )
            })
        }),
        hold_ttl: referral
            .hold_ttl_seconds
            .map(|seconds| prost_types::Duration { seconds, nanos: 0 }),
        created_at: Some(to_timestamp(referral.created_at)),
        decided_by: referral.decided_by.as_ref().map(pb::Actor::from),
        decided_at: referral.decided_at.map(to_timestamp),
        decision_reason: referral.decision_reason.clone(),
        hold_id: referral.hold_id.clone(),
        ..Default::default()
    }
}

impl HotPath {
    /// The review queue: open referrals first, each part oldest first.
    pub async fn list_referrals(
        &self,
        request: &pb::ListReferralsRequest,
    ) -> Result<pb::ListReferralsResponse, ServiceError> {
        let page = Page::parse(request.page_size, &request.page_token)?;
        let status = match pb::ReferralStatus::try_from(request.status) {
            Ok(pb::ReferralStatus::Unspecified) => None,
            Ok(pb::ReferralStatus::Open) => Some(ReferralStatus::Open),
            Ok(pb::ReferralStatus::Released) => Some(ReferralStatus::Released),
            Ok(pb::ReferralStatus::Rejected) => Some(ReferralStatus::Rejected),
            Err(_) => return Err(ServiceError::invalid("status", "is not a referral status")),
        };
        let customer_id = request.customer_id.trim();
        if customer_id.len() > 100 {
            return Err(ServiceError::invalid(
                "customer_id",
                "must be at most 100 characters",
            ));
        }
        let mut rows = self
            .ledger
            .referrals(status, customer_id, &page)
            .await
            .map_err(ledger_error)?;
        let next_page_token = page.finish(&mut rows, |(key, _)| key.as_str());
        Ok(pb::ListReferralsResponse {
            referrals: rows
                .iter()
                .map(|(_, referral)| referral_to_proto(referral))
                .collect(),
            next_page_token,
        })
    }

    /// Releases (an audited override: the hold is created even past the limit) or rejects a
    /// referred order. The Authorize answer stored for the order's key stays as it was.
    pub async fn decide_referral(
        &self,
        principal: &Principal,
        request: &pb::DecideReferralRequest,
    ) -> Result<pb::DecideReferralResponse, ServiceError> {
        let key = IdempotencyKey::of_request(
            &principal.name,
            &request.request_id,
            "DecideReferral",
            request,
        )?;
        let releasing = match pb::ReferralOutcome::try_from(request.outcome) {
            Ok(pb::ReferralOutcome::Release) => true,
            Ok(pb::ReferralOutcome::Reject) => false,
            _ => {
                return Err(ServiceError::invalid(
                    "outcome",
                    "is required: RELEASE or REJECT",
                ));
            }
        };
        let reason = request.reason.trim();
        if reason.is_empty() || reason.len() > 1000 {
            return Err(ServiceError::invalid(
                "reason",
                "is required, at most 1000 characters",
            ));
        }
        let requested_ttl = match &request.hold_ttl {
            None => None,
            Some(ttl) => Some(self.checked_ttl(ttl.seconds).await?),
        };
        let referral_id = request.referral_id.trim();
        if referral_id.is_empty() {
            return Err(ServiceError::invalid("referral_id", "is required"));
        }
        let referral = self
            .ledger
            .referral(referral_id)
            .await
            .map_err(ledger_error)?
            .ok_or_else(|| ServiceError::not_found("referral", referral_id))?;
        let person = Actor::of(principal);
        // Four eyes: whoever placed the order (with any of their tokens) does not decide it.
        if person.same_person_as(&referral.created_by) {
            return Err(ServiceError::permission_denied(
                "SELF_APPROVAL",
                "the orderer of a referred order cannot release or reject it; another person must",
            ));
        }
        let currency = Currency::parse(&referral.currency).map_err(ServiceError::internal)?;
        let amount = from_minor(referral.amount_minor, currency);
        if !principal.may_approve(&amount) {
            return Err(ServiceError::permission_denied(
                "AUTHORITY_INSUFFICIENT",
                format!(
                    "{amount} is beyond the approval authority of '{}'",
                    principal.name
                ),
            ));
        }
        let now = Utc::now();
        let mut decided = Referral {
            status: if releasing {
                ReferralStatus::Released
            } else {
                ReferralStatus::Rejected
            },
            decided_by: Some(person.clone()),
            decided_at: Some(now),
            decision_reason: reason.to_owned(),
            ..referral.clone()
        };
        // A decided referral needs no hold: the ledger replays a retry or refuses.
        if !releasing || referral.status != ReferralStatus::Open {
            let event = referral_decided_event(&decided, &key);
            return self.store_decision(&decided, None, &key, &event).await;
        }
        let ttl = match (requested_ttl, referral.hold_ttl_seconds) {
            (Some(ttl), _) => ttl,
            (None, Some(seconds)) => Duration::from_secs(u64::try_from(seconds).unwrap_or(0)),
            (None, None) => self.policy().await?.default_hold_ttl(),
        };
        for _ in 0..3 {
            let (customer_epoch, group) = self.cached_epochs(&referral.customer_id).await?;
            let hold = Hold {
                id: new_id("hld"),
                customer_id: referral.customer_id.clone(),
                group_id: group.as_ref().map(|(group_id, _)| group_id.clone()),
                order_id: referral.order_id.clone(),
                currency: referral.currency.clone(),
                amount_minor: referral.amount_minor,
                status: HoldStatus::Open,
                captured_minor: 0,
                released_minor: 0,
                invoice_id: String::new(),
                release_reason: String::new(),
                decision_id: referral.decision_id.clone(),
                idempotency_key: referral.idempotency_key.clone(),
                created_at: now,
                expires_at: now
                    + chrono::Duration::from_std(ttl).unwrap_or(chrono::Duration::days(7)),
                closed_at: None,
                created_by: person.clone(),
                epoch: i64::try_from(customer_epoch).unwrap_or(i64::MAX),
                referral_id: referral.id.clone(),
            };
            decided.hold_id = hold.id.clone();
            let event = referral_decided_event(&decided, &key);
            let fenced = FencedHold {
                hold: &hold,
                group_epoch: group
                    .as_ref()
                    .map(|(group_id, epoch)| (group_id.as_str(), *epoch)),
            };
            match self
                .ledger
                .decide_referral(&decided, Some(fenced), &key, &event)
                .await
            {
                Err(LedgerError::EpochMoved) => continue,
                Ok(stored) if !stored.replayed => {
                    // The override counts in the cache at once. When the cache could not
                    // take it (a level went cold meanwhile, or Redis failed), both levels are
                    // evicted: their rebuild reads the hold, so exposure is never understated.
                    let added = self
                        .cache
                        .add(
                            &hold.customer_id,
                            hold.group_id.as_deref(),
                            hold.amount_minor,
                            // Written under these epochs: a level rebuilt since reads it.
                            Fence {
                                customer_epoch: Some(customer_epoch),
                                group_epoch: group.as_ref().map(|(_, epoch)| *epoch),
                            },
                        )
                        .await;
                    if !matches!(added, Ok(Adjustment::Applied { .. })) {
                        tracing::warn!(hold_id = %hold.id, "override not added to the cached exposure; evicting it for a rebuild");
                        self.invalidate(&Scope::Customer(hold.customer_id.clone()))
                            .await;
                        if let Some(group_id) = &hold.group_id {
                            self.invalidate(&Scope::Group(group_id.clone())).await;
                        }
                    }
                    return Ok(decided_to_proto(stored));
                }
                other => return decision_answer(other),
            }
        }
        Err(ServiceError::unavailable(
            "the customer's exposure was rebuilt while deciding; retry",
            LedgerError::EpochMoved,
        ))
    }

    async fn store_decision(
        &self,
        decided: &Referral,
        hold: Option<FencedHold<'_>>,
        key: &IdempotencyKey,
        event: &pb::Event,
    ) -> Result<pb::DecideReferralResponse, ServiceError> {
        decision_answer(self.ledger.decide_referral(decided, hold, key, event).await)
    }
}
