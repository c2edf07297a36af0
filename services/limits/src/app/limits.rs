//! The credit department's use cases on limits: a maker's limit request (checked against the
//! scope, the group's currency, the exposure's currency and the portfolio cap, and approved
//! at once when an auto-approval rule covers it), a checker's four-eyes decision, and the
//! reads of requests, limits and the change log. Also [`CreditAdmin`], which carries the
//! use cases of `policy`, `terms` and `fx` too.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use credit_core::approval::{
    ApprovalMatrix, Chain, DecisionKind, Figures, Progress, StepRefused, Verdict,
};
use credit_core::{Actor, Money, Principal, ServiceError};
use credit_runtime::sql::{IdempotencyKey, Page};
use rust_decimal::Decimal;

use crate::api::convert::{limit_changed_event, step_decided_event};
use crate::domain::limits::{
    self, CreditLimit, HistoryEntry, LimitDecision, LimitRequest, LimitStatus, NewLimitRequest,
    RequestStatus, Scope,
};
use crate::store::{Approval, CustomerFacts, LimitStore, Outcome as StoreOutcome};

use super::approvals::StepAction;
use super::{HotPath, new_id, system_actor};

/// The use cases off the order-time path: limits with maker-checker, the credit policy,
/// terms, FX rates and limit proposals. The hot path's caches are told when a change
/// affects them.
#[derive(Debug, Clone)]
pub struct CreditAdmin {
    pub(super) store: Arc<dyn LimitStore>,
    pub(super) hot: HotPath,
}

/// A limit request as it stands after a call, and the limit it granted, shown as of `as_of`.
#[derive(Debug, Clone)]
pub struct Granted {
    pub request: LimitRequest,
    pub limit: Option<CreditLimit>,
    pub as_of: DateTime<Utc>,
}

/// A scope's limits as GetCreditLimit shows them, as of `as_of`.
#[derive(Debug, Clone)]
pub struct ScopeLimits {
    pub limits: Vec<CreditLimit>,
    pub effective: Option<CreditLimit>,
    /// For the portfolio: the total of the customer limits in force in the cap's currency.
    pub granted_limits_total: Option<Money>,
    pub as_of: DateTime<Utc>,
}

impl CreditAdmin {
    pub fn new(store: Arc<dyn LimitStore>, hot: HotPath) -> Self {
        Self { store, hot }
    }

    /// A maker's request for a limit, filed (once per idempotency key) and approved at once
    /// when a policy rule covers it; a retry answers the request as it stands now.
    pub async fn request_limit_change(
        &self,
        maker: Actor,
        new: NewLimitRequest,
        key: &IdempotencyKey,
        now: DateTime<Utc>,
    ) -> Result<Granted, ServiceError> {
        self.check_scope_exists(&new.scope).await?;
        self.check_group_currency(&new.scope, &new.amount).await?;
        self.check_cap(&new.scope, &new.amount).await?;
        self.check_exposure_currency(&new.scope, &new.amount)
            .await?;
        let current = self
            .store
            .limits(&new.scope)
            .await
            .map_err(ServiceError::from)?;
        let current_amount = limits::effective_limit(&current, now).map(|limit| limit.amount);
        let approval_chain = self
            .choose_chain(&new.scope, new.amount, current_amount, &maker, now)
            .await?;
        let limit_request = LimitRequest {
            id: new_id("lrq"),
            current_amount,
            approval_chain: Some(approval_chain),
            scope: new.scope,
            amount: new.amount,
            valid_from: new.valid_from,
            valid_until: new.valid_until,
            temporary: new.temporary,
            reason: new.reason,
            status: RequestStatus::Pending,
            requested_by: maker,
            requested_at: now,
            decided_by: None,
            decided_at: None,
            decision_reason: String::new(),
            limit_id: None,
            auto_approval_rule_id: None,
        };
        let (stored, granted) = match self
            .store
            .create_limit_request(&limit_request, key)
            .await
            .map_err(ServiceError::from)?
        {
            StoreOutcome::New(created) => self.auto_approve(created, key).await?,
            StoreOutcome::Replayed(existing) => {
                // A retry: the request as it stands now (approved, if a rule approved it).
                let current = self
                    .store
                    .limit_request(&existing.id)
                    .await
                    .map_err(ServiceError::from)?
                    .unwrap_or(existing);
                let granted = self.granted_by(&current).await?;
                (current, granted)
            }
        };
        Ok(Granted {
            request: stored,
            limit: granted,
            as_of: Utc::now(),
        })
    }

