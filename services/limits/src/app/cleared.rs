//! Referrals whose cause has cleared (a payment arrived, the overdue figures changed, a block
//! was lifted, a limit was granted): noted by whatever cleared them, examined again in the
//! background, and released by the system when the rules now approve the order and the
//! credit policy says so (`auto_release_cleared_referrals`).

use std::time::Duration;

use chrono::Utc;
use credit_core::{Currency, ServiceError};
use credit_runtime::sql::{IdempotencyKey, Page};

use super::referrals::{ReleasedHold, referral_decided_event, released_hold_of};
use super::{HotPath, from_minor, ledger_error, system_actor};
use crate::ledger::{FencedHold, LedgerError, Referral, ReferralStatus};

/// How many open referrals of one customer one examination looks at, oldest first: a
/// customer has a handful; a bound keeps one examination's work small whatever happens.
const REEXAMINED_PER_EVENT: i32 = 20;

/// How often an examination that failed (a cache rebuild under way, a store that did not
/// answer) is tried, and how long after a failure the next try comes.
const ATTEMPTS: u8 = 5;
const RETRY_AFTER: std::time::Duration = std::time::Duration::from_millis(250);

/// Customers whose referrals may have cleared, each with the first cause noted and the
/// attempts made; shared by every clone of the hot path, drained by the
/// [`ReferralReexaminer`].
#[derive(Debug, Clone, Default)]
pub(crate) struct ClearedReferrals {
    pending:
        std::sync::Arc<std::sync::Mutex<std::collections::BTreeMap<String, (&'static str, u8)>>>,
    wake: std::sync::Arc<tokio::sync::Notify>,
}

impl ClearedReferrals {
    fn note(&self, customer_id: &str, cause: &'static str) {
        self.keep(customer_id, cause, 0);
        self.wake.notify_one();
    }

    /// Keeps `customer_id` for another examination, unless a note is there already.
    fn keep(&self, customer_id: &str, cause: &'static str, attempts: u8) {
        self.pending
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .entry(customer_id.to_owned())
            .or_insert((cause, attempts));
    }

    fn drain(&self) -> Vec<(String, (&'static str, u8))> {
        std::mem::take(
            &mut *self
                .pending
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner),
        )
        .into_iter()
        .collect()
    }
}

/// Examines again, in the background, the open referrals of the customers noted by
/// [`HotPath::referrals_may_have_cleared`], one customer after another. An examination that
/// fails (the customer's cache being rebuilt meanwhile, a store that did not answer) is tried
/// again a moment later, a few times; after that the customer's next change examines it.
#[derive(Debug, Clone)]
pub struct ReferralReexaminer {
    hot: HotPath,
}

impl ReferralReexaminer {
    pub fn new(hot: HotPath) -> Self {
        Self { hot }
    }

    /// Examines whatever is noted, then waits for the next note, until `stop` turns true.
    pub async fn run(self, mut stop: tokio::sync::watch::Receiver<bool>) {
        let cleared = self.hot.cleared.clone();
        while !*stop.borrow() {
            let mut retrying = false;
            for (customer_id, (cause, attempts)) in cleared.drain() {
                match self.hot.reexamine_referrals(&customer_id, cause).await {
                    Ok(0) => {}
                    Ok(released) => {
                        tracing::info!(customer_id = %customer_id, released, "referrals released once their cause cleared");
                    }
                    Err(error) if attempts.saturating_add(1) < ATTEMPTS => {
                        tracing::debug!(customer_id = %customer_id, error = %error, "examining the customer's referrals again shortly");
                        cleared.keep(&customer_id, cause, attempts.saturating_add(1));
                        retrying = true;
                    }
                    Err(error) => {
                        tracing::warn!(customer_id = %customer_id, error = %error, "could not examine the customer's referrals again");
                    }
                }
            }
            let wait = if retrying {
                RETRY_AFTER
            } else {
                // Nothing to retry: only a note (or the stop) wakes it; an hour bounds the sleep.
                std::time::Duration::from_secs(3600)
            };
            tokio::select! {
                () = cleared.wake.notified() => {}
                () = tokio::time::sleep(wait) => {}
                _ = stop.changed() => return,
            }
        }
    }
}

impl HotPath {
    /// The open referrals of a customer whose cause has cleared (a payment arrived, a block
    /// was lifted, a limit was raised), when the policy says so: each is decided again as
    /// Authorize would, and one the rules now approve is released by the system, reserved in
    /// the same atomic step as any order. How many were released.
    pub async fn reexamine_referrals(
        &self,
        customer_id: &str,
        cause: &str,
    ) -> Result<usize, ServiceError> {
        if !self.policy().await?.auto_release_cleared_referrals {
            return Ok(0);
        }
        // A customer has a handful of open referrals; a page bounds the work of one event.
        let page = Page::parse(REEXAMINED_PER_EVENT, "")?;
        let open = self
            .ledger
            .referrals(Some(ReferralStatus::Open), customer_id, &page)
            .await
            .map_err(ledger_error)?;
        let mut released = 0;
        for (_, referral) in open {
            if referral.customer_id != customer_id {
                continue;
            }
            if self.release_if_cleared(referral, cause).await? {
                released += 1;
            }
        }
        Ok(released)
    }

