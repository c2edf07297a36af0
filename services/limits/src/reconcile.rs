//! `ReconcileExposure`: compares the exposure cached for each customer and group with the
//! ledger, reports every difference, and repairs it by rebuilding the entry from the ledger.
//!
//! The cache keeps one exposure figure per customer and per group (open holds and open
//! receivables together), so that figure is what is compared. A customer or group that is not
//! cached is *cold*, not wrong: it is rebuilt from the ledger before its next decision, so it
//! is neither reported nor touched.
//!
//! # Comparing a moving target
//! Cache and ledger are not written at the same instant: Authorize reserves in the cache and
//! then writes the hold; Capture, Release and expiry close the hold and then give the amount
//! back; a released referral writes its hold and then adds it. Under load a plain comparison
//! therefore sees differences that vanish a moment later. Each entry that differs is looked at
//! again after [`SETTLE_PAUSE`], and only a difference that is still there is reported. That
//! second look narrows the report to real differences but cannot prove one: a customer with a
//! reservation in flight at both looks shows one too. The repair is exact either way: it is
//! the rebuild of a cold entry (`HotPath::warm_customer` / `warm_group`), which takes a new
//! epoch under the ledger's lock, so every reservation in flight is either counted in the
//! rebuilt figure or refused at its durable write. A needless repair costs a rebuild, never a
//! wrong figure.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use credit_core::error::ErrorChain;
use credit_core::{Currency, Principal, ServiceError, Violations};
use credit_proto::v1 as pb;
use credit_runtime::metrics::Counter;
use tokio::sync::watch;

use crate::api::convert::{scope_to_proto, to_timestamp};
use crate::app::{HotPath, cache_error, from_minor, ledger_error};
use crate::domain::limits::Scope;
use crate::exposure::ExposureError;
use crate::store::{CustomerFacts, LimitStore};

/// Most customer ids one call may name; an empty list checks every customer.
pub const MAX_CUSTOMER_IDS: usize = 1_000;

/// Longest customer id the limits service accepts anywhere.
const MAX_CUSTOMER_ID_LENGTH: usize = 100;

/// Customers read from the store and compared per round; each round pauses at most once.
const BATCH_SIZE: usize = 500;

/// How long a difference must last to be reported. A cache write and its ledger write lie
/// milliseconds apart (a durable commit, a Redis round trip); a quarter of a second lets them
/// meet, and is paid only by rounds that found a difference.
pub const SETTLE_PAUSE: Duration = Duration::from_millis(250);

/// The one figure the cache keeps per customer and group (see the module docs).
const EXPOSURE_FIELD: &str = "exposure";

/// What the cache keeps an exposure figure for.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum CachedScope {
    Customer(String),
    Group(String),
}

impl CachedScope {
    fn scope(&self) -> Scope {
        match self {
            CachedScope::Customer(id) => Scope::Customer(id.clone()),
            CachedScope::Group(id) => Scope::Group(id.clone()),
        }
    }
}

/// What the cache holds for a scope.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Cached {
    /// Not cached: rebuilt from the ledger before its next decision.
    Cold,
    /// An entry that cannot be read back (written by something other than the cache module).
    Unreadable,
    /// The cached exposure, in minor units of the scope's limit currency.
    Exposure(i64),
}

/// One look at a scope: the cache's figure and the ledger's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Look {
    cached: Cached,
    ledger: i64,
}

impl Look {
    fn differs(&self) -> bool {
        match self.cached {
            Cached::Cold => false,
            Cached::Unreadable => true,
            Cached::Exposure(cached) => cached != self.ledger,
        }
    }
}

/// Checks the request: `None` checks every customer, `Some` the named ones, each once, in the
/// order given. Bad input is refused with a field violation per problem.
pub fn requested_customers(customer_ids: &[String]) -> Result<Option<Vec<String>>, ServiceError> {
    if customer_ids.is_empty() {
        return Ok(None);
    }
    if customer_ids.len() > MAX_CUSTOMER_IDS {
        return Err(ServiceError::invalid(
            "customer_ids",
            format!(
                "at most {MAX_CUSTOMER_IDS} customers per call (got {}); leave it empty to check every customer",
                customer_ids.len()
            ),
        ));
    }
    let mut violations = Violations::new();
    let mut seen = HashSet::new();
    let mut customers = Vec::with_capacity(customer_ids.len());
    for (index, customer_id) in customer_ids.iter().enumerate() {
        let customer_id = customer_id.trim();
        if customer_id.is_empty() || customer_id.len() > MAX_CUSTOMER_ID_LENGTH {
            violations.add(
                format!("customer_ids[{index}]"),
                format!("is required, at most {MAX_CUSTOMER_ID_LENGTH} characters"),
            );
        } else if seen.insert(customer_id) {
            customers.push(customer_id.to_owned());
        }
    }
    violations.finish()?;
    Ok(Some(customers))
}