    /// A checker's decision through DecideLimitRequest: the verdict on the step that waits.
    pub async fn decide_limit_request(
        &self,
        checker: &Principal,
        decision: LimitDecision,
        key: &IdempotencyKey,
    ) -> Result<Granted, ServiceError> {
        let verdict = if decision.approving {
            Verdict::Approve
        } else {
            Verdict::Reject
        };
        self.decide_limit_step(
            checker,
            &decision.limit_request_id,
            None,
            StepAction::Decide(verdict),
            &decision.reason,
            key,
        )
        .await
    }

    /// A verdict on step `step_index` (the one that waits when `None`) of a limit request's
    /// chain, or the maker's resubmission: four eyes across the chain, the step's role and
    /// authority; when the last approving step approves, the limit is granted (the portfolio
    /// cap checked again). A retry is answered with the request as it stands; a verdict for a
    /// request no longer pending is refused.
    pub async fn decide_limit_step(
        &self,
        decider: &Principal,
        limit_request_id: &str,
        step_index: Option<usize>,
        action: StepAction,
        note: &str,
        key: &IdempotencyKey,
    ) -> Result<Granted, ServiceError> {
        if let Some(recorded) = self
            .store
            .recorded_under(key)
            .await
            .map_err(ServiceError::from)?
        {
            let replayed = self
                .store
                .limit_request(&recorded)
                .await
                .map_err(ServiceError::from)?
                .ok_or_else(|| ServiceError::not_found("limit request", &recorded))?;
            let granted = self.granted_by(&replayed).await?;
            return Ok(Granted {
                request: replayed,
                limit: granted,
                as_of: Utc::now(),
            });
        }
        let pending = self
            .store
            .limit_request(limit_request_id)
            .await
            .map_err(ServiceError::from)?
            .ok_or_else(|| ServiceError::not_found("limit request", limit_request_id))?;
        let mut chain = pending.chain();
        if pending.status != RequestStatus::Pending {
            return Err(StepRefused::NotPending {
                status: chain.status,
            }
            .into());
        }
        let now = Utc::now();
        let step_index = step_index
            .or_else(|| chain.current_step())
            .unwrap_or_default();
        let progress = action
            .apply(&mut chain, decider, step_index, note, now)
            .map_err(ServiceError::from)?;
        let expected_revision = pending.chain_revision();
        let moved = LimitRequest {
            approval_chain: Some(chain),
            ..pending.clone()
        };
        let (decided, approval) = match progress {
            Progress::Approved => {
                let (decided, approval) = self
                    .approval(&moved, Actor::of(decider), note, &key.request_id, None, now)
                    .await?;
                (decided, Some(approval))
            }
            Progress::Rejected => (
                LimitRequest {
                    status: RequestStatus::Rejected,
                    decided_by: Some(Actor::of(decider)),
                    decided_at: Some(now),
                    decision_reason: note.to_owned(),
                    ..moved
                },
                None,
            ),
            Progress::Advanced | Progress::Returned => (moved, None),
        };
        let customer_id = match &decided.scope {
            Scope::Customer(customer_id) => customer_id.as_str(),
            _ => "",
        };
        let step_event = decided
            .approval_chain
            .as_ref()
            .and_then(|chain| step_decided_event(chain, &decided.id, customer_id, &key.request_id));
        let stored = self
            .store
            .decide(
                &decided,
                expected_revision,
                key,
                approval.as_ref(),
                step_event.as_ref(),
            )
            .await
            .map_err(ServiceError::from)?
            .into_inner();
        if approval.is_some() {
            // The cached profile carries the old limit: the next decision rebuilds it.
            self.hot.invalidate(&stored.scope).await;
            if let Scope::Customer(customer_id) = &stored.scope {
                self.hot
                    .referrals_may_have_cleared(customer_id, "a new limit was granted");
            }
        }
        Ok(Granted {
            request: stored,
            limit: approval.map(|approval| approval.limit),
            as_of: now,
        })
    }

