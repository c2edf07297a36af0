//! The order-time path: Authorize, CheckCredit, Capture, Release, GetExposure.
//!
//! Authorize = one atomic decision-and-reservation in the exposure cache, then one durable
//! write of the hold and the answer, then the answer. A customer whose profile is not cached
//! is first rebuilt from the ledger (never approved cold). If the durable write fails the
//! reservation is undone and the caller gets UNAVAILABLE: an approval the caller has seen is
//! always in the ledger.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use credit_core::{Currency, Money, Principal, ServiceError};
use credit_proto::v1 as pb;
use credit_runtime::sql::{fingerprint, storage_error};
use prost::Message;
use rust_decimal::Decimal;

use crate::domain::limits::{self, Person, Scope, to_timestamp};
use crate::exposure::{
    AuthorizeInput, AuthorizeOutcome, CustomerProfile, Decision, ExposureCache, ExposureError,
    GroupProfile, Limit, Outcome, ProfileStatus,
};
use crate::ledger::{Hold, HoldStatus, LedgerError, LedgerStore, Referral, StoredAnswer};
use crate::store::{LimitStore, StoreError};

/// Credit policy values that have no table of their own yet; the credit policy RPCs will
/// own them. Chosen as a common default of company credit policies.
#[derive(Debug, Clone, Copy)]
pub struct Policy {
    /// How far over the limit an order is referred rather than declined (1000 = 10 %).
    pub tolerance_bps: u32,
    /// Oldest overdue days accepted before orders are referred.
    pub overdue_tolerance_days: u32,
    pub default_hold_ttl: Duration,
    pub max_hold_ttl: Duration,
}

impl Default for Policy {
    fn default() -> Self {
        Self {
            tolerance_bps: 1_000,
            overdue_tolerance_days: 30,
            default_hold_ttl: Duration::from_secs(7 * 24 * 3600),
            max_hold_ttl: Duration::from_secs(90 * 24 * 3600),
        }
    }
}

#[derive(Debug, Clone)]
pub struct HotPath {
    limits: Arc<dyn LimitStore>,
    ledger: Arc<dyn LedgerStore>,
    cache: Arc<dyn ExposureCache>,
    policy: Policy,
}

fn cache_error(error: ExposureError) -> ServiceError {
    match error {
        ExposureError::Redis(error) => {
            ServiceError::unavailable("the exposure cache did not answer; retry", error)
        }
        other => ServiceError::internal(other),
    }
}

fn ledger_error(error: LedgerError) -> ServiceError {
    match error {
        LedgerError::Database(error) => storage_error(error),
        other => ServiceError::internal(other),
    }
}

fn store_error(error: StoreError) -> ServiceError {
    match error {
        StoreError::Database(error) => storage_error(error),
        other => ServiceError::internal(other),
    }
}

/// Money → minor units of its currency. Exact: parsed money has at most the minor units.
fn to_minor(money: &Money) -> Result<i64, ServiceError> {
    let scale = Decimal::from(10_i64.pow(money.currency().minor_units()));
    let minor = (money.amount() * scale).trunc();
    i64::try_from(minor).map_err(|_| ServiceError::invalid("amount", "is too large"))
}

fn from_minor(minor: i64, currency: Currency) -> Money {
    Money::new(Decimal::new(minor, money_scale(currency)), currency)
}

fn money_scale(currency: Currency) -> u32 {
    currency.minor_units()
}

fn unix(time: DateTime<Utc>) -> i64 {
    time.timestamp()
}

fn new_id(prefix: &str) -> String {
    format!("{prefix}_{}", uuid::Uuid::now_v7().simple())
}

/// A checked order: who, what, how much, in minor units of the limit's currency.
struct Order {
    customer_id: String,
    order_id: String,
    amount: Money,
    amount_minor: i64,
}

impl HotPath {
    pub fn new(
        limits: Arc<dyn LimitStore>,
        ledger: Arc<dyn LedgerStore>,
        cache: Arc<dyn ExposureCache>,
        policy: Policy,
    ) -> Self {
        Self {
            limits,
            ledger,
            cache,
            policy,
        }
    }

    pub fn cache(&self) -> &Arc<dyn ExposureCache> {
        &self.cache
    }

