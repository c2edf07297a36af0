//! Authorize and CheckCredit: one decision (and, for Authorize, one reservation) in the
//! exposure cache, then one durable write of the hold and the answer, then the answer.

use chrono::{DateTime, Utc};
use credit_core::{Currency, Money, Principal, ServiceError};
use credit_proto::v1 as pb;
use credit_runtime::sql::fingerprint;
use prost::Message;
use rust_decimal::Decimal;

use crate::api::convert::{scope_to_proto, to_timestamp};
use crate::domain::limits::{Actor, Scope};
use crate::exposure::{
    AuthorizeInput, AuthorizeOutcome, Decision, ExposureError, Fence, Outcome,
    REFER_EVERY_OVERSHOOT_BPS, ReasonCode,
};
use crate::ledger::{Hold, HoldStatus, LedgerError, Referral, ReferralStatus, StoredAnswer};
use credit_proto::service_names::LIMITS;
use credit_proto::v1::event::Payload;
use credit_runtime::events::new_event;

use super::exposure::SecuredFigures;
use super::{HotPath, cache_error, from_minor, ledger_error, new_id, to_minor, unix};

/// A checked order: who, what, how much, in the currency the caller ordered in.
pub(super) struct Order {
    customer_id: String,
    order_id: String,
    amount: Money,
}

/// A decision and the order amount it was made on, in the limit's currency.
pub(super) struct Decided {
    pub(super) decision: Decision,
    /// The order amount in the limit's currency (the order's own when they agree).
    amount: Money,
    pub(super) amount_minor: i64,
    /// The rate that converted the order, when it was in another currency.
    fx_rate: Option<Decimal>,
}

pub(super) fn position(
    scope: Scope,
    limit: Option<i64>,
    exposure: i64,
    currency: Currency,
) -> pb::CreditPosition {
    pb::CreditPosition {
        scope: Some(scope_to_proto(&scope)),
        limit: limit.map(|limit| from_minor(limit, currency).into()),
        exposure: Some(from_minor(exposure, currency).into()),
        available: limit.map(|limit| from_minor(limit - exposure, currency).into()),
    }
}

/// Stored reason codes on the wire, each with its text (the figures live in the answer).
pub(super) fn wire_reasons(codes: &[String]) -> Vec<pb::Reason> {
    codes
        .iter()
        .map(|code| pb::Reason {
            code: code.clone(),
            message: reason_text(code).to_owned(),
            metadata: Default::default(),
        })
        .collect()
}

fn replay(
    answer: &StoredAnswer,
    request_fingerprint: &str,
) -> Result<pb::AuthorizeResponse, ServiceError> {
    if answer.fingerprint != request_fingerprint {
        return Err(ServiceError::AlreadyExists {
            reason: "IDEMPOTENCY_KEY_REUSED",
            message: "this idempotency key was used for another order or amount".to_owned(),
            metadata: vec![("decision_id", answer.decision_id.clone())],
        });
    }
    let mut response = pb::AuthorizeResponse::decode(answer.response.as_slice())
        .map_err(ServiceError::internal)?;
    response.replayed = true;
    Ok(response)
}

fn stored_answer(
    customer_id: &str,
    key: &str,
    fingerprint: &str,
    decision_id: &str,
    response: &pb::AuthorizeResponse,
    now: DateTime<Utc>,
) -> StoredAnswer {
    StoredAnswer {
        customer_id: customer_id.to_owned(),
        idempotency_key: key.to_owned(),
        fingerprint: fingerprint.to_owned(),
        decision_id: decision_id.to_owned(),
        decision: pb::AuthorizationDecision::try_from(response.decision)
            .map(|decision| decision.as_str_name().to_owned())
            .unwrap_or_default(),
        response: response.encode_to_vec(),
        created_at: now,
    }
}

fn wire_outcome(outcome: Outcome) -> pb::AuthorizationDecision {
    match outcome {
        Outcome::Approved => pb::AuthorizationDecision::Approved,
        Outcome::Referred => pb::AuthorizationDecision::Referred,
        Outcome::Declined => pb::AuthorizationDecision::Declined,
    }
}