    pub async fn list_limit_requests(
        &self,
        scope: Option<&Scope>,
        status: Option<RequestStatus>,
        page: &Page,
    ) -> Result<Vec<LimitRequest>, ServiceError> {
        self.store
            .list_limit_requests(scope, status, page)
            .await
            .map_err(ServiceError::from)
    }

    /// The scope's limits and the one in force; for the portfolio also the total the cap
    /// is measured against. NOT_FOUND for a scope limits has never heard of.
    pub async fn credit_limit(&self, scope: &Scope) -> Result<ScopeLimits, ServiceError> {
        let now = Utc::now();
        let limits = self.store.limits(scope).await.map_err(ServiceError::from)?;
        let effective = limits::effective_limit(&limits, now).cloned();
        let granted_limits_total = match (*scope == Scope::Portfolio, &effective) {
            (true, Some(cap)) => {
                let total: Decimal = self
                    .customer_limits_in_force(now)
                    .await?
                    .iter()
                    .filter(|limit| limit.amount.currency() == cap.amount.currency())
                    .map(|limit| limit.amount.amount())
                    .sum();
                Some(Money::new(total, cap.amount.currency()))
            }
            _ => None,
        };
        if effective.is_none() && limits.is_empty() && *scope != Scope::Portfolio {
            self.check_scope_exists(scope).await?;
        }
        Ok(ScopeLimits {
            limits,
            effective,
            granted_limits_total,
            as_of: now,
        })
    }

    pub async fn limit_history(
        &self,
        scope: &Scope,
        page: &Page,
    ) -> Result<Vec<HistoryEntry>, ServiceError> {
        self.store
            .history(scope, page)
            .await
            .map_err(ServiceError::from)
    }

    /// A downgrade that leaves the customer's limit above the new grade's maximum limit
    /// drafts a request to cut the limit to that maximum, made by the system and decided by
    /// people through its approval chain (the documents: a grade's limit follows the grade).
    /// Once per event; `None` when nothing needs cutting (an upgrade, an unlisted grade, a
    /// grade without a maximum, a limit already within it).
    pub async fn draft_limit_cut_after_downgrade(
        &self,
        customer_id: &str,
        previous_grade: &str,
        grade: &str,
        event_id: &str,
    ) -> Result<Option<LimitRequest>, ServiceError> {
        let policy = self.hot.stored_policy().await?;
        let (Some(before), Some(after)) = (policy.rank(previous_grade), policy.rank(grade)) else {
            return Ok(None);
        };
        let (grade_policy, _) = policy.for_grade(Some(grade));
        let Some(max_limit) = grade_policy.max_limit.filter(|_| after > before) else {
            return Ok(None);
        };
        let now = Utc::now();
        let scope = Scope::Customer(customer_id.to_owned());
        let limits = self
            .store
            .limits(&scope)
            .await
            .map_err(ServiceError::from)?;
        let Some(current) = limits::effective_limit(&limits, now) else {
            return Ok(None);
        };
        let cut_to = self
            .hot
            .converted(max_limit, current.amount.currency())
            .await?;
        if current.amount.amount() <= cut_to.amount() {
            return Ok(None);
        }
        let system = system_actor();
        let key = IdempotencyKey::of_system(
            "limits",
            format!("limit-cut:{event_id}"),
            "DraftLimitCut",
            event_id.to_owned(),
        );
        let new = NewLimitRequest {
            scope,
            amount: cut_to,
            valid_from: now,
            valid_until: None,
            temporary: false,
            reason: format!(
                "downgraded from {previous_grade} to {grade}: the limit of {} is above the grade's maximum of {max_limit}",
                current.amount
            ),
        };
        let drafted = self.request_limit_change(system, new, &key, now).await?;
        Ok(Some(drafted.request))
    }

    /// The approval matrix in force at `now` and its version (0 = the shipped one).
    pub(super) async fn matrix_in_force(
        &self,
        now: DateTime<Utc>,
    ) -> Result<(u32, ApprovalMatrix), ServiceError> {
        self.hot.matrix_in_force(now).await
    }

