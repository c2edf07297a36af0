//! QuoteCreditPrice on the wire.

use credit_core::{Money, ServiceError, Violations};
use credit_proto::v1 as pb;

use crate::app::PriceQuote;

/// The request read: the customer, the cash price and the days financed (`None`: the
/// customer's payment terms).
pub fn parse_quote_request(
    request: &pb::QuoteCreditPriceRequest,
) -> Result<(String, Money, Option<u32>), ServiceError> {
    let mut violations = Violations::new();
    let customer_id = request.customer_id.trim();
    if customer_id.is_empty() || customer_id.len() > 100 {
        violations.add("customer_id", "is required, at most 100 characters");
    }
    let amount = match request.amount.as_ref() {
        None => {
            violations.add("amount", "is required");
            None
        }
        Some(amount) => {
            violations.check("amount", Money::try_from(amount).and_then(Money::positive))
        }
    };
    let days = match request.days_financed {
        0 => None,
        days @ 1..=3650 => u32::try_from(days).ok(),
        _ => {
            violations.add(
                "days_financed",
                "must be from 1 to 3650 days, or 0 for the terms'",
            );
            None
        }
    };
    violations.finish()?;
    let amount = amount.ok_or_else(|| ServiceError::invalid("amount", "is required"))?;
    Ok((customer_id.to_owned(), amount, days))
}

pub fn quote_to_proto(priced: &PriceQuote) -> pb::QuoteCreditPriceResponse {
    let quote = &priced.quote;
    let inputs = &priced.inputs;
    pb::QuoteCreditPriceResponse {
        cash_price: Some(quote.cash_price.into()),
        components: quote
            .parts
            .iter()
            .map(|part| pb::PriceComponent {
                code: part.code.to_owned(),
                amount: Some(part.amount.into()),
                percent_of_price: part.percent_of_price.to_string(),
                explanation: part.explanation.clone(),
            })
            .collect(),
        minimum_surcharge: Some(quote.minimum_surcharge.into()),
        minimum_surcharge_percent: quote.minimum_surcharge_percent.to_string(),
        minimum_credit_price: Some(quote.minimum_credit_price.into()),
        days_financed: i32::try_from(inputs.days_financed).unwrap_or(i32::MAX),
        pd_percent: inputs.pd_percent.normalize().to_string(),
        lgd_percent: inputs.lgd_percent.normalize().to_string(),
        secured_cover: Some(inputs.secured.into()),
        exposure_at_default: Some(inputs.ead.into()),
        grade: inputs.grade.clone().unwrap_or_default(),
    }
}
