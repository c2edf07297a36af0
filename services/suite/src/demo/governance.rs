//! The last part of the story: the people side of credit. The analyst proposes a grade
//! override, which walks the approval matrix's chain and a credit manager turns down; then the
//! credit policy is changed the governed way (制度修订): the credit manager proposes longer
//! grace days for overdue reviews; the proposal shows its changes and leaves the policy in
//! force as it was; the general manager, a second person, turns it down for now, and the
//! history keeps both.

use std::io::Write;

use credit_proto::v1 as pb;
use credit_proto::v1::approval_service_client::ApprovalServiceClient;
use credit_proto::v1::rating_service_client::RatingServiceClient;
use tonic_types::StatusExt;

use super::{DemoError, Story, bearer};

impl<W: Write> Story<'_, W> {
    /// The analyst proposes the grade one notch below the customer's (a sales report of slow
    /// payments elsewhere); the override walks the matrix's RATING_OVERRIDE chain and the
    /// credit manager rejects it, so the grade in force stays.
    pub(super) async fn review_an_override(&mut self, customer_id: &str) -> Result<(), DemoError> {
        self.begin("grade override");
        // The story's events (the overdue invoice, the payments) re-rate the customer a moment
        // after they happen: a proposal on a rating just superseded is made again on the new one.
        let mut attempt = 0;
        let (rating, request_id, result) = loop {
            attempt += 1;
            let result = self
                .rating
                .get_rating(pb::GetRatingRequest {
                    lookup: Some(pb::get_rating_request::Lookup::CustomerId(
                        customer_id.to_owned(),
                    )),
                })
                .await;
            let rating = self
                .failed("GetRating", result)?
                .rating
                .ok_or_else(|| self.unexpected("GetRating answered no rating"))?;
            let result = self
                .rating
                .get_model(pb::GetModelRequest {
                    model_id: rating.model_id.clone(),
                    version: rating.model_version,
                })
                .await;
            let scale = self
                .failed("GetModel", result)?
                .model
                .and_then(|model| model.master_scale)
                .ok_or_else(|| self.unexpected("GetModel answered no master scale"))?;
            let position = scale
                .grades
                .iter()
                .position(|grade| grade.grade == rating.grade);
            let Some(lower) = position.and_then(|index| scale.grades.get(index + 1)) else {
                self.line(&format!(
                    "grade {} is the scale's lowest: no override to propose",
                    rating.grade
                ))?;
                return Ok(());
            };
            let request_id = self.key(&format!("override-{attempt}"));
            let result = self
                .rating
                .propose_override(pb::ProposeOverrideRequest {
                    request_id: request_id.clone(),
                    rating_id: rating.rating_id.clone(),
                    proposed_grade: lower.grade.clone(),
                    justification: "sales report slow payments to other suppliers".into(),
                })
                .await;
            let superseded = result.as_ref().is_err_and(|status| {
                status
                    .get_details_error_info()
                    .is_some_and(|info| info.reason == "RATING_SUPERSEDED")
            });
            if superseded && attempt < 5 {
                tokio::time::sleep(std::time::Duration::from_millis(200)).await;
                continue;
            }
            break (rating, request_id, result);
        };
        let proposal = self
            .failed("ProposeOverride", result)?
            .rating_override
            .ok_or_else(|| self.unexpected("ProposeOverride answered no override"))?;
        let chain = proposal.approval_chain.clone().unwrap_or_default();
        let waiting_for: Vec<String> = chain
            .current_step_index
            .and_then(|index| {
                chain
                    .steps
                    .get(usize::try_from(index).unwrap_or(usize::MAX))
            })
            .map(|step| {
                step.roles()
                    .map(|role| role.as_str_name().trim_start_matches("ROLE_").to_owned())
                    .collect()
            })
            .unwrap_or_default();
        self.line(&format!(
            "{} proposes {} -> {} ({} notch): chain {}, waiting for {}",
            self.cast.analyst.name,
            rating.grade,
            proposal.proposed_grade,
            proposal.notches,
            if chain.rule_id.is_empty() {
                "one checker"
            } else {
                chain.rule_id.as_str()
            },
            waiting_for.join(" or ")
        ))?;
        let mut checker = RatingServiceClient::with_interceptor(
            self.channel.clone(),
            bearer(&self.cast.manager)?,
        );
        let result = checker
            .decide_override(pb::DecideOverrideRequest {
                request_id: format!("{request_id}-decided"),
                override_id: proposal.override_id.clone(),
                decision: pb::ApprovalDecision::Reject.into(),
                comment: "no overdue with us; review at the next statement".into(),
            })
            .await;
        let decided = self.failed("DecideOverride", result)?;
        let grade = decided
            .rating
            .map(|rating| rating.grade)
            .unwrap_or_default();
        self.detail(&format!(
            "rejected by {}: grade {grade} stays in force",
            self.cast.manager.name
        ))?;
        Ok(())
    }

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