fn reason_text(code: &str) -> &'static str {
    match code {
        "CUSTOMER_INACTIVE" => "the customer is not active",
        "NO_VALID_LIMIT" => "the customer has no limit in force",
        "CREDIT_BLOCK" => "the customer is blocked for credit",
        "OVERDUE" => "the customer's oldest overdue invoice is beyond tolerance",
        "RATING_STALE" => "the customer's rating is missing or due for review",
        "ORDER_AMOUNT_LIMIT" => "the order is above the per-order cap",
        "LIMIT_EXCEEDED" => "the order takes exposure past the customer's limit",
        "GROUP_LIMIT_EXCEEDED" => "the order takes exposure past the group's limit",
        _ => "",
    }
}

fn group_position(decision: &Decision, currency: Currency) -> Option<pb::CreditPosition> {
    decision.group.as_ref().map(|group| pb::CreditPosition {
        scope: Some(scope_to_proto(&Scope::Group(group.group_id.clone()))),
        limit: group.limit.map(|limit| from_minor(limit, currency).into()),
        exposure: Some(from_minor(group.exposure_after, currency).into()),
        available: group
            .available_after
            .map(|available| from_minor(available, currency).into()),
    })
}

impl HotPath {
    /// Checks an order's fields; reads nothing.
    fn order(
        customer_id: &str,
        order_id: &str,
        amount: Option<&pb::Money>,
    ) -> Result<Order, ServiceError> {
        let mut violations = credit_core::Violations::new();
        let customer_id = customer_id.trim();
        if customer_id.is_empty() || customer_id.len() > 100 {
            violations.add("customer_id", "is required, at most 100 characters");
        }
        if order_id.trim().len() > 100 {
            violations.add("order_id", "must be at most 100 characters");
        }
        let amount = match amount {
            None => {
                violations.add("amount", "is required");
                None
            }
            Some(amount) => {
                violations.check("amount", Money::try_from(amount).and_then(Money::positive))
            }
        };
        violations.finish()?;
        let Some(amount) = amount else {
            return Err(ServiceError::invalid("amount", "is required"));
        };
        to_minor(&amount)?;
        Ok(Order {
            customer_id: customer_id.to_owned(),
            order_id: order_id.trim().to_owned(),
            amount,
        })
    }

    /// Decides (and with `reserve`, reserves) in the cache: warms cold profiles first and
    /// converts an order in another currency than the limit's. Warm, in the limit's currency,
    /// this is one cache call and no store read.
    async fn decide(&self, order: &Order, reserve: bool) -> Result<Decided, ServiceError> {
        let mut amount = order.amount;
        let mut fx_rate = None;
        // A rebuild may race with another one (a flush, a second replica); a few rounds
        // settle it, and a customer still cold after them is refused, never approved.
        for _ in 0..4 {
            let amount_minor = to_minor(&amount)?;
            let input = AuthorizeInput {
                customer_id: order.customer_id.clone(),
                group_id: None,
                amount: amount_minor,
                currency: amount.currency().code().to_owned(),
                now: unix(Utc::now()),
                reserve,
            };
            match self.cache.authorize(&input).await {
                Ok(AuthorizeOutcome::Decided(decision)) => {
                    return Ok(Decided {
                        decision,
                        amount,
                        amount_minor,
                        fx_rate,
                    });
                }
                Ok(AuthorizeOutcome::Cold { customer, group }) => {
                    if customer {
                        self.warm_customer(&order.customer_id).await?;
                    } else if group {
                        let cached = self
                            .cache
                            .get_customer(&order.customer_id)
                            .await
                            .map_err(cache_error)?;
                        if let Some(group_id) = cached.and_then(|profile| profile.group_id) {
                            self.warm_group(&group_id).await?;
                        }
                    }
                }
                Err(ExposureError::CurrencyMismatch { limit_currency }) if fx_rate.is_none() => {
                    let currency =
                        Currency::parse(&limit_currency).map_err(ServiceError::internal)?;
                    let (converted, rate) = self.convert(order.amount, currency).await?;
                    amount = converted;
                    fx_rate = Some(rate);
                }
                Err(error) => return Err(cache_error(error)),
            }
        }
        Err(ServiceError::unavailable(
            "the customer's exposure is being rebuilt; retry",
            ExposureError::InvalidId {
                field: "customer_id",
                value: order.customer_id.clone(),
            },
        ))
    }

