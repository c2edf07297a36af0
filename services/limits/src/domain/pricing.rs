//! The price of credit (信用定价) and the loss given default its security leaves.
//!
//! The documents' talk on pricing credit: "if our average cost of funds is 8.2 %, the price to
//! a credit customer should, other things equal, be at least 8.2 % above the cash price", and
//! for a risky order the company should ask a higher profit. The minimum surcharge of a sale on
//! credit over the cash price is therefore three parts, each shown with its basis:
//!
//! - **financing**: amount × cost of funds × days financed / 365 (a year financed at 8.2 %
//!   costs 8.2 %);
//! - **expected loss**: amount × PD × LGD, the LGD after the customer's security;
//! - **risk margin**: amount × the margin the grade's policy asks.
//!
//! LGD comes from coverage: the secured part of the exposure at default is assumed recovered
//! (its haircuts already priced the risk of realising it), the unsecured part loses the policy's
//! unsecured LGD. So `LGD = unsecured LGD × max(0, EAD − eligible security) / EAD`, and with
//! nothing exposed, the unsecured LGD when no security counts, else zero.
//!
//! Pure: every amount in one currency, every rate a percentage; rounding is `Money::times`.

use credit_core::Money;
use rust_decimal::Decimal;

/// The days a year of financing counts.
pub const DAYS_PER_YEAR: u32 = 365;

fn hundred() -> Decimal {
    Decimal::ONE_HUNDRED
}

/// The loss given default, in percent, of an exposure at default `ead` covered by `secured`
/// (both in one currency, non-negative), with `unsecured_lgd_percent` lost on the unsecured
/// part. Four decimal places, half-even.
pub fn lgd_percent(ead: Decimal, secured: Decimal, unsecured_lgd_percent: Decimal) -> Decimal {
    let ead = ead.max(Decimal::ZERO);
    let secured = secured.max(Decimal::ZERO);
    let share = if ead.is_zero() {
        if secured.is_zero() {
            Decimal::ONE
        } else {
            Decimal::ZERO
        }
    } else {
        ead.checked_sub(secured)
            .unwrap_or(Decimal::ZERO)
            .max(Decimal::ZERO)
            .checked_div(ead)
            .unwrap_or(Decimal::ONE)
    };
    unsecured_lgd_percent
        .checked_mul(share)
        .unwrap_or(unsecured_lgd_percent)
        .round_dp_with_strategy(4, rust_decimal::RoundingStrategy::MidpointNearestEven)
}

/// What a quote is computed from.
#[derive(Debug, Clone)]
pub struct QuoteInputs {
    /// The cash price of the sale, in the currency of the quote.
    pub amount: Money,
    pub days_financed: u32,
    pub cost_of_funds_percent: Decimal,
    /// The customer's probability of default, percent (the grade's; the policy's unrated PD
    /// when the customer has no rating).
    pub pd_percent: Decimal,
    /// Where the PD comes from, for the explanation ("grade BBB", "unrated").
    pub pd_basis: String,
    /// The LGD after security of the exposure with this sale, percent.
    pub lgd_percent: Decimal,
    /// The eligible security counted and the exposure at default the LGD was computed on.
    pub secured: Money,
    pub ead: Money,
    pub unsecured_lgd_percent: Decimal,
    pub risk_margin_percent: Decimal,
    pub grade: Option<String>,
}

/// One part of a quote.
#[derive(Debug, Clone, PartialEq)]
pub struct PricePart {
    /// `FINANCING`, `EXPECTED_LOSS`, `RISK_MARGIN`.
    pub code: &'static str,
    pub amount: Money,
    /// The part as a percentage of the cash price, four places.
    pub percent_of_price: Decimal,
    pub explanation: String,
}

/// The minimum price of a sale on credit.
#[derive(Debug, Clone, PartialEq)]
pub struct Quote {
    pub cash_price: Money,
    pub parts: Vec<PricePart>,
    /// The sum of the parts: the least the credit price should exceed the cash price by.
    pub minimum_surcharge: Money,
    pub minimum_surcharge_percent: Decimal,
    pub minimum_credit_price: Money,
}

fn four_places(value: Decimal) -> Decimal {
    let mut rounded =
        value.round_dp_with_strategy(4, rust_decimal::RoundingStrategy::MidpointNearestEven);
    rounded.rescale(4);
    rounded
}

/// `part` of `price` in percent, four places.
fn percent_of(part: Money, price: Money) -> Decimal {
    if price.amount().is_zero() {
        return Decimal::ZERO;
    }
    four_places(
        part.amount()
            .checked_mul(hundred())
            .and_then(|scaled| scaled.checked_div(price.amount()))
            .unwrap_or(Decimal::ZERO),
    )
}

