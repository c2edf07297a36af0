//! The last part of the story: the credit policy is changed the governed way (制度修订). The
//! credit manager proposes longer grace days for overdue reviews; the proposal shows its
//! changes and leaves the policy in force as it was; the general manager, a second person,
//! turns it down for now, and the history keeps both.

use std::io::Write;

use credit_proto::v1 as pb;
use credit_proto::v1::approval_service_client::ApprovalServiceClient;

use super::{DemoError, Story, bearer};

impl<W: Write> Story<'_, W> {
    /// Proposes a policy change as the credit manager; the general manager (in a cast issued
    /// for the run; else the maker's token) rejects it. The policy in force does not change.
    pub(super) async fn review_the_policy(&mut self) -> Result<(), DemoError> {
        self.begin("policy change");
        let result = self
            .checker
            .get_credit_policy(pb::GetCreditPolicyRequest { version: None })
            .await;
        let in_force = self
            .failed("GetCreditPolicy", result)?
            .policy
            .ok_or_else(|| self.unexpected("GetCreditPolicy answered no policy"))?;
        let mut longer_grace = in_force.clone();
        longer_grace.rating_grace_days = in_force.rating_grace_days.saturating_add(15);
        longer_grace.etag = String::new();
        let request_id = self.key("policy-change");
        let result = self
            .checker
            .update_credit_policy(pb::UpdateCreditPolicyRequest {
                request_id: request_id.clone(),
                policy: Some(longer_grace),
                update_mask: Some(prost_types::FieldMask {
                    paths: vec!["rating_grace_days".to_owned()],
                }),
                reason: "credit committee: longer grace before a rating counts as stale".into(),
                effective_from: None,
            })
            .await;
        let answer = self.failed("UpdateCreditPolicy", result)?;
        let proposal = answer
            .proposal
            .ok_or_else(|| self.unexpected("UpdateCreditPolicy answered no proposal"))?;
        let changes: Vec<String> = proposal
            .changes
            .iter()
            .map(|change| format!("{} {} -> {}", change.path, change.before, change.after))
            .collect();
        self.line(&format!(
            "{} proposes policy version {}: {}",
            self.cast.manager.name,
            proposal.version,
            changes.join(", ")
        ))?;
        let unchanged = answer
            .policy
            .is_some_and(|policy| policy.rating_grace_days == in_force.rating_grace_days);
        if !unchanged {
            return Err(self.unexpected("a proposal changed the policy in force"));
        }
        self.detail("the policy in force is unchanged until a second person approves")?;

        let decider = self
            .cast
            .general_manager
            .clone()
            .unwrap_or_else(|| self.cast.analyst.clone());
        let mut desk =
            ApprovalServiceClient::with_interceptor(self.channel.clone(), bearer(&decider)?);
        let result = desk
            .decide_approval_step(pb::DecideApprovalStepRequest {
                request_id: format!("{request_id}-decided"),
                decision_kind: pb::DecisionKind::PolicyChange.into(),
                record_id: format!("policy:{}", proposal.version),
                step_index: 0,
                verdict: pb::ApprovalVerdict::Reject.into(),
                note: "keep the grace days until the year-end review".into(),
                release_conditions: Vec::new(),
            })
            .await;
        self.failed("DecideApprovalStep", result)?;
        let result = self
            .checker
            .list_credit_policy_versions(pb::ListCreditPolicyVersionsRequest {})
            .await;
        let history = self.failed("ListCreditPolicyVersions", result)?;
        let status = history
            .versions
            .iter()
            .find(|version| version.version == proposal.version)
            .map_or_else(
                || "missing".to_owned(),
                |version| {
                    version
                        .status()
                        .as_str_name()
                        .trim_start_matches("POLICY_VERSION_STATUS_")
                        .to_lowercase()
                },
            );
        self.detail(&format!(
            "rejected by {}: version {} is {status} in the history; version {} stays in force",
            decider.name, proposal.version, history.in_force_version
        ))?;
        Ok(())
    }
}
