//! Dunning policies are governed (issue #22, 制度修订): PublishDunningPolicy checks a policy as
//! it always did and files it as a proposal with its changes against the latest version; a
//! second person decides it through the approval matrix's POLICY_CHANGE chain, and the
//! approval of the last step publishes it (the store does both in one transaction).

use chrono::Utc;
use credit_core::approval::Progress;
use credit_core::governance::{Change, diff};
use credit_core::{Actor, Principal, ServiceError};
use credit_proto::v1 as pb;
use credit_runtime::approval_wire::{
    chain_to_proto, change_to_proto, policy_change_chain, version_status_filter,
    version_status_to_proto,
};
use credit_runtime::sql::{IdempotencyKey, Page};

use super::Collections;
use super::dunning::{field_violations, policy_draft, policy_to_proto, stored_policy};
use crate::api::convert::{actor, required_id, timestamp};
use crate::domain::{DunningPolicy, check_publishable};
use crate::store::{Outcome, PolicyProposal, PolicyProposalFilter};

impl Collections {
    /// Checks a policy and files it as a proposal (or with `validate_only` only checks it):
    /// the policy as it will be published, and the proposal.
    pub(crate) async fn propose_dunning_policy(
        &self,
        principal: &Principal,
        request: pb::PublishDunningPolicyRequest,
    ) -> Result<(pb::DunningPolicy, Option<PolicyProposal>), ServiceError> {
        let request_id = required_id("request_id", &request.request_id);
        let draft = match &request.policy {
            Some(policy) => Ok(policy_draft(policy)),
            None => Err(ServiceError::invalid("policy", "is required")),
        };
        let (request_id, draft) = credit_core::both(request_id, draft)?;
        // Checked on its own first, so a malformed policy is refused before any write.
        let checked = DunningPolicy::parse(&draft, 1).map_err(field_violations)?;
        let latest = self
            .dunning()
            .latest_policies()
            .await
            .map_err(ServiceError::from)?;
        let proposed = admission(&checked, &principal.name)(&latest, 0)?;
        if request.validate_only {
            return Ok((proposed, None));
        }
        let base = latest
            .iter()
            .find(|policy| policy.policy_id == proposed.policy_id);
        let proposal = PolicyProposal {
            proposal_id: format!("dpp_{}", uuid::Uuid::now_v7().simple()),
            base_version: base.map_or(0, |base| u32::try_from(base.version).unwrap_or(0)),
            changes: base.map_or_else(Vec::new, |base| policy_changes(base, &proposed)),
            chain: policy_change_chain(
                self.approvals.as_ref(),
                Actor::of(principal),
                "the dunning policy change",
            )
            .await?,
            proposed_at: Utc::now(),
            published_version: None,
            document: pb::DunningPolicy {
                published_at: None,
                published_by: None,
                ..proposed
            },
        };
        let key = IdempotencyKey::new(
            &principal.name,
            request_id,
            "PublishDunningPolicy",
            &request,
        );
        let outcome = self
            .dunning()
            .propose_policy(&proposal, &key)
            .await
            .map_err(ServiceError::from)?;
        if let Outcome::New(proposal) = &outcome {
            tracing::info!(
                proposal_id = %proposal.proposal_id,
                policy_id = %proposal.document.policy_id,
                base_version = proposal.base_version,
                proposed_by = %principal.name,
                "dunning policy proposed"
            );
        }
        let proposal = outcome.into_inner();
        Ok((proposal.document.clone(), Some(proposal)))
    }

    /// `principal`'s verdict on the step of a proposal that waits; the approval of the last
    /// step publishes the policy as the next version.
    pub(crate) async fn decide_dunning_policy_proposal(
        &self,
        principal: &Principal,
        request: &pb::DecideDunningPolicyProposalRequest,
    ) -> Result<PolicyProposal, ServiceError> {
        let request_id = required_id("request_id", &request.request_id);
        let proposal_id = required_id("proposal_id", &request.proposal_id);
        let note = request.note.trim();
        let approve = match pb::ApprovalVerdict::try_from(request.verdict) {
            Ok(pb::ApprovalVerdict::Approve) => Ok(true),
            Ok(pb::ApprovalVerdict::Reject) if note.is_empty() => Err(ServiceError::invalid(
                "note",
                "is required to reject: say why",
            )),
            Ok(pb::ApprovalVerdict::Reject) => Ok(false),
            _ => Err(ServiceError::invalid("verdict", "is APPROVE or REJECT")),
        };
        let ((request_id, proposal_id), approve) =
            credit_core::both(credit_core::both(request_id, proposal_id), approve)?;
        let key = IdempotencyKey::new(
            &principal.name,
            request_id,
            "DecideDunningPolicyProposal",
            request,
        );
        // A proposal's policy never changes: read once, it is what the approval publishes.
        let filed = self
            .dunning()
            .policy_proposal(&proposal_id)
            .await
            .map_err(ServiceError::from)?
            .ok_or_else(|| ServiceError::not_found("dunning policy proposal", &proposal_id))?;
        let checked = stored_policy(&filed.document)?;
        let admit = admission(&checked, &principal.name);
        let now = Utc::now();
        let decide = |proposal: &PolicyProposal, latest_version: u32| {
            let (chain, progress) = proposal.chain.walked(principal, approve, note, now)?;
            if progress == Progress::Approved && latest_version != proposal.base_version {
                return Err(ServiceError::failed_precondition(
                    "PROPOSAL_STALE",
                    format!(
                        "dunning policy {} was proposed over version {}; version {latest_version} was published since: propose again over it",
                        proposal.document.policy_id, proposal.base_version
                    ),
                ));
            }
            Ok(PolicyProposal {
                chain,
                ..proposal.clone()
            })
        };
        let outcome = self
            .dunning()
            .decide_policy_proposal(&proposal_id, &key, &decide, &admit)
            .await
            .map_err(ServiceError::from)?;
        if let Outcome::New(decided) = &outcome {
            tracing::info!(
                proposal_id = %decided.proposal_id,
                policy_id = %decided.document.policy_id,
                status = decided.status().as_str(),
                published_version = decided.published_version.unwrap_or(0),
                decided_by = %principal.name,
                "dunning policy proposal decided"
            );
        }
        Ok(outcome.into_inner())
    }

