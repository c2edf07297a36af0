//! The credit policy's use cases: reading it, changing it under its etag (the hot path's
//! copy is replaced at once), and ProposeLimit, a customer limit proposed from the policy and
//! the customer's latest statement.

use chrono::Utc;
use credit_core::{Actor, Currency, Money, ServiceError};

use crate::domain::limits::{self, Scope};
use crate::domain::policy::{CreditPolicy, PolicyChange, PolicyUpdate};
use crate::domain::proposal::{self, Proposal, ProposalCurrency};

use super::CreditAdmin;

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
    pub async fn credit_policy(&self) -> Result<CreditPolicy, ServiceError> {
        self.hot.stored_policy().await
    }

    /// Applies `update` to the stored policy when `etag` (if given) still names it; ABORTED
    /// ETAG_MISMATCH when the policy changed meanwhile, here or in the store.
    pub async fn update_policy(
        &self,
        changed_by: Actor,
        reason: &str,
        etag: &str,
        update: PolicyUpdate,
    ) -> Result<CreditPolicy, ServiceError> {
        let current = self.hot.stored_policy().await?;
        if !etag.is_empty() && etag != current.etag() {
            return Err(policy_moved());
        }
        let fields = update.fields.clone();
        let mut next = current.updated(update)?;
        next.version = current.version + 1;
        next.last_change = Some(PolicyChange {
            changed_by,
            changed_at: Utc::now(),
            reason: reason.to_owned(),
        });
        if !self
            .store
            .save_policy(&next, current.version)
            .await
            .map_err(ServiceError::from)?
        {
            return Err(policy_moved());
        }
        tracing::info!(version = next.version, fields = ?fields, "credit policy changed");
        self.hot.policy_changed(next.clone()).await;
        Ok(next)
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
