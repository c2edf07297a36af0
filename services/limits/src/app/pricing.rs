//! QuoteCreditPrice: the least a sale on credit should cost above its cash price, from the
//! customer's grade (PD), its security (LGD), its payment terms (days financed) and the credit
//! policy's pricing figures. Reads only.

use chrono::Utc;
use credit_core::{Money, ServiceError};
use rust_decimal::Decimal;

use crate::domain::pricing::{self, Quote, QuoteInputs};
use crate::domain::profile;
use crate::domain::terms;

use super::{CreditAdmin, from_minor};

/// A quote and the figures it was computed from.
#[derive(Debug, Clone)]
pub struct PriceQuote {
    pub quote: Quote,
    pub inputs: QuoteInputs,
}

impl CreditAdmin {
    /// The quote for selling `amount` on credit to the customer, financed `days_financed`
    /// days (`None`: the net days of its payment terms). The quote is in the amount's
    /// currency; the customer's exposure and security are converted into it.
    pub async fn quote_credit_price(
        &self,
        customer_id: &str,
        amount: Money,
        days_financed: Option<u32>,
    ) -> Result<PriceQuote, ServiceError> {
        let facts = self
            .store
            .warming_facts(customer_id)
            .await
            .map_err(ServiceError::from)?
            .ok_or_else(|| ServiceError::not_found("customer", customer_id))?;
        let currency = amount.currency();
        let now = Utc::now();
        let (_, exposure_currency) =
            profile::limit_in_force(&facts.limits, now, self.hot.base_currency());
        let exposure = from_minor(
            self.hot
                .ledger_exposure(&crate::domain::limits::Scope::Customer(
                    customer_id.to_owned(),
                ))
                .await?,
            exposure_currency,
        );
        let exposure = if exposure_currency == currency {
            exposure
        } else {
            self.hot.convert(exposure, currency).await?.0
        };
        let cover = self.hot.cover(&facts, currency).await?;
        let secured = from_minor(cover.secured_at(now.timestamp()), currency);
        let ead = exposure
            .checked_add(amount)
            .map_err(|_| ServiceError::invalid("amount", "is too large"))?;
        let policy = &facts.policy;
        let rating = facts.customer.rating.as_ref();
        let grade = rating.map(|rating| rating.grade.clone());
        let (pd_percent, pd_basis) = match rating
            .and_then(|rating| rating.pd.map(|pd| (rating, pd)))
        {
            Some((rating, pd)) => (
                (pd * Decimal::ONE_HUNDRED).normalize(),
                format!("grade {}", rating.grade),
            ),
            None => (
                policy.pricing.unrated_pd_percent,
                match &grade {
                    Some(grade) => format!("grade {grade} without a PD: the policy's unrated PD"),
                    None => "unrated: the policy's unrated PD".to_owned(),
                },
            ),
        };
        let terms = terms::effective(
            customer_id,
            facts.own_terms.as_ref(),
            policy,
            grade.as_deref(),
        );
        let days_financed = days_financed.unwrap_or(terms.payment_terms.net_days);
        let (grade_policy, _) = policy.for_grade(grade.as_deref());
        let inputs = QuoteInputs {
            amount,
            days_financed,
            cost_of_funds_percent: policy.pricing.cost_of_funds_percent,
            pd_percent,
            pd_basis,
            lgd_percent: pricing::lgd_percent(
                ead.amount(),
                secured.amount(),
                policy.pricing.unsecured_lgd_percent,
            ),
            secured,
            ead,
            unsecured_lgd_percent: policy.pricing.unsecured_lgd_percent,
            risk_margin_percent: grade_policy.risk_margin_percent,
            grade,
        };
        let quote = pricing::quote(&inputs)
            .ok_or_else(|| ServiceError::invalid("amount", "is too large to price"))?;
        Ok(PriceQuote { quote, inputs })
    }
}
