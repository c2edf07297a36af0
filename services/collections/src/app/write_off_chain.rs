//! Write-offs walk the approval matrix (issue #22): the WRITE_OFF chain is chosen by limits,
//! which keeps the matrix and the FX table, when the write-off is requested (a write-off
//! above 1,000,000 in the shipped matrix: finance verifies the loss, the general manager
//! approves within authority, the board is informed; below: a credit manager within
//! authority); each DecideWriteOff then decides the step that waits. Without a limits service
//! to ask, a write-off keeps the one-step four-eyes decision.

use chrono::{DateTime, Utc};
use credit_core::approval::{Chain, Progress};
use credit_core::{Actor, Money, Principal, ServiceError};
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
        let request = pb::ChooseApprovalChainRequest {
            decision_kind: pb::DecisionKind::WriteOff.into(),
            amount: Some(amount.into()),
            customer_id: customer_id.to_owned(),
            grade_notches: 0,
        };
        credit_runtime::approval_wire::ask_for_chain(
            approvals,
            request,
            Actor::of(maker),
            "the write-off",
        )
        .await
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
    Ok(chain.walked(principal, approve, reason, now)?)
}
