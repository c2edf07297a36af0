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

use crate::domain::limits::{self, CreditBlock, Person, Scope, to_timestamp};
use crate::domain::policy::CreditPolicy;
use crate::domain::terms;
use crate::exposure::{
    Adjustment, AuthorizeInput, AuthorizeOutcome, CustomerProfile, Decision, ExposureCache,
    ExposureError, Fence, GroupProfile, Limit, Outcome, ProfileStatus, ReasonCode,
};
use crate::ledger::{
    DecidedReferral, FencedHold, Hold, HoldStatus, LedgerError, LedgerStore, Referral,
    ReferralStatus, StoredAnswer,
};
use crate::store::RatingFacts;
use crate::store::{LimitStore, StoreError};
use credit_proto::service_names::LIMITS;
use credit_proto::v1::event::Payload;
use credit_runtime::events::new_event;
use credit_runtime::sql::{IdempotencyKey, Page};

/// The credit policy as the hot path reads it: a copy refreshed from the store at most every
/// few seconds, so that an order never waits for a policy read, and a change made on another
/// replica applies within [`PolicyCopy::MAX_AGE`]. Profile rebuilds read the store directly.
#[derive(Debug, Clone)]
pub struct PolicyCopy {
    copy: Arc<std::sync::RwLock<(Arc<CreditPolicy>, std::time::Instant)>>,
}

impl PolicyCopy {
    const MAX_AGE: Duration = Duration::from_secs(5);

    fn new() -> Self {
        // Stale from the start, so the first use reads the store.
        let long_ago = std::time::Instant::now()
            .checked_sub(Self::MAX_AGE * 2)
            .unwrap_or_else(std::time::Instant::now);
        Self {
            copy: Arc::new(std::sync::RwLock::new((
                Arc::new(CreditPolicy::default()),
                long_ago,
            ))),
        }
    }

    /// The copy (shared, not cloned: every order reads it) and whether it is fresh.
    fn read(&self) -> (Arc<CreditPolicy>, bool) {
        let guard = self
            .copy
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        (guard.0.clone(), guard.1.elapsed() < Self::MAX_AGE)
    }

    fn replace(&self, policy: CreditPolicy) {
        let mut guard = self
            .copy
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        *guard = (Arc::new(policy), std::time::Instant::now());
    }
}

#[derive(Debug, Clone)]
pub struct HotPath {
    limits: Arc<dyn LimitStore>,
    ledger: Arc<dyn LedgerStore>,
    cache: Arc<dyn ExposureCache>,
    policy: PolicyCopy,
    /// The currency exposure is kept in for a scope that has never had a limit.
    base_currency: Currency,
}

pub(crate) fn cache_error(error: ExposureError) -> ServiceError {
    match error {
        ExposureError::Redis(error) => {
            ServiceError::unavailable("the exposure cache did not answer; retry", error)
        }
        // The caller's order is beyond what the cache decides exactly (2^53 - 1 minor units):
        // bad input, not a fault of the suite.
        ExposureError::AmountOutOfRange {
            field: "amount",
            max,
            ..
        } => ServiceError::invalid(
            "amount",
            format!("is beyond the largest order the suite decides exactly ({max} minor units)"),
        ),
        ExposureError::ExposureOutOfRange { .. } => ServiceError::invalid(
            "amount",
            "would take the exposure beyond the largest figure the suite decides exactly",
        ),
        ExposureError::InvalidId {
            field: "customer_id",
            ..
        } => ServiceError::invalid("customer_id", "must contain neither '{' nor '}'"),
        other => ServiceError::internal(other),
    }
}

pub(crate) fn ledger_error(error: LedgerError) -> ServiceError {
    match error {
        LedgerError::Database(error) => storage_error(error),
        other => ServiceError::internal(other),
    }
}

pub(crate) fn store_error(error: StoreError) -> ServiceError {
    match error {
        StoreError::Database(error) => storage_error(error),
        StoreError::Refused(answer) => *answer,
        other => ServiceError::internal(other),
    }
}

