//! The gRPC handlers of `credit.v1.LimitService` that have landed: limits and their
//! four-eyes approval, limit proposals from policy, the order-time RPCs, referrals, manual
//! credit blocks and the reconciliation of cached exposure. The others answer UNIMPLEMENTED
//! until they land.
//!
//! Each handler reads the caller, converts the request (`convert`), calls the use case
//! (`crate::app`) and converts the answer back.

mod approvals;
pub mod convert;

pub use approvals::ApprovalsApi;

use std::sync::Arc;

use chrono::Utc;
use credit_core::{Actor, ServiceError};
use credit_proto::v1 as pb;
use credit_proto::v1::limit_service_server::LimitService;
use credit_runtime::principal;
use credit_runtime::sql::{IdempotencyKey, Page};
use tonic::{Request, Response, Status};

use crate::app::{CreditAdmin, HotPath, hold_to_proto, ledger_error};
use crate::domain::policy::CreditPolicy;
use crate::store::{LimitStore, SecurityParty};

#[derive(Debug, Clone)]
pub struct LimitsApi {
    store: Arc<dyn LimitStore>,
    hot: HotPath,
    admin: CreditAdmin,
}

impl LimitsApi {
    pub fn new(store: Arc<dyn LimitStore>, hot: HotPath) -> Self {
        let admin = CreditAdmin::new(store.clone(), hot.clone());
        Self { store, hot, admin }
    }
}

type Answer<T> = Result<Response<T>, Status>;