    /// Takes back a reservation whose durable write failed — only in the cache incarnation
    /// it was made in; after a rebuild the reservation is not there to take back.
    /// Decides `amount` for an order of the customer as Authorize would, and reserves it when
    /// the rules approve: the reservation (to store durably, or to take back with
    /// [`HotPath::undo`]), or `None` with nothing reserved when they refer or decline.
    pub(super) async fn reserve_if_approved(
        &self,
        customer_id: &str,
        order_id: &str,
        amount: Money,
    ) -> Result<Option<(Order, Decided)>, ServiceError> {
        let order = Order {
            customer_id: customer_id.to_owned(),
            order_id: order_id.to_owned(),
            amount,
        };
        let decided = self.decide(&order, true).await?;
        Ok(decided.decision.reserved.then_some((order, decided)))
    }

    pub(super) async fn undo(&self, order: &Order, decided: &Decided) {
        let decision = &decided.decision;
        let group = decision.group.as_ref();
        // Only in the incarnation the reservation was made in, atomically: a level rebuilt
        // since then never saw it.
        let fence = Fence {
            customer_epoch: Some(decision.epoch),
            group_epoch: group.map(|group| group.epoch),
        };
        if let Err(error) = self
            .cache
            .release(
                &order.customer_id,
                group.map(|group| group.group_id.as_str()),
                decided.amount_minor,
                fence,
            )
            .await
        {
            tracing::warn!(error = %error, customer_id = %order.customer_id, "could not undo a reservation; exposure stays overstated until the next rebuild");
        }
    }

    /// Decides an order and records the answer. When a rebuild of the customer's cached
    /// exposure comes between deciding and recording (a block cleared, a payment re-examined
    /// its referrals), the reservation went with the old entry and nothing was recorded: the
    /// order is decided again on the rebuilt entry, a few times, instead of answering the
    /// clerk UNAVAILABLE for the suite's own race.
    pub async fn authorize(
        &self,
        principal: &Principal,
        request: &pb::AuthorizeRequest,
    ) -> Result<pb::AuthorizeResponse, ServiceError> {
        let mut attempt = 1;
        loop {
            match self.authorize_once(principal, request).await {
                Err(error) if attempt < DECIDE_ATTEMPTS && raced_a_rebuild(&error) => {
                    attempt += 1;
                }
                answered => return answered,
            }
        }
    }