/// One reconciliation run: what it has checked and found so far.
#[derive(Debug)]
struct Run<'a> {
    hot: &'a HotPath,
    dry_run: bool,
    customers_checked: i64,
    /// Groups already compared: a group is checked once however many members it has.
    groups_seen: HashSet<String>,
    differences: Vec<pb::ExposureDifference>,
    repaired_count: i64,
}

/// Runs `ReconcileExposure` (see the module docs). Comparisons that cannot be made (the cache
/// or the ledger does not answer) end the run with an error; a repair that fails is reported
/// as a difference not repaired, and the run goes on.
pub async fn reconcile_exposure(
    hot: &HotPath,
    limits: &dyn LimitStore,
    principal: &Principal,
    request: &pb::ReconcileExposureRequest,
) -> Result<pb::ReconcileExposureResponse, ServiceError> {
    let requested = requested_customers(&request.customer_ids)?;
    let started_at = Utc::now();
    let run = compare_and_repair(hot, limits, requested, request.dry_run).await?;
    let finished_at = Utc::now();
    tracing::info!(
        requested_by = %principal.name,
        dry_run = run.dry_run,
        customers_checked = run.customers_checked,
        groups_checked = run.groups_seen.len(),
        differences = run.differences.len(),
        repaired = run.repaired_count,
        "exposure reconciled with the ledger"
    );
    Ok(pb::ReconcileExposureResponse {
        customers_checked: run.customers_checked,
        groups_checked: i64::try_from(run.groups_seen.len()).unwrap_or(i64::MAX),
        differences: run.differences,
        repaired_count: run.repaired_count,
        started_at: Some(to_timestamp(started_at)),
        finished_at: Some(to_timestamp(finished_at)),
    })
}

/// Compares (and unless `dry_run`, repairs) the named customers, or every customer when
/// `requested` is `None`, with the groups they belong to.
async fn compare_and_repair<'a>(
    hot: &'a HotPath,
    limits: &dyn LimitStore,
    requested: Option<Vec<String>>,
    dry_run: bool,
) -> Result<Run<'a>, ServiceError> {
    let mut run = Run {
        hot,
        dry_run,
        customers_checked: 0,
        groups_seen: HashSet::new(),
        differences: Vec::new(),
        repaired_count: 0,
    };
    match requested {
        Some(customer_ids) => {
            // Every id is looked up before anything is compared or repaired, so a typo ends
            // the call having changed nothing.
            let mut customers = Vec::with_capacity(customer_ids.len());
            for customer_id in customer_ids {
                let facts = limits
                    .customer(&customer_id)
                    .await
                    .map_err(ServiceError::from)?
                    .ok_or_else(|| ServiceError::not_found("customer", customer_id))?;
                customers.push(facts);
            }
            for batch in customers.chunks(BATCH_SIZE) {
                run.check_batch(batch).await?;
            }
        }
        None => {
            let batch_size = i64::try_from(BATCH_SIZE).unwrap_or(i64::MAX);
            let mut after = String::new();
            loop {
                let batch = limits
                    .customers_after(&after, batch_size)
                    .await
                    .map_err(ServiceError::from)?;
                let Some(last) = batch.last() else {
                    break;
                };
                after = last.customer_id.clone();
                run.check_batch(&batch).await?;
                if batch.len() < BATCH_SIZE {
                    break;
                }
            }
        }
    }
    Ok(run)
}

/// The reconcile the suite runs by itself every `CREDIT_EXPOSURE_RECONCILE_INTERVAL_SECS`:
/// every customer and group, repairing what differs, so that a reservation left behind by a
/// call that never finished (a crash between the cache and the ledger, a cancelled caller)
/// overstates exposure for one interval at most. Each repair counts in
/// `credit_limits_exposure_repairs_total`.
#[derive(Clone)]
pub struct BackgroundReconcile {
    hot: HotPath,
    limits: Arc<dyn LimitStore>,
    interval: Duration,
    repairs: Counter,
}