fn key(
    caller: &credit_core::Principal,
    request_id: &str,
    operation: &'static str,
    content: &impl prost::Message,
) -> Result<IdempotencyKey, ServiceError> {
    IdempotencyKey::of_request(&caller.name, request_id, operation, content)
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

#[tonic::async_trait]
impl LimitService for LimitsApi {
    async fn request_limit_change(
        &self,
        request: Request<pb::RequestLimitChangeRequest>,
    ) -> Answer<pb::RequestLimitChangeResponse> {
        let maker_principal = principal(&request)?.clone();
        let maker = Actor::of(&maker_principal);
        let request = request.into_inner();
        let key = key(
            &maker_principal,
            &request.request_id,
            "RequestLimitChange",
            &request,
        )?;
        let now = Utc::now();
        let new = convert::parse_limit_request(&request, now)?;
        let granted = self
            .admin
            .request_limit_change(maker, new, &key, now)
            .await?;
        Ok(Response::new(pb::RequestLimitChangeResponse {
            limit_request: Some(convert::limit_request_to_proto(&granted.request)),
            limit: granted
                .limit
                .map(|limit| convert::limit_to_proto(&limit, granted.as_of)),
        }))
    }

    async fn decide_limit_request(
        &self,
        request: Request<pb::DecideLimitRequestRequest>,
    ) -> Answer<pb::DecideLimitRequestResponse> {
        let checker = principal(&request)?.clone();
        let request = request.into_inner();
        let key = key(
            &checker,
            &request.request_id,
            "DecideLimitRequest",
            &request,
        )?;
        let decision = convert::parse_decision(&request)?;
        let granted = self
            .admin
            .decide_limit_request(&checker, decision, &key)
            .await?;
        Ok(Response::new(pb::DecideLimitRequestResponse {
            limit_request: Some(convert::limit_request_to_proto(&granted.request)),
            limit: granted
                .limit
                .map(|limit| convert::limit_to_proto(&limit, granted.as_of)),
        }))
    }

    async fn list_limit_requests(
        &self,
        request: Request<pb::ListLimitRequestsRequest>,
    ) -> Answer<pb::ListLimitRequestsResponse> {
        let request = request.into_inner();
        let page = Page::parse(request.page_size, &request.page_token)?;
        let scope = convert::scope_filter(request.scope.as_ref())?;
        let status = convert::request_status_filter(request.status)?;
        let mut requests = self
            .admin
            .list_limit_requests(scope.as_ref(), status, &page)
            .await?;
        let next_page_token = page.finish(&mut requests, |request| request.id.as_str());
        Ok(Response::new(pb::ListLimitRequestsResponse {
            limit_requests: requests
                .iter()
                .map(convert::limit_request_to_proto)
                .collect(),
            next_page_token,
        }))
    }

    async fn get_credit_limit(
        &self,
        request: Request<pb::GetCreditLimitRequest>,
    ) -> Answer<pb::GetCreditLimitResponse> {
        let scope = convert::parse_scope(request.get_ref().scope.as_ref(), "scope")?;
        let limits = self.admin.credit_limit(&scope).await?;
        let now = limits.as_of;
        Ok(Response::new(pb::GetCreditLimitResponse {
            effective_limit: limits
                .effective
                .as_ref()
                .map(|limit| convert::limit_to_proto(limit, now)),
            limits: limits
                .limits
                .iter()
                .map(|limit| convert::limit_to_proto(limit, now))
                .collect(),
            granted_limits_total: limits.granted_limits_total.map(Into::into),
        }))
    }

    async fn list_limit_history(
        &self,
        request: Request<pb::ListLimitHistoryRequest>,
    ) -> Answer<pb::ListLimitHistoryResponse> {
        let request = request.into_inner();
        let scope = convert::parse_scope(request.scope.as_ref(), "scope")?;
        let page = Page::parse(request.page_size, &request.page_token)?;
        let mut entries = self.admin.limit_history(&scope, &page).await?;
        let next_page_token = page.finish(&mut entries, |entry| entry.id.as_str());
        Ok(Response::new(pb::ListLimitHistoryResponse {
            entries: entries
                .iter()
                .map(convert::history_entry_to_proto)
                .collect(),
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
        let scope = convert::parse_scope(request.get_ref().scope.as_ref(), "scope")?;
        Ok(Response::new(pb::GetExposureResponse {
            exposure: Some(self.hot.exposure(&scope).await?),
        }))
    }

    async fn register_security(
        &self,
        request: Request<pb::RegisterSecurityRequest>,
    ) -> Answer<pb::RegisterSecurityResponse> {
        let maker = principal(&request)?.clone();
        let request = request.into_inner();
        let key = key(&maker, &request.request_id, "RegisterSecurity", &request)?;
        let new = convert::parse_new_security(&request)?;
        let security = self.admin.register_security(&maker, new, &key).await?;
        Ok(Response::new(pb::RegisterSecurityResponse {
            security: Some(convert::security_to_proto(&security)),
        }))
    }

    async fn change_security(
        &self,
        request: Request<pb::ChangeSecurityRequest>,
    ) -> Answer<pb::ChangeSecurityResponse> {
        let maker = principal(&request)?.clone();
        let request = request.into_inner();
        let key = key(&maker, &request.request_id, "ChangeSecurity", &request)?;
        let (security_id, action, reason) =
            convert::parse_security_change(&request, Utc::now().date_naive())?;
        let security = self
            .admin
            .change_security(&maker, &security_id, action, reason, &key)
            .await?;
        Ok(Response::new(pb::ChangeSecurityResponse {
            security: Some(convert::security_to_proto(&security)),
        }))
    }

    async fn get_security(
        &self,
        request: Request<pb::GetSecurityRequest>,
    ) -> Answer<pb::GetSecurityResponse> {
        let security = self
            .admin
            .security(request.get_ref().security_id.trim())
            .await?;
        Ok(Response::new(pb::GetSecurityResponse {
            security: Some(convert::security_to_proto(&security)),
        }))
    }

    async fn list_securities(
        &self,
        request: Request<pb::ListSecuritiesRequest>,
    ) -> Answer<pb::ListSecuritiesResponse> {
        let request = request.into_inner();
        let page = Page::parse(request.page_size, &request.page_token)?;
        let status = convert::security_status_filter(request.status)?;
        let customer_id = request.customer_id.trim();
        let guarantor_id = request.guarantor_customer_id.trim();
        let party = match (customer_id.is_empty(), guarantor_id.is_empty()) {
            (false, true) => SecurityParty::Customer(customer_id),
            (true, false) => SecurityParty::Guarantor(guarantor_id),
            _ => {
                return Err(ServiceError::invalid(
                    "customer_id",
                    "set exactly one of customer_id and guarantor_customer_id",
                )
                .into());
            }
        };
        let mut securities = self
            .store
            .securities(party, status, &page)
            .await
            .map_err(ServiceError::from)?;
        let next_page_token =
            page.finish(&mut securities, |security| security.security_id.as_str());
        Ok(Response::new(pb::ListSecuritiesResponse {
            securities: securities.iter().map(convert::security_to_proto).collect(),
            next_page_token,
        }))
    }

    async fn quote_credit_price(
        &self,
        request: Request<pb::QuoteCreditPriceRequest>,
    ) -> Answer<pb::QuoteCreditPriceResponse> {
        let (customer_id, amount, days) = convert::parse_quote_request(request.get_ref())?;
        let quote = self
            .admin
            .quote_credit_price(&customer_id, amount, days)
            .await?;
        Ok(Response::new(convert::quote_to_proto(&quote)))
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
        let key = key(&principal, &request.request_id, "SetFxRate", &request)?;
        let rate =
            convert::parse_fx_rate(request.fx_rate.as_ref(), Actor::of(&principal), Utc::now())?;
        let stored = self.admin.set_fx_rate(&rate, &key).await?;
        Ok(Response::new(pb::SetFxRateResponse {
            fx_rate: Some(convert::fx_rate_to_proto(&stored)),
        }))
    }

    async fn list_fx_rates(
        &self,
        request: Request<pb::ListFxRatesRequest>,
    ) -> Answer<pb::ListFxRatesResponse> {
        let request = request.into_inner();
        let page = Page::parse(request.page_size, &request.page_token)?;
        let (base, quote) = convert::parse_fx_filter(&request)?;
        let (rates, next_page_token) = self
            .admin
            .list_fx_rates(base, quote, request.include_history, &page)
            .await?;
        Ok(Response::new(pb::ListFxRatesResponse {
            fx_rates: rates.iter().map(convert::fx_rate_to_proto).collect(),
            next_page_token,
        }))
    }

    async fn propose_limit(
        &self,
        request: Request<pb::ProposeLimitRequest>,
    ) -> Answer<pb::ProposeLimitResponse> {
        let request = request.into_inner();
        let currency = convert::requested_currency(&request)?;
        let view = self
            .admin
            .propose_limit(request.customer_id.trim(), currency)
            .await?;
        Ok(Response::new(convert::proposal_to_proto(view)))
    }

    async fn get_credit_policy(
        &self,
        request: Request<pb::GetCreditPolicyRequest>,
    ) -> Answer<pb::GetCreditPolicyResponse> {
        let policy = self
            .admin
            .credit_policy(request.into_inner().version)
            .await?;
        Ok(Response::new(pb::GetCreditPolicyResponse {
            policy: Some(convert::policy_to_proto(&policy)),
        }))
    }

    async fn update_credit_policy(
        &self,
        request: Request<pb::UpdateCreditPolicyRequest>,
    ) -> Answer<pb::UpdateCreditPolicyResponse> {
        let caller = principal(&request)?.clone();
        let mut request = request.into_inner();
        if request.request_id.trim().is_empty() {
            // Callers of the time before proposals send no key: each call is a new proposal.
            request.request_id = uuid::Uuid::now_v7().to_string();
        }
        let key = key(&caller, &request.request_id, "UpdateCreditPolicy", &request)?;
        let change = convert::parse_policy_proposal(&request)?;
        let proposal = self.admin.propose_policy(&caller, change, &key).await?;
        let in_force = self.admin.credit_policy(None).await?;
        Ok(Response::new(pb::UpdateCreditPolicyResponse {
            policy: Some(convert::policy_to_proto(&in_force)),
            proposal: Some(convert::policy_version_to_proto(&proposal)),
        }))
    }

    async fn list_credit_policy_versions(
        &self,
        _request: Request<pb::ListCreditPolicyVersionsRequest>,
    ) -> Answer<pb::ListCreditPolicyVersionsResponse> {
        let (versions, in_force_version) = self.admin.governed_history::<CreditPolicy>().await?;
        Ok(Response::new(pb::ListCreditPolicyVersionsResponse {
            versions: versions
                .iter()
                .map(convert::policy_version_to_proto)
                .collect(),
            in_force_version,
        }))
    }

    async fn get_credit_terms(
        &self,
        request: Request<pb::GetCreditTermsRequest>,
    ) -> Answer<pb::GetCreditTermsResponse> {
        let customer_id = request.get_ref().customer_id.trim();
        let terms = self.admin.effective_terms(customer_id).await?;
        Ok(Response::new(pb::GetCreditTermsResponse {
            terms: Some(convert::terms_to_proto(&terms)),
        }))
    }

    async fn set_credit_terms(
        &self,
        request: Request<pb::SetCreditTermsRequest>,
    ) -> Answer<pb::SetCreditTermsResponse> {
        let principal = principal(&request)?.clone();
        let request = request.into_inner();
        let mut violations = credit_core::Violations::new();
        let edits = convert::parse_terms_edits(&request, &mut violations);
        let terms = self
            .admin
            .set_terms(
                Actor::of(&principal),
                request.customer_id.trim(),
                request.reason.trim(),
                edits,
                violations,
            )
            .await?;
        Ok(Response::new(pb::SetCreditTermsResponse {
            terms: Some(convert::terms_to_proto(&terms)),
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
        let status = convert::hold_status_filter(request.status)?;
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
