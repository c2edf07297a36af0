//! The expiry sweeper: releases open holds whose TTL has passed (EXPIRED in the ledger, then
//! the amount given back in the exposure cache), ends securities whose validity ran out (their
//! customers re-evaluated, SecurityChanged emitted), and converts receivables that waited for
//! an FX rate once one exists (see `receivables`). The suite runs it in the background;
//! tests call [`ExpirySweeper::sweep`] with the time they want.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use credit_core::ServiceError;
use tokio::sync::watch;

use crate::app::{CreditAdmin, HotPath};
use crate::exposure::ExposureCache;
use crate::ledger::Hold;
use crate::receivables::ReceivablesProjection;

/// How often the background sweep runs. Holds live at least a minute, so a hold is released
/// at most this long after its expiry (exposure overstated meanwhile, never understated).
pub const SWEEP_INTERVAL: Duration = Duration::from_secs(15);

#[derive(Debug, Clone)]
pub struct ExpirySweeper {
    hot: HotPath,
    admin: CreditAdmin,
    interval: Duration,
}

impl ExpirySweeper {
    pub fn new(hot: HotPath, admin: CreditAdmin, interval: Duration) -> Self {
        Self {
            hot,
            admin,
            interval,
        }
    }

    /// The exposure cache the sweeper gives amounts back to, which is the one the hot path
    /// decides on: tests read it, and damage it to test `ReconcileExposure`.
    pub fn exposure_cache(&self) -> &Arc<dyn ExposureCache> {
        self.hot.cache()
    }

    /// Expires every open hold whose expiry is at or before `now`, and every security whose
    /// last valid day is before `now`'s; returns the holds.
    pub async fn sweep(&self, now: DateTime<Utc>) -> Result<Vec<Hold>, ServiceError> {
        let holds = self.hot.expire_holds(now).await?;
        let ended = self.admin.expire_securities(now).await?;
        if ended > 0 {
            tracing::info!(
                count = ended,
                "expired securities ended and their customers re-evaluated"
            );
        }
        Ok(holds)
    }

    /// Sweeps at every interval until `stop` turns true.
    pub async fn run(self, mut stop: watch::Receiver<bool>) {
        while !*stop.borrow() {
            match self.sweep(Utc::now()).await {
                Ok(expired) if !expired.is_empty() => {
                    tracing::info!(count = expired.len(), "expired holds released");
                }
                Ok(_) => {}
                Err(error) => tracing::warn!(error = %error, "hold expiry sweep failed; retrying"),
            }
            // Receivables that waited for an FX rate, when one has been set since (by this
            // process or another replica).
            if let Err(error) = ReceivablesProjection::new(self.hot.clone())
                .convert_waiting()
                .await
            {
                tracing::warn!(error = %error, "converting receivables that wait for a rate failed; retrying");
            }
            tokio::select! {
                () = tokio::time::sleep(self.interval) => {}
                _ = stop.changed() => return,
            }
        }
    }
}
