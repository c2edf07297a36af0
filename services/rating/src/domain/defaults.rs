//! The two scorecard models the suite ships: "enterprise-default" and "individual-default".
//!
//! A credit department needs to rate customers on day one, before it has built its own models,
//! so the suite ships one documented model per customer kind (docs/rating-models.md explains
//! every characteristic, bin and points to a credit manager). They are written here as an
//! administrator would submit them, so they pass through exactly the same checks as any other
//! model, and a test proves they do. Both score on 0..1000 and use the agency-8 scale.
//!
//! Points are expert judgement, not fitted to data: each characteristic's weight reflects how
//! strongly credit practice relates it to default, and missing values score below the middle
//! (information a customer does not give is not assumed to be good) but above the worst (a new
//! customer without payment history is not a bad payer).

use super::model::{CharacteristicSource, CustomerKind, IndicatorFamily, ValueType};
use super::scale;
use super::unchecked::{
    BinCondition, UncheckedBin, UncheckedCategories, UncheckedCharacteristic, UncheckedModel,
    UncheckedRange,
};

pub const ENTERPRISE_DEFAULT: &str = "enterprise-default";
pub const INDIVIDUAL_DEFAULT: &str = "individual-default";

/// Marks an open lower end in the tables below: the first bin of a numeric characteristic.
const MINUS_INFINITY: &str = "-inf";

/// Everything about a characteristic except its bins.
struct Spec {
    code: &'static str,
    display_name: &'static str,
    source: CharacteristicSource,
    input_key: &'static str,
    family: IndicatorFamily,
    missing_points: &'static str,
    reason_text: &'static str,
}

impl Spec {
    fn characteristic(
        self,
        value_type: ValueType,
        bins: Vec<UncheckedBin>,
    ) -> UncheckedCharacteristic {
        UncheckedCharacteristic {
            code: self.code.to_owned(),
            display_name: self.display_name.to_owned(),
            source: self.source.into(),
            input_key: self.input_key.to_owned(),
            value_type: value_type.into(),
            family: self.family.into(),
            bins,
            missing_points: self.missing_points.to_owned(),
            reason_text: self.reason_text.to_owned(),
        }
    }
}

/// A numeric characteristic from rows of (lower bound, points), lowest first: each bin runs from
/// its lower bound (inclusive) to the next row's (exclusive), the last one to +inf. This is the
/// way a scorecard is usually printed, and it cannot leave gaps.
fn numeric(spec: Spec, steps: &[(&str, &str)]) -> UncheckedCharacteristic {
    let bins = steps
        .iter()
        .enumerate()
        .map(|(index, &(lower, points))| {
            let lower_bound = (lower != MINUS_INFINITY).then(|| lower.to_owned());
            let upper_bound = steps.get(index + 1).map(|&(next, _)| next.to_owned());
            UncheckedBin {
                label: String::new(),
                condition: Some(BinCondition::Range(UncheckedRange {
                    lower_bound,
                    upper_bound,
                    lower_exclusive: false,
                    upper_inclusive: false,
                })),
                points: points.to_owned(),
            }
        })
        .collect();
    spec.characteristic(ValueType::Numeric, bins)
}

/// A categorical characteristic from rows of (category, points), one category per bin.
fn categorical(spec: Spec, categories: &[(&str, &str)]) -> UncheckedCharacteristic {
    let bins = categories
        .iter()
        .map(|&(category, points)| UncheckedBin {
            label: category.to_owned(),
            condition: Some(BinCondition::Categories(UncheckedCategories {
                values: vec![category.to_owned()],
            })),
            points: points.to_owned(),
        })
        .collect();
    spec.characteristic(ValueType::Categorical, bins)
}

/// Analysts rate qualitative characteristics 1 (worst) to 5 (best); one bin per step.
fn one_to_five(spec: Spec, points: [&str; 5]) -> UncheckedCharacteristic {
    numeric(
        spec,
        &[
            (MINUS_INFINITY, points[0]),
            ("2", points[1]),
            ("3", points[2]),
            ("4", points[3]),
            ("5", points[4]),
        ],
    )
}

fn model(
    model_id: &str,
    display_name: &str,
    description: &str,
    customer_kind: CustomerKind,
    base_points: &str,
    characteristics: Vec<UncheckedCharacteristic>,
) -> UncheckedModel {
    UncheckedModel {
        model_id: model_id.to_owned(),
        display_name: display_name.to_owned(),
        description: description.to_owned(),
        customer_kind: customer_kind.into(),
        base_points: base_points.to_owned(),
        characteristics,
        master_scale: Some(scale::agency_8()),
        max_reasons: 4,
        change_note: "Shipped with the suite; see docs/rating-models.md.".to_owned(),
        ..Default::default()
    }
}

