//! Credit terms: a customer's payment terms and per-order cap. What a credit manager set for
//! the customer wins; what they did not set comes from the credit policy for the customer's
//! grade, or from the policy's default for unrated customers and unlisted grades.

use chrono::{DateTime, Utc};
use credit_core::Money;
use serde::{Deserialize, Serialize};

use super::limits::Actor;
use super::policy::{CreditPolicy, PaymentTerms};

/// The customer-specific part, as SetCreditTerms stores it. `None` = the policy's default.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CustomerTerms {
    pub customer_id: String,
    pub payment_terms: Option<PaymentTerms>,
    pub order_amount_cap: Option<Money>,
    pub changed_by: Actor,
    pub changed_at: DateTime<Utc>,
    pub reason: String,
}

/// Where an effective term comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TermsSource {
    Customer,
    GradePolicy,
    DefaultPolicy,
}

/// The terms in force for a customer, each with its source.
#[derive(Debug, Clone, PartialEq)]
pub struct EffectiveTerms {
    pub customer_id: String,
    pub payment_terms: PaymentTerms,
    pub payment_terms_source: TermsSource,
    pub order_amount_cap: Option<Money>,
    pub order_amount_cap_source: TermsSource,
    pub grade: Option<String>,
    pub last_change: Option<(Actor, DateTime<Utc>)>,
}

/// Resolves the customer's own terms over the policy's defaults for `grade`.
pub fn effective(
    customer_id: &str,
    own: Option<&CustomerTerms>,
    policy: &CreditPolicy,
    grade: Option<&str>,
) -> EffectiveTerms {
    let (defaults, listed) = policy.for_grade(grade);
    let policy_source = if listed {
        TermsSource::GradePolicy
    } else {
        TermsSource::DefaultPolicy
    };
    let (payment_terms, payment_terms_source) = match own.and_then(|own| own.payment_terms.clone())
    {
        Some(terms) => (terms, TermsSource::Customer),
        None => (defaults.payment_terms.clone(), policy_source),
    };
    let (order_amount_cap, order_amount_cap_source) = match own.and_then(|own| own.order_amount_cap)
    {
        Some(cap) => (Some(cap), TermsSource::Customer),
        None => (defaults.order_amount_cap, policy_source),
    };
    EffectiveTerms {
        customer_id: customer_id.to_owned(),
        payment_terms,
        payment_terms_source,
        order_amount_cap,
        order_amount_cap_source,
        grade: grade.map(str::to_owned),
        last_change: own.map(|own| (own.changed_by.clone(), own.changed_at)),
    }
}

/// One masked field of SetCreditTerms; `None` reverts it to the policy's default.
#[derive(Debug, Clone, PartialEq)]
pub enum TermsEdit {
    PaymentTerms(Option<PaymentTerms>),
    OrderAmountCap(Option<Money>),
}

#[cfg(test)]
#[allow(clippy::arithmetic_side_effects)] // fixed test figures
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn own(payment_terms: Option<PaymentTerms>, cap: Option<&str>) -> CustomerTerms {
        CustomerTerms {
            customer_id: "C1".to_owned(),
            payment_terms,
            order_amount_cap: cap.map(|cap| Money::parse(cap, "CNY").unwrap()),
            changed_by: Actor {
                principal_id: "p".to_owned(),
                person_id: String::new(),
                name: "mgr".to_owned(),
                roles: vec![],
            },
            changed_at: Utc::now(),
            reason: "negotiated".to_owned(),
        }
    }

    #[test]
    fn own_terms_win_and_the_rest_comes_from_the_grade() {
        let policy = CreditPolicy::default();
        let terms = effective(
            "C1",
            Some(&own(Some(PaymentTerms::net(45)), None)),
            &policy,
            Some("BB"),
        );
        assert_eq!(terms.payment_terms.net_days, 45);
        assert_eq!(terms.payment_terms_source, TermsSource::Customer);
        assert_eq!(terms.order_amount_cap, Money::parse("1000000", "CNY").ok());
        assert_eq!(terms.order_amount_cap_source, TermsSource::GradePolicy);
    }

    #[test]
    fn unrated_customers_get_the_default_policy() {
        let policy = CreditPolicy::default();
        let terms = effective("C1", None, &policy, None);
        assert_eq!(terms.payment_terms_source, TermsSource::DefaultPolicy);
        assert_eq!(terms.order_amount_cap, None);
        assert_eq!(terms.last_change, None);
    }
}
