//! The scheduled side of collections: overdue detection runs every hour for today's date, so
//! an invoice passing its due date blocks new credit (through limits) without anyone asking.
//! A run that finds nothing changed announces nothing.

use std::time::Duration;

use chrono::Utc;
use tokio::sync::watch;

use crate::api::CollectionsApi;

/// How often overdue detection runs.
pub const OVERDUE_CHECK_INTERVAL: Duration = Duration::from_secs(3600);

#[derive(Debug, Clone)]
pub struct OverdueScheduler {
    api: CollectionsApi,
    interval: Duration,
}

impl OverdueScheduler {
    pub fn new(api: CollectionsApi) -> Self {
        Self {
            api,
            interval: OVERDUE_CHECK_INTERVAL,
        }
    }

    /// Detects overdue every interval until `stop` turns true.
    pub async fn run(self, mut stop: watch::Receiver<bool>) {
        loop {
            if let Err(error) = self
                .api
                .app()
                .detect_overdue_for(Utc::now().date_naive(), None)
                .await
            {
                tracing::warn!(%error, "scheduled overdue detection failed");
            }
            tokio::select! {
                _ = tokio::time::sleep(self.interval) => {}
                _ = stop.changed() => return,
            }
            if *stop.borrow() {
                return;
            }
        }
    }
}