/// Money → minor units of its currency. Exact: parsed money has at most the minor units.
pub(crate) fn to_minor(money: &Money) -> Result<i64, ServiceError> {
    money
        .to_minor_units()
        .map_err(|_| ServiceError::invalid("amount", "is too large"))
}

pub(crate) fn from_minor(minor: i64, currency: Currency) -> Money {
    Money::from_minor_units(minor, currency)
}

fn unix(time: DateTime<Utc>) -> i64 {
    time.timestamp()
}

/// The unix second from which a rating counts as stale: the start (UTC) of the day after its
/// review date plus the grace days. A rating without a review date never goes stale.
fn rating_valid_until(rating: &RatingFacts, grace_days: u32) -> Option<i64> {
    let review = rating.next_review_date?;
    let stale_from = review.checked_add_days(chrono::Days::new(u64::from(grace_days) + 1))?;
    Some(stale_from.and_hms_opt(0, 0, 0)?.and_utc().timestamp())
}

fn new_id(prefix: &str) -> String {
    format!("{prefix}_{}", uuid::Uuid::now_v7().simple())
}

/// A checked order: who, what, how much, in the currency the caller ordered in.
struct Order {
    customer_id: String,
    order_id: String,
    amount: Money,
}

/// A decision and the order amount it was made on, in the limit's currency.
struct Decided {
    decision: Decision,
    /// The order amount in the limit's currency (the order's own when they agree).
    amount: Money,
    amount_minor: i64,
    /// The rate that converted the order, when it was in another currency.
    fx_rate: Option<Decimal>,
}

impl HotPath {
    pub fn new(
        limits: Arc<dyn LimitStore>,
        ledger: Arc<dyn LedgerStore>,
        cache: Arc<dyn ExposureCache>,
        base_currency: Currency,
    ) -> Self {
        Self {
            limits,
            ledger,
            cache,
            policy: PolicyCopy::new(),
            base_currency,
        }
    }

    /// The policy in the store (the shipped default until the first change), read now.
    pub async fn stored_policy(&self) -> Result<CreditPolicy, ServiceError> {
        let policy = self
            .limits
            .policy()
            .await
            .map_err(store_error)?
            .unwrap_or_default();
        self.policy.replace(policy.clone());
        Ok(policy)
    }

    /// The policy, at most [`PolicyCopy::MAX_AGE`] old.
    pub async fn policy(&self) -> Result<Arc<CreditPolicy>, ServiceError> {
        match self.policy.read() {
            (policy, true) => Ok(policy),
            (_, false) => self.stored_policy().await.map(Arc::new),
        }
    }

    /// After a policy change: every cached profile carries the old tolerances and caps, so
    /// all are evicted and rebuilt on their next order.
    pub async fn policy_changed(&self, policy: CreditPolicy) {
        self.policy.replace(policy);
        if let Err(error) = self.cache.evict_all().await {
            tracing::warn!(error = %error, "could not evict the cached profiles after a policy change; they keep the old policy until rebuilt");
        }
    }

    pub fn cache(&self) -> &Arc<dyn ExposureCache> {
        &self.cache
    }

    /// The ledger the cache is rebuilt from (reconciliation compares the two).
    pub(crate) fn limits(&self) -> &Arc<dyn LimitStore> {
        &self.limits
    }

    pub(crate) fn ledger(&self) -> &Arc<dyn LedgerStore> {
        &self.ledger
    }

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

    /// The rate in force now that converts `from` into `to`, from the FX table (the pair, or
    /// the inverse of the opposite pair); `None` when the table has neither. For figures that
    /// are not order amounts (ProposeLimit converts equity, which may be negative).
    pub(crate) async fn fx_rate(
        &self,
        from: Currency,
        to: Currency,
    ) -> Result<Option<Decimal>, ServiceError> {
        self.limits
            .fx_rate(from, to, Utc::now())
            .await
            .map_err(store_error)
    }

