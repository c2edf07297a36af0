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

use credit_core::approval::{ApprovalMatrix, Chain, DecisionKind, Progress, Verdict};

use super::approvals::StepAction;
use super::authorize::{position, wire_reasons};
use super::settle::hold_to_proto;
use super::{HotPath, from_minor, ledger_error, new_id};
use crate::api::convert::{chain_to_proto, step_decided_event};
use crate::domain::referral::{
    ConditionKind, ReleaseCondition, money_of, overshoot_minor, referral_figures, released_hold,
};

/// What a decider says with a verdict on a referral's step.
#[derive(Debug, Clone, Copy)]
pub struct ReferralVerdict<'a> {
    pub note: &'a str,
    /// The release conditions as the request gave them (checked against the referral's
    /// currency once it is read).
    pub conditions: &'a [pb::ReleaseCondition],
    /// Where they stand in the request, for a field violation.
    pub conditions_field: &'static str,
    pub requested_ttl: Option<Duration>,
}

/// The ApprovalStepDecided of the verdict a referral's chain recorded last.
fn step_event_of(referral: &Referral, key: &IdempotencyKey) -> Option<pb::Event> {
    referral.approval_chain.as_ref().and_then(|chain| {
        step_decided_event(chain, &referral.id, &referral.customer_id, &key.request_id)
    })
}

/// What a released referral's hold is made of, besides the referral's own fields.
pub(super) struct ReleasedHold {
    pub(super) group_id: Option<String>,
    pub(super) amount_minor: i64,
    pub(super) ttl: Duration,
    pub(super) by: Actor,
    /// The customer's cache incarnation it is counted in (the fence of DESIGN.md).
    pub(super) epoch: u64,
    pub(super) now: chrono::DateTime<Utc>,
}

/// The hold a release creates for the referred order: an override, counted in `epoch`.
pub(super) fn released_hold_of(referral: &Referral, hold: ReleasedHold) -> Hold {
    Hold {
        id: new_id("hld"),
        customer_id: referral.customer_id.clone(),
        group_id: hold.group_id,
        order_id: referral.order_id.clone(),
        currency: referral.currency.clone(),
        amount_minor: hold.amount_minor,
        status: HoldStatus::Open,
        captured_minor: 0,
        released_minor: 0,
        invoice_id: String::new(),
        release_reason: String::new(),
        decision_id: referral.decision_id.clone(),
        idempotency_key: referral.idempotency_key.clone(),
        created_at: hold.now,
        expires_at: hold.now
            + chrono::Duration::from_std(hold.ttl).unwrap_or(chrono::Duration::days(7)),
        closed_at: None,
        created_by: hold.by,
        epoch: i64::try_from(hold.epoch).unwrap_or(i64::MAX),
        referral_id: referral.id.clone(),
    }
}

/// Release conditions as the request states them, amounts in the referral's currency.
fn parse_release_conditions(
    wire: &[pb::ReleaseCondition],
    field: &str,
    currency: Currency,
) -> Result<Vec<ReleaseCondition>, ServiceError> {
    let mut violations = credit_core::Violations::new();
    let mut conditions = Vec::with_capacity(wire.len());
    for (index, condition) in wire.iter().enumerate() {
        let at = |name: &str| format!("{field}[{index}].{name}");
        let kind = match pb::ReleaseConditionType::try_from(condition.condition_type) {
            Ok(pb::ReleaseConditionType::Deposit) => Some(ConditionKind::Deposit),
            Ok(pb::ReleaseConditionType::Prepayment) => Some(ConditionKind::Prepayment),
            Ok(pb::ReleaseConditionType::PartialQuantity) => Some(ConditionKind::PartialQuantity),
            Ok(pb::ReleaseConditionType::ShorterHold) => Some(ConditionKind::ShorterHold),
            _ => {
                violations.add(
                    at("condition_type"),
                    "is required: DEPOSIT, PREPAYMENT, PARTIAL_QUANTITY or SHORTER_HOLD",
                );
                None
            }
        };
        let needs_amount = matches!(
            kind,
            Some(
                ConditionKind::Deposit | ConditionKind::Prepayment | ConditionKind::PartialQuantity
            )
        );
        let amount_minor = match (&condition.amount, needs_amount) {
            (Some(amount), true) => {
                let parsed = violations.check(
                    &at("amount"),
                    credit_core::Money::try_from(amount).and_then(credit_core::Money::positive),
                );
                match parsed {
                    Some(money) if money.currency() != currency => {
                        violations.add(
                            at("amount.currency"),
                            format!("is the order's currency, {currency}"),
                        );
                        None
                    }
                    Some(money) => match money.to_minor_units() {
                        Ok(minor) => Some(minor),
                        Err(_) => {
                            violations.add(at("amount"), "is too large");
                            None
                        }
                    },
                    None => None,
                }
            }
            (None, true) => {
                violations.add(at("amount"), "is required for this condition");
                None
            }
            _ => None,
        };
        let hold_ttl_seconds = match (&condition.hold_ttl, kind) {
            (Some(ttl), Some(ConditionKind::ShorterHold)) => match u64::try_from(ttl.seconds) {
                Ok(seconds) if seconds > 0 => Some(seconds),
                _ => {
                    violations.add(at("hold_ttl"), "is positive");
                    None
                }
            },
            (None, Some(ConditionKind::ShorterHold)) => {
                violations.add(at("hold_ttl"), "is required for a shorter hold");
                None
            }
            _ => None,
        };
        if condition.note.chars().count() > 500 {
            violations.add(at("note"), "is at most 500 characters");
        }
        if let Some(kind) = kind {
            conditions.push(ReleaseCondition {
                kind,
                amount_minor,
                hold_ttl_seconds,
                note: condition.note.trim().to_owned(),
            });
        }
    }
    violations.finish()?;
    Ok(conditions)
}