    /// The chain the matrix in force chooses for a request of `amount` for `scope`: from the
    /// amount and its change against the limit in force, the customer's grade and whether the
    /// amount exceeds that grade's maximum limit. Amounts are converted into the matrix's
    /// currency (and the authority the chain needs into the base currency) at today's rate.
    async fn choose_chain(
        &self,
        scope: &Scope,
        amount: Money,
        current_amount: Option<Money>,
        maker: &Actor,
        now: DateTime<Utc>,
    ) -> Result<Chain, ServiceError> {
        let (version, matrix) = self.matrix_in_force(now).await?;
        let grade = match scope {
            Scope::Customer(customer_id) => self
                .store
                .customer(customer_id)
                .await
                .map_err(ServiceError::from)?
                .and_then(|facts| facts.rating)
                .map(|rating| rating.grade),
            _ => None,
        };
        let exceeds_grade_max_limit = match &grade {
            Some(grade) => {
                let policy = self.hot.stored_policy().await?;
                let (grade_policy, listed) = policy.for_grade(Some(grade));
                match (listed, grade_policy.max_limit) {
                    (true, Some(max)) => {
                        self.hot.converted(amount, max.currency()).await?.amount() > max.amount()
                    }
                    _ => false,
                }
            }
            None => false,
        };
        let change_percent = current_amount
            .filter(|current| {
                current.currency() == amount.currency() && !current.amount().is_zero()
            })
            .and_then(|current| {
                (amount.amount() - current.amount())
                    .checked_mul(Decimal::ONE_HUNDRED)?
                    .checked_div(current.amount())
            });
        let figures = Figures {
            amount: Some(self.hot.converted(amount, matrix.currency).await?.amount()),
            change_percent,
            grade,
            exceeds_grade_max_limit,
            ..Figures::default()
        };
        let rule = matrix
            .chain_rule(DecisionKind::LimitRequest, &figures)
            .ok_or_else(|| {
                ServiceError::internal("the approval matrix has no LIMIT_REQUEST chain")
            })?;
        let authority = self.hot.converted(amount, self.hot.base_currency()).await?;
        Ok(Chain::start(rule, version, maker.clone(), Some(authority)))
    }

    /// The limit `request` granted, if it granted one.
    async fn granted_by(
        &self,
        request: &LimitRequest,
    ) -> Result<Option<CreditLimit>, ServiceError> {
        Ok(match &request.limit_id {
            Some(limit_id) => self
                .store
                .limits(&request.scope)
                .await
                .map_err(ServiceError::from)?
                .into_iter()
                .find(|limit| &limit.id == limit_id),
            None => None,
        })
    }

    /// NOT_FOUND unless limits knows the customer (from intake's events).
    pub(super) async fn require_customer(
        &self,
        customer_id: &str,
    ) -> Result<CustomerFacts, ServiceError> {
        if customer_id.is_empty() {
            return Err(ServiceError::invalid("customer_id", "is required"));
        }
        self.store
            .customer(customer_id)
            .await
            .map_err(ServiceError::from)?
            .ok_or_else(|| ServiceError::not_found("customer", customer_id))
    }

