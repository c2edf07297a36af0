//! The embedded default: the exposure cache in this process's memory, for a laptop or a demo
//! with no Redis. One mutex makes every operation atomic, as the Lua script does on Redis.
//! It holds for one process only; a deployment with several replicas must use Redis.

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard, PoisonError};

use async_trait::async_trait;

use super::model::{
    Adjustment, AuthorizeInput, AuthorizeOutcome, CustomerProfile, CustomerUpdate, Fence,
    GroupProfile, GroupUpdate, Level, UpdateOutcome, check_adjustment, check_authorize_input,
    check_customer_profile, check_customer_update, check_group_profile, check_group_update,
    check_id, check_order_currency, shifted_exposure,
};
use super::{ExposureCache, ExposureError, rules};

/// Profiles and exposure in two maps behind one `std::sync::Mutex`: the critical sections are
/// a few map operations and never await, so a blocking mutex is cheaper than an async one and
/// cannot be held across a suspension point.
#[derive(Debug, Default)]
pub struct InProcessExposureCache {
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    customers: HashMap<String, CustomerProfile>,
    groups: HashMap<String, GroupProfile>,
    /// Evictions of each customer and group, and of everything (see `customer_generation`).
    evictions: HashMap<String, u64>,
    group_evictions: HashMap<String, u64>,
    evictions_of_all: u64,
}

impl State {
    /// The evictions of `id` counted in `evictions`, plus those of everything.
    fn generation(evictions: &HashMap<String, u64>, id: &str, of_all: u64) -> u64 {
        evictions.get(id).copied().unwrap_or(0).wrapping_add(of_all)
    }

    /// The cold flags for `customer_id`, or `None` when the customer and its cached group
    /// (if any) are both cached. A cold customer reports the caller's believed group too.
    fn cold_flags(&self, customer_id: &str, believed_group: Option<&str>) -> Option<(bool, bool)> {
        match self.customers.get(customer_id) {
            None => Some((
                true,
                believed_group.is_some_and(|group_id| !self.groups.contains_key(group_id)),
            )),
            Some(customer) => match &customer.group_id {
                Some(group_id) if !self.groups.contains_key(group_id) => Some((false, true)),
                _ => None,
            },
        }
    }

    /// Adds `delta` to the customer and its group, both or neither: the range of both is
    /// checked before either changes.
    fn shift(
        &mut self,
        customer_id: &str,
        delta: i64,
        fence: Fence,
    ) -> Result<Adjustment, ExposureError> {
        let Some(customer) = self.customers.get(customer_id) else {
            return Ok(Adjustment::Cold {
                customer: true,
                group: false,
            });
        };
        let customer_delta = if Fence::admits(fence.customer_epoch, customer.epoch) {
            delta
        } else {
            0
        };
        let customer_exposure = shifted_exposure(
            Level::Customer,
            customer_id,
            customer.exposure,
            customer_delta,
        )?;
        let group_change = match customer.group_id.clone() {
            None => None,
            Some(group_id) => {
                let Some(group) = self.groups.get(&group_id) else {
                    return Ok(Adjustment::Cold {
                        customer: false,
                        group: true,
                    });
                };
                let group_delta = if Fence::admits(fence.group_epoch, group.epoch) {
                    delta
                } else {
                    0
                };
                let exposure =
                    shifted_exposure(Level::Group, &group_id, group.exposure, group_delta)?;
                Some((group_id, exposure))
            }
        };
        if let Some(customer) = self.customers.get_mut(customer_id) {
            customer.exposure = customer_exposure;
        }
        let group_exposure = match group_change {
            None => None,
            Some((group_id, exposure)) => {
                if let Some(group) = self.groups.get_mut(&group_id) {
                    group.exposure = exposure;
                }
                Some(exposure)
            }
        };
        Ok(Adjustment::Applied {
            customer_exposure,
            group_exposure,
        })
    }
}

impl InProcessExposureCache {
    /// An empty cache: every customer is cold until loaded.
    pub fn new() -> Self {
        Self::default()
    }

    /// The state, also after a panic in another thread while it held the lock: every critical
    /// section checks before it writes and its writes cannot panic, so the maps are never left
    /// half-changed and poisoning carries no information here.
    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn adjust(
        &self,
        customer_id: &str,
        group_id: Option<&str>,
        delta: i64,
        fence: Fence,
    ) -> Result<Adjustment, ExposureError> {
        let mut state = self.state();
        if let Some((customer, group)) = state.cold_flags(customer_id, group_id) {
            return Ok(Adjustment::Cold { customer, group });
        }
        state.shift(customer_id, delta, fence)
    }
}

