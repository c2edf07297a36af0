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
use credit_core::{Currency, Money, ServiceError};
use credit_runtime::sql::storage_error;
use rust_decimal::Decimal;

use crate::domain::policy::CreditPolicy;
use crate::exposure::{ExposureCache, ExposureError};
use crate::ledger::{LedgerError, LedgerStore};
use crate::store::LimitStore;

mod approvals;
mod authorize;
mod blocks;
mod cleared;
mod escalation;
mod exposure;
mod fx;
mod governance;
mod limits;
mod policy;
mod pricing;
mod referrals;
mod reviews;
mod securities;
mod settle;
mod terms;
mod warm;

#[cfg(test)]
mod tests;

pub use approvals::{ApprovalDesk, ChainChoice, ChosenChain, StepAction, Task};
pub(crate) use blocks::credit_block_event;
pub use cleared::ReferralReexaminer;
pub use escalation::{ESCALATION_INTERVAL, Escalator};
pub use governance::VersionView;
pub use limits::{CreditAdmin, Granted, ScopeLimits};
pub use policy::{PolicyProposal, ProposalView};
pub use pricing::PriceQuote;
pub use referrals::{ReferralVerdict, referral_to_proto};
pub use reviews::GradeChange;
pub(crate) use settle::{hold_event, hold_to_proto};

/// The credit policy as the hot path reads it: a copy refreshed from the store at most every
/// few seconds, so that an order never waits for a policy read, and a change made on another
/// replica applies within [`PolicyCopy::MAX_AGE`]. Profile rebuilds read the store directly.
#[derive(Debug, Clone)]
pub struct PolicyCopy {
    copy: Arc<std::sync::RwLock<CopiedPolicy>>,
}

#[derive(Debug)]
struct CopiedPolicy {
    policy: Arc<CreditPolicy>,
    read_at: std::time::Instant,
    /// False until the first read from the store: the placeholder is not a version in force.
    loaded: bool,
}

impl PolicyCopy {
    const MAX_AGE: Duration = Duration::from_secs(5);

    fn new() -> Self {
        // Stale from the start, so the first use reads the store.
        let long_ago = std::time::Instant::now()
            .checked_sub(Self::MAX_AGE * 2)
            .unwrap_or_else(std::time::Instant::now);
        Self {
            copy: Arc::new(std::sync::RwLock::new(CopiedPolicy {
                policy: Arc::new(CreditPolicy::default()),
                read_at: long_ago,
                loaded: false,
            })),
        }
    }

    /// The copy (shared, not cloned: every order reads it) and whether it is fresh.
    fn read(&self) -> (Arc<CreditPolicy>, bool) {
        let guard = self
            .copy
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        (
            guard.policy.clone(),
            guard.read_at.elapsed() < Self::MAX_AGE,
        )
    }

    /// Replaces the copy; the version it replaced, once one was read from the store.
    fn replace(&self, policy: CreditPolicy) -> Option<u64> {
        let mut guard = self
            .copy
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let previous = guard.loaded.then_some(guard.policy.version);
        *guard = CopiedPolicy {
            policy: Arc::new(policy),
            read_at: std::time::Instant::now(),
            loaded: true,
        };
        previous
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
    /// Customers whose referrals may have cleared, for the re-examination in the background.
    cleared: cleared::ClearedReferrals,
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

/// Who limits' own decisions are made by (event-driven blocks, drafted limit cuts, releases of
/// cleared referrals): one actor, so four-eyes checks and audit trails see one system.
pub(crate) fn system_actor() -> crate::domain::limits::Actor {
    crate::domain::limits::Actor {
        principal_id: "system:limits".to_owned(),
        person_id: "system:limits".to_owned(),
        name: "system:limits".to_owned(),
        roles: Vec::new(),
    }
}

fn new_id(prefix: &str) -> String {
    format!("{prefix}_{}", uuid::Uuid::now_v7().simple())
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
            cleared: cleared::ClearedReferrals::default(),
        }
    }

    /// The policy in force in the store (the shipped default until the first change), read
    /// now. When another version has come into force since the last read (one published on
    /// another replica, or one whose effective date has come), the cached profiles, built on
    /// the old one, are evicted.
    pub async fn stored_policy(&self) -> Result<CreditPolicy, ServiceError> {
        let policy = self
            .limits
            .policy()
            .await
            .map_err(ServiceError::from)?
            .unwrap_or_default();
        if let Some(previous) = self.policy.replace(policy.clone())
            && previous != policy.version
        {
            self.evict_profiles().await;
        }
        Ok(policy)
    }

    /// The policy stored before policies were governed (or the shipped one): the version the
    /// first governed proposal applies to.
    pub(crate) async fn ungoverned_policy(&self) -> Result<CreditPolicy, ServiceError> {
        self.limits
            .ungoverned_policy()
            .await
            .map_err(ServiceError::from)
            .map(Option::unwrap_or_default)
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
        self.evict_profiles().await;
    }

    async fn evict_profiles(&self) {
        if let Err(error) = self.cache.evict_all().await {
            tracing::warn!(error = %error, "could not evict the cached profiles after a policy change; they keep the old policy until rebuilt");
        }
    }

    /// The suite's base currency: exposure of a scope without a limit, approval authority
    /// and the shipped approval matrix are in it.
    pub fn base_currency(&self) -> Currency {
        self.base_currency
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
            .map_err(ServiceError::from)
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

    /// The approval matrix in force at `now` and its version (0 = the shipped one).
    pub(crate) async fn matrix_in_force(
        &self,
        now: chrono::DateTime<Utc>,
    ) -> Result<(u32, credit_core::approval::ApprovalMatrix), ServiceError> {
        let in_force = crate::store::GovernedStore::<credit_core::approval::ApprovalMatrix>::governed_in_force(
            &*self.limits,
            now,
        )
        .await
        .map_err(ServiceError::from)?;
        Ok(match in_force {
            Some(version) => (version.version, version.document),
            None => (0, credit_core::approval::shipped_matrix(self.base_currency)),
        })
    }

    /// `amount` in `currency` at today's rate (zero stays zero), for figures that are not
    /// order amounts (approval matrix conditions, authority): FAILED_PRECONDITION
    /// FX_RATE_MISSING when the FX table cannot convert it.
    pub(crate) async fn converted(
        &self,
        amount: Money,
        currency: Currency,
    ) -> Result<Money, ServiceError> {
        if amount.currency() == currency {
            return Ok(amount);
        }
        let rate = self
            .fx_rate(amount.currency(), currency)
            .await?
            .ok_or_else(|| ServiceError::FailedPrecondition {
                reason: "FX_RATE_MISSING",
                message: format!(
                    "the figure is in {} and must be compared in {currency}; no rate converts them",
                    amount.currency()
                ),
                metadata: vec![("currency", currency.code().to_owned())],
            })?;
        Money::new(amount.amount(), currency)
            .times(rate)
            .map_err(|error| ServiceError::invalid("amount", error.to_string()))
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
}