    /// Notes that the customer's referrals may have cleared (a payment, new overdue figures, a
    /// limit raised, a block lifted): the [`ReferralReexaminer`] examines them again in the
    /// background. Returns at once, so the change that cleared them — an event that moves
    /// money, a person's decision — never waits for the examination nor fails with it.
    pub fn referrals_may_have_cleared(&self, customer_id: &str, cause: &'static str) {
        self.cleared.note(customer_id, cause);
    }

    async fn release_if_cleared(
        &self,
        referral: Referral,
        cause: &str,
    ) -> Result<bool, ServiceError> {
        let currency = Currency::parse(&referral.currency).map_err(ServiceError::internal)?;
        let amount = from_minor(referral.amount_minor, currency);
        let Some((order, decided)) = self
            .reserve_if_approved(&referral.customer_id, &referral.order_id, amount)
            .await?
        else {
            return Ok(false);
        };
        let now = Utc::now();
        let system = system_actor();
        let decision = &decided.decision;
        let ttl = match referral.hold_ttl_seconds {
            Some(seconds) => Duration::from_secs(u64::try_from(seconds).unwrap_or(0)),
            None => self.policy().await?.default_hold_ttl(),
        };
        let hold = released_hold_of(
            &referral,
            ReleasedHold {
                group_id: decision.group.as_ref().map(|group| group.group_id.clone()),
                amount_minor: decided.amount_minor,
                ttl,
                by: system.clone(),
                epoch: decision.epoch,
                now,
            },
        );
        let expected_revision = referral.chain_revision();
        let decided_referral = Referral {
            status: ReferralStatus::Released,
            decided_by: Some(system),
            decided_at: Some(now),
            decision_reason: format!(
                "released by the system: {cause}, and the order now fits the credit terms"
            ),
            hold_id: hold.id.clone(),
            ..referral
        };
        let key = IdempotencyKey::of_system(
            "limits",
            format!("referral-cleared:{}", decided_referral.id),
            "ReleaseClearedReferral",
            decided_referral.id.clone(),
        );
        let event = referral_decided_event(&decided_referral, &key);
        let fenced = FencedHold {
            hold: &hold,
            group_epoch: decision
                .group
                .as_ref()
                .map(|group| (group.group_id.as_str(), group.epoch)),
        };
        match self
            .ledger
            .decide_referral(
                &decided_referral,
                expected_revision,
                Some(fenced),
                &key,
                std::slice::from_ref(&event),
            )
            .await
        {
            Ok(stored) if !stored.replayed => Ok(true),
            Ok(_) => {
                self.undo(&order, &decided).await;
                Ok(false)
            }
            // Decided meanwhile by a person: take the reservation back; the referral stays as
            // the person left it.
            Err(LedgerError::ReferralNotOpen(_) | LedgerError::ChainMoved) => {
                self.undo(&order, &decided).await;
                Ok(false)
            }
            // The cache was rebuilt meanwhile: take the reservation back and try again later.
            Err(LedgerError::EpochMoved) => {
                self.undo(&order, &decided).await;
                Err(ServiceError::unavailable(
                    "the customer's exposure was rebuilt while releasing; examined again shortly",
                    LedgerError::EpochMoved,
                ))
            }
            Err(error) => {
                self.undo(&order, &decided).await;
                Err(ledger_error(error))
            }
        }
    }
}