    /// Everything approving `pending` writes: the decided request, the limit, the limits it
    /// supersedes, the change log entry and the LimitChanged event. `approver` is the checker,
    /// or the system when `rule_id` names the auto-approval rule that approved it.
    async fn approval(
        &self,
        pending: &LimitRequest,
        approver: Actor,
        reason: &str,
        request_id: &str,
        rule_id: Option<String>,
        now: DateTime<Utc>,
    ) -> Result<(LimitRequest, Approval), ServiceError> {
        self.check_cap(&pending.scope, &pending.amount).await?;
        self.check_exposure_currency(&pending.scope, &pending.amount)
            .await?;
        let current = self
            .store
            .limits(&pending.scope)
            .await
            .map_err(ServiceError::from)?;
        if let Some(customer_id) = self.investigation_missing(&pending.scope, &current).await? {
            return Err(ServiceError::FailedPrecondition {
                reason: "INVESTIGATION_REQUIRED",
                message: format!(
                    "the credit policy approves no first limit before the customer's credit \
                     investigation is completed, and {customer_id} has none \
                     (IntakeService.CompleteInvestigation)"
                ),
                metadata: vec![("customer_id", customer_id)],
            });
        }
        self.check_file_fresh(&pending.scope, now).await?;
        let previous = limits::effective_limit(&current, now).map(|limit| limit.amount);
        let limit = CreditLimit {
            id: new_id("lim"),
            scope: pending.scope.clone(),
            amount: pending.amount,
            valid_from: pending.valid_from,
            valid_until: pending.valid_until,
            temporary: pending.temporary,
            status: LimitStatus::Active,
            limit_request_id: pending.id.clone(),
            requested_by: pending.requested_by.clone(),
            approved_by: approver.clone(),
            granted_at: now,
            reason: pending.reason.clone(),
            auto_approval_rule_id: rule_id.clone(),
        };
        // A new permanent limit replaces the scope's permanent ones; temporary limits run
        // out by themselves.
        let superseded = if pending.temporary {
            Vec::new()
        } else {
            current
                .iter()
                .filter(|old| !old.temporary)
                .map(|old| old.id.clone())
                .collect()
        };
        let decided = LimitRequest {
            status: RequestStatus::Approved,
            decided_by: rule_id.is_none().then(|| approver.clone()),
            decided_at: Some(now),
            decision_reason: reason.to_owned(),
            limit_id: Some(limit.id.clone()),
            auto_approval_rule_id: rule_id.clone(),
            ..pending.clone()
        };
        let history = HistoryEntry {
            id: new_id("lhi"),
            scope: pending.scope.clone(),
            limit_id: limit.id.clone(),
            limit_request_id: pending.id.clone(),
            previous_amount: previous,
            amount: limit.amount,
            valid_from: limit.valid_from,
            valid_until: limit.valid_until,
            temporary: limit.temporary,
            requested_by: pending.requested_by.clone(),
            approved_by: approver.clone(),
            reason: pending.reason.clone(),
            decision_reason: reason.to_owned(),
            changed_at: now,
            auto_approval_rule_id: rule_id.clone(),
        };
        let event = limit_changed_event(&limit, previous, &approver, request_id, rule_id);
        Ok((
            decided,
            Approval {
                limit,
                superseded,
                history,
                event,
            },
        ))
    }

    /// The customer whose first limit `scope` would be, when the credit policy requires a
    /// completed credit investigation before it and limits has heard of none. `current` holds
    /// every limit the scope ever had: a customer whose limit is changed or renewed is not
    /// asked again.
    async fn investigation_missing(
        &self,
        scope: &Scope,
        current: &[CreditLimit],
    ) -> Result<Option<String>, ServiceError> {
        let Scope::Customer(customer_id) = scope else {
            return Ok(None);
        };
        if !current.is_empty()
            || !self
                .hot
                .stored_policy()
                .await?
                .investigation_required_for_first_limit
        {
            return Ok(None);
        }
        let completed = self
            .store
            .completed_investigation(customer_id)
            .await
            .map_err(ServiceError::from)?;
        Ok(completed.is_none().then(|| customer_id.clone()))
    }

    /// FAILED_PRECONDITION CREDIT_FILE_STALE when the credit policy holds approvals while a
    /// customer's current rating has stale inputs: stale at rating, or gone stale since.
    async fn check_file_fresh(
        &self,
        scope: &Scope,
        now: DateTime<Utc>,
    ) -> Result<(), ServiceError> {
        let Scope::Customer(customer_id) = scope else {
            return Ok(());
        };
        if !self.hot.stored_policy().await?.freshness.block_approval {
            return Ok(());
        }
        let Some((stale, stale_on)) = self
            .store
            .rating_freshness(customer_id)
            .await
            .map_err(ServiceError::from)?
        else {
            return Ok(());
        };
        let gone_stale = stale_on.filter(|day| *day <= now.date_naive());
        if stale.is_empty() && gone_stale.is_none() {
            return Ok(());
        }
        let what = match (stale.is_empty(), gone_stale) {
            (false, _) => format!("its rating was made on stale inputs ({stale})"),
            (true, Some(day)) => format!("an input of its rating went stale on {day}"),
            (true, None) => String::new(),
        };
        Err(ServiceError::FailedPrecondition {
            reason: "CREDIT_FILE_STALE",
            message: format!(
                "the credit policy approves no limit on a stale credit file: {what}; bring the \
                 file up to date and rate the customer again"
            ),
            metadata: vec![("customer_id", customer_id.clone())],
        })
    }