    pub(crate) async fn dunning_policy_proposals_page(
        &self,
        request: &pb::ListDunningPolicyProposalsRequest,
    ) -> Result<pb::ListDunningPolicyProposalsResponse, ServiceError> {
        let status = version_status_filter(request.status);
        let (status, page) =
            credit_core::both(status, Page::parse(request.page_size, &request.page_token))?;
        let filter = PolicyProposalFilter {
            status,
            document_id: request.policy_id.trim().to_owned(),
        };
        let mut proposals = self
            .dunning()
            .policy_proposals(&filter, page.after.as_deref(), page.fetch_limit())
            .await
            .map_err(ServiceError::from)?;
        let next_page_token = page.finish(&mut proposals, |proposal| &proposal.proposal_id);
        Ok(pb::ListDunningPolicyProposalsResponse {
            proposals: proposals.iter().map(proposal_to_proto).collect(),
            next_page_token,
        })
    }
}

/// Checks `checked` against the latest version of every other policy (no grade in two
/// policies, one default) and makes it the stored version `version`, published by `publisher`.
fn admission<'a>(
    checked: &'a DunningPolicy,
    publisher: &'a str,
) -> impl Fn(&[pb::DunningPolicy], u32) -> Result<pb::DunningPolicy, ServiceError> + Send + Sync + 'a
{
    move |published: &[pb::DunningPolicy], version: u32| {
        let others = published
            .iter()
            .map(stored_policy)
            .collect::<Result<Vec<_>, _>>()?;
        let violations = check_publishable(&others, checked);
        if !violations.is_empty() {
            return Err(ServiceError::InvalidArgument(
                violations
                    .into_iter()
                    .map(|violation| {
                        credit_core::FieldViolation::new(
                            format!("policy.{}", violation.field),
                            violation.description,
                        )
                    })
                    .collect(),
            ));
        }
        Ok(pb::DunningPolicy {
            version: i32::try_from(version).unwrap_or(i32::MAX),
            published_at: Some(timestamp(Utc::now())),
            published_by: actor(publisher),
            ..policy_to_proto(checked)
        })
    }
}

/// What `after` changes against `before`, field by field: the name, the grades, each level's
/// days, channel, template and message (what a collections manager reads to decide).
fn policy_changes(before: &pb::DunningPolicy, after: &pb::DunningPolicy) -> Vec<Change> {
    fn view(policy: &pb::DunningPolicy) -> serde_json::Value {
        serde_json::json!({
            "display_name": policy.display_name,
            "grades": policy.grades,
            "levels": policy.levels.iter().map(|level| serde_json::json!({
                "level": level.level,
                "display_name": level.display_name,
                "days_past_due": level.days_past_due,
                "channel": pb::ContactChannel::try_from(level.channel)
                    .map_or("UNKNOWN", |channel| channel.as_str_name()),
                "template_id": level.template_id,
                "message_template": level.message_template,
            })).collect::<Vec<_>>(),
        })
    }
    diff(&view(before), &view(after))
}

pub(crate) fn proposal_to_proto(proposal: &PolicyProposal) -> pb::DunningPolicyProposal {
    let published_version = proposal.published_version.unwrap_or(0);
    pb::DunningPolicyProposal {
        proposal_id: proposal.proposal_id.clone(),
        policy: Some(pb::DunningPolicy {
            version: i32::try_from(published_version).unwrap_or(i32::MAX),
            ..proposal.document.clone()
        }),
        base_version: i32::try_from(proposal.base_version).unwrap_or(i32::MAX),
        changes: proposal.changes.iter().map(change_to_proto).collect(),
        status: version_status_to_proto(proposal.status()).into(),
        approval_chain: Some(chain_to_proto(&proposal.chain)),
        proposed_at: Some(timestamp(proposal.proposed_at)),
        published_version: i32::try_from(published_version).unwrap_or(i32::MAX),
    }
}