use CharacteristicSource as Source;
use IndicatorFamily as Family;

/// The default model for enterprises: 17 characteristics in five families, base 250, scores
/// 255..1000. Weights: payment behaviour 230, financial strength 170, solvency 170, operations
/// 140, collateral 40.
pub fn enterprise_default() -> UncheckedModel {
    let characteristics = vec![
        // Financial strength
        numeric(
            Spec {
                code: "ALTMAN_Z_SCORE",
                display_name: "Altman Z''-score",
                source: Source::FinancialStatement,
                input_key: "altman_z_score",
                family: Family::FinancialStrength,
                missing_points: "20",
                reason_text: "Financial health (Altman Z''-score) is weak or not known",
            },
            &[
                (MINUS_INFINITY, "0"),
                ("0", "15"),
                ("1.1", "40"),
                ("2.6", "65"),
                ("4", "80"),
            ],
        ),
        numeric(
            Spec {
                code: "NET_MARGIN",
                display_name: "Net margin",
                source: Source::FinancialStatement,
                input_key: "net_margin",
                family: Family::FinancialStrength,
                missing_points: "10",
                reason_text: "Profitability (net margin) is low or not known",
            },
            &[
                (MINUS_INFINITY, "0"),
                ("0", "10"),
                ("0.02", "25"),
                ("0.05", "40"),
                ("0.1", "50"),
            ],
        ),
        numeric(
            Spec {
                code: "REVENUE",
                display_name: "Revenue",
                source: Source::FinancialStatement,
                input_key: "revenue",
                family: Family::FinancialStrength,
                missing_points: "5",
                reason_text: "The business is small (revenue) or its size is not known",
            },
            &[
                (MINUS_INFINITY, "5"),
                ("1000000", "15"),
                ("10000000", "25"),
                ("50000000", "35"),
                ("250000000", "40"),
            ],
        ),
        // Operations
        numeric(
            Spec {
                code: "YEARS_IN_BUSINESS",
                display_name: "Years in business",
                source: Source::Customer,
                input_key: "years_in_business",
                family: Family::Operations,
                missing_points: "5",
                reason_text: "Short or unknown operating history",
            },
            &[
                (MINUS_INFINITY, "0"),
                ("2", "10"),
                ("5", "25"),
                ("10", "35"),
                ("20", "40"),
            ],
        ),
        one_to_five(
            Spec {
                code: "MANAGEMENT_QUALITY",
                display_name: "Management quality",
                source: Source::Qualitative,
                input_key: "management_quality",
                family: Family::Operations,
                missing_points: "15",
                reason_text: "Management quality is assessed as weak, or was not assessed",
            },
            ["0", "10", "20", "30", "40"],
        ),
        one_to_five(
            Spec {
                code: "MARKET_POSITION",
                display_name: "Market position",
                source: Source::Qualitative,
                input_key: "market_position",
                family: Family::Operations,
                missing_points: "12",
                reason_text: "Market position is assessed as weak, or was not assessed",
            },
            ["0", "8", "15", "22", "30"],
        ),
        one_to_five(
            Spec {
                code: "INDUSTRY_OUTLOOK",
                display_name: "Industry outlook",
                source: Source::Qualitative,
                input_key: "industry_outlook",
                family: Family::Operations,
                missing_points: "12",
                reason_text: "The industry outlook is unfavourable, or was not assessed",
            },
            ["0", "7", "14", "22", "30"],
        ),
        // Solvency
        numeric(
            Spec {
                code: "CURRENT_RATIO",
                display_name: "Current ratio",
                source: Source::FinancialStatement,
                input_key: "current_ratio",
                family: Family::Solvency,
                missing_points: "10",
                reason_text: "Liquidity (current ratio) is weak or not known",
            },
            &[
                (MINUS_INFINITY, "0"),
                ("0.8", "15"),
                ("1", "30"),
                ("1.5", "50"),
                ("2", "60"),
            ],
        ),
        numeric(
            Spec {
                code: "DEBT_TO_ASSETS",
                display_name: "Debt to assets",
                source: Source::FinancialStatement,
                input_key: "debt_to_assets",
                family: Family::Solvency,
                missing_points: "10",
                reason_text: "Leverage (debt to assets) is high or not known",
            },
            &[
                (MINUS_INFINITY, "60"),
                ("0.4", "45"),
                ("0.6", "25"),
                ("0.75", "10"),
                ("0.9", "0"),
            ],
        ),
        numeric(
            Spec {
                code: "INTEREST_COVERAGE",
                display_name: "Interest coverage",
                source: Source::FinancialStatement,
                input_key: "interest_coverage",
                family: Family::Solvency,
                missing_points: "20",
                reason_text: "Earnings cover interest poorly (interest coverage), or it is not known",
            },
            &[
                (MINUS_INFINITY, "0"),
                ("1", "10"),
                ("1.5", "25"),
                ("3", "40"),
                ("6", "50"),
            ],
        ),
        // Collateral
        one_to_five(
            Spec {
                code: "COLLATERAL_COVERAGE",
                display_name: "Collateral and guarantee coverage",
                source: Source::Qualitative,
                input_key: "collateral_coverage",
                family: Family::Collateral,
                missing_points: "0",
                reason_text: "Little or no collateral or guarantee",
            },
            ["0", "10", "20", "30", "40"],
        ),
        // Payment behaviour
        numeric(
            Spec {
                code: "MAX_DAYS_OVERDUE_12M",
                display_name: "Maximum days overdue (12 months)",
                source: Source::PaymentBehaviour,
                input_key: "max_days_overdue_12m",
                family: Family::PaymentBehaviour,
                missing_points: "35",
                reason_text: "Invoices went overdue in the last 12 months",
            },
            &[
                (MINUS_INFINITY, "70"),
                ("1", "55"),
                ("16", "35"),
                ("31", "15"),
                ("61", "5"),
                ("91", "0"),
            ],
        ),
        numeric(
            Spec {
                code: "ON_TIME_PAYMENT_RATIO",
                display_name: "On-time payment ratio",
                source: Source::PaymentBehaviour,
                input_key: "on_time_payment_ratio",
                family: Family::PaymentBehaviour,
                missing_points: "20",
                reason_text: "Too few invoices paid on time, or no payment history",
            },
            &[
                (MINUS_INFINITY, "0"),
                ("0.5", "10"),
                ("0.7", "20"),
                ("0.85", "35"),
                ("0.95", "45"),
            ],
        ),
        numeric(
            Spec {
                code: "AVERAGE_DAYS_TO_PAY",
                display_name: "Average days to pay",
                source: Source::PaymentBehaviour,
                input_key: "average_days_to_pay",
                family: Family::PaymentBehaviour,
                missing_points: "12",
                reason_text: "Invoices are paid slowly (average days to pay), or no payment history",
            },
            &[
                (MINUS_INFINITY, "25"),
                ("30", "20"),
                ("45", "12"),
                ("60", "5"),
                ("90", "0"),
            ],
        ),
        numeric(
            Spec {
                code: "BROKEN_PROMISES_12M",
                display_name: "Broken payment promises (12 months)",
                source: Source::PaymentBehaviour,
                input_key: "broken_promises_12m",
                family: Family::PaymentBehaviour,
                missing_points: "15",
                reason_text: "Promises to pay were broken in the last 12 months",
            },
            &[(MINUS_INFINITY, "25"), ("1", "12"), ("2", "5"), ("4", "0")],
        ),
        numeric(
            Spec {
                code: "BUREAU_SCORE",
                display_name: "Credit bureau score (0-100)",
                source: Source::BureauReport,
                input_key: "score",
                family: Family::PaymentBehaviour,
                missing_points: "15",
                reason_text: "The credit bureau score is low, or there is no bureau report",
            },
            &[
                (MINUS_INFINITY, "0"),
                ("40", "10"),
                ("55", "20"),
                ("70", "30"),
                ("80", "40"),
            ],
        ),
        categorical(
            Spec {
                code: "WORST_PAYMENT_EXPERIENCE",
                display_name: "Worst payment experience of other suppliers",
                source: Source::TradeReferences,
                input_key: "worst_payment_experience",
                family: Family::PaymentBehaviour,
                missing_points: "10",
                reason_text: "Other suppliers report late payment, or there are no trade references",
            },
            &[("PROMPT", "25"), ("SLOW", "10"), ("VERY_SLOW", "0")],
        ),
    ];
    model(
        ENTERPRISE_DEFAULT,
        "Enterprise default scorecard",
        "Default model for enterprises without an industry-specific model: financial strength, \
         operations, solvency, collateral and payment behaviour. Scores 255 to 1000 on the \
         agency-8 scale. Documented in docs/rating-models.md.",
        CustomerKind::Enterprise,
        "250",
        characteristics,
    )
}

