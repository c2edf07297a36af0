//! The security register's use cases: registration, release and revaluation walked through
//! the matrix's SECURITY_CHANGE chain (maker-checker), and the expiry sweep.
//!
//! Whatever changes what a customer's profile counts — a security taking effect or ending, a
//! guarantee given — evicts the cached profiles of the customer and of a guarantor, after the
//! store committed the change: the next order rebuilds them from the register, as it does
//! after a limit change.

use chrono::{DateTime, Utc};
use credit_core::approval::{Chain, DecisionKind, Figures, Progress, shipped_matrix};
use credit_core::{Money, Principal, ServiceError};
use credit_proto::v1 as pb;
use credit_runtime::sql::IdempotencyKey;

use crate::api::convert::{security_changed_event, step_decided_event};
use crate::domain::limits::{Actor, Scope};
use crate::domain::security::{ChangeAction, ChangeEffect, NewSecurity, Security, SecurityStatus};

use super::approvals::StepAction;
use super::{CreditAdmin, new_id, system_actor};

/// The most securities one expiry sweep ends; the next sweep takes the rest.
const EXPIRIES_PER_SWEEP: i64 = 200;

/// What a change that took effect is called in SecurityChanged.
fn change_name(action: &ChangeAction) -> &'static str {
    match action {
        ChangeAction::Register => "REGISTERED",
        ChangeAction::Release => "RELEASED",
        ChangeAction::Revalue { .. } => "REVALUED",
    }
}

impl CreditAdmin {
    /// The SECURITY_CHANGE chain of the matrix in force for a change of a customer's security
    /// of `amount` asked by `maker` (the shipped rule when the matrix predates the register).
    async fn security_chain(
        &self,
        customer_id: &str,
        amount: Money,
        maker: &Actor,
        now: DateTime<Utc>,
    ) -> Result<Chain, ServiceError> {
        let grade = self
            .store
            .customer(customer_id)
            .await
            .map_err(ServiceError::from)?
            .and_then(|facts| facts.rating)
            .map(|rating| rating.grade);
        let (version, matrix) = self.matrix_in_force(now).await?;
        let in_matrix = self.hot.converted(amount, matrix.currency).await?;
        let figures = Figures {
            amount: Some(in_matrix.amount()),
            grade,
            ..Figures::default()
        };
        let shipped = shipped_matrix(self.hot.base_currency());
        let (version, rule) = match matrix.chain_rule(DecisionKind::SecurityChange, &figures) {
            Some(rule) => (version, rule.clone()),
            None => (
                0,
                shipped
                    .chain_rule(DecisionKind::SecurityChange, &figures)
                    .cloned()
                    .ok_or_else(|| {
                        ServiceError::internal("the shipped matrix has no SECURITY_CHANGE rule")
                    })?,
            ),
        };
        Ok(Chain::start(&rule, version, maker.clone(), None))
    }

    /// Registers a security, pending its chain. The customer (and a guarantor) must be known
    /// to limits.
    pub async fn register_security(
        &self,
        principal: &Principal,
        new: NewSecurity,
        key: &IdempotencyKey,
    ) -> Result<Security, ServiceError> {
        let now = Utc::now();
        let checked = new.check(now.date_naive(), "security.")?;
        for (field, customer_id) in [
            ("security.customer_id", Some(&checked.customer_id)),
            (
                "security.guarantor_customer_id",
                checked.guarantor_customer_id.as_ref(),
            ),
        ] {
            let Some(customer_id) = customer_id else {
                continue;
            };
            if self
                .store
                .customer(customer_id)
                .await
                .map_err(ServiceError::from)?
                .is_none()
            {
                return Err(ServiceError::not_found(
                    if field.ends_with("guarantor_customer_id") {
                        "guarantor"
                    } else {
                        "customer"
                    },
                    customer_id,
                ));
            }
        }
        let maker = Actor::of(principal);
        let chain = self
            .security_chain(&checked.customer_id, checked.amount, &maker, now)
            .await?;
        let security = checked.into_security(new_id("sec"), chain, maker, now);
        self.store
            .register_security(&security, key)
            .await
            .map(|outcome| outcome.into_inner())
            .map_err(ServiceError::from)
    }

    /// Asks to release or revalue an active security; a lower valuation applies at once.
    pub async fn change_security(
        &self,
        principal: &Principal,
        security_id: &str,
        action: ChangeAction,
        reason: String,
        key: &IdempotencyKey,
    ) -> Result<Security, ServiceError> {
        let now = Utc::now();
        let mut security = self.security(security_id).await?;
        let expected_revision = security.revision;
        let maker = Actor::of(principal);
        let chain = self
            .security_chain(&security.customer_id, security.amount, &maker, now)
            .await?;
        let effect = match security.request_change(action.clone(), reason, chain, now) {
            Ok(effect) => effect,
            Err(refused) => return self.retried_or(key, security, refused.into()).await,
        };
        let events = match effect {
            ChangeEffect::Applied => vec![security_changed_event(
                &security,
                change_name(&action),
                &maker,
                &key.request_id,
            )],
            ChangeEffect::Pending => Vec::new(),
        };
        let saved = self
            .store
            .save_security(&security, expected_revision, key, &events, now)
            .await
            .map_err(ServiceError::from)?;
        if effect == ChangeEffect::Applied {
            self.reevaluate(&security).await;
        }
        Ok(saved.into_inner())
    }

