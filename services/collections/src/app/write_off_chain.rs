//! Write-offs walk the approval matrix (issue #22): the WRITE_OFF chain is chosen by limits,
//! which keeps the matrix and the FX table, when the write-off is requested (a write-off
//! above 1,000,000 in the shipped matrix: finance verifies the loss, the general manager
//! approves within authority, the board is informed; below: a credit manager within
//! authority); each DecideWriteOff then decides the step that waits. Without a limits service
//! to ask, a write-off keeps the one-step four-eyes decision.

use chrono::{DateTime, Utc};
use credit_core::approval::{Chain, ChainRule, Conditions, DecisionKind, Progress, Verdict};
use credit_core::{Actor, Money, Principal, ServiceError, Violations};
use credit_proto::v1 as pb;

use super::Collections;

impl Collections {
    /// The chain a write-off of `amount` for `customer_id` walks, started for its maker;
    /// `None` when no limits service is configured to choose one.
    pub(super) async fn write_off_chain(
        &self,
        maker: &Principal,
        customer_id: &str,
        amount: Money,
    ) -> Result<Option<Chain>, ServiceError> {
        let Some(approvals) = &self.approvals else {
            return Ok(None);
        };
        let chosen = approvals
            .clone()
            .choose_approval_chain(pb::ChooseApprovalChainRequest {
                decision_kind: pb::DecisionKind::WriteOff.into(),
                amount: Some(amount.into()),
                customer_id: customer_id.to_owned(),
            })
            .await
            .map_err(|status| match status.code() {
                // The matrix cannot compare the amount: the caller's to resolve (an FX rate).
                tonic::Code::FailedPrecondition | tonic::Code::InvalidArgument => {
                    ServiceError::failed_precondition(
                        "APPROVAL_CHAIN_UNAVAILABLE",
                        format!(
                            "limits could not choose the write-off's approval chain: {}",
                            status.message()
                        ),
                    )
                }
                _ => {
                    tracing::warn!(code = ?status.code(), "limits did not answer for a write-off's approval chain");
                    ServiceError::unavailable(
                        "limits did not answer for the write-off's approval chain",
                        status,
                    )
                }
            })?
            .into_inner();
        let mut violations = Violations::new();
        let steps = credit_runtime::approval_wire::step_rules_from_proto(
            &chosen.steps,
            "steps",
            &mut violations,
        );
        let authority_amount = match &chosen.authority_amount {
            Some(wire) => violations.check("authority_amount", Money::try_from(wire)),
            None => None,
        };
        if !violations.is_empty() {
            return Err(ServiceError::internal(
                "limits answered a write-off chain this service cannot read",
            ));
        }
        let rule = ChainRule {
            rule_id: chosen.rule_id,
            kind: DecisionKind::WriteOff,
            description: chosen.description,
            conditions: Conditions::default(),
            steps,
        };
        Ok(Some(Chain::start(
            &rule,
            chosen.matrix_version,
            Actor::of(maker),
            authority_amount,
        )))
    }
}

/// `principal`'s verdict on the step of `chain` that waits: approving needs the step's role,
/// a person other than the maker and the other steps' deciders, and where the step says so
/// authority covering the amount; rejecting needs the role and four eyes.
pub(super) fn walk_write_off_chain(
    chain: &Chain,
    principal: &Principal,
    approve: bool,
    reason: &str,
    now: DateTime<Utc>,
) -> Result<(Chain, Progress), ServiceError> {
    let mut chain = chain.clone();
    let step = chain.may_decide(principal)?;
    let verdict = if approve {
        chain.check_authority(principal, step)?;
        Verdict::Approve
    } else {
        Verdict::Reject
    };
    let progress = chain.decide(principal, step, verdict, reason, now)?;
    Ok((chain, progress))
}
