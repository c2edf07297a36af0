//! The credit policy's use cases: reading it (the version in force, or any other), proposing
//! a change under its etag (a governed version, published by its POLICY_CHANGE chain), and
//! ProposeLimit, a customer limit proposed from the policy and
//! the customer's latest statement.

use chrono::{DateTime, Utc};
use credit_core::{Currency, Money, Principal, ServiceError};
use credit_runtime::sql::IdempotencyKey;

use crate::domain::limits::{self, Scope};
use crate::domain::policy::{CreditPolicy, PolicyUpdate};
use crate::domain::proposal::{self, Proposal, ProposalCurrency};

use super::CreditAdmin;
use super::governance::VersionView;

/// A change of the credit policy as UpdateCreditPolicy proposes it.
#[derive(Debug)]
pub struct PolicyProposal {
    pub update: PolicyUpdate,
    /// Empty, or the etag of the newest published policy the change was made against.
    pub etag: String,
    pub reason: String,
    pub effective_from: Option<DateTime<Utc>>,
}

/// A proposal and what it was made from, as ProposeLimit answers it.
#[derive(Debug, Clone)]
pub struct ProposalView {
    pub proposal: Proposal,
    pub rating_id: String,
    pub grade: String,
    /// Empty when the customer has no statement.
    pub statement_id: String,
    pub current_limit: Option<Money>,
}

fn policy_moved() -> ServiceError {
    ServiceError::Aborted {
        reason: "ETAG_MISMATCH",
        message: "the credit policy changed meanwhile; read it again and retry".to_owned(),
    }
}

impl CreditAdmin {
    /// The policy in force now, or version `version`.
    pub async fn credit_policy(&self, version: Option<u32>) -> Result<CreditPolicy, ServiceError> {
        match version {
            None => self.hot.stored_policy().await,
            Some(version) => Ok(self
                .governed_version::<CreditPolicy>(Some(version))
                .await?
                .document),
        }
    }

    /// Proposes `update` applied to the newest published policy, when `etag` (if given) still
    /// names it (else ABORTED ETAG_MISMATCH); nothing changes until its POLICY_CHANGE chain
    /// approves it.
    pub async fn propose_policy(
        &self,
        proposer: &Principal,
        change: PolicyProposal,
        key: &IdempotencyKey,
    ) -> Result<VersionView<CreditPolicy>, ServiceError> {
        let base = self.newest_document::<CreditPolicy>().await?;
        if !change.etag.is_empty() && change.etag != base.document.etag() {
            return Err(policy_moved());
        }
        let fields = change.update.fields.clone();
        let next = base.document.updated(change.update)?;
        let proposal = self
            .propose_version(
                proposer,
                &base,
                next,
                change.reason,
                change.effective_from,
                key,
            )
            .await?;
        tracing::info!(version = proposal.version, fields = ?fields, "credit policy change proposed");
        Ok(proposal)
    }

    /// A limit proposed for a rated customer, in `requested_currency` or else the currency
    /// of its limit, its grade cap or its statement, figures converted with the FX table.
    pub async fn propose_limit(
        &self,
        customer_id: &str,
        requested_currency: Option<Currency>,
    ) -> Result<ProposalView, ServiceError> {
        let facts = self.require_customer(customer_id).await?;
        let rating = facts.rating.ok_or_else(|| {
            ServiceError::failed_precondition(
                "RATING_REQUIRED",
                "the customer has no rating; the grade cap and policy factors need one",
            )
        })?;
        let policy = self.hot.stored_policy().await?;
        let statement = self
            .store
            .latest_statement(customer_id)
            .await
            .map_err(ServiceError::from)?;
        let limits = self
            .store
            .limits(&Scope::Customer(customer_id.to_owned()))
            .await
            .map_err(ServiceError::from)?;
        let current_limit = limits::effective_limit(&limits, Utc::now()).map(|limit| limit.amount);
        let mut currency = ProposalCurrency::choose(
            requested_currency,
            current_limit.map(|limit| limit.currency()),
            policy
                .for_grade(Some(&rating.grade))
                .0
                .max_limit
                .map(|cap| cap.currency()),
            statement
                .as_ref()
                .map(|statement| statement.equity.currency()),
        );
        if let Some(into) = currency.currency() {
            for from in currency.rates_needed(&policy, &rating.grade, statement.as_ref()) {
                if let Some(rate) = self.hot.fx_rate(from, into).await? {
                    currency.add_rate(from, rate);
                }
            }
        }
        let proposal = proposal::propose(&policy, &rating.grade, statement.as_ref(), &currency);
        Ok(ProposalView {
            proposal,
            rating_id: rating.rating_id,
            grade: rating.grade,
            statement_id: statement
                .map(|statement| statement.statement_id)
                .unwrap_or_default(),
            current_limit,
        })
    }
}