    /// The order amount in `currency` at today's rate: FAILED_PRECONDITION FX_RATE_MISSING
    /// when the table has no rate for the pair (nor its inverse).
    pub(crate) async fn convert(
        &self,
        amount: Money,
        currency: Currency,
    ) -> Result<(Money, Decimal), ServiceError> {
        let rate = self
            .fx_rate(amount.currency(), currency)
            .await?
            .ok_or_else(|| ServiceError::FailedPrecondition {
                reason: "FX_RATE_MISSING",
                message: format!(
                    "the order is in {} and the limit in {}; no rate converts them",
                    amount.currency(),
                    currency
                ),
                metadata: vec![("limit_currency", currency.code().to_owned())],
            })?;
        // Rounded once, half-even, in the limit currency's minor units (Money::times).
        let converted = Money::new(amount.amount(), currency)
            .times(rate)
            .and_then(Money::positive)
            .map_err(|error| ServiceError::invalid("amount", error.to_string()))?;
        Ok((converted, rate))
    }

    /// The scope's limit in force now in the cache's form (minor units, unix time), and the
    /// one currency its exposure is kept in: the limit's, or the newest granted one's when
    /// none is in force, or the suite's base currency when the scope never had a limit. Every
    /// amount is converted into it on entry, so minor units of two currencies never meet.
    pub(crate) async fn cached_limit(
        &self,
        scope: &Scope,
    ) -> Result<(Option<Limit>, Currency), ServiceError> {
        let limits = self.limits.limits(scope).await.map_err(store_error)?;
        let in_force = limits::effective_limit(&limits, Utc::now());
        let currency = in_force
            .or_else(|| limits.iter().max_by_key(|limit| limit.granted_at))
            .map_or(self.base_currency, |limit| limit.amount.currency());
        let limit = match in_force {
            Some(limit) => Some(Limit {
                amount: to_minor(&limit.amount)?,
                valid_until: limit.valid_until.map(unix),
            }),
            None => None,
        };
        Ok((limit, currency))
    }

    /// The scope's exposure in the ledger (open holds and receivables), in minor units of
    /// its exposure currency.
    pub(crate) async fn ledger_exposure(&self, scope: &Scope) -> Result<i64, ServiceError> {
        Ok(self
            .ledger
            .exposure(&scope.key())
            .await
            .map_err(ledger_error)?
            .total())
    }

    /// The currency the scope's exposure is kept in (see [`HotPath::cached_limit`]).
    pub(crate) async fn exposure_currency(&self, scope: &Scope) -> Result<Currency, ServiceError> {
        Ok(self.cached_limit(scope).await?.1)
    }

    /// Loads the customer's profile into the cache, in a new epoch, from the limits tables,
    /// the credit policy (read from the store, not the copy: a rebuild must not bring back an
    /// old policy) and the ledger: the rebuild of a cold customer, and the repair
    /// reconciliation makes.
    pub(crate) async fn warm_customer(&self, customer_id: &str) -> Result<(), ServiceError> {
        let scope = Scope::Customer(customer_id.to_owned());
        // Read before the store: an eviction after this point means the facts below may
        // predate a change (see `ExposureCache::customer_generation`).
        let generation = self.cache_generation(&scope).await?;
        let facts = self
            .limits
            .customer(customer_id)
            .await
            .map_err(store_error)?
            .ok_or_else(|| ServiceError::not_found("customer", customer_id))?;
        let policy = self.stored_policy().await?;
        let (limit, currency) = self
            .cached_limit(&Scope::Customer(customer_id.to_owned()))
            .await?;
        let blocked = !self
            .limits
            .blocks(customer_id)
            .await
            .map_err(store_error)?
            .is_empty();
        let grade = facts.rating.as_ref().map(|rating| rating.grade.as_str());
        let (grade_policy, _) = policy.for_grade(grade);
        let own_terms = self.limits.terms(customer_id).await.map_err(store_error)?;
        let terms = terms::effective(customer_id, own_terms.as_ref(), &policy, grade);
        let order_cap = match terms.order_amount_cap {
            Some(cap) => self.cap_in(cap, currency).await?,
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
            limit_currency: Some(currency.code().to_owned()),
            blocked,
            oldest_overdue_days: facts.oldest_overdue_days,
            overdue_tolerance_days: grade_policy.overdue_tolerance_days,
            rating_required: policy.rating_required,
            rating_valid_until: facts
                .rating
                .as_ref()
                .and_then(|rating| rating_valid_until(rating, policy.rating_grace_days)),
            order_cap,
            tolerance_bps: policy.tolerance_bps(),
            exposure: exposure.total(),
            epoch,
        };
        self.cache
            .load_customer(&profile)
            .await
            .map_err(cache_error)?;
        self.keep_unless_evicted(&scope, generation).await
    }