    /// Approves a new customer limit request at once when a policy rule covers it; the
    /// request as it stands afterwards, and the limit when one was granted.
    async fn auto_approve(
        &self,
        created: LimitRequest,
        request_key: &IdempotencyKey,
    ) -> Result<(LimitRequest, Option<CreditLimit>), ServiceError> {
        let request_id = request_key.request_id.as_str();
        let Scope::Customer(customer_id) = &created.scope else {
            return Ok((created, None));
        };
        let policy = self.hot.stored_policy().await?;
        let facts = self
            .store
            .customer(customer_id)
            .await
            .map_err(ServiceError::from)?;
        let grade = facts
            .as_ref()
            .and_then(|facts| facts.rating.as_ref())
            .map(|rating| rating.grade.as_str());
        let Some(rule) = policy.auto_approval(grade, created.current_amount, created.amount) else {
            return Ok((created, None));
        };
        // A first limit the policy keeps until the investigation is done, or a limit on a stale
        // credit file, waits for its chain instead; the person approving it is held to the same
        // rules.
        let current = self
            .store
            .limits(&created.scope)
            .await
            .map_err(ServiceError::from)?;
        let stale = self.check_file_fresh(&created.scope, Utc::now()).await;
        if self
            .investigation_missing(&created.scope, &current)
            .await?
            .is_some()
            || stale.is_err()
        {
            return Ok((created, None));
        }
        let system = Actor {
            principal_id: "system:limits".to_owned(),
            person_id: "system:limits".to_owned(),
            name: format!("auto-approval rule {}", rule.rule_id),
            roles: Vec::new(),
        };
        let now = Utc::now();
        let reason = format!(
            "auto-approved by rule {}: {}",
            rule.rule_id, rule.description
        );
        let (decided, approval) = self
            .approval(
                &created,
                system,
                &reason,
                request_id,
                Some(rule.rule_id.clone()),
                now,
            )
            .await?;
        // The decision's own idempotency key, derived from the request's: a retry of the
        // request replays the stored (approved) request instead.
        let key = request_key.derived(
            format!("{request_id}#auto-approval"),
            "AutoApproveLimitRequest",
            created.id.clone(),
        );
        // Approved by policy: no person's chain remains (nor its place in anyone's queue).
        let decided = LimitRequest {
            approval_chain: None,
            ..decided
        };
        let stored = self
            .store
            .decide(
                &decided,
                created.chain_revision(),
                &key,
                Some(&approval),
                None,
            )
            .await
            .map_err(ServiceError::from)?
            .into_inner();
        self.hot.invalidate(&stored.scope).await;
        Ok((stored, Some(approval.limit)))
    }