    /// Checks an order; the limit's currency must be the order's (the FX rates table lands
    /// later: until then another currency is FAILED_PRECONDITION, FX_RATE_MISSING).
    async fn order(
        &self,
        customer_id: &str,
        order_id: &str,
        amount: Option<&pb::Money>,
    ) -> Result<(Order, Option<String>), ServiceError> {
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
        let facts = self
            .limits
            .customer(customer_id)
            .await
            .map_err(store_error)?
            .ok_or_else(|| ServiceError::not_found("customer", customer_id))?;
        let limits = self
            .limits
            .limits(&Scope::Customer(customer_id.to_owned()))
            .await
            .map_err(store_error)?;
        if let Some(limit) = limits::effective_limit(&limits, Utc::now())
            && limit.amount.currency() != amount.currency()
        {
            return Err(ServiceError::FailedPrecondition {
                reason: "FX_RATE_MISSING",
                message: format!(
                    "the order is in {} and the limit in {}; no rate converts them yet",
                    amount.currency(),
                    limit.amount.currency()
                ),
                metadata: vec![("limit_currency", limit.amount.currency().code().to_owned())],
            });
        }
        Ok((
            Order {
                customer_id: customer_id.to_owned(),
                order_id: order_id.trim().to_owned(),
                amount_minor: to_minor(&amount)?,
                amount,
            },
            facts.group_id,
        ))
    }

    /// Loads the customer's profile into the cache from the limits tables and the ledger.
    async fn warm_customer(&self, customer_id: &str) -> Result<(), ServiceError> {
        let facts = self
            .limits
            .customer(customer_id)
            .await
            .map_err(store_error)?
            .ok_or_else(|| ServiceError::not_found("customer", customer_id))?;
        let now = Utc::now();
        let limits = self
            .limits
            .limits(&Scope::Customer(customer_id.to_owned()))
            .await
            .map_err(store_error)?;
        let limit = match limits::effective_limit(&limits, now) {
            Some(limit) => Some(Limit {
                amount: to_minor(&limit.amount)?,
                valid_until: limit.valid_until.map(unix),
            }),
            None => None,
        };
        let (epoch, exposure) = self
            .ledger
            .rebuild(&format!("customer:{customer_id}"))
            .await
            .map_err(ledger_error)?;
        let profile = CustomerProfile {
            customer_id: customer_id.to_owned(),
            group_id: facts.group_id.clone(),
            status: ProfileStatus::parse(&facts.status),
            limit,
            blocked: false,
            oldest_overdue_days: 0,
            overdue_tolerance_days: self.policy.overdue_tolerance_days,
            rating_required: false,
            rating_valid_until: None,
            order_cap: None,
            tolerance_bps: self.policy.tolerance_bps,
            exposure: exposure.total(),
            epoch,
        };
        self.cache
            .load_customer(&profile)
            .await
            .map_err(cache_error)
    }

    async fn warm_group(&self, group_id: &str) -> Result<(), ServiceError> {
        let now = Utc::now();
        let limits = self
            .limits
            .limits(&Scope::Group(group_id.to_owned()))
            .await
            .map_err(store_error)?;
        let limit = match limits::effective_limit(&limits, now) {
            Some(limit) => Some(Limit {
                amount: to_minor(&limit.amount)?,
                valid_until: limit.valid_until.map(unix),
            }),
            None => None,
        };
        let (epoch, exposure) = self
            .ledger
            .rebuild(&format!("group:{group_id}"))
            .await
            .map_err(ledger_error)?;
        let profile = GroupProfile {
            group_id: group_id.to_owned(),
            limit,
            tolerance_bps: self.policy.tolerance_bps,
            exposure: exposure.total(),
            epoch,
        };
        self.cache.load_group(&profile).await.map_err(cache_error)
    }