#[async_trait]
impl ExposureCache for InProcessExposureCache {
    async fn authorize(&self, input: &AuthorizeInput) -> Result<AuthorizeOutcome, ExposureError> {
        check_authorize_input(input)?;
        let mut state = self.state();
        if let Some((customer, group)) =
            state.cold_flags(&input.customer_id, input.group_id.as_deref())
        {
            return Ok(AuthorizeOutcome::Cold { customer, group });
        }
        let Some(customer) = state.customers.get(&input.customer_id) else {
            return Ok(AuthorizeOutcome::Cold {
                customer: true,
                group: false,
            });
        };
        let group = customer
            .group_id
            .as_ref()
            .and_then(|group_id| state.groups.get(group_id));
        check_order_currency(customer, input)?;
        // The same range check the Lua script makes, before any rule: an exposure that could
        // leave the exact range is refused whatever the outcome would have been.
        shifted_exposure(
            Level::Customer,
            &customer.customer_id,
            customer.exposure,
            input.amount,
        )?;
        if let Some(group) = group {
            shifted_exposure(Level::Group, &group.group_id, group.exposure, input.amount)?;
        }
        let decision = rules::evaluate(customer, group, input);
        if decision.reserved {
            state.shift(&input.customer_id, input.amount, Fence::NONE)?;
        }
        Ok(AuthorizeOutcome::Decided(decision))
    }

    async fn release(
        &self,
        customer_id: &str,
        group_id: Option<&str>,
        amount: i64,
        fence: Fence,
    ) -> Result<Adjustment, ExposureError> {
        check_adjustment(customer_id, group_id, amount)?;
        self.adjust(customer_id, group_id, -amount, fence)
    }

    async fn add(
        &self,
        customer_id: &str,
        group_id: Option<&str>,
        amount: i64,
        fence: Fence,
    ) -> Result<Adjustment, ExposureError> {
        check_adjustment(customer_id, group_id, amount)?;
        self.adjust(customer_id, group_id, amount, fence)
    }

    async fn load_customer(&self, profile: &CustomerProfile) -> Result<(), ExposureError> {
        check_customer_profile(profile)?;
        self.state()
            .customers
            .insert(profile.customer_id.clone(), profile.clone());
        Ok(())
    }

    async fn load_group(&self, profile: &GroupProfile) -> Result<(), ExposureError> {
        check_group_profile(profile)?;
        self.state()
            .groups
            .insert(profile.group_id.clone(), profile.clone());
        Ok(())
    }

    async fn update_customer(
        &self,
        customer_id: &str,
        update: &CustomerUpdate,
    ) -> Result<UpdateOutcome, ExposureError> {
        check_id("customer_id", customer_id)?;
        check_customer_update(update)?;
        Ok(match self.state().customers.get_mut(customer_id) {
            Some(profile) => {
                update.apply_to(profile);
                UpdateOutcome::Updated
            }
            None => UpdateOutcome::NotCached,
        })
    }

    async fn update_group(
        &self,
        group_id: &str,
        update: &GroupUpdate,
    ) -> Result<UpdateOutcome, ExposureError> {
        check_id("group_id", group_id)?;
        check_group_update(update)?;
        Ok(match self.state().groups.get_mut(group_id) {
            Some(profile) => {
                update.apply_to(profile);
                UpdateOutcome::Updated
            }
            None => UpdateOutcome::NotCached,
        })
    }

    async fn get_customer(
        &self,
        customer_id: &str,
    ) -> Result<Option<CustomerProfile>, ExposureError> {
        check_id("customer_id", customer_id)?;
        Ok(self.state().customers.get(customer_id).cloned())
    }

    async fn get_group(&self, group_id: &str) -> Result<Option<GroupProfile>, ExposureError> {
        check_id("group_id", group_id)?;
        Ok(self.state().groups.get(group_id).cloned())
    }

    async fn evict_customer(&self, customer_id: &str) -> Result<(), ExposureError> {
        check_id("customer_id", customer_id)?;
        let mut state = self.state();
        state.customers.remove(customer_id);
        *state.evictions.entry(customer_id.to_owned()).or_default() += 1;
        Ok(())
    }

    async fn customer_generation(&self, customer_id: &str) -> Result<u64, ExposureError> {
        check_id("customer_id", customer_id)?;
        let state = self.state();
        Ok(State::generation(
            &state.evictions,
            customer_id,
            state.evictions_of_all,
        ))
    }

    async fn evict_group(&self, group_id: &str) -> Result<(), ExposureError> {
        check_id("group_id", group_id)?;
        let mut state = self.state();
        state.groups.remove(group_id);
        *state
            .group_evictions
            .entry(group_id.to_owned())
            .or_default() += 1;
        Ok(())
    }

    async fn group_generation(&self, group_id: &str) -> Result<u64, ExposureError> {
        check_id("group_id", group_id)?;
        let state = self.state();
        Ok(State::generation(
            &state.group_evictions,
            group_id,
            state.evictions_of_all,
        ))
    }

    async fn evict_all(&self) -> Result<(), ExposureError> {
        let mut state = self.state();
        state.customers.clear();
        state.groups.clear();
        state.evictions_of_all += 1;
        Ok(())
    }
}