/// The default model for individuals: 9 characteristics, base 280, scores 300..1000. Weights:
/// payment behaviour 440 (bureau score 150 of it), financial strength 90, collateral 80,
/// solvency 60, operations (stability) 50.
pub fn individual_default() -> UncheckedModel {
    let characteristics = vec![
        numeric(
            Spec {
                code: "ANNUAL_INCOME",
                display_name: "Annual income",
                source: Source::Customer,
                input_key: "annual_income",
                family: Family::FinancialStrength,
                missing_points: "15",
                reason_text: "Income is low or not known",
            },
            &[
                (MINUS_INFINITY, "10"),
                ("30000", "25"),
                ("60000", "45"),
                ("120000", "65"),
                ("250000", "80"),
                ("500000", "90"),
            ],
        ),
        numeric(
            Spec {
                code: "AGE_YEARS",
                display_name: "Age",
                source: Source::Customer,
                input_key: "age_years",
                family: Family::Operations,
                missing_points: "15",
                reason_text: "Short financial track record for the customer's age, or age not known",
            },
            &[
                (MINUS_INFINITY, "10"),
                ("25", "30"),
                ("35", "45"),
                // Flat from 50 up: older customers are never scored down for their age.
                ("50", "50"),
            ],
        ),
        numeric(
            Spec {
                code: "LAWSUITS_COUNT",
                display_name: "Lawsuits on the bureau report",
                source: Source::BureauReport,
                input_key: "lawsuits_count",
                family: Family::Solvency,
                missing_points: "30",
                reason_text: "Lawsuits are recorded against the customer, or there is no bureau report",
            },
            &[(MINUS_INFINITY, "60"), ("1", "25"), ("2", "10"), ("3", "0")],
        ),
        one_to_five(
            Spec {
                code: "COLLATERAL_COVERAGE",
                display_name: "Collateral and guarantee coverage",
                source: Source::Qualitative,
                input_key: "collateral_coverage",
                family: Family::Collateral,
                missing_points: "0",
                reason_text: "Little or no collateral or guarantee",
            },
            ["0", "20", "40", "60", "80"],
        ),
        numeric(
            Spec {
                code: "BUREAU_SCORE",
                display_name: "Credit bureau score (300-900)",
                source: Source::BureauReport,
                input_key: "score",
                family: Family::PaymentBehaviour,
                missing_points: "50",
                reason_text: "The credit bureau score is low, or there is no bureau report",
            },
            &[
                (MINUS_INFINITY, "0"),
                ("500", "30"),
                ("600", "60"),
                ("650", "90"),
                ("700", "120"),
                ("750", "150"),
            ],
        ),
        numeric(
            Spec {
                code: "MAX_DAYS_OVERDUE_12M",
                display_name: "Maximum days overdue (12 months)",
                source: Source::PaymentBehaviour,
                input_key: "max_days_overdue_12m",
                family: Family::PaymentBehaviour,
                missing_points: "55",
                reason_text: "Invoices went overdue in the last 12 months",
            },
            &[
                (MINUS_INFINITY, "120"),
                ("1", "90"),
                ("16", "55"),
                ("31", "25"),
                ("61", "5"),
                ("91", "0"),
            ],
        ),
        numeric(
            Spec {
                code: "ON_TIME_PAYMENT_RATIO",
                display_name: "On-time payment ratio",
                source: Source::PaymentBehaviour,
                input_key: "on_time_payment_ratio",
                family: Family::PaymentBehaviour,
                missing_points: "35",
                reason_text: "Too few invoices paid on time, or no payment history",
            },
            &[
                (MINUS_INFINITY, "0"),
                ("0.5", "15"),
                ("0.7", "35"),
                ("0.85", "60"),
                ("0.95", "80"),
            ],
        ),
        numeric(
            Spec {
                code: "BROKEN_PROMISES_12M",
                display_name: "Broken payment promises (12 months)",
                source: Source::PaymentBehaviour,
                input_key: "broken_promises_12m",
                family: Family::PaymentBehaviour,
                missing_points: "25",
                reason_text: "Promises to pay were broken in the last 12 months",
            },
            &[(MINUS_INFINITY, "50"), ("1", "25"), ("2", "10"), ("4", "0")],
        ),
        numeric(
            Spec {
                code: "AVERAGE_DAYS_TO_PAY",
                display_name: "Average days to pay",
                source: Source::PaymentBehaviour,
                input_key: "average_days_to_pay",
                family: Family::PaymentBehaviour,
                missing_points: "18",
                reason_text: "Invoices are paid slowly (average days to pay), or no payment history",
            },
            &[
                (MINUS_INFINITY, "40"),
                ("30", "30"),
                ("45", "18"),
                ("60", "8"),
                ("90", "0"),
            ],
        ),
    ];
    model(
        INDIVIDUAL_DEFAULT,
        "Individual default scorecard",
        "Default model for individuals: payment behaviour and bureau score, income, stability, \
         lawsuits and collateral. Scores 300 to 1000 on the agency-8 scale. Documented in \
         docs/rating-models.md.",
        CustomerKind::Individual,
        "280",
        characteristics,
    )
}

/// Both shipped models, as the store seeds them on first start.
pub fn shipped_models() -> Vec<UncheckedModel> {
    vec![enterprise_default(), individual_default()]
}

#[cfg(test)]
mod tests;