    /// Decides (and with `reserve`, reserves) in the cache, warming cold profiles first.
    async fn decide(
        &self,
        order: &Order,
        group_id: Option<String>,
        reserve: bool,
    ) -> Result<Decision, ServiceError> {
        let input = AuthorizeInput {
            customer_id: order.customer_id.clone(),
            group_id: group_id.clone(),
            amount: order.amount_minor,
            now: unix(Utc::now()),
            reserve,
        };
        // A rebuild may race with another one (a flush, a second replica); a few rounds
        // settle it, and a customer still cold after them is refused, never approved.
        for _ in 0..3 {
            match self.cache.authorize(&input).await.map_err(cache_error)? {
                AuthorizeOutcome::Decided(decision) => return Ok(decision),
                AuthorizeOutcome::Cold { customer, group } => {
                    if customer {
                        self.warm_customer(&order.customer_id).await?;
                    }
                    if let Some(group_id) = group_id.as_deref().filter(|_| group || customer) {
                        self.warm_group(group_id).await?;
                    }
                }
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
    async fn undo(&self, order: &Order, decision: &Decision) {
        let current = self
            .cache
            .get_customer(&order.customer_id)
            .await
            .ok()
            .flatten();
        if current.is_some_and(|profile| profile.epoch == decision.epoch) {
            let group = decision.group.as_ref().map(|group| group.group_id.as_str());
            if let Err(error) = self
                .cache
                .release(&order.customer_id, group, order.amount_minor)
                .await
            {
                tracing::warn!(error = %error, customer_id = %order.customer_id, "could not undo a reservation; exposure stays overstated until the next rebuild");
            }
        }
    }

    pub async fn authorize(
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
            None => self.policy.default_hold_ttl,
            Some(ttl) => {
                let seconds = u64::try_from(ttl.seconds).unwrap_or(0);
                let ttl = Duration::from_secs(seconds);
                if ttl < Duration::from_secs(60) || ttl > self.policy.max_hold_ttl {
                    return Err(ServiceError::invalid(
                        "hold_ttl",
                        "must be between one minute and 90 days",
                    ));
                }
                ttl
            }
        };
        let request_fingerprint = fingerprint(request);
        if let Some(answer) = self
            .ledger
            .answer(request.customer_id.trim(), key)
            .await
            .map_err(ledger_error)?
        {
            return replay(&answer, &request_fingerprint);
        }
        let (order, group_id) = self
            .order(
                &request.customer_id,
                &request.order_id,
                request.amount.as_ref(),
            )
            .await?;
        let decision = self.decide(&order, group_id, true).await?;
        let now = Utc::now();
        let decision_id = new_id("dec");
        let currency = order.amount.currency();
        let mut response = pb::AuthorizeResponse {
            decision: wire_outcome(decision.outcome) as i32,
            reasons: reasons(&decision),
            limit: decision
                .limit
                .map(|limit| from_minor(limit, currency).into()),
            exposure: Some(from_minor(decision.exposure_after, currency).into()),
            available: decision
                .available_after
                .map(|available| from_minor(available, currency).into()),
            group_position: group_position(&decision, currency),
            amount_in_limit_currency: Some(order.amount.into()),
            decision_id: decision_id.clone(),
            decided_at: Some(to_timestamp(now)),
            ..Default::default()
        };
        let person = Person::of(principal);
        if decision.reserved {
            let hold = Hold {
                id: new_id("hld"),
                customer_id: order.customer_id.clone(),
                group_id: decision.group.as_ref().map(|group| group.group_id.clone()),
                order_id: order.order_id.clone(),
                currency: currency.code().to_owned(),
                amount_minor: order.amount_minor,
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
                    self.undo(&order, &decision).await;
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
                    self.undo(&order, &decision).await;
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
                amount_minor: order.amount_minor,
                reasons: decision
                    .reasons
                    .iter()
                    .map(|reason| reason.as_str().to_owned())
                    .collect(),
                decision_id: decision_id.clone(),
                idempotency_key: key.to_owned(),
                created_at: now,
                created_by: person,
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
            match self.ledger.record_answer(&answer, referral.as_ref()).await {
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

    /// The same rules as Authorize; reserves and records nothing.
    pub async fn check_credit(
        &self,
        request: &pb::CheckCreditRequest,
    ) -> Result<pb::CheckCreditResponse, ServiceError> {
        let (order, group_id) = self
            .order(
                &request.customer_id,
                &request.order_id,
                request.amount.as_ref(),
            )
            .await?;
        let decision = self.decide(&order, group_id, false).await?;
        let currency = order.amount.currency();
        Ok(pb::CheckCreditResponse {
            decision: wire_outcome(decision.outcome) as i32,
            reasons: reasons(&decision),
            limit: decision
                .limit
                .map(|limit| from_minor(limit, currency).into()),
            exposure: Some(from_minor(decision.exposure_after, currency).into()),
            available: decision
                .available_after
                .map(|available| from_minor(available, currency).into()),
            group_position: group_position(&decision, currency),
            amount_in_limit_currency: Some(order.amount.into()),
            fx_rate: String::new(),
            decided_at: Some(to_timestamp(Utc::now())),
        })
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
        match self.ledger.close_hold(&closed).await {
            Ok(()) => {}
            Err(LedgerError::HoldNotOpen(current)) => return Ok(Err(*current)),
            Err(error) => return Err(ledger_error(error)),
        }
        if release_minor > 0 {
            // A cold profile has nothing to give back: its rebuild reads the closed hold.
            if let Err(error) = self
                .cache
                .release(
                    &closed.customer_id,
                    closed.group_id.as_deref(),
                    release_minor,
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

    /// Exposure from the ledger (the truth the cache is rebuilt from).
    pub async fn exposure(&self, scope: &Scope) -> Result<pb::Exposure, ServiceError> {
        let scope_key = match scope {
            Scope::Customer(id) => {
                self.limits
                    .customer(id)
                    .await
                    .map_err(store_error)?
                    .ok_or_else(|| ServiceError::not_found("customer", id.clone()))?;
                scope.key()
            }
            Scope::Group(_) => scope.key(),
            Scope::Portfolio => {
                return Err(ServiceError::invalid(
                    "scope",
                    "must be a customer or a group",
                ));
            }
        };
        let now = Utc::now();
        let limits = self.limits.limits(scope).await.map_err(store_error)?;
        let limit = limits::effective_limit(&limits, now);
        let currency = limit.map(|limit| limit.amount.currency()).map_or_else(
            || Currency::parse("CNY").map_err(ServiceError::internal),
            Ok,
        )?;
        let ledger = self
            .ledger
            .exposure(&scope_key)
            .await
            .map_err(ledger_error)?;
        let exposure = from_minor(ledger.total(), currency);
        let available =
            limit.map(|limit| Money::new(limit.amount.amount() - exposure.amount(), currency));
        let utilization = limit
            .filter(|limit| !limit.amount.amount().is_zero())
            .map(|limit| {
                // A ratio, shown like every ratio of the suite: four places, half-even.
                let mut ratio = (exposure.amount() / limit.amount.amount())
                    .round_dp_with_strategy(4, rust_decimal::RoundingStrategy::MidpointNearestEven);
                ratio.rescale(4);
                ratio.to_string()
            });
        Ok(pb::Exposure {
            scope: Some(scope.to_proto()),
            currency: currency.code().to_owned(),
            limit: limit.map(|limit| limit.amount.into()),
            open_holds: Some(from_minor(ledger.open_holds, currency).into()),
            open_receivables: Some(from_minor(ledger.receivables, currency).into()),
            exposure: Some(exposure.into()),
            available: available.map(Into::into),
            utilization,
            as_of: Some(to_timestamp(now)),
            ..Default::default()
        })
    }

    /// Forgets a customer's cached profile so the next decision rebuilds it (after its
    /// limit, status or group changed).
    pub async fn invalidate(&self, scope: &Scope) {
        let result = match scope {
            Scope::Customer(id) => self.cache.evict_customer(id).await,
            Scope::Group(id) => self.cache.evict_group(id).await,
            Scope::Portfolio => Ok(()),
        };
        if let Err(error) = result {
            tracing::warn!(error = %error, "could not evict a cached profile");
        }
    }
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

fn reasons(decision: &Decision) -> Vec<pb::Reason> {
    decision
        .reasons
        .iter()
        .map(|reason| pb::Reason {
            code: reason.as_str().to_owned(),
            message: reason_text(reason.as_str()).to_owned(),
            metadata: Default::default(),
        })
        .collect()
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
        scope: Some(Scope::Group(group.group_id.clone()).to_proto()),
        limit: group.limit.map(|limit| from_minor(limit, currency).into()),
        exposure: Some(from_minor(group.exposure_after, currency).into()),
        available: group
            .available_after
            .map(|available| from_minor(available, currency).into()),
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
        created_by: Some(hold.created_by.to_proto()),
        ..Default::default()
    }
}