    /// A group's limit and its members' limits share one currency: the group's exposure is
    /// the sum of the members' exposures, each kept in its limit's currency, and a sum across
    /// currencies would compare nothing with the group's limit. FAILED_PRECONDITION
    /// CURRENCY_MISMATCH names the currency already in use.
    async fn check_group_currency(
        &self,
        scope: &Scope,
        amount: &Money,
    ) -> Result<(), ServiceError> {
        let now = Utc::now();
        let currency_of = |limits: Vec<CreditLimit>| {
            limits::effective_limit(&limits, now).map(|limit| limit.amount.currency())
        };
        let in_use = match scope {
            Scope::Customer(customer_id) => {
                let group_id = self
                    .store
                    .customer(customer_id)
                    .await
                    .map_err(ServiceError::from)?
                    .and_then(|facts| facts.group_id);
                match group_id {
                    Some(group_id) => currency_of(
                        self.store
                            .limits(&Scope::Group(group_id))
                            .await
                            .map_err(ServiceError::from)?,
                    ),
                    None => None,
                }
            }
            Scope::Group(group_id) => {
                let mut found = None;
                for member in self
                    .store
                    .group_members(group_id)
                    .await
                    .map_err(ServiceError::from)?
                {
                    found = currency_of(
                        self.store
                            .limits(&Scope::Customer(member))
                            .await
                            .map_err(ServiceError::from)?,
                    )
                    .filter(|currency| *currency != amount.currency());
                    if found.is_some() {
                        break;
                    }
                }
                found
            }
            Scope::Portfolio => None,
        };
        match in_use {
            Some(currency) if currency != amount.currency() => {
                Err(ServiceError::FailedPrecondition {
                    reason: "CURRENCY_MISMATCH",
                    message: format!(
                        "a group's limit and its members' limits share one currency; this one is in {currency}"
                    ),
                    metadata: vec![("currency", currency.code().to_owned())],
                })
            }
            _ => Ok(()),
        }
    }

    /// A limit may be requested only for a customer or group limits knows of (from intake's
    /// events), so a typo cannot create a limit nobody will ever use.
    async fn check_scope_exists(&self, scope: &Scope) -> Result<(), ServiceError> {
        let known = match scope {
            Scope::Customer(id) => self
                .store
                .customer(id)
                .await
                .map_err(ServiceError::from)?
                .is_some(),
            Scope::Group(id) => self
                .store
                .group_known(id)
                .await
                .map_err(ServiceError::from)?,
            Scope::Portfolio => true,
        };
        if !known {
            let (resource, id) = match scope {
                Scope::Customer(id) => ("customer", id.clone()),
                Scope::Group(id) => ("group", id.clone()),
                Scope::Portfolio => ("portfolio", String::new()),
            };
            return Err(ServiceError::not_found(resource, id));
        }
        Ok(())
    }

    /// A scope's exposure is kept in one currency (its limit's, else the base currency) and
    /// the ledger's figures carry no currency of their own: a limit in another currency may
    /// be granted only while the scope has no exposure, or every figure would change meaning.
    async fn check_exposure_currency(
        &self,
        scope: &Scope,
        amount: &Money,
    ) -> Result<(), ServiceError> {
        if matches!(scope, Scope::Portfolio) {
            return Ok(());
        }
        let kept_in = self.hot.exposure_currency(scope).await?;
        if kept_in == amount.currency() {
            return Ok(());
        }
        let exposure = self.hot.ledger_exposure(scope).await?;
        if exposure == 0 {
            return Ok(());
        }
        Err(ServiceError::FailedPrecondition {
            reason: "EXPOSURE_CURRENCY_MISMATCH",
            message: format!(
                "the exposure of {} is kept in {kept_in} and is not zero; grant the limit in {kept_in} (a limit in {} can replace it once the exposure is cleared)",
                scope.key(),
                amount.currency()
            ),
            metadata: vec![("exposure_currency", kept_in.code().to_owned())],
        })
    }

    /// The limit in force for each customer now (every customer limit is read).
    async fn customer_limits_in_force(
        &self,
        now: DateTime<Utc>,
    ) -> Result<Vec<CreditLimit>, ServiceError> {
        let all = self
            .store
            .customer_limits()
            .await
            .map_err(ServiceError::from)?;
        Ok(limits::limits_in_force(all, now))
    }

    /// Refuses `amount` for `scope` early when it would take the customer limits past the
    /// cap (the request is not even filed). Reads every customer limit: fine for the
    /// thousands of customers of a seller. The approval checks again inside its transaction.
    async fn check_cap(&self, scope: &Scope, amount: &Money) -> Result<(), ServiceError> {
        let portfolio = self
            .store
            .limits(&Scope::Portfolio)
            .await
            .map_err(ServiceError::from)?;
        if portfolio.is_empty() {
            return Ok(());
        }
        let customer_limits = self
            .store
            .customer_limits()
            .await
            .map_err(ServiceError::from)?;
        limits::check_portfolio(&portfolio, customer_limits, scope, amount, Utc::now())
            .map_err(ServiceError::from)
    }
}