    async fn authorize_once(
        &self,
        principal: &Principal,
        request: &pb::AuthorizeRequest,
    ) -> Result<pb::AuthorizeResponse, ServiceError> {
        let key = request.idempotency_key.trim();
        if key.is_empty() || key.len() > 100 {
            return Err(ServiceError::invalid(
                "idempotency_key",
                "is required, at most 100 characters",
            ));
        }
        if request.order_id.trim().is_empty() {
            return Err(ServiceError::invalid("order_id", "is required"));
        }
        let hold_ttl = match &request.hold_ttl {
            None => self.policy().await?.default_hold_ttl(),
            Some(ttl) => {
                let seconds = u64::try_from(ttl.seconds).unwrap_or(0);
                self.checked_ttl_seconds(seconds).await?
            }
        };
        let request_fingerprint = fingerprint(request);
        let order = Self::order(
            &request.customer_id,
            &request.order_id,
            request.amount.as_ref(),
        )?;
        // No read of the idempotency key before deciding: a retry is rare, and the
        // authorizations primary key catches it at the write (its reservation is undone and
        // the first answer replayed). Only when deciding fails is the key looked up, so a
        // retry is answered even if its decision could not be made again now.
        let decided = match self.decide(&order, true).await {
            Ok(decided) => decided,
            Err(error) => {
                return match self.ledger.answer(&order.customer_id, key).await {
                    Ok(Some(answer)) => replay(&answer, &request_fingerprint),
                    _ => Err(error),
                };
            }
        };
        let decision = &decided.decision;
        let now = Utc::now();
        let decision_id = new_id("dec");
        let currency = decided.amount.currency();
        let mut response = pb::AuthorizeResponse {
            decision: wire_outcome(decision.outcome) as i32,
            reasons: self.reasons(&order.customer_id, &decided).await,
            limit: decision
                .limit
                .map(|limit| from_minor(limit, currency).into()),
            exposure: Some(from_minor(decision.exposure_after, currency).into()),
            available: decision
                .available_after
                .map(|available| from_minor(available, currency).into()),
            group_position: group_position(decision, currency),
            amount_in_limit_currency: Some(decided.amount.into()),
            fx_rate: decided
                .fx_rate
                .map(|rate| rate.to_string())
                .unwrap_or_default(),
            decision_id: decision_id.clone(),
            decided_at: Some(to_timestamp(now)),
            secured_position: Some(secured_position(decision, currency)),
            ..Default::default()
        };
        let person = Actor::of(principal);
        if decision.reserved {
            let hold = Hold {
                id: new_id("hld"),
                customer_id: order.customer_id.clone(),
                group_id: decision.group.as_ref().map(|group| group.group_id.clone()),
                order_id: order.order_id.clone(),
                currency: currency.code().to_owned(),
                amount_minor: decided.amount_minor,
                status: HoldStatus::Open,
                captured_minor: 0,
                released_minor: 0,
                invoice_id: String::new(),
                release_reason: String::new(),
                decision_id: decision_id.clone(),
                idempotency_key: key.to_owned(),
                created_at: now,
                expires_at: now
                    + chrono::Duration::from_std(hold_ttl).unwrap_or(chrono::Duration::days(7)),
                closed_at: None,
                created_by: person,
                epoch: i64::try_from(decision.epoch).unwrap_or(i64::MAX),
                referral_id: String::new(),
            };
            response.hold_id = hold.id.clone();
            response.hold_expires_at = Some(to_timestamp(hold.expires_at));
            let answer = stored_answer(
                &order.customer_id,
                key,
                &request_fingerprint,
                &decision_id,
                &response,
                now,
            );
            let group_epoch = decision
                .group
                .as_ref()
                .map(|group| (group.group_id.as_str(), group.epoch));
            match self.ledger.record_hold(&hold, group_epoch, &answer).await {
                Ok(()) => Ok(response),
                Err(LedgerError::EpochMoved) => Err(ServiceError::unavailable(
                    "the customer's exposure was rebuilt while deciding; retry",
                    LedgerError::EpochMoved,
                )),
                Err(LedgerError::Duplicate) => {
                    // A concurrent retry with the same key answered first: take ours back
                    // and give its answer.
                    self.undo(&order, &decided).await;
                    let first = self
                        .ledger
                        .answer(&order.customer_id, key)
                        .await
                        .map_err(ledger_error)?;
                    let first =
                        first.ok_or_else(|| ServiceError::internal("an answer vanished"))?;
                    replay(&first, &request_fingerprint)
                }
                Err(error) => {
                    self.undo(&order, &decided).await;
                    Err(ServiceError::unavailable(
                        "the ledger did not take the hold; retry",
                        error,
                    ))
                }
            }
        } else {
            let referral = (decision.outcome == Outcome::Referred).then(|| Referral {
                id: new_id("ref"),
                customer_id: order.customer_id.clone(),
                order_id: order.order_id.clone(),
                currency: currency.code().to_owned(),
                amount_minor: decided.amount_minor,
                reasons: decision
                    .reasons
                    .iter()
                    .map(|reason| reason.as_str().to_owned())
                    .collect(),
                decision_id: decision_id.clone(),
                idempotency_key: key.to_owned(),
                created_at: now,
                created_by: person,
                status: ReferralStatus::Open,
                group_id: decision.group.as_ref().map(|group| group.group_id.clone()),
                hold_ttl_seconds: request
                    .hold_ttl
                    .as_ref()
                    .map(|_| i64::try_from(hold_ttl.as_secs()).unwrap_or(i64::MAX)),
                limit_minor: decision.limit,
                exposure_minor: decision.exposure_after,
                group_limit_minor: decision.group.as_ref().and_then(|group| group.limit),
                group_exposure_minor: decision.group.as_ref().map(|group| group.exposure_after),
                decided_by: None,
                decided_at: None,
                decision_reason: String::new(),
                hold_id: String::new(),
                oldest_overdue_days: Some(decision.figures.oldest_overdue_days),
                approval_chain: None,
                release_conditions: Vec::new(),
            });
            response.referral_id = referral
                .as_ref()
                .map(|referral| referral.id.clone())
                .unwrap_or_default();
            let answer = stored_answer(
                &order.customer_id,
                key,
                &request_fingerprint,
                &decision_id,
                &response,
                now,
            );
            let created = referral.as_ref().map(|referral| pb::Event {
                aggregate_id: referral.id.clone(),
                customer_id: referral.customer_id.clone(),
                group_id: referral.group_id.clone().unwrap_or_default(),
                actor: Some(pb::Actor::from(&referral.created_by)),
                request_id: key.to_owned(),
                ..new_event(
                    LIMITS,
                    Payload::ReferralCreated(pb::ReferralCreated {
                        referral_id: referral.id.clone(),
                        customer_id: referral.customer_id.clone(),
                        order_id: referral.order_id.clone(),
                        amount: Some(from_minor(referral.amount_minor, currency).into()),
                        reasons: wire_reasons(&referral.reasons),
                        decision_id: referral.decision_id.clone(),
                    }),
                )
            });
            let referral_and_event = referral.as_ref().zip(created.as_ref());
            match self.ledger.record_answer(&answer, referral_and_event).await {
                Ok(()) => Ok(response),
                Err(LedgerError::Duplicate) => {
                    let first = self
                        .ledger
                        .answer(&order.customer_id, key)
                        .await
                        .map_err(ledger_error)?;
                    let first =
                        first.ok_or_else(|| ServiceError::internal("an answer vanished"))?;
                    replay(&first, &request_fingerprint)
                }
                Err(error) => Err(ServiceError::unavailable(
                    "the ledger did not take the answer; retry",
                    error,
                )),
            }
        }
    }

