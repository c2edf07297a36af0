//! The gRPC handlers of `credit.v1.LimitService` that have landed: limits and their
//! four-eyes approval, limit proposals from policy, the order-time RPCs, referrals, manual
//! credit blocks and the reconciliation of cached exposure. The others answer UNIMPLEMENTED
//! until they land.

use std::sync::Arc;

use chrono::Utc;
use credit_core::{Currency, Money, ServiceError};
use credit_proto::service_names::LIMITS;
use credit_proto::v1 as pb;
use credit_proto::v1::event::Payload;
use credit_proto::v1::limit_service_server::LimitService;
use credit_runtime::events::new_event;
use credit_runtime::principal;
use credit_runtime::sql::{IdempotencyKey, Page, fingerprint, storage_error};
use rust_decimal::Decimal;
use tonic::{Request, Response, Status};

use crate::domain::fx::FxRate;
use crate::domain::limits::{
    self, CreditLimit, HistoryEntry, LimitRequest, LimitStatus, Person, RequestStatus, Scope,
};
use crate::domain::policy::{PaymentTerms, PolicyChange};
use crate::domain::proposal::{self, ProposalCurrency};
use crate::domain::terms::{self, CustomerTerms, EffectiveTerms};
use crate::hot_path::{HotPath, hold_to_proto, ledger_error};
use crate::ledger::HoldStatus;
use crate::store::{Approval, CustomerFacts, LimitStore, Outcome as StoreOutcome, StoreError};

#[derive(Debug, Clone)]
pub struct LimitsApi {
    store: Arc<dyn LimitStore>,
    hot: HotPath,
}

impl LimitsApi {
    pub fn new(store: Arc<dyn LimitStore>, hot: HotPath) -> Self {
        Self { store, hot }
    }

    /// NOT_FOUND unless limits knows the customer (from intake's events).
    async fn require_customer(&self, customer_id: &str) -> Result<CustomerFacts, ServiceError> {
        if customer_id.is_empty() {
            return Err(ServiceError::invalid("customer_id", "is required"));
        }
        self.store
            .customer(customer_id)
            .await
            .map_err(store_error)?
            .ok_or_else(|| ServiceError::not_found("customer", customer_id))
    }