    /// How many times `scope` was evicted (see `ExposureCache::customer_generation`).
    async fn cache_generation(&self, scope: &Scope) -> Result<u64, ServiceError> {
        match scope {
            Scope::Customer(id) => self.cache.customer_generation(id).await,
            Scope::Group(id) => self.cache.group_generation(id).await,
            Scope::Portfolio => Ok(0),
        }
        .map_err(cache_error)
    }

    /// After a rebuild loaded `scope`: evicts it again when it was evicted since `generation`
    /// was read before the store, for what was read may predate the change that evicted it.
    /// The next decision finds it cold and rebuilds it again.
    async fn keep_unless_evicted(
        &self,
        scope: &Scope,
        generation: u64,
    ) -> Result<(), ServiceError> {
        if self.cache_generation(scope).await? == generation {
            return Ok(());
        }
        self.evict(scope).await.map_err(cache_error)
    }

    /// A per-order cap in minor units of the limit's currency; a cap in another currency is
    /// converted at today's rate, and is not applied (with a warning) while no rate exists,
    /// rather than refusing every order of the customer.
    async fn cap_in(&self, cap: Money, currency: Currency) -> Result<Option<i64>, ServiceError> {
        if cap.currency() == currency {
            return to_minor(&cap).map(Some);
        }
        match self.convert(cap, currency).await {
            Ok((converted, _)) => to_minor(&converted).map(Some),
            Err(ServiceError::FailedPrecondition { .. }) => {
                tracing::warn!(cap_currency = %cap.currency(), limit_currency = %currency, "no FX rate converts the per-order cap; it is not applied");
                Ok(None)
            }
            Err(error) => Err(error),
        }
    }

