//! Rating's decisions walk the approval matrix (issue #22): an override of a grade (the
//! RATING_OVERRIDE chain: a credit manager, the general manager beyond two notches in the
//! shipped matrix) and, where the credit policy asks for it, a new grade before it takes
//! effect (RATING_APPROVAL: the general manager, 报总经理审批). The limits service keeps the
//! matrix and the policy, so it chooses the chain; rating keeps the chain with the override and
//! walks it with each DecideOverride. A new version of a scorecard model walks the
//! POLICY_CHANGE chain (a credit manager or the general manager, the board informed). Without a
//! limits service an override keeps its one checker, a new grade takes effect at once and a
//! model needs a second administrator.

use chrono::{DateTime, Utc};
use credit_core::approval::{Chain, DecisionKind, Progress, StepRefused};
use credit_core::freshness::FreshnessRules;
use credit_core::{Actor, Principal, ServiceError, Violations};
use credit_proto::v1 as pb;
use credit_proto::v1::approval_service_client::ApprovalServiceClient;
use credit_proto::v1::limit_service_client::LimitServiceClient;
use credit_runtime::approval_wire::{ask_for_chain, decision_kind_to_proto};
use credit_runtime::freshness_wire::freshness_from_proto;
use credit_runtime::peers::PeerChannel;

/// Where rating's chains come from: the limits service, when one is configured. Limits also
/// keeps the credit policy, whose freshness rules every rating applies.
#[derive(Debug, Clone, Default)]
pub struct ApprovalChains {
    limits: Option<ApprovalServiceClient<PeerChannel>>,
    policy: Option<LimitServiceClient<PeerChannel>>,
}

impl ApprovalChains {
    pub fn new(limits: Option<PeerChannel>) -> Self {
        Self {
            policy: limits.clone().map(LimitServiceClient::new),
            limits: limits.map(ApprovalServiceClient::new),
        }
    }

    /// The credit policy's freshness rules; the shipped ones without a limits service.
    /// UNAVAILABLE when limits does not answer: a rating is not made on rules nobody knows.
    pub async fn freshness_rules(&self) -> Result<FreshnessRules, ServiceError> {
        let Some(mut limits) = self.policy.clone() else {
            return Ok(FreshnessRules::default());
        };
        let policy = limits
            .get_credit_policy(pb::GetCreditPolicyRequest { version: None })
            .await
            .map_err(|status| {
                tracing::warn!(code = ?status.code(), "credit policy not available");
                ServiceError::unavailable(
                    "limits did not answer with the credit policy; the customer cannot be rated now",
                    status,
                )
            })?
            .into_inner()
            .policy
            .unwrap_or_default();
        let Some(wire) = policy.freshness else {
            return Ok(FreshnessRules::default());
        };
        let mut problems = Violations::new();
        let rules = freshness_from_proto(&wire, "policy.freshness", &mut problems);
        if !problems.is_empty() {
            // Limits checked the rules when they were published; a newer contract may carry
            // what this build cannot read, and the shipped rules are the safe reading.
            tracing::warn!(
                "the credit policy's freshness rules are unreadable; the shipped rules apply"
            );
            return Ok(FreshnessRules::default());
        }
        Ok(rules)
    }

    /// Whether a limits service chooses chains (else overrides have one checker and new
    /// grades take effect at once).
    pub fn configured(&self) -> bool {
        self.limits.is_some()
    }

    /// The chain an override by `maker` moving the grade of `customer_id` by `notches` walks;
    /// `None` without a limits service.
    pub async fn override_chain(
        &self,
        maker: &Actor,
        customer_id: &str,
        notches: i32,
    ) -> Result<Option<Chain>, ServiceError> {
        self.ask(
            DecisionKind::RatingOverride,
            maker,
            customer_id,
            notches,
            "the override",
        )
        .await
    }

    /// The chain a new grade of `customer_id`, `notches` away from the grade in force, waits
    /// on before it takes effect; `None` when it takes effect at once (the credit policy asks
    /// for no approval, or no limits service).
    pub async fn grade_approval_chain(
        &self,
        maker: &Actor,
        customer_id: &str,
        notches: i32,
    ) -> Result<Option<Chain>, ServiceError> {
        self.ask(
            DecisionKind::RatingApproval,
            maker,
            customer_id,
            notches,
            "the new grade",
        )
        .await
    }

    /// The chain a new version of a scorecard model by `maker` walks: limits' POLICY_CHANGE
    /// chain (a model is credit policy, 制度); without a limits service, a second
    /// administrator approves.
    pub async fn model_change_chain(&self, maker: &Actor) -> Result<Chain, ServiceError> {
        credit_runtime::approval_wire::policy_change_chain(
            self.limits.as_ref(),
            maker.clone(),
            "the model change",
        )
        .await
    }

    async fn ask(
        &self,
        kind: DecisionKind,
        maker: &Actor,
        customer_id: &str,
        notches: i32,
        what: &str,
    ) -> Result<Option<Chain>, ServiceError> {
        let Some(limits) = &self.limits else {
            return Ok(None);
        };
        let request = pb::ChooseApprovalChainRequest {
            decision_kind: decision_kind_to_proto(kind),
            amount: None,
            customer_id: customer_id.to_owned(),
            grade_notches: i32::try_from(notches.unsigned_abs()).unwrap_or(i32::MAX),
        };
        ask_for_chain(limits, request, maker.clone(), what).await
    }
}

/// `principal`'s verdict on the step of `chain` that waits: the step's role, and a person
/// other than the maker and the deciders of the other steps. Refusals keep the reasons
/// overrides always had (SELF_APPROVAL, INSUFFICIENT_ROLE); a chain that waits for nobody is
/// `not_pending` (OVERRIDE_NOT_PENDING, PROPOSAL_NOT_PENDING).
pub fn walk(
    chain: &Chain,
    principal: &Principal,
    approve: bool,
    note: &str,
    now: DateTime<Utc>,
    not_pending: &'static str,
) -> Result<(Chain, Progress), ServiceError> {
    chain
        .walked(principal, approve, note, now)
        .map_err(|refused| match refused {
            StepRefused::RoleRequired { .. } => ServiceError::PermissionDenied {
                reason: "INSUFFICIENT_ROLE",
                message: refused.to_string(),
            },
            StepRefused::NotPending { .. } => ServiceError::FailedPrecondition {
                reason: not_pending,
                message: refused.to_string(),
                metadata: Vec::new(),
            },
            other => ServiceError::from(other),
        })
}