impl std::fmt::Debug for BackgroundReconcile {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("BackgroundReconcile")
            .field("interval", &self.interval)
            .field("repairs", &self.repairs.get())
            .finish_non_exhaustive()
    }
}

/// Name and help of the repair counter (`credit_` is the registry's prefix).
pub const REPAIRS_METRIC: (&str, &str) = (
    "limits_exposure_repairs",
    "Cached exposure entries the background reconcile found different from the ledger and rebuilt",
);

impl BackgroundReconcile {
    pub fn new(
        hot: HotPath,
        limits: Arc<dyn LimitStore>,
        interval: Duration,
        repairs: Counter,
    ) -> Self {
        Self {
            hot,
            limits,
            interval,
            repairs,
        }
    }

    /// One pass over every customer; returns how many entries it repaired.
    pub async fn pass(&self) -> Result<i64, ServiceError> {
        let run = compare_and_repair(&self.hot, self.limits.as_ref(), None, false).await?;
        let repaired = run.repaired_count;
        if repaired > 0 {
            self.repairs.inc_by(u64::try_from(repaired).unwrap_or(0));
            tracing::warn!(
                repaired,
                differences = run.differences.len(),
                "background reconcile rebuilt cached exposure that differed from the ledger"
            );
        }
        Ok(repaired)
    }

    /// Runs a pass every interval until `stop` turns true; the first after one interval, so
    /// a start-up (when every entry is cold anyway) costs nothing.
    pub async fn run(self, mut stop: watch::Receiver<bool>) {
        loop {
            tokio::select! {
                () = tokio::time::sleep(self.interval) => {}
                _ = stop.changed() => return,
            }
            if *stop.borrow() {
                return;
            }
            if let Err(error) = self.pass().await {
                tracing::warn!(error = %error, "background reconcile failed; trying again next interval");
            }
        }
    }
}

