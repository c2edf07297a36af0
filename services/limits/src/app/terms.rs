//! Credit terms' use cases: a customer's terms in force (its own over the policy's defaults
//! for its grade) and SetCreditTerms.

use chrono::Utc;
use credit_core::{Actor, ServiceError, Violations};

use crate::domain::limits::Scope;
use crate::domain::terms::{self, CustomerTerms, EffectiveTerms, TermsEdit};

use super::CreditAdmin;

impl CreditAdmin {
    /// The customer's own terms over the policy's defaults for its grade.
    pub async fn effective_terms(&self, customer_id: &str) -> Result<EffectiveTerms, ServiceError> {
        let facts = self.require_customer(customer_id).await?;
        let own = self
            .store
            .terms(customer_id)
            .await
            .map_err(ServiceError::from)?;
        let policy = self.hot.stored_policy().await?;
        let grade = facts.rating.as_ref().map(|rating| rating.grade.as_str());
        Ok(terms::effective(customer_id, own.as_ref(), &policy, grade))
    }

    /// Applies `edits` to the customer's stored terms and answers the terms now in force.
    /// `violations` holds the request's problems, refused only after the stored terms are
    /// read (as they always were).
    pub async fn set_terms(
        &self,
        changed_by: Actor,
        customer_id: &str,
        reason: &str,
        edits: Vec<TermsEdit>,
        violations: Violations,
    ) -> Result<EffectiveTerms, ServiceError> {
        let current = self
            .store
            .terms(customer_id)
            .await
            .map_err(ServiceError::from)?;
        let mut payment_terms = current
            .as_ref()
            .and_then(|terms| terms.payment_terms.clone());
        let mut order_amount_cap = current.as_ref().and_then(|terms| terms.order_amount_cap);
        for edit in edits {
            match edit {
                TermsEdit::PaymentTerms(terms) => payment_terms = terms,
                TermsEdit::OrderAmountCap(cap) => order_amount_cap = cap,
            }
        }
        violations.finish()?;
        self.require_customer(customer_id).await?;
        let terms = CustomerTerms {
            customer_id: customer_id.to_owned(),
            payment_terms,
            order_amount_cap,
            changed_by,
            changed_at: Utc::now(),
            reason: reason.to_owned(),
        };
        self.store
            .save_terms(&terms)
            .await
            .map_err(ServiceError::from)?;
        // The per-order cap is part of the cached profile.
        self.hot
            .invalidate(&Scope::Customer(customer_id.to_owned()))
            .await;
        self.effective_terms(customer_id).await
    }
}