fn conditions_to_proto(referral: &Referral) -> Vec<pb::ReleaseCondition> {
    let currency = Currency::parse(&referral.currency).ok();
    referral
        .release_conditions
        .iter()
        .map(|condition| pb::ReleaseCondition {
            condition_type: match condition.kind {
                ConditionKind::Deposit => pb::ReleaseConditionType::Deposit,
                ConditionKind::Prepayment => pb::ReleaseConditionType::Prepayment,
                ConditionKind::PartialQuantity => pb::ReleaseConditionType::PartialQuantity,
                ConditionKind::ShorterHold => pb::ReleaseConditionType::ShorterHold,
            } as i32,
            amount: condition
                .amount_minor
                .zip(currency)
                .map(|(minor, currency)| from_minor(minor, currency).into()),
            hold_ttl: condition
                .hold_ttl_seconds
                .map(|seconds| prost_types::Duration {
                    seconds: i64::try_from(seconds).unwrap_or(i64::MAX),
                    nanos: 0,
                }),
            note: condition.note.clone(),
        })
        .collect()
}

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
        Err(LedgerError::ChainMoved) => Err(ServiceError::Aborted {
            reason: "CHAIN_MOVED",
            message: "another verdict on the referral came first; read it again".to_owned(),
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

pub(super) fn referral_decided_event(decided: &Referral, key: &IdempotencyKey) -> pb::Event {
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
                release_conditions: conditions_to_proto(decided),
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
        oldest_overdue_days: referral
            .oldest_overdue_days
            .map_or(0, |days| i32::try_from(days).unwrap_or(i32::MAX)),
        approval_chain: referral.approval_chain.as_ref().map(chain_to_proto),
        release_conditions: conditions_to_proto(referral),
        overshoot: currency.map(|currency| {
            from_minor(
                overshoot_minor(
                    referral.amount_minor,
                    referral.exposure_minor,
                    referral.limit_minor,
                ),
                currency,
            )
            .into()
        }),
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
        let referrals = self
            .with_chains(rows.into_iter().map(|(_, referral)| referral).collect())
            .await?;
        Ok(pb::ListReferralsResponse {
            referrals: referrals.iter().map(referral_to_proto).collect(),
            next_page_token,
        })
    }

    /// A person's release or rejection through DecideReferral: the verdict on the step of
    /// the referral's chain that waits (RELEASE approves it; the last approving step's release
    /// creates the hold). The Authorize answer stored for the order's key stays as it was.
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
        let verdict = match pb::ReferralOutcome::try_from(request.outcome) {
            Ok(pb::ReferralOutcome::Release) => Verdict::Approve,
            Ok(pb::ReferralOutcome::Reject) => Verdict::Reject,
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
        self.decide_referral_step(
            principal,
            referral_id,
            None,
            StepAction::Decide(verdict),
            &ReferralVerdict {
                note: reason,
                conditions: &request.conditions,
                conditions_field: "conditions",
                requested_ttl,
            },
            &key,
        )
        .await
    }

    /// A verdict on step `step_index` (the one that waits when `None`) of a referral's chain,
    /// or the orderer's resubmission. Four eyes across the chain (the orderer and the deciders
    /// of other steps are other people), the step's role, and for approving a step that needs
    /// it authority over the overshoot. The last approving step releases the order: the hold
    /// is created even past the limit, shaped by the release conditions, and recorded as an
    /// override. A retry is answered with the referral as it stands.
    pub async fn decide_referral_step(
        &self,
        principal: &Principal,
        referral_id: &str,
        step_index: Option<usize>,
        action: StepAction,
        verdict: &ReferralVerdict<'_>,
        key: &IdempotencyKey,
    ) -> Result<pb::DecideReferralResponse, ServiceError> {
        if let Some(recorded) = self
            .limits
            .recorded_under(key)
            .await
            .map_err(ServiceError::from)?
        {
            return self.referral_as_it_stands(&recorded).await;
        }
        let referral = self
            .ledger
            .referral(referral_id)
            .await
            .map_err(ledger_error)?
            .ok_or_else(|| ServiceError::not_found("referral", referral_id))?;
        if referral.status != ReferralStatus::Open {
            return decision_answer(Err(LedgerError::ReferralNotOpen(Box::new(referral))));
        }
        let currency = Currency::parse(&referral.currency).map_err(ServiceError::internal)?;
        let conditions =
            parse_release_conditions(verdict.conditions, verdict.conditions_field, currency)?;
        let mut chain = match &referral.approval_chain {
            Some(chain) => chain.clone(),
            None => self.referral_chain(&referral).await?,
        };
        let expected_revision = referral.chain_revision();
        let now = Utc::now();
        let step_index = step_index
            .or_else(|| chain.current_step())
            .unwrap_or_default();
        let progress = action
            .apply(&mut chain, principal, step_index, verdict.note, now)
            .map_err(ServiceError::from)?;
        if progress != Progress::Approved && !conditions.is_empty() {
            return Err(ServiceError::invalid(
                verdict.conditions_field,
                "conditions go with the release: the last approving step's approval",
            ));
        }
        let moved = Referral {
            approval_chain: Some(chain),
            ..referral
        };
        match progress {
            Progress::Advanced | Progress::Returned => {
                let step_event = step_event_of(&moved, key);
                let saved = self
                    .ledger
                    .save_referral_chain(&moved, expected_revision, Some(key), step_event.as_ref())
                    .await;
                match saved {
                    Ok(saved) => Ok(pb::DecideReferralResponse {
                        referral: Some(referral_to_proto(&saved)),
                        hold: None,
                    }),
                    Err(error) => decision_answer(Err(error)),
                }
            }
            Progress::Rejected => {
                let decided = Referral {
                    status: ReferralStatus::Rejected,
                    decided_by: Some(Actor::of(principal)),
                    decided_at: Some(now),
                    decision_reason: verdict.note.to_owned(),
                    ..moved
                };
                let events: Vec<pb::Event> = std::iter::once(referral_decided_event(&decided, key))
                    .chain(step_event_of(&decided, key))
                    .collect();
                decision_answer(
                    self.ledger
                        .decide_referral(&decided, expected_revision, None, key, &events)
                        .await,
                )
            }
            Progress::Approved => {
                let released = Referral {
                    release_conditions: conditions,
                    ..moved
                };
                self.release_referred(
                    released,
                    expected_revision,
                    Actor::of(principal),
                    verdict.note,
                    verdict.requested_ttl,
                    key,
                )
                .await
            }
        }
    }

    /// The chain the approval matrix in force chooses for a referral: from the order amount,
    /// its overshoot past the limit, the customer's oldest overdue days and grade. The
    /// deciders' authority must cover the overshoot (the order amount when the order is
    /// within the limit and was referred for another reason).
    ///
    /// A referral's chain is chosen when somebody first needs it — a read of the queue, a
    /// verdict — and stored with the first verdict: the order's path does no work for it, and
    /// a flood of referred orders costs nothing until people look at them.
    async fn referral_chain(&self, referral: &Referral) -> Result<Chain, ServiceError> {
        let (version, matrix) = self.matrix_in_force(Utc::now()).await?;
        let grade = self
            .limits
            .customer(&referral.customer_id)
            .await
            .map_err(ServiceError::from)?
            .and_then(|facts| facts.rating)
            .map(|rating| rating.grade);
        self.referral_chain_under(referral, version, &matrix, grade)
            .await
    }

    /// [`HotPath::referral_chain`] under a matrix and grade the caller has read already.
    pub(super) async fn referral_chain_under(
        &self,
        referral: &Referral,
        version: u32,
        matrix: &ApprovalMatrix,
        grade: Option<String>,
    ) -> Result<Chain, ServiceError> {
        let currency = Currency::parse(&referral.currency).map_err(ServiceError::internal)?;
        let amount = money_of(referral.amount_minor, currency);
        let overshoot = money_of(
            overshoot_minor(
                referral.amount_minor,
                referral.exposure_minor,
                referral.limit_minor,
            ),
            currency,
        );
        let figures = referral_figures(
            self.converted(amount, matrix.currency).await?,
            self.converted(overshoot, matrix.currency).await?,
            referral.oldest_overdue_days,
            grade,
        );
        let rule = matrix
            .chain_rule(DecisionKind::OrderReferral, &figures)
            .ok_or_else(|| {
                ServiceError::internal("the approval matrix has no ORDER_REFERRAL chain")
            })?;
        let at_stake = if overshoot.amount().is_zero() {
            amount
        } else {
            overshoot
        };
        let authority = self.converted(at_stake, self.base_currency).await?;
        Ok(Chain::start(
            rule,
            version,
            referral.created_by.clone(),
            Some(authority),
        ))
    }

    /// Open referrals with their chains, the ones not yet chosen chosen now (in memory, the
    /// matrix read once and each customer's grade once).
    pub(super) async fn with_chains(
        &self,
        referrals: Vec<Referral>,
    ) -> Result<Vec<Referral>, ServiceError> {
        if referrals.iter().all(|referral| {
            referral.approval_chain.is_some() || referral.status != ReferralStatus::Open
        }) {
            return Ok(referrals);
        }
        let (version, matrix) = self.matrix_in_force(Utc::now()).await?;
        let mut grades: std::collections::HashMap<String, Option<String>> =
            std::collections::HashMap::new();
        let mut out = Vec::with_capacity(referrals.len());
        for mut referral in referrals {
            if referral.approval_chain.is_none() && referral.status == ReferralStatus::Open {
                let grade = match grades.get(&referral.customer_id) {
                    Some(grade) => grade.clone(),
                    None => {
                        let grade = self
                            .limits
                            .customer(&referral.customer_id)
                            .await
                            .map_err(ServiceError::from)?
                            .and_then(|facts| facts.rating)
                            .map(|rating| rating.grade);
                        grades.insert(referral.customer_id.clone(), grade.clone());
                        grade
                    }
                };
                referral.approval_chain = Some(
                    self.referral_chain_under(&referral, version, &matrix, grade)
                        .await?,
                );
            }
            out.push(referral);
        }
        Ok(out)
    }

    /// The referral recorded under a used key, with its hold: the answer to a retry.
    async fn referral_as_it_stands(
        &self,
        referral_id: &str,
    ) -> Result<pb::DecideReferralResponse, ServiceError> {
        let referral = self
            .ledger
            .referral(referral_id)
            .await
            .map_err(ledger_error)?
            .ok_or_else(|| ServiceError::not_found("referral", referral_id))?;
        let hold = if referral.hold_id.is_empty() {
            None
        } else {
            self.ledger
                .hold(&referral.hold_id)
                .await
                .map_err(ledger_error)?
        };
        Ok(pb::DecideReferralResponse {
            referral: Some(referral_to_proto(&referral)),
            hold: hold.as_ref().map(hold_to_proto),
        })
    }

    /// The release of the chain's last approving step: the hold (an audited override,
    /// created even past the limit) of the amount and lifetime the conditions leave.
    async fn release_referred(
        &self,
        referral: Referral,
        expected_revision: i64,
        person: Actor,
        reason: &str,
        requested_ttl: Option<Duration>,
        key: &IdempotencyKey,
    ) -> Result<pb::DecideReferralResponse, ServiceError> {
        let now = Utc::now();
        let ttl = match (requested_ttl, referral.hold_ttl_seconds) {
            (Some(ttl), _) => ttl,
            (None, Some(seconds)) => Duration::from_secs(u64::try_from(seconds).unwrap_or(0)),
            (None, None) => self.policy().await?.default_hold_ttl(),
        };
        let (amount_minor, ttl) =
            released_hold(referral.amount_minor, ttl, &referral.release_conditions)
                .map_err(|refused| ServiceError::invalid("conditions", refused.to_string()))?;
        let mut decided = Referral {
            status: ReferralStatus::Released,
            decided_by: Some(person.clone()),
            decided_at: Some(now),
            decision_reason: reason.to_owned(),
            ..referral.clone()
        };
        for _ in 0..3 {
            let (customer_epoch, group) = self.cached_epochs(&referral.customer_id).await?;
            let hold = released_hold_of(
                &referral,
                ReleasedHold {
                    group_id: group.as_ref().map(|(group_id, _)| group_id.clone()),
                    amount_minor,
                    ttl,
                    by: person.clone(),
                    epoch: customer_epoch,
                    now,
                },
            );
            decided.hold_id = hold.id.clone();
            let events: Vec<pb::Event> = std::iter::once(referral_decided_event(&decided, key))
                .chain(step_event_of(&decided, key))
                .collect();
            let fenced = FencedHold {
                hold: &hold,
                group_epoch: group
                    .as_ref()
                    .map(|(group_id, epoch)| (group_id.as_str(), *epoch)),
            };
            match self
                .ledger
                .decide_referral(&decided, expected_revision, Some(fenced), key, &events)
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
}