    /// Every reason of a decision with the figures behind it, under the metadata keys the
    /// contract lists for each code. The figures come with the decision (read in the same
    /// atomic step); the store is read only for the rarer reasons that need more.
    async fn reasons(&self, customer_id: &str, decided: &Decided) -> Vec<pb::Reason> {
        let decision = &decided.decision;
        if decision.reasons.is_empty() {
            return Vec::new();
        }
        let currency = decided.amount.currency();
        let money = |minor: i64| from_minor(minor, currency).amount_string();
        let figures = &decision.figures;
        let mut reasons = Vec::with_capacity(decision.reasons.len());
        for code in &decision.reasons {
            let mut metadata = std::collections::BTreeMap::new();
            let mut put = |key: &str, value: String| {
                metadata.insert(key.to_owned(), value);
            };
            match code {
                ReasonCode::CustomerInactive => put("status", figures.status.as_str().to_owned()),
                ReasonCode::NoValidLimit => {
                    let limits = self
                        .limits
                        .limits(&Scope::Customer(customer_id.to_owned()))
                        .await
                        .unwrap_or_default();
                    let now = Utc::now();
                    if let Some(expired) = limits
                        .iter()
                        .filter_map(|limit| limit.valid_until.filter(|until| *until <= now))
                        .max()
                    {
                        put("expired_at", expired.to_rfc3339());
                    }
                }
                ReasonCode::CreditBlock => {
                    let blocks = self.limits.blocks(customer_id).await.unwrap_or_default();
                    let types: Vec<&str> = blocks
                        .iter()
                        .map(|block| block.block_type.as_str())
                        .collect();
                    put("block_types", types.join(","));
                }
                ReasonCode::Overdue => {
                    put(
                        "oldest_overdue_days",
                        figures.oldest_overdue_days.to_string(),
                    );
                    put("tolerance_days", figures.overdue_tolerance_days.to_string());
                }
                ReasonCode::RatingStale => {
                    let rating = self
                        .limits
                        .customer(customer_id)
                        .await
                        .ok()
                        .flatten()
                        .and_then(|facts| facts.rating);
                    put(
                        "rating_id",
                        rating
                            .as_ref()
                            .map(|rating| rating.rating_id.clone())
                            .unwrap_or_default(),
                    );
                    if let Some(date) = rating.and_then(|rating| rating.next_review_date) {
                        put("next_review_date", date.to_string());
                    }
                }
                ReasonCode::OrderAmountLimit => {
                    if let Some(cap) = figures.order_cap {
                        put("order_amount_cap", money(cap));
                    }
                }
                ReasonCode::LimitExceeded | ReasonCode::GroupLimitExceeded => {
                    let (limit, exposure_after, tolerance_bps) = match code {
                        ReasonCode::LimitExceeded => (
                            decision.limit,
                            decision.exposure_after,
                            Some(figures.tolerance_bps),
                        ),
                        _ => (
                            decision.group.as_ref().and_then(|group| group.limit),
                            decision
                                .group
                                .as_ref()
                                .map_or(0, |group| group.exposure_after),
                            decision.group.as_ref().map(|group| group.tolerance_bps),
                        ),
                    };
                    // Not reserved (referred or declined): the exposure is the one before.
                    put("exposure", money(exposure_after));
                    put("amount", money(decided.amount_minor));
                    if let Some(limit) = limit {
                        put("limit", money(limit));
                    }
                    // The security and guarantees given that moved the customer's capacity.
                    if *code == ReasonCode::LimitExceeded {
                        if let Some(capacity) = decision
                            .capacity
                            .filter(|capacity| Some(*capacity) != limit)
                        {
                            put("capacity", money(capacity));
                        }
                        if decision.contingent != 0 {
                            put("contingent_exposure", money(decision.contingent));
                        }
                    }
                    // A grade that refers beyond the tolerance is cached with a band that
                    // declines nothing; the answer quotes the policy's own tolerance.
                    let tolerance_bps = match tolerance_bps {
                        Some(REFER_EVERY_OVERSHOOT_BPS) => {
                            put("refer_beyond_tolerance", "true".to_owned());
                            match self.policy().await {
                                Ok(policy) => Some(policy.tolerance_bps()),
                                Err(_) => None,
                            }
                        }
                        other => other,
                    };
                    if let Some(bps) = tolerance_bps {
                        let percent = Decimal::new(i64::from(bps), 2).normalize();
                        put("tolerance_percent", percent.to_string());
                    }
                    if let (Some(limit), Some(bps)) = (limit, tolerance_bps) {
                        // The same band as the rules: floor(limit × (1 + bps / 10000)).
                        let band = i128::from(limit) * (10_000 + i128::from(bps)) / 10_000;
                        let total = i128::from(exposure_after) + i128::from(decided.amount_minor);
                        put("within_tolerance", (total <= band).to_string());
                    }
                }
            }
            reasons.push(pb::Reason {
                code: code.as_str().to_owned(),
                message: reason_text(code.as_str()).to_owned(),
                metadata,
            });
        }
        reasons
    }

