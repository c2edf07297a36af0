//! Escalation of steps left waiting (逐级上报): a step of the matrix may name how long it
//! waits for its decider and whom it is then put before; and expiry: a request still waiting
//! when the credit policy's approval expiry has passed since it was made is withdrawn. The queue rows of a waiting chain
//! carry when it is due; a background sweep escalates what is due, through the same path as
//! a person's verdict (the chain's trail records it, ApprovalStepDecided announces it with
//! verdict ESCALATE), so the escalation roles find it in their queues.

use std::collections::BTreeSet;
use std::time::Duration;

use chrono::{DateTime, Utc};
use credit_core::{Principal, ServiceError};
use credit_runtime::sql::IdempotencyKey;

use super::approvals::{ApprovalDesk, StepAction};
use super::system_actor;

/// How often the sweep looks for steps due: a deadline is met within this much.
pub const ESCALATION_INTERVAL: Duration = Duration::from_secs(5);
/// The most chains one sweep escalates; the rest wait for the next.
const PER_SWEEP: i64 = 100;

/// The system as the escalating party: it decides nothing, so it needs no role.
fn system_principal() -> Principal {
    let actor = system_actor();
    Principal {
        id: actor.principal_id,
        person_id: actor.person_id,
        name: actor.name,
        roles: BTreeSet::new(),
        approval_authority: None,
    }
}

impl ApprovalDesk {
    /// Escalates every chain whose waiting step is due at `now`; how many were escalated.
    /// A chain that moved meanwhile (a verdict came first) is left as that verdict left it.
    pub async fn escalate_due(&self, now: DateTime<Utc>) -> Result<usize, ServiceError> {
        let due = self
            .store()
            .escalations_due(now, PER_SWEEP)
            .await
            .map_err(ServiceError::from)?;
        let system = system_principal();
        let mut escalated = 0;
        for task in due {
            let key = IdempotencyKey::of_system(
                "limits",
                format!(
                    "escalate:{}:{}",
                    task.record_id,
                    task.waiting_since.timestamp_micros()
                ),
                "EscalateApprovalStep",
                String::new(),
            );
            // The escalation applies to whichever step waits; the index is not read.
            match self
                .decide(
                    &system,
                    task.kind,
                    &task.record_id,
                    0,
                    StepAction::Escalate,
                    "",
                    &[],
                    &key,
                )
                .await
            {
                Ok(_) => {
                    escalated += 1;
                    tracing::info!(kind = task.kind.as_str(), record_id = %task.record_id, "approval step escalated");
                }
                Err(error @ ServiceError::FailedPrecondition { .. }) => {
                    // Nothing left to escalate (decided meanwhile, or escalated already): the
                    // row must not come back every sweep.
                    tracing::debug!(record_id = %task.record_id, error = %error, "nothing to escalate");
                    self.store()
                        .clear_escalation(task.kind, &task.record_id)
                        .await
                        .map_err(ServiceError::from)?;
                }
                Err(error) => {
                    tracing::warn!(kind = task.kind.as_str(), record_id = %task.record_id, error = %error, "could not escalate an approval step; trying again next sweep");
                }
            }
        }
        Ok(escalated)
    }
}

impl ApprovalDesk {
    /// Withdraws every request still waiting for its chain longer than the credit policy's
    /// approval expiry after it was made (expired, by the system, through the same path as a
    /// verdict: the record is rejected, the trail says why, ApprovalStepDecided announces it
    /// with verdict WITHDRAW); how many were withdrawn. Nothing when the policy sets no expiry.
    pub async fn expire_due(&self, now: DateTime<Utc>) -> Result<usize, ServiceError> {
        let expiry = self.hot().policy().await?.approval_expiry_seconds;
        let Some(requested_by) = i64::try_from(expiry)
            .ok()
            .filter(|seconds| *seconds > 0)
            .and_then(|seconds| now.checked_sub_signed(chrono::Duration::seconds(seconds)))
        else {
            return Ok(0);
        };
        let due = self
            .store()
            .expirations_due(requested_by, PER_SWEEP)
            .await
            .map_err(ServiceError::from)?;
        let system = system_principal();
        let note = format!(
            "expired: no decision within {} of the request",
            waited(expiry)
        );
        let mut expired = 0;
        for task in due {
            let key = IdempotencyKey::of_system(
                "limits",
                format!("expire:{}", task.record_id),
                "ExpireApprovalChain",
                String::new(),
            );
            match self
                .decide(
                    &system,
                    task.kind,
                    &task.record_id,
                    0,
                    StepAction::Expire,
                    &note,
                    &[],
                    &key,
                )
                .await
            {
                Ok(_) => {
                    expired += 1;
                    tracing::info!(kind = task.kind.as_str(), record_id = %task.record_id, "approval chain expired");
                }
                Err(error) => {
                    tracing::warn!(kind = task.kind.as_str(), record_id = %task.record_id, error = %error, "could not expire an approval chain; trying again next sweep");
                }
            }
        }
        Ok(expired)
    }
}

/// "30 days", "1 hour", "90 seconds": an expiry as people read it.
fn waited(seconds: u64) -> String {
    let (count, unit) = match seconds {
        s if s % 86_400 == 0 => (s / 86_400, "day"),
        s if s % 3_600 == 0 => (s / 3_600, "hour"),
        s => (s, "second"),
    };
    if count == 1 {
        format!("1 {unit}")
    } else {
        format!("{count} {unit}s")
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn an_expiry_reads_in_the_largest_whole_unit() {
        assert_eq!(super::waited(30 * 86_400), "30 days");
        assert_eq!(super::waited(86_400), "1 day");
        assert_eq!(super::waited(7_200), "2 hours");
        assert_eq!(super::waited(90), "90 seconds");
        assert_eq!(super::waited(1), "1 second");
    }
}

/// Runs [`ApprovalDesk::escalate_due`] and [`ApprovalDesk::expire_due`] every
/// [`ESCALATION_INTERVAL`] until stopped.
#[derive(Debug, Clone)]
pub struct Escalator {
    desk: ApprovalDesk,
}

impl Escalator {
    pub fn new(desk: ApprovalDesk) -> Self {
        Self { desk }
    }

    pub async fn run(self, mut stop: tokio::sync::watch::Receiver<bool>) {
        while !*stop.borrow() {
            if let Err(error) = self.desk.escalate_due(Utc::now()).await {
                tracing::warn!(error = %error, "the escalation sweep failed; trying again");
            }
            if let Err(error) = self.desk.expire_due(Utc::now()).await {
                tracing::warn!(error = %error, "the expiry sweep failed; trying again");
            }
            tokio::select! {
                () = tokio::time::sleep(ESCALATION_INTERVAL) => {}
                _ = stop.changed() => return,
            }
        }
    }
}