    /// A refused call answered as a retry: when its key already recorded a change, the
    /// security as it stands (the first call did the work); otherwise the refusal.
    async fn retried_or(
        &self,
        key: &IdempotencyKey,
        security: Security,
        refused: ServiceError,
    ) -> Result<Security, ServiceError> {
        let recorded = self
            .store
            .recorded_under(key)
            .await
            .map_err(ServiceError::from)?;
        match recorded {
            Some(_) => Ok(security),
            None => Err(refused),
        }
    }

    pub async fn security(&self, security_id: &str) -> Result<Security, ServiceError> {
        self.store
            .security(security_id)
            .await
            .map_err(ServiceError::from)?
            .ok_or_else(|| ServiceError::not_found("security", security_id))
    }

    /// A verdict (or the maker's resubmission) on the chain of a security's pending change;
    /// an approval applies the change, a rejection drops it (a rejected registration ends the
    /// security).
    #[allow(clippy::too_many_arguments)]
    pub(super) async fn decide_security_step(
        &self,
        principal: &Principal,
        security_id: &str,
        step_index: usize,
        action: StepAction,
        note: &str,
        key: &IdempotencyKey,
        now: DateTime<Utc>,
    ) -> Result<Security, ServiceError> {
        let mut security = self.security(security_id).await?;
        let expected_revision = security.revision;
        let as_stored = security.clone();
        let Some(pending) = security.pending.as_mut() else {
            let refused = ServiceError::failed_precondition(
                "REQUEST_NOT_PENDING",
                "no change of this security waits for a decision",
            );
            return self.retried_or(key, as_stored, refused).await;
        };
        let progress = match action.apply(&mut pending.chain, principal, step_index, note, now) {
            Ok(progress) => progress,
            Err(refused) => return self.retried_or(key, as_stored, refused.into()).await,
        };
        let change = pending.action.clone();
        let maker = pending.chain.maker.clone();
        let step_event = step_decided_event(
            &pending.chain,
            &security.security_id,
            &security.customer_id,
            &key.request_id,
        );
        security.revision = security.revision.saturating_add(1);
        let mut events: Vec<pb::Event> = step_event.into_iter().collect();
        let took_effect = match progress {
            Progress::Approved => {
                security.settle_pending(true, now);
                events.push(security_changed_event(
                    &security,
                    change_name(&change),
                    &maker,
                    &key.request_id,
                ));
                true
            }
            Progress::Rejected => {
                security.settle_pending(false, now);
                false
            }
            Progress::Advanced | Progress::Returned => false,
        };
        let saved = self
            .store
            .save_security(&security, expected_revision, key, &events, now)
            .await
            .map_err(ServiceError::from)?
            .into_inner();
        if took_effect {
            self.reevaluate(&saved).await;
        }
        Ok(saved)
    }

    /// Ends the active securities whose validity ran out before today, each with its
    /// SecurityChanged, and re-evaluates their customers and guarantors. The number ended.
    pub async fn expire_securities(&self, now: DateTime<Utc>) -> Result<usize, ServiceError> {
        let today = now.date_naive();
        let due = self
            .store
            .securities_expired_by(today, EXPIRIES_PER_SWEEP)
            .await
            .map_err(ServiceError::from)?;
        let mut ended = 0;
        for mut security in due {
            let expected_revision = security.revision;
            if !security.expire(today, now) {
                continue;
            }
            let system = system_actor();
            // One key per security and end: a second replica's sweep is answered by the first.
            let key = IdempotencyKey {
                caller: system.name.clone(),
                request_id: format!("expire:{}", security.security_id),
                operation: "ExpireSecurity",
                fingerprint: security.security_id.clone(),
            };
            let event = security_changed_event(&security, "EXPIRED", &system, &key.request_id);
            match self
                .store
                .save_security(&security, expected_revision, &key, &[event], now)
                .await
            {
                Ok(_) => {
                    self.reevaluate(&security).await;
                    ended += 1;
                }
                Err(error) => {
                    tracing::warn!(security_id = %security.security_id, error = %error, "could not expire a security; the next sweep retries");
                }
            }
        }
        Ok(ended)
    }

    /// Evicts the cached profiles whose cover the security changes: its customer's and, for
    /// a third-party guarantee, its guarantor's.
    async fn reevaluate(&self, security: &Security) {
        self.hot
            .invalidate(&Scope::Customer(security.customer_id.clone()))
            .await;
        if let Some(guarantor) = &security.guarantor_customer_id {
            self.hot
                .invalidate(&Scope::Customer(guarantor.clone()))
                .await;
        }
        if security.status != SecurityStatus::Active {
            tracing::info!(security_id = %security.security_id, status = security.status.as_str(), "security no longer counts");
        }
    }
}
