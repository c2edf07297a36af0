//! The shipped dunning policy, published on the first start.
//!
//! A collections team must be able to dun on day one, so the policy most credit policies start
//! from — a reminder at 1 day past due, an email at 10, a phone call at 30, a final notice at
//! 60 and legal action at 90 — is published as policy "default", version 1, when no policy
//! exists yet. An administrator changes it by publishing a new version; later starts (and
//! replicas starting at the same moment, through the fixed request id) publish nothing.

use chrono::Utc;
use credit_proto::v1 as pb;
use credit_runtime::sql::{IdempotencyKey, fingerprint};

use crate::domain::DunningPolicy;
use crate::store::{DunningStore, Outcome, StoreError};

/// How the service names itself when it acts on its own.
pub const SYSTEM_PRINCIPAL: &str = "system:collections";
/// The request id the shipped policy is published under.
const SHIPPED_REQUEST_ID: &str = "shipped:default-dunning-policy:v1";

/// Why the shipped policy could not be published; start-up stops with it.
#[derive(Debug, thiserror::Error)]
pub enum SeedError {
    #[error("the shipped dunning policy does not pass the policy checks: {0}")]
    Invalid(String),
    #[error("publishing the shipped dunning policy failed: {0}")]
    Store(#[from] StoreError),
    #[error("computing the running balances of existing customers failed: {0}")]
    Balances(StoreError),
}

fn level(
    level: i32,
    display_name: &str,
    days_past_due: i32,
    channel: pb::ContactChannel,
    message_template: &str,
) -> pb::DunningLevel {
    pb::DunningLevel {
        level,
        display_name: display_name.to_owned(),
        days_past_due,
        channel: channel.into(),
        template_id: format!("default-{level}"),
        message_template: message_template.to_owned(),
    }
}

/// The shipped policy: the default for every grade.
pub fn shipped_policy() -> pb::DunningPolicy {
    use pb::ContactChannel::{Email, Legal, Letter, Phone};
    pb::DunningPolicy {
        policy_id: "default".to_owned(),
        version: 0,
        display_name: "Standard dunning".to_owned(),
        grades: Vec::new(),
        levels: vec![
            level(
                1,
                "Reminder",
                1,
                Email,
                "Dear {{customer_name}}, a friendly reminder: invoice {{invoice_number}} of \
                 {{amount}} was due on {{due_date}}. If you have paid it already, thank you.",
            ),
            level(
                2,
                "Second reminder",
                10,
                Email,
                "Dear {{customer_name}}, invoice {{invoice_number}} of {{amount}} is \
                 {{days_past_due}} days overdue (due {{due_date}}). Please pay it now.",
            ),
            level(
                3,
                "Phone call",
                30,
                Phone,
                "Call {{customer_name}} about invoice {{invoice_number}}: {{amount}}, \
                 {{days_past_due}} days overdue. Ask for a payment date.",
            ),
            level(
                4,
                "Final notice",
                60,
                Letter,
                "Dear {{customer_name}}, invoice {{invoice_number}} of {{amount}} is \
                 {{days_past_due}} days overdue. Unless it is paid within 14 days we will hand \
                 the matter over for collection.",
            ),
            level(
                5,
                "Legal action",
                90,
                Legal,
                "Hand invoice {{invoice_number}} of {{customer_name}} ({{amount}}, \
                 {{days_past_due}} days overdue) over to legal collection.",
            ),
        ],
        published_at: None,
        published_by: None,
    }
}

/// Publishes the shipped policy when no policy exists; true when it was published now.
pub async fn publish_shipped_policy(store: &dyn DunningStore) -> Result<bool, SeedError> {
    if !store.latest_policies().await?.is_empty() {
        return Ok(false);
    }
    let shipped = shipped_policy();
    let draft = crate::app::dunning_policy_draft(&shipped);
    DunningPolicy::parse(&draft, 1)
        .map_err(|violations| SeedError::Invalid(format!("{violations:?}")))?;
    let admit = |published: &[pb::DunningPolicy], version: u32| {
        if !published.is_empty() {
            // Another replica, or an administrator, was first: nothing to ship.
            return Err(credit_core::ServiceError::failed_precondition(
                "POLICY_EXISTS",
                "a dunning policy exists already",
            ));
        }
        Ok(pb::DunningPolicy {
            version: i32::try_from(version).unwrap_or(i32::MAX),
            published_at: Some(crate::api::timestamp(Utc::now())),
            published_by: Some(pb::Actor {
                principal: SYSTEM_PRINCIPAL.to_owned(),
                roles: Vec::new(),
            }),
            ..shipped.clone()
        })
    };
    match store
        .publish_policy(
            "default",
            &IdempotencyKey {
                caller: SYSTEM_PRINCIPAL.to_owned(),
                request_id: SHIPPED_REQUEST_ID.to_owned(),
                operation: "PublishDunningPolicy",
                fingerprint: fingerprint(&shipped),
            },
            &admit,
        )
        .await
    {
        Ok(Outcome::New(_)) => {
            tracing::info!("shipped dunning policy published as version 1");
            Ok(true)
        }
        Ok(Outcome::Replayed(_)) | Err(StoreError::Refused(_)) => Ok(false),
        Err(error) => Err(error.into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_shipped_policy_passes_the_policy_checks() {
        let draft = crate::app::dunning_policy_draft(&shipped_policy());
        let policy = DunningPolicy::parse(&draft, 1).unwrap();
        assert!(policy.is_default());
        let days: Vec<u32> = policy
            .levels()
            .iter()
            .map(|level| level.days_past_due())
            .collect();
        assert_eq!(days, [1, 10, 30, 60, 90]);
    }
}
