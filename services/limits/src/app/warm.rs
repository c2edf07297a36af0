//! Warming the exposure cache: a cold customer or group is rebuilt from the limits tables, the
//! credit policy and the ledger before any order of it is decided (never approved cold).

use chrono::Utc;
use credit_core::{Currency, Money, ServiceError};

use crate::domain::limits::{CreditLimit, Scope};
use crate::domain::profile::{self, CacheState};
use crate::domain::security;
use crate::exposure::{Cover, ExposureError, GroupProfile, Limit, MAX_EXACT_AMOUNT};

use super::{HotPath, cache_error, ledger_error, to_minor, unix};

/// A limit in the cache's form: minor units and unix time.
fn cache_limit(limit: &CreditLimit) -> Result<Limit, ServiceError> {
    Ok(Limit {
        amount: to_minor(&limit.amount)?,
        valid_until: limit.valid_until.map(unix),
    })
}

impl HotPath {
    /// The scope's limit in force now in the cache's form (minor units, unix time), and the
    /// one currency its exposure is kept in: the limit's, or the newest granted one's when
    /// none is in force, or the suite's base currency when the scope never had a limit. Every
    /// amount is converted into it on entry, so minor units of two currencies never meet.
    pub(crate) async fn cached_limit(
        &self,
        scope: &Scope,
    ) -> Result<(Option<Limit>, Currency), ServiceError> {
        let limits = self
            .limits
            .limits(scope)
            .await
            .map_err(ServiceError::from)?;
        let (in_force, currency) = profile::limit_in_force(&limits, Utc::now(), self.base_currency);
        let limit = in_force.map(cache_limit).transpose()?;
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

    /// Loads the customer's profile into the cache, in a new epoch: one read of what limits
    /// knows of it (the policy read from the store, not the copy: a rebuild must not bring
    /// back an old policy), the per-order cap converted when it is in another currency, the
    /// ledger's exposure, then the profile built by `domain::profile`. The rebuild of a cold
    /// customer, and the repair reconciliation makes.
    pub(crate) async fn warm_customer(&self, customer_id: &str) -> Result<(), ServiceError> {
        let scope = Scope::Customer(customer_id.to_owned());
        // Read before the store: an eviction after this point means the facts below may
        // predate a change (see `ExposureCache::customer_generation`).
        let generation = self.cache_generation(&scope).await?;
        let facts = self
            .limits
            .warming_facts(customer_id)
            .await
            .map_err(ServiceError::from)?
            .ok_or_else(|| ServiceError::not_found("customer", customer_id))?;
        let (in_force, currency) =
            profile::limit_in_force(&facts.limits, Utc::now(), self.base_currency);
        let limit = in_force.map(cache_limit).transpose()?;
        let order_cap = match facts.order_cap() {
            Some(cap) => self.cap_in(cap, currency).await?,
            None => None,
        };
        let cover = self.cover(&facts, currency).await?;
        let (epoch, exposure) = self
            .ledger
            .rebuild(&format!("customer:{customer_id}"))
            .await
            .map_err(ledger_error)?;
        let profile = profile::customer_profile(
            &facts,
            CacheState {
                limit,
                currency,
                order_cap,
                exposure: exposure.total(),
                epoch,
                cover,
            },
        );
        self.cache
            .load_customer(&profile)
            .await
            .map_err(cache_error)?;
        self.keep_unless_evicted(&scope, generation).await
    }

    /// The security the customer's profile counts today (eligible values) and the guarantees
    /// it gave (face amounts), each converted into the limit's currency. A security in a
    /// currency no rate converts is not counted (less credit, with a warning); a guarantee
    /// given in such a currency refuses the rebuild, for counting less exposure than there is
    /// would give more credit.
    pub(crate) async fn cover(
        &self,
        facts: &profile::WarmingFacts,
        currency: Currency,
    ) -> Result<Cover, ServiceError> {
        let now = Utc::now();
        let (counted, first_end) = security::counted(&facts.securities, now.date_naive());
        let mut secured: i64 = 0;
        for item in counted {
            let value = item.eligible_value();
            let converted = if value.currency() == currency {
                value
            } else {
                match self.convert(value, currency).await {
                    Ok((converted, _)) => converted,
                    Err(ServiceError::FailedPrecondition { .. }) => {
                        tracing::warn!(security_id = %item.security_id, security_currency = %value.currency(), limit_currency = %currency, "no FX rate converts the security; it is not counted");
                        continue;
                    }
                    Err(error) => return Err(error),
                }
            };
            secured = secured.saturating_add(to_minor(&converted)?);
        }
        let (given, _) = security::counted(&facts.guarantees_given, now.date_naive());
        let mut contingent: i64 = 0;
        for guarantee in given {
            let amount = if guarantee.amount.currency() == currency {
                guarantee.amount
            } else {
                self.convert(guarantee.amount, currency).await?.0
            };
            contingent = contingent.saturating_add(to_minor(&amount)?);
        }
        Ok(Cover {
            secured: secured.min(MAX_EXACT_AMOUNT),
            extends_capacity: false,
            secured_valid_until: first_end.map(unix),
            contingent: contingent.min(MAX_EXACT_AMOUNT),
        })
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