/// The quote. `None` when a figure overflows (an absurd amount or rate).
pub fn quote(inputs: &QuoteInputs) -> Option<Quote> {
    let amount = inputs.amount;
    let code = amount.currency().code();
    let year_share =
        Decimal::from(inputs.days_financed).checked_div(Decimal::from(DAYS_PER_YEAR))?;
    let financing_rate = inputs
        .cost_of_funds_percent
        .checked_mul(year_share)?
        .checked_div(hundred())?;
    let financing = amount.times(financing_rate).ok()?;
    let loss_rate = inputs
        .pd_percent
        .checked_mul(inputs.lgd_percent)?
        .checked_div(Decimal::from(10_000))?;
    let expected_loss = amount.times(loss_rate).ok()?;
    let margin = amount
        .times(inputs.risk_margin_percent.checked_div(hundred())?)
        .ok()?;
    let grade = inputs
        .grade
        .as_deref()
        .map_or("an unrated customer".to_owned(), |grade| {
            format!("grade {grade}")
        });
    let parts = vec![
        PricePart {
            code: "FINANCING",
            amount: financing,
            percent_of_price: percent_of(financing, amount),
            explanation: format!(
                "{} {code} financed {} days at a cost of funds of {}% a year: {} × {}% × {}/{DAYS_PER_YEAR}",
                amount.amount_string(),
                inputs.days_financed,
                inputs.cost_of_funds_percent.normalize(),
                amount.amount_string(),
                inputs.cost_of_funds_percent.normalize(),
                inputs.days_financed,
            ),
        },
        PricePart {
            code: "EXPECTED_LOSS",
            amount: expected_loss,
            percent_of_price: percent_of(expected_loss, amount),
            explanation: format!(
                "PD {}% ({}) × LGD {}% ({}% unsecured LGD on the part of {} {code} exposure at default not covered by {} {code} of eligible security)",
                inputs.pd_percent.normalize(),
                inputs.pd_basis,
                inputs.lgd_percent.normalize(),
                inputs.unsecured_lgd_percent.normalize(),
                inputs.ead.amount_string(),
                inputs.secured.amount_string(),
            ),
        },
        PricePart {
            code: "RISK_MARGIN",
            amount: margin,
            percent_of_price: percent_of(margin, amount),
            explanation: format!(
                "the margin {grade} asks for its risk: {}% of the price",
                inputs.risk_margin_percent.normalize()
            ),
        },
    ];
    let surcharge = parts
        .iter()
        .try_fold(Money::zero(amount.currency()), |sum, part| {
            sum.checked_add(part.amount)
        })
        .ok()?;
    Some(Quote {
        cash_price: amount,
        minimum_surcharge_percent: percent_of(surcharge, amount),
        minimum_credit_price: amount.checked_add(surcharge).ok()?,
        minimum_surcharge: surcharge,
        parts,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cny(amount: &str) -> Money {
        Money::parse(amount, "CNY").unwrap()
    }

    fn inputs(days: u32, pd: &str, lgd: &str, margin: &str) -> QuoteInputs {
        QuoteInputs {
            amount: cny("100000"),
            days_financed: days,
            cost_of_funds_percent: Decimal::new(82, 1),
            pd_percent: pd.parse().unwrap(),
            pd_basis: "grade A".to_owned(),
            lgd_percent: lgd.parse().unwrap(),
            secured: cny("0"),
            ead: cny("100000"),
            unsecured_lgd_percent: Decimal::from(45),
            risk_margin_percent: margin.parse().unwrap(),
            grade: Some("A".to_owned()),
        }
    }

    #[test]
    fn a_year_financed_at_the_documents_cost_of_funds_costs_eight_point_two_percent() {
        let quote = quote(&inputs(365, "0", "45", "0")).unwrap();
        assert_eq!(quote.parts[0].amount, cny("8200"));
        assert_eq!(quote.minimum_surcharge_percent, Decimal::new(82_000, 4));
        assert_eq!(quote.minimum_credit_price, cny("108200"));
    }

    #[test]
    fn each_part_is_computed_and_explained() {
        let unrated = quote(&QuoteInputs {
            grade: None,
            ..inputs(30, "5", "45", "2")
        })
        .unwrap();
        assert!(
            unrated.parts[2]
                .explanation
                .starts_with("the margin an unrated customer asks"),
            "{}",
            unrated.parts[2].explanation
        );
        // 30 days: 100,000 × 8.2 % × 30/365 = 673.97; PD 2 % × LGD 45 % = 900; margin 1 %.
        let quote = quote(&inputs(30, "2", "45", "1")).unwrap();
        let amounts: Vec<Money> = quote.parts.iter().map(|part| part.amount).collect();
        assert_eq!(amounts, [cny("673.97"), cny("900"), cny("1000")]);
        assert_eq!(quote.minimum_surcharge, cny("2573.97"));
        assert_eq!(quote.minimum_surcharge_percent, Decimal::new(25_740, 4));
        assert!(quote.parts[0].explanation.contains("8.2% a year"));
        assert!(quote.parts[1].explanation.contains("LGD 45%"));
    }

    #[test]
    fn security_lowers_the_loss_given_default_by_the_share_it_covers() {
        let lgd = |ead: i64, secured: i64| {
            lgd_percent(
                Decimal::from(ead),
                Decimal::from(secured),
                Decimal::from(45),
            )
        };
        assert_eq!(lgd(100_000, 0), Decimal::from(45));
        assert_eq!(lgd(100_000, 60_000), Decimal::from(18));
        assert_eq!(lgd(100_000, 150_000), Decimal::ZERO);
        assert_eq!(lgd(0, 0), Decimal::from(45));
        assert_eq!(lgd(0, 10), Decimal::ZERO);
    }
}