impl Run<'_> {
    /// Compares the customers of one batch and the groups they belong to that were not
    /// compared yet; pauses once if anything differed, looks again, and reports (and, unless
    /// a dry run, repairs) what still differs.
    async fn check_batch(&mut self, customers: &[CustomerFacts]) -> Result<(), ServiceError> {
        let mut scopes = Vec::with_capacity(customers.len());
        for customer in customers {
            scopes.push(CachedScope::Customer(customer.customer_id.clone()));
        }
        for group_id in customers
            .iter()
            .filter_map(|customer| customer.group_id.as_ref())
        {
            if self.groups_seen.insert(group_id.clone()) {
                scopes.push(CachedScope::Group(group_id.clone()));
            }
        }
        self.customers_checked += i64::try_from(customers.len()).unwrap_or(i64::MAX);

        let mut suspects = Vec::new();
        for scope in scopes {
            if self.look(&scope).await?.differs() {
                suspects.push(scope);
            }
        }
        if suspects.is_empty() {
            return Ok(());
        }
        tokio::time::sleep(SETTLE_PAUSE).await;
        for scope in suspects {
            let second = self.look(&scope).await?;
            if second.differs() {
                self.report(&scope, second).await?;
            }
        }
        Ok(())
    }

    /// Reads the cached figure first, then the ledger's.
    async fn look(&self, scope: &CachedScope) -> Result<Look, ServiceError> {
        let cache = self.hot.cache();
        let cached = match scope {
            CachedScope::Customer(id) => cache
                .get_customer(id)
                .await
                .map(|profile| profile.map(|profile| profile.exposure)),
            CachedScope::Group(id) => cache
                .get_group(id)
                .await
                .map(|profile| profile.map(|profile| profile.exposure)),
        };
        let cached = match cached {
            Ok(Some(exposure)) => Cached::Exposure(exposure),
            Ok(None) => Cached::Cold,
            // The entry is reported and rebuilt like any other difference: reconciliation is
            // the tool that repairs it, so it must not stop at it.
            Err(error @ ExposureError::CorruptEntry { .. }) => {
                tracing::warn!(error = %error, scope = %scope.scope().key(), "cached exposure entry is unreadable");
                Cached::Unreadable
            }
            Err(error) => return Err(cache_error(error)),
        };
        let ledger = self
            .hot
            .ledger()
            .exposure(&scope.scope().key())
            .await
            .map_err(ledger_error)?
            .total();
        Ok(Look { cached, ledger })
    }

    /// Records a difference that lasted, repairing it first unless this is a dry run.
    async fn report(&mut self, scope: &CachedScope, look: Look) -> Result<(), ServiceError> {
        let currency = self.exposure_currency(scope).await?;
        let cached = match look.cached {
            Cached::Exposure(cached) => Some(from_minor(cached, currency).into()),
            Cached::Cold | Cached::Unreadable => None,
        };
        let repaired = !self.dry_run && self.repair(scope).await;
        tracing::warn!(
            scope = %scope.scope().key(),
            cached = ?look.cached,
            ledger = look.ledger,
            repaired,
            "cached exposure differed from the ledger"
        );
        if repaired {
            self.repaired_count += 1;
        }
        self.differences.push(pb::ExposureDifference {
            scope: Some(scope_to_proto(&scope.scope())),
            field: EXPOSURE_FIELD.to_owned(),
            cached,
            ledger: Some(from_minor(look.ledger, currency).into()),
            repaired,
        });
        Ok(())
    }

    /// Rebuilds the entry from the ledger exactly as a cold one is rebuilt; `false` when the
    /// rebuild failed (the entry keeps its wrong figure until the next run or eviction).
    async fn repair(&self, scope: &CachedScope) -> bool {
        let rebuilt = match scope {
            CachedScope::Customer(id) => self.hot.warm_customer(id).await,
            CachedScope::Group(id) => self.hot.warm_group(id).await,
        };
        match rebuilt {
            Ok(()) => true,
            Err(error) => {
                tracing::warn!(error = %ErrorChain(&error), scope = %scope.scope().key(), "could not rebuild a cached exposure entry");
                false
            }
        }
    }

    /// The currency the scope's exposure is kept in.
    async fn exposure_currency(&self, scope: &CachedScope) -> Result<Currency, ServiceError> {
        self.hot.exposure_currency(&scope.scope()).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids(values: &[&str]) -> Vec<String> {
        values.iter().map(|value| (*value).to_owned()).collect()
    }

    fn violated_fields(error: ServiceError) -> Vec<String> {
        match error {
            ServiceError::InvalidArgument(violations) => violations
                .into_iter()
                .map(|violation| violation.field)
                .collect(),
            other => panic!("expected INVALID_ARGUMENT, got {other:?}"),
        }
    }

    #[test]
    fn an_empty_list_means_every_customer() {
        assert_eq!(requested_customers(&[]).unwrap(), None);
    }

    #[test]
    fn named_customers_are_trimmed_and_checked_once_in_the_order_given() {
        let requested = requested_customers(&ids(&[" c-2 ", "c-1", "c-2"])).unwrap();
        assert_eq!(requested, Some(ids(&["c-2", "c-1"])));
    }

    #[test]
    fn every_empty_or_overlong_id_is_named_by_its_index() {
        let overlong = "x".repeat(MAX_CUSTOMER_ID_LENGTH + 1);
        let error = requested_customers(&ids(&["c-1", "", "  ", &overlong])).unwrap_err();
        assert_eq!(
            violated_fields(error),
            ["customer_ids[1]", "customer_ids[2]", "customer_ids[3]"]
        );
    }

    #[test]
    fn more_than_the_maximum_is_refused_as_a_whole() {
        let many: Vec<String> = (0..=MAX_CUSTOMER_IDS).map(|n| format!("c-{n}")).collect();
        assert_eq!(
            violated_fields(requested_customers(&many).unwrap_err()),
            ["customer_ids"]
        );
        assert!(requested_customers(&many[..MAX_CUSTOMER_IDS]).is_ok());
    }

    #[test]
    fn a_cold_entry_is_no_difference_and_an_unreadable_one_is() {
        let look = |cached| Look {
            cached,
            ledger: 500,
        };
        assert!(!look(Cached::Cold).differs());
        assert!(look(Cached::Unreadable).differs());
        assert!(!look(Cached::Exposure(500)).differs());
        assert!(look(Cached::Exposure(499)).differs());
    }
}