    /// The same rules as Authorize; reserves and records nothing.
    pub async fn check_credit(
        &self,
        request: &pb::CheckCreditRequest,
    ) -> Result<pb::CheckCreditResponse, ServiceError> {
        let order = Self::order(
            &request.customer_id,
            &request.order_id,
            request.amount.as_ref(),
        )?;
        let decided = self.decide(&order, false).await?;
        let decision = &decided.decision;
        let currency = decided.amount.currency();
        Ok(pb::CheckCreditResponse {
            decision: wire_outcome(decision.outcome) as i32,
            reasons: self.reasons(&order.customer_id, &decided).await,
            limit: decision
                .limit
                .map(|limit| from_minor(limit, currency).into()),
            exposure: Some(from_minor(decision.exposure_after, currency).into()),
            available: decision
                .available_after
                .map(|available| from_minor(available, currency).into()),
            group_position: group_position(decision, currency),
            amount_in_limit_currency: Some(decided.amount.into()),
            fx_rate: decided
                .fx_rate
                .map(|rate| rate.to_string())
                .unwrap_or_default(),
            decided_at: Some(to_timestamp(Utc::now())),
            secured_position: Some(secured_position(decision, currency)),
        })
    }
}

/// The secured and unsecured parts of the exposure a decision left, with the capacity the
/// security gave and the contingent exposure counted with it.
fn secured_position(decision: &Decision, currency: Currency) -> pb::SecuredPosition {
    super::exposure::position_of(
        SecuredFigures {
            exposure: decision.exposure_after,
            secured: decision.secured,
            limit: decision.limit,
            capacity: decision.capacity,
            contingent: decision.contingent,
        },
        currency,
    )
}

/// How many times an order is decided when rebuilds of its customer's cached exposure keep
/// coming between deciding and recording.
const DECIDE_ATTEMPTS: usize = 3;

/// Whether `error` is a decision that lost its reservation to a rebuild before it was
/// recorded (nothing was recorded: deciding again is safe).
fn raced_a_rebuild(error: &ServiceError) -> bool {
    matches!(
        error,
        ServiceError::Unavailable { source, .. }
            if matches!(source.downcast_ref::<LedgerError>(), Some(LedgerError::EpochMoved))
    )
}