    /// Everything approving `pending` writes: the decided request, the limit, the limits it
    /// supersedes, the change log entry and the LimitChanged event. `approver` is the checker,
    /// or the system when `rule_id` names the auto-approval rule that approved it.
    async fn approval(
        &self,
        pending: &LimitRequest,
        approver: Person,
        reason: &str,
        request_id: &str,
        rule_id: Option<String>,
        now: chrono::DateTime<Utc>,
    ) -> Result<(LimitRequest, Approval), ServiceError> {
        self.check_cap(&pending.scope, &pending.amount).await?;
        self.check_exposure_currency(&pending.scope, &pending.amount)
            .await?;
        let current = self
            .store
            .limits(&pending.scope)
            .await
            .map_err(store_error)?;
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
        let (customer_id, group_id) = match &pending.scope {
            Scope::Customer(id) => (id.clone(), String::new()),
            Scope::Group(id) => (String::new(), id.clone()),
            Scope::Portfolio => (String::new(), String::new()),
        };
        let event = pb::Event {
            aggregate_id: limit.id.clone(),
            customer_id,
            group_id,
            actor: Some(approver.to_proto()),
            request_id: request_id.to_owned(),
            ..new_event(
                LIMITS,
                Payload::LimitChanged(pb::LimitChanged {
                    scope: Some(limit.scope.to_proto()),
                    limit_id: limit.id.clone(),
                    previous_amount: previous.map(Into::into),
                    amount: Some(limit.amount.into()),
                    valid_from: Some(limits::to_timestamp(limit.valid_from)),
                    valid_until: limit.valid_until.map(limits::to_timestamp),
                    temporary: limit.temporary,
                    limit_request_id: pending.id.clone(),
                    requested_by: pending.requested_by.name.clone(),
                    approved_by: approver.name.clone(),
                    auto_approval_rule_id: rule_id.unwrap_or_default(),
                }),
            )
        };
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

    /// Approves a new customer limit request at once when a policy rule covers it; the
    /// request as it stands afterwards, and the limit when one was granted.
    async fn auto_approve(
        &self,
        created: LimitRequest,
        request_id: &str,
    ) -> Result<(LimitRequest, Option<CreditLimit>), ServiceError> {
        let Scope::Customer(customer_id) = &created.scope else {
            return Ok((created, None));
        };
        let policy = self.hot.stored_policy().await?;
        let facts = self
            .store
            .customer(customer_id)
            .await
            .map_err(store_error)?;
        let grade = facts
            .as_ref()
            .and_then(|facts| facts.rating.as_ref())
            .map(|rating| rating.grade.as_str());
        let Some(rule) = policy.auto_approval(grade, created.current_amount, created.amount) else {
            return Ok((created, None));
        };
        let system = Person {
            principal_id: "system:limits".to_owned(),
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
        let key = IdempotencyKey {
            request_id: format!("{request_id}#auto-approval"),
            operation: "AutoApproveLimitRequest",
            fingerprint: created.id.clone(),
        };
        let stored = self
            .store
            .decide(&decided, &key, Some(&approval))
            .await
            .map_err(store_error)?
            .into_inner();
        self.hot.invalidate(&stored.scope).await;
        Ok((stored, Some(approval.limit)))
    }

    /// The customer's own terms over the policy's defaults for its grade.
    async fn effective_terms(&self, customer_id: &str) -> Result<EffectiveTerms, ServiceError> {
        let facts = self.require_customer(customer_id).await?;
        let own = self.store.terms(customer_id).await.map_err(store_error)?;
        let policy = self.hot.stored_policy().await?;
        let grade = facts.rating.as_ref().map(|rating| rating.grade.as_str());
        Ok(terms::effective(customer_id, own.as_ref(), &policy, grade))
    }
}

fn policy_moved() -> ServiceError {
    ServiceError::Aborted {
        reason: "ETAG_MISMATCH",
        message: "the credit policy changed meanwhile; read it again and retry".to_owned(),
    }
}

type Answer<T> = Result<Response<T>, Status>;

fn new_id(prefix: &str) -> String {
    format!("{prefix}_{}", uuid::Uuid::now_v7().simple())
}

fn key(
    request_id: &str,
    operation: &'static str,
    content: &impl prost::Message,
) -> Result<IdempotencyKey, ServiceError> {
    let request_id = request_id.trim();
    if request_id.is_empty() || request_id.len() > 100 {
        return Err(ServiceError::invalid(
            "request_id",
            "is required, at most 100 characters",
        ));
    }
    Ok(IdempotencyKey {
        request_id: request_id.to_owned(),
        operation,
        fingerprint: fingerprint(content),
    })
}

/// Runs a call that writes the ledger and the exposure cache one after the other in a task of
/// its own, so it reaches its end even when the caller goes away (a deadline, a closed
/// connection) instead of stopping between the two writes: a reservation is then written
/// durably or taken back, a released referral's hold reaches the cache. A crash in between is
/// left to the background reconcile.
async fn run_to_end<T: Send + 'static>(
    call: impl std::future::Future<Output = Result<T, ServiceError>> + Send + 'static,
) -> Answer<T> {
    let answer = tokio::spawn(call)
        .await
        .map_err(|error| ServiceError::internal(format!("the call's task failed: {error}")))?;
    Ok(Response::new(answer?))
}

fn store_error(error: StoreError) -> ServiceError {
    match error {
        StoreError::KeyReused(_) => ServiceError::AlreadyExists {
            reason: "IDEMPOTENCY_KEY_REUSED",
            message: "request_id was used before with different content".to_owned(),
            metadata: Vec::new(),
        },
        StoreError::NotPending => ServiceError::failed_precondition(
            "REQUEST_NOT_PENDING",
            "the limit request was decided meanwhile",
        ),
        StoreError::Database(error) => storage_error(error),
        StoreError::Refused(answer) => *answer,
        corrupt @ StoreError::Corrupt(_) => ServiceError::internal(corrupt),
    }
}

impl LimitsApi {
    /// A limit may be requested only for a customer or group limits knows of (from intake's
    /// events), so a typo cannot create a limit nobody will ever use.
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
                    .map_err(store_error)?
                    .and_then(|facts| facts.group_id);
                match group_id {
                    Some(group_id) => currency_of(
                        self.store
                            .limits(&Scope::Group(group_id))
                            .await
                            .map_err(store_error)?,
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
                    .map_err(store_error)?
                {
                    found = currency_of(
                        self.store
                            .limits(&Scope::Customer(member))
                            .await
                            .map_err(store_error)?,
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

    async fn check_scope_exists(&self, scope: &Scope) -> Result<(), ServiceError> {
        let known = match scope {
            Scope::Customer(id) => self
                .store
                .customer(id)
                .await
                .map_err(store_error)?
                .is_some(),
            Scope::Group(id) => self.store.group_known(id).await.map_err(store_error)?,
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
        now: chrono::DateTime<Utc>,
    ) -> Result<Vec<CreditLimit>, ServiceError> {
        let all = self.store.customer_limits().await.map_err(store_error)?;
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
            .map_err(store_error)?;
        if portfolio.is_empty() {
            return Ok(());
        }
        let customer_limits = self.store.customer_limits().await.map_err(store_error)?;
        limits::check_portfolio(&portfolio, customer_limits, scope, amount, Utc::now())
    }
}

#[tonic::async_trait]
impl LimitService for LimitsApi {
    async fn request_limit_change(
        &self,
        request: Request<pb::RequestLimitChangeRequest>,
    ) -> Answer<pb::RequestLimitChangeResponse> {
        let maker = Person::of(principal(&request)?);
        let request = request.into_inner();
        let key = key(&request.request_id, "RequestLimitChange", &request)?;
        let now = Utc::now();
        let new = limits::parse_limit_request(&request, now)?;
        self.check_scope_exists(&new.scope).await?;
        self.check_group_currency(&new.scope, &new.amount).await?;
        self.check_cap(&new.scope, &new.amount).await?;
        self.check_exposure_currency(&new.scope, &new.amount)
            .await?;
        let current = self.store.limits(&new.scope).await.map_err(store_error)?;
        let limit_request = LimitRequest {
            id: new_id("lrq"),
            current_amount: limits::effective_limit(&current, now).map(|limit| limit.amount),
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
            .create_limit_request(&limit_request, &key)
            .await
            .map_err(store_error)?
        {
            StoreOutcome::New(created) => self.auto_approve(created, &key.request_id).await?,
            StoreOutcome::Replayed(existing) => {
                // A retry: the request as it stands now (approved, if a rule approved it).
                let current = self
                    .store
                    .limit_request(&existing.id)
                    .await
                    .map_err(store_error)?
                    .unwrap_or(existing);
                let granted = match &current.limit_id {
                    Some(limit_id) => self
                        .store
                        .limits(&current.scope)
                        .await
                        .map_err(store_error)?
                        .into_iter()
                        .find(|limit| &limit.id == limit_id),
                    None => None,
                };
                (current, granted)
            }
        };
        Ok(Response::new(pb::RequestLimitChangeResponse {
            limit_request: Some(stored.to_proto()),
            limit: granted.map(|limit| limit.to_proto(Utc::now())),
        }))
    }

    async fn decide_limit_request(
        &self,
        request: Request<pb::DecideLimitRequestRequest>,
    ) -> Answer<pb::DecideLimitRequestResponse> {
        let checker = principal(&request)?.clone();
        let request = request.into_inner();
        let key = key(&request.request_id, "DecideLimitRequest", &request)?;
        let approving = match pb::ApprovalDecision::try_from(request.decision) {
            Ok(pb::ApprovalDecision::Approve) => true,
            Ok(pb::ApprovalDecision::Reject) => false,
            _ => {
                return Err(
                    ServiceError::invalid("decision", "is required: APPROVE or REJECT").into(),
                );
            }
        };
        let reason = request.reason.trim().to_owned();
        if reason.is_empty() {
            return Err(ServiceError::invalid("reason", "a reason is required").into());
        }
        let id = request.limit_request_id.trim();
        let pending = self
            .store
            .limit_request(id)
            .await
            .map_err(store_error)?
            .ok_or_else(|| ServiceError::not_found("limit request", id))?;
        limits::check_checker(&pending, &checker, approving)?;
        if pending.status != RequestStatus::Pending {
            // Either a retry of the decision that was made (the store answers it from the
            // idempotency key), or a second decision, which is refused.
            let replayed = self
                .store
                .decide(&pending, &key, None)
                .await
                .map_err(store_error)?
                .into_inner();
            let granted = match &replayed.limit_id {
                Some(limit_id) => self
                    .store
                    .limits(&replayed.scope)
                    .await
                    .map_err(store_error)?
                    .into_iter()
                    .find(|limit| &limit.id == limit_id),
                None => None,
            };
            return Ok(Response::new(pb::DecideLimitRequestResponse {
                limit_request: Some(replayed.to_proto()),
                limit: granted.map(|limit| limit.to_proto(Utc::now())),
            }));
        }
        let now = Utc::now();
        let (decided, approval) = if approving {
            let (decided, approval) = self
                .approval(
                    &pending,
                    Person::of(&checker),
                    &reason,
                    &key.request_id,
                    None,
                    now,
                )
                .await?;
            (decided, Some(approval))
        } else {
            let rejected = LimitRequest {
                status: RequestStatus::Rejected,
                decided_by: Some(Person::of(&checker)),
                decided_at: Some(now),
                decision_reason: reason.clone(),
                ..pending.clone()
            };
            (rejected, None)
        };
        let stored = self
            .store
            .decide(&decided, &key, approval.as_ref())
            .await
            .map_err(store_error)?
            .into_inner();
        if approval.is_some() {
            // The cached profile carries the old limit: the next decision rebuilds it.
            self.hot.invalidate(&stored.scope).await;
        }
        Ok(Response::new(pb::DecideLimitRequestResponse {
            limit_request: Some(stored.to_proto()),
            limit: approval.map(|approval| approval.limit.to_proto(now)),
        }))
    }

    async fn list_limit_requests(
        &self,
        request: Request<pb::ListLimitRequestsRequest>,
    ) -> Answer<pb::ListLimitRequestsResponse> {
        let request = request.into_inner();
        let page = Page::parse(request.page_size, &request.page_token)?;
        let scope = match request.scope.as_ref() {
            Some(scope) if scope.scope.is_some() => Some(Scope::parse(Some(scope), "scope")?),
            _ => None,
        };
        let status = match pb::ApprovalStatus::try_from(request.status) {
            Ok(pb::ApprovalStatus::Unspecified) => None,
            Ok(pb::ApprovalStatus::Pending) => Some(RequestStatus::Pending),
            Ok(pb::ApprovalStatus::Approved) => Some(RequestStatus::Approved),
            Ok(pb::ApprovalStatus::Rejected) => Some(RequestStatus::Rejected),
            Err(_) => {
                return Err(ServiceError::invalid("status", "is not an approval status").into());
            }
        };
        let mut requests = self
            .store
            .list_limit_requests(scope.as_ref(), status, &page)
            .await
            .map_err(store_error)?;
        let next_page_token = page.finish(&mut requests, |request| request.id.as_str());
        Ok(Response::new(pb::ListLimitRequestsResponse {
            limit_requests: requests.iter().map(LimitRequest::to_proto).collect(),
            next_page_token,
        }))
    }

    async fn get_credit_limit(
        &self,
        request: Request<pb::GetCreditLimitRequest>,
    ) -> Answer<pb::GetCreditLimitResponse> {
        let scope = Scope::parse(request.get_ref().scope.as_ref(), "scope")?;
        let now = Utc::now();
        let limits = self.store.limits(&scope).await.map_err(store_error)?;
        let effective = limits::effective_limit(&limits, now);
        let granted_limits_total = match (scope == Scope::Portfolio, effective) {
            (true, Some(cap)) => {
                let total: Decimal = self
                    .customer_limits_in_force(now)
                    .await?
                    .iter()
                    .filter(|limit| limit.amount.currency() == cap.amount.currency())
                    .map(|limit| limit.amount.amount())
                    .sum();
                Some(Money::new(total, cap.amount.currency()).into())
            }
            _ => None,
        };
        if effective.is_none() && limits.is_empty() && scope != Scope::Portfolio {
            self.check_scope_exists(&scope).await?;
        }
        Ok(Response::new(pb::GetCreditLimitResponse {
            effective_limit: effective.map(|limit| limit.to_proto(now)),
            limits: limits.iter().map(|limit| limit.to_proto(now)).collect(),
            granted_limits_total,
        }))
    }

    async fn list_limit_history(
        &self,
        request: Request<pb::ListLimitHistoryRequest>,
    ) -> Answer<pb::ListLimitHistoryResponse> {
        let request = request.into_inner();
        let scope = Scope::parse(request.scope.as_ref(), "scope")?;
        let page = Page::parse(request.page_size, &request.page_token)?;
        let mut entries = self
            .store
            .history(&scope, &page)
            .await
            .map_err(store_error)?;
        let next_page_token = page.finish(&mut entries, |entry| entry.id.as_str());
        Ok(Response::new(pb::ListLimitHistoryResponse {
            entries: entries.iter().map(HistoryEntry::to_proto).collect(),
            next_page_token,
        }))
    }

    async fn authorize(
        &self,
        request: Request<pb::AuthorizeRequest>,
    ) -> Answer<pb::AuthorizeResponse> {
        let principal = principal(&request)?.clone();
        let request = request.into_inner();
        let hot = self.hot.clone();
        run_to_end(async move { hot.authorize(&principal, &request).await }).await
    }

    async fn check_credit(
        &self,
        request: Request<pb::CheckCreditRequest>,
    ) -> Answer<pb::CheckCreditResponse> {
        Ok(Response::new(
            self.hot.check_credit(request.get_ref()).await?,
        ))
    }

    async fn capture(&self, request: Request<pb::CaptureRequest>) -> Answer<pb::CaptureResponse> {
        let request = request.into_inner();
        let hot = self.hot.clone();
        run_to_end(async move { hot.capture(&request).await }).await
    }

    async fn release(&self, request: Request<pb::ReleaseRequest>) -> Answer<pb::ReleaseResponse> {
        let request = request.into_inner();
        let hot = self.hot.clone();
        run_to_end(async move { hot.release(&request).await }).await
    }

    async fn get_exposure(
        &self,
        request: Request<pb::GetExposureRequest>,
    ) -> Answer<pb::GetExposureResponse> {
        let scope = Scope::parse(request.get_ref().scope.as_ref(), "scope")?;
        Ok(Response::new(pb::GetExposureResponse {
            exposure: Some(self.hot.exposure(&scope).await?),
        }))
    }

    async fn list_referrals(
        &self,
        request: Request<pb::ListReferralsRequest>,
    ) -> Answer<pb::ListReferralsResponse> {
        Ok(Response::new(
            self.hot.list_referrals(request.get_ref()).await?,
        ))
    }

    async fn decide_referral(
        &self,
        request: Request<pb::DecideReferralRequest>,
    ) -> Answer<pb::DecideReferralResponse> {
        let principal = principal(&request)?.clone();
        let request = request.into_inner();
        let hot = self.hot.clone();
        run_to_end(async move { hot.decide_referral(&principal, &request).await }).await
    }

    async fn set_credit_block(
        &self,
        request: Request<pb::SetCreditBlockRequest>,
    ) -> Answer<pb::SetCreditBlockResponse> {
        let principal = principal(&request)?.clone();
        Ok(Response::new(
            self.hot.set_block(&principal, request.get_ref()).await?,
        ))
    }

    async fn clear_credit_block(
        &self,
        request: Request<pb::ClearCreditBlockRequest>,
    ) -> Answer<pb::ClearCreditBlockResponse> {
        let principal = principal(&request)?.clone();
        Ok(Response::new(
            self.hot.clear_block(&principal, request.get_ref()).await?,
        ))
    }

    async fn reconcile_exposure(
        &self,
        request: Request<pb::ReconcileExposureRequest>,
    ) -> Answer<pb::ReconcileExposureResponse> {
        let principal = principal(&request)?;
        Ok(Response::new(
            crate::reconcile::reconcile_exposure(
                &self.hot,
                self.store.as_ref(),
                principal,
                request.get_ref(),
            )
            .await?,
        ))
    }

    async fn set_fx_rate(
        &self,
        request: Request<pb::SetFxRateRequest>,
    ) -> Answer<pb::SetFxRateResponse> {
        let principal = principal(&request)?.clone();
        let request = request.into_inner();
        let key = key(&request.request_id, "SetFxRate", &request)?;
        let rate =
            FxRate::from_request(request.fx_rate.as_ref(), Person::of(&principal), Utc::now())?;
        let stored = self
            .store
            .set_fx_rate(&rate, &key)
            .await
            .map_err(store_error)?
            .into_inner();
        // Amounts that waited for this rate enter exposure now rather than at the next
        // background pass; the rate is stored either way, so a failure here only delays them.
        if let Err(error) = crate::receivables::ReceivablesProjection::new(self.hot.clone())
            .convert_waiting()
            .await
        {
            tracing::warn!(error = %error, "could not convert the receivables waiting for a rate yet; the background sweep retries");
        }
        Ok(Response::new(pb::SetFxRateResponse {
            fx_rate: Some(stored.to_proto()),
        }))
    }

    async fn list_fx_rates(
        &self,
        request: Request<pb::ListFxRatesRequest>,
    ) -> Answer<pb::ListFxRatesResponse> {
        let request = request.into_inner();
        let page = Page::parse(request.page_size, &request.page_token)?;
        let mut violations = credit_core::Violations::new();
        let currency = |field: &str, code: &str, violations: &mut credit_core::Violations| {
            let code = code.trim();
            if code.is_empty() {
                None
            } else {
                violations.check(field, Currency::parse(code))
            }
        };
        let base = currency("base_currency", &request.base_currency, &mut violations);
        let quote = currency("quote_currency", &request.quote_currency, &mut violations);
        violations.finish()?;
        let now = Utc::now();
        let mut rates = self
            .store
            .fx_rates(base, quote)
            .await
            .map_err(store_error)?;
        if !request.include_history {
            // Newest first per pair: the first one already effective is the one in force.
            let mut seen = std::collections::HashSet::new();
            rates.retain(|rate| rate.effective_at <= now && seen.insert((rate.base, rate.quote)));
        }
        let mut keyed: Vec<(String, FxRate)> = rates
            .into_iter()
            .map(|rate| (fx_page_key(&rate), rate))
            .filter(|(key, _)| page.after.as_ref().is_none_or(|after| key > after))
            .collect();
        keyed.truncate(usize::try_from(page.fetch_limit()).unwrap_or(usize::MAX));
        let next_page_token = page.finish(&mut keyed, |(key, _)| key.as_str());
        Ok(Response::new(pb::ListFxRatesResponse {
            fx_rates: keyed.iter().map(|(_, rate)| rate.to_proto()).collect(),
            next_page_token,
        }))
    }

    async fn propose_limit(
        &self,
        request: Request<pb::ProposeLimitRequest>,
    ) -> Answer<pb::ProposeLimitResponse> {
        let request = request.into_inner();
        let requested_currency = match request.currency.trim() {
            "" => None,
            code => Some(
                Currency::parse(code)
                    .map_err(|error| ServiceError::invalid("currency", error.to_string()))?,
            ),
        };
        let customer_id = request.customer_id.trim();
        let facts = self.require_customer(customer_id).await?;
        let rating = facts.rating.ok_or_else(|| {
            ServiceError::failed_precondition(
                "RATING_REQUIRED",
                "the customer has no rating; the grade cap and policy factors need one",
            )
        })?;
        let policy = self.hot.stored_policy().await?;
        let statement = self
            .store
            .latest_statement(customer_id)
            .await
            .map_err(store_error)?;
        let limits = self
            .store
            .limits(&Scope::Customer(customer_id.to_owned()))
            .await
            .map_err(store_error)?;
        let current_limit = limits::effective_limit(&limits, Utc::now()).map(|limit| limit.amount);
        let mut currency = ProposalCurrency::choose(
            requested_currency,
            current_limit.map(|limit| limit.currency()),
            policy
                .for_grade(Some(&rating.grade))
                .0
                .max_limit
                .map(|cap| cap.currency()),
            statement
                .as_ref()
                .map(|statement| statement.equity.currency()),
        );
        if let Some(into) = currency.currency() {
            for from in currency.rates_needed(&policy, &rating.grade, statement.as_ref()) {
                if let Some(rate) = self.hot.fx_rate(from, into).await? {
                    currency.add_rate(from, rate);
                }
            }
        }
        let proposal = proposal::propose(&policy, &rating.grade, statement.as_ref(), &currency);
        Ok(Response::new(pb::ProposeLimitResponse {
            proposed_amount: proposal.proposed_amount.map(Into::into),
            components: proposal
                .components
                .iter()
                .map(proposal::Component::to_proto)
                .collect(),
            rating_id: rating.rating_id,
            grade: rating.grade,
            statement_id: statement
                .map(|statement| statement.statement_id)
                .unwrap_or_default(),
            current_limit: current_limit.map(Into::into),
        }))
    }

    async fn get_credit_policy(
        &self,
        _request: Request<pb::GetCreditPolicyRequest>,
    ) -> Answer<pb::GetCreditPolicyResponse> {
        let policy = self.hot.stored_policy().await?;
        Ok(Response::new(pb::GetCreditPolicyResponse {
            policy: Some(policy.to_proto()),
        }))
    }

    async fn update_credit_policy(
        &self,
        request: Request<pb::UpdateCreditPolicyRequest>,
    ) -> Answer<pb::UpdateCreditPolicyResponse> {
        let principal = principal(&request)?.clone();
        let request = request.into_inner();
        let wire = request
            .policy
            .ok_or_else(|| ServiceError::invalid("policy", "is required"))?;
        let reason = request.reason.trim();
        if reason.is_empty() {
            return Err(
                ServiceError::invalid("reason", "is required: say why the policy changes").into(),
            );
        }
        let current = self.hot.stored_policy().await?;
        if !wire.etag.is_empty() && wire.etag != current.etag() {
            return Err(policy_moved().into());
        }
        let paths = request
            .update_mask
            .map(|mask| mask.paths)
            .unwrap_or_default();
        let mut next = current.updated(&wire, &paths)?;
        next.version = current.version + 1;
        next.last_change = Some(PolicyChange {
            changed_by: Person::of(&principal),
            changed_at: Utc::now(),
            reason: reason.to_owned(),
        });
        if !self
            .store
            .save_policy(&next, current.version)
            .await
            .map_err(store_error)?
        {
            return Err(policy_moved().into());
        }
        tracing::info!(version = next.version, fields = ?paths, "credit policy changed");
        self.hot.policy_changed(next.clone()).await;
        Ok(Response::new(pb::UpdateCreditPolicyResponse {
            policy: Some(next.to_proto()),
        }))
    }

    async fn get_credit_terms(
        &self,
        request: Request<pb::GetCreditTermsRequest>,
    ) -> Answer<pb::GetCreditTermsResponse> {
        let customer_id = request.get_ref().customer_id.trim().to_owned();
        let terms = self.effective_terms(&customer_id).await?;
        Ok(Response::new(pb::GetCreditTermsResponse {
            terms: Some(terms.to_proto()),
        }))
    }

    async fn set_credit_terms(
        &self,
        request: Request<pb::SetCreditTermsRequest>,
    ) -> Answer<pb::SetCreditTermsResponse> {
        let principal = principal(&request)?.clone();
        let request = request.into_inner();
        let customer_id = request.customer_id.trim().to_owned();
        let mut violations = credit_core::Violations::new();
        if request.reason.trim().is_empty() {
            violations.add("reason", "is required: say why the terms change");
        }
        let paths = request
            .update_mask
            .map(|mask| mask.paths)
            .unwrap_or_default();
        if paths.is_empty() {
            violations.add(
                "update_mask",
                "names no field; name payment_terms and/or order_amount_cap",
            );
        }
        let wire = request.terms.unwrap_or_default();
        let current = self.store.terms(&customer_id).await.map_err(store_error)?;
        let mut payment_terms = current
            .as_ref()
            .and_then(|terms| terms.payment_terms.clone());
        let mut order_amount_cap = current.as_ref().and_then(|terms| terms.order_amount_cap);
        for path in &paths {
            match path.as_str() {
                // A masked field left unset reverts to the policy default.
                "payment_terms" => {
                    payment_terms = wire.payment_terms.as_ref().and_then(|terms| {
                        PaymentTerms::parse(terms, "terms.payment_terms", &mut violations)
                    });
                }
                "order_amount_cap" => {
                    order_amount_cap = wire.order_amount_cap.as_ref().and_then(|cap| {
                        violations.check(
                            "terms.order_amount_cap",
                            Money::try_from(cap).and_then(Money::positive),
                        )
                    });
                }
                other => violations.add(
                    "update_mask",
                    format!(
                        "{other:?} is not a terms field; fields: payment_terms, order_amount_cap"
                    ),
                ),
            }
        }
        violations.finish()?;
        self.require_customer(&customer_id).await?;
        let terms = CustomerTerms {
            customer_id: customer_id.clone(),
            payment_terms,
            order_amount_cap,
            changed_by: Person::of(&principal),
            changed_at: Utc::now(),
            reason: request.reason.trim().to_owned(),
        };
        self.store.save_terms(&terms).await.map_err(store_error)?;
        // The per-order cap is part of the cached profile.
        self.hot
            .invalidate(&Scope::Customer(customer_id.clone()))
            .await;
        let terms = self.effective_terms(&customer_id).await?;
        Ok(Response::new(pb::SetCreditTermsResponse {
            terms: Some(terms.to_proto()),
        }))
    }

    async fn get_hold(&self, request: Request<pb::GetHoldRequest>) -> Answer<pb::GetHoldResponse> {
        let hold = self.hot.hold(&request.get_ref().hold_id).await?;
        Ok(Response::new(pb::GetHoldResponse {
            hold: Some(hold_to_proto(&hold)),
        }))
    }

    async fn list_holds(
        &self,
        request: Request<pb::ListHoldsRequest>,
    ) -> Answer<pb::ListHoldsResponse> {
        let request = request.into_inner();
        let page = Page::parse(request.page_size, &request.page_token)?;
        let customer_id = request.customer_id.trim();
        let order_id = request.order_id.trim();
        if customer_id.is_empty() && order_id.is_empty() {
            return Err(ServiceError::invalid(
                "customer_id",
                "customer_id or order_id is required",
            )
            .into());
        }
        let status = match pb::HoldStatus::try_from(request.status) {
            Ok(pb::HoldStatus::Unspecified) => None,
            Ok(pb::HoldStatus::Open) => Some(HoldStatus::Open),
            Ok(pb::HoldStatus::Captured) => Some(HoldStatus::Captured),
            Ok(pb::HoldStatus::Released) => Some(HoldStatus::Released),
            Ok(pb::HoldStatus::Expired) => Some(HoldStatus::Expired),
            Err(_) => return Err(ServiceError::invalid("status", "is not a hold status").into()),
        };
        let mut holds = self
            .hot
            .ledger()
            .holds(customer_id, order_id, status, &page)
            .await
            .map_err(ledger_error)?;
        let next_page_token = page.finish(&mut holds, |hold| hold.id.as_str());
        Ok(Response::new(pb::ListHoldsResponse {
            holds: holds.iter().map(hold_to_proto).collect(),
            next_page_token,
        }))
    }
}

/// Sorts like the store lists rates: by pair, newest effective time first.
fn fx_page_key(rate: &FxRate) -> String {
    let newest_first = i64::MAX - rate.effective_at.timestamp_micros().max(0);
    format!(
        "{}/{}/{newest_first:020}",
        rate.base.code(),
        rate.quote.code()
    )
}