    /// Loads the group's profile into the cache from its limit and the ledger, in a new epoch.
    pub(crate) async fn warm_group(&self, group_id: &str) -> Result<(), ServiceError> {
        let scope = Scope::Group(group_id.to_owned());
        // As for a customer: an eviction while we read drops our load.
        let generation = self.cache_generation(&scope).await?;
        let (limit, _) = self
            .cached_limit(&Scope::Group(group_id.to_owned()))
            .await?;
        let (epoch, exposure) = self
            .ledger
            .rebuild(&format!("group:{group_id}"))
            .await
            .map_err(ledger_error)?;
        let profile = GroupProfile {
            group_id: group_id.to_owned(),
            limit,
            tolerance_bps: self.stored_policy().await?.tolerance_bps(),
            exposure: exposure.total(),
            epoch,
        };
        self.cache.load_group(&profile).await.map_err(cache_error)?;
        self.keep_unless_evicted(&scope, generation).await
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
    async fn undo(&self, order: &Order, decided: &Decided) {
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
                actor: Some(referral.created_by.to_proto()),
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
        })
    }

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

    /// Exposure from the ledger (the truth the cache is rebuilt from).
    pub async fn exposure(&self, scope: &Scope) -> Result<pb::Exposure, ServiceError> {
        let (scope_key, facts) = match scope {
            Scope::Customer(id) => {
                let facts = self
                    .limits
                    .customer(id)
                    .await
                    .map_err(store_error)?
                    .ok_or_else(|| ServiceError::not_found("customer", id.clone()))?;
                (scope.key(), Some(facts))
            }
            Scope::Group(_) => (scope.key(), None),
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
        let currency = self.exposure_currency(scope).await?;
        let ledger = self
            .ledger
            .exposure(&scope_key)
            .await
            .map_err(ledger_error)?;
        let blocks = match scope {
            Scope::Customer(id) => self.limits.blocks(id).await.map_err(store_error)?,
            _ => Vec::new(),
        };
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
            blocks: blocks.iter().map(CreditBlock::to_proto).collect(),
            oldest_overdue_days: facts.as_ref().map_or(0, |facts| {
                i32::try_from(facts.oldest_overdue_days).unwrap_or(i32::MAX)
            }),
            grade: facts
                .and_then(|facts| facts.rating)
                .map(|rating| rating.grade)
                .unwrap_or_default(),
            as_of: Some(to_timestamp(now)),
            ..Default::default()
        })
    }

    /// The cache incarnations (epochs) of the customer's profile and of its group's, warming
    /// cold ones first: a hold written with them is either counted by the cache (the caller
    /// adds it) or refused because a rebuild came in between (and then read the ledger).
    async fn cached_epochs(
        &self,
        customer_id: &str,
    ) -> Result<(u64, Option<(String, u64)>), ServiceError> {
        for _ in 0..3 {
            let Some(customer) = self
                .cache
                .get_customer(customer_id)
                .await
                .map_err(cache_error)?
            else {
                self.warm_customer(customer_id).await?;
                continue;
            };
            let Some(group_id) = customer.group_id else {
                return Ok((customer.epoch, None));
            };
            match self.cache.get_group(&group_id).await.map_err(cache_error)? {
                Some(group) => return Ok((customer.epoch, Some((group_id, group.epoch)))),
                None => self.warm_group(&group_id).await?,
            }
        }
        Err(ServiceError::unavailable(
            "the customer's exposure is being rebuilt; retry",
            ExposureError::InvalidId {
                field: "customer_id",
                value: customer_id.to_owned(),
            },
        ))
    }

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
        let request_id = request.request_id.trim();
        if request_id.is_empty() || request_id.len() > 100 {
            return Err(ServiceError::invalid(
                "request_id",
                "is required, at most 100 characters",
            ));
        }
        let key = IdempotencyKey {
            request_id: request_id.to_owned(),
            operation: "DecideReferral",
            fingerprint: fingerprint(request),
        };
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
        let person = Person::of(principal);
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

    async fn checked_ttl(&self, seconds: i64) -> Result<Duration, ServiceError> {
        self.checked_ttl_seconds(u64::try_from(seconds).unwrap_or(0))
            .await
    }

    /// A hold lifetime from one minute to the policy's maximum.
    async fn checked_ttl_seconds(&self, seconds: u64) -> Result<Duration, ServiceError> {
        let ttl = Duration::from_secs(seconds);
        let max = self.policy().await?.max_hold_ttl();
        if ttl < Duration::from_secs(60) || ttl > max {
            return Err(ServiceError::invalid(
                "hold_ttl",
                format!(
                    "must be between one minute and {} days (the credit policy's maximum)",
                    max.as_secs() / 86_400
                ),
            ));
        }
        Ok(ttl)
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

    /// Sets the customer's manual credit block (a no-op when it is set); every order of the
    /// customer is referred (CREDIT_BLOCK) from the next decision on.
    pub async fn set_block(
        &self,
        principal: &Principal,
        request: &pb::SetCreditBlockRequest,
    ) -> Result<pb::SetCreditBlockResponse, ServiceError> {
        let (customer_id, reason) = self
            .block_request(&request.customer_id, &request.reason)
            .await?;
        let block = CreditBlock {
            customer_id: customer_id.clone(),
            block_type: CreditBlock::MANUAL.to_owned(),
            reason: reason.clone(),
            set_at: Utc::now(),
            set_by: Person::of(principal),
            source_event_id: String::new(),
        };
        let event = block_event(principal, &customer_id, true, &reason);
        self.limits
            .set_block(&block, &event)
            .await
            .map_err(store_error)?;
        // The cached profile carries the old flag; the next decision rebuilds it.
        self.invalidate(&Scope::Customer(customer_id.clone())).await;
        Ok(pb::SetCreditBlockResponse {
            blocks: self.block_list(&customer_id).await?,
        })
    }

    /// Clears the customer's manual credit block (a no-op when none is set). Other kinds are
    /// cleared by the events that set them.
    pub async fn clear_block(
        &self,
        principal: &Principal,
        request: &pb::ClearCreditBlockRequest,
    ) -> Result<pb::ClearCreditBlockResponse, ServiceError> {
        match pb::CreditBlockType::try_from(request.block_type) {
            Ok(pb::CreditBlockType::Unspecified | pb::CreditBlockType::Manual) => {}
            Ok(other) => {
                return Err(ServiceError::failed_precondition(
                    "BLOCK_NOT_MANUAL",
                    format!(
                        "{} blocks are cleared by the events that set them",
                        other.as_str_name()
                    ),
                ));
            }
            Err(_) => {
                return Err(ServiceError::invalid(
                    "block_type",
                    "is not a credit block type",
                ));
            }
        }
        let (customer_id, reason) = self
            .block_request(&request.customer_id, &request.reason)
            .await?;
        let event = block_event(principal, &customer_id, false, &reason);
        self.limits
            .clear_block(&customer_id, CreditBlock::MANUAL, &event)
            .await
            .map_err(store_error)?;
        self.invalidate(&Scope::Customer(customer_id.clone())).await;
        Ok(pb::ClearCreditBlockResponse {
            blocks: self.block_list(&customer_id).await?,
        })
    }

    async fn block_request(
        &self,
        customer_id: &str,
        reason: &str,
    ) -> Result<(String, String), ServiceError> {
        let mut violations = credit_core::Violations::new();
        let customer_id = customer_id.trim();
        if customer_id.is_empty() || customer_id.len() > 100 {
            violations.add("customer_id", "is required, at most 100 characters");
        }
        let reason = reason.trim();
        if reason.is_empty() || reason.len() > 1000 {
            violations.add("reason", "is required, at most 1000 characters");
        }
        violations.finish()?;
        self.limits
            .customer(customer_id)
            .await
            .map_err(store_error)?
            .ok_or_else(|| ServiceError::not_found("customer", customer_id))?;
        Ok((customer_id.to_owned(), reason.to_owned()))
    }

    async fn block_list(&self, customer_id: &str) -> Result<Vec<pb::CreditBlock>, ServiceError> {
        Ok(self
            .limits
            .blocks(customer_id)
            .await
            .map_err(store_error)?
            .iter()
            .map(CreditBlock::to_proto)
            .collect())
    }

    /// After an InvoiceOverdue: sets the OVERDUE block when the customer's oldest overdue days
    /// pass the tolerance of its grade, clears it when they are back within, and rebuilds the
    /// cached profile (which carries the days and the block).
    pub async fn overdue_changed(
        &self,
        customer_id: &str,
        source_event_id: &str,
    ) -> Result<(), ServiceError> {
        let Some(facts) = self
            .limits
            .customer(customer_id)
            .await
            .map_err(store_error)?
        else {
            return Ok(());
        };
        let policy = self.stored_policy().await?;
        let grade = facts.rating.as_ref().map(|rating| rating.grade.as_str());
        let tolerance = policy.for_grade(grade).0.overdue_tolerance_days;
        let system = Person {
            principal_id: "system:limits".to_owned(),
            name: "system:limits".to_owned(),
            roles: Vec::new(),
        };
        let days = facts.oldest_overdue_days;
        if days > tolerance {
            let reason = format!("{days} days overdue, beyond the tolerance of {tolerance} days");
            let block = CreditBlock {
                customer_id: customer_id.to_owned(),
                block_type: CreditBlock::OVERDUE.to_owned(),
                reason: reason.clone(),
                set_at: Utc::now(),
                set_by: system.clone(),
                source_event_id: source_event_id.to_owned(),
            };
            let event = credit_block_event(
                &system,
                customer_id,
                pb::CreditBlockType::Overdue,
                true,
                &reason,
            );
            self.limits
                .set_block(&block, &event)
                .await
                .map_err(store_error)?;
        } else {
            let reason = format!("{days} days overdue, within the tolerance of {tolerance} days");
            let event = credit_block_event(
                &system,
                customer_id,
                pb::CreditBlockType::Overdue,
                false,
                &reason,
            );
            self.limits
                .clear_block(customer_id, CreditBlock::OVERDUE, &event)
                .await
                .map_err(store_error)?;
        }
        self.invalidate(&Scope::Customer(customer_id.to_owned()))
            .await;
        Ok(())
    }

    /// Forgets a customer's cached profile so the next decision rebuilds it (after its
    /// limit, status or group changed).
    pub async fn invalidate(&self, scope: &Scope) {
        if let Err(error) = self.evict(scope).await {
            tracing::warn!(error = %error, "could not evict a cached profile");
        }
    }

    /// Drops the cached profile of a customer or group (the portfolio has none).
    async fn evict(&self, scope: &Scope) -> Result<(), ExposureError> {
        match scope {
            Scope::Customer(id) => self.cache.evict_customer(id).await,
            Scope::Group(id) => self.cache.evict_group(id).await,
            Scope::Portfolio => Ok(()),
        }
    }
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
        actor: Some(decider.to_proto()),
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

fn block_event(principal: &Principal, customer_id: &str, blocked: bool, reason: &str) -> pb::Event {
    credit_block_event(
        &Person::of(principal),
        customer_id,
        pb::CreditBlockType::Manual,
        blocked,
        reason,
    )
}

pub(crate) fn credit_block_event(
    actor: &Person,
    customer_id: &str,
    block_type: pb::CreditBlockType,
    blocked: bool,
    reason: &str,
) -> pb::Event {
    let code = match block_type {
        pb::CreditBlockType::Overdue => CreditBlock::OVERDUE,
        pb::CreditBlockType::FxRateMissing => CreditBlock::FX_RATE_MISSING,
        _ => CreditBlock::MANUAL,
    };
    pb::Event {
        aggregate_id: customer_id.to_owned(),
        customer_id: customer_id.to_owned(),
        actor: Some(actor.to_proto()),
        ..new_event(
            LIMITS,
            Payload::CreditBlockChanged(pb::CreditBlockChanged {
                customer_id: customer_id.to_owned(),
                block_type: block_type as i32,
                blocked,
                reason: Some(pb::Reason {
                    code: code.to_owned(),
                    message: reason.to_owned(),
                    metadata: Default::default(),
                }),
            }),
        )
    }
}

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

fn position(
    scope: Scope,
    limit: Option<i64>,
    exposure: i64,
    currency: Currency,
) -> pb::CreditPosition {
    pb::CreditPosition {
        scope: Some(scope.to_proto()),
        limit: limit.map(|limit| from_minor(limit, currency).into()),
        exposure: Some(from_minor(exposure, currency).into()),
        available: limit.map(|limit| from_minor(limit - exposure, currency).into()),
    }
}

/// Stored reason codes on the wire, each with its text (the figures live in the answer).
fn wire_reasons(codes: &[String]) -> Vec<pb::Reason> {
    codes
        .iter()
        .map(|code| pb::Reason {
            code: code.clone(),
            message: reason_text(code).to_owned(),
            metadata: Default::default(),
        })
        .collect()
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
        decided_by: referral.decided_by.as_ref().map(Person::to_proto),
        decided_at: referral.decided_at.map(to_timestamp),
        decision_reason: referral.decision_reason.clone(),
        hold_id: referral.hold_id.clone(),
        ..Default::default()
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
        referral_id: hold.referral_id.clone(),
        ..Default::default()
    }
}
