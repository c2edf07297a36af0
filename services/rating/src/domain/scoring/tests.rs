//! Tests of scoring: bins, missing values, prefixes, reasons and determinism.

use super::*;
use crate::domain::model::{CustomerKind, ValueType};
use crate::domain::scale;
use crate::domain::unchecked::{
    BinCondition, SubmittedFamily, UncheckedBin, UncheckedCategories, UncheckedCharacteristic,
    UncheckedModel, UncheckedRange,
};
use CharacteristicSource::{Customer, FinancialStatement, PaymentBehaviour, TradeReferences};
use proptest::prelude::*;
use rust_decimal_macros::dec;

fn numeric_bin(lower: Option<&str>, upper: Option<&str>, points: &str) -> UncheckedBin {
    UncheckedBin {
        label: String::new(),
        condition: Some(BinCondition::Range(UncheckedRange {
            lower_bound: lower.map(str::to_owned),
            upper_bound: upper.map(str::to_owned),
            ..Default::default()
        })),
        points: points.to_owned(),
    }
}

fn category_bin(label: &str, values: &[&str], points: &str) -> UncheckedBin {
    UncheckedBin {
        label: label.to_owned(),
        condition: Some(BinCondition::Categories(UncheckedCategories {
            values: values.iter().map(|value| (*value).to_owned()).collect(),
        })),
        points: points.to_owned(),
    }
}

fn characteristic(
    code: &str,
    source: CharacteristicSource,
    key: &str,
    value_type: ValueType,
    bins: Vec<UncheckedBin>,
    missing_points: &str,
) -> UncheckedCharacteristic {
    UncheckedCharacteristic {
        code: code.into(),
        display_name: code.to_lowercase(),
        source: source.into(),
        input_key: key.into(),
        value_type: value_type.into(),
        family: SubmittedFamily::Unspecified,
        bins,
        missing_points: missing_points.into(),
        reason_text: format!("{code} is weak"),
    }
}

/// A hand-checkable model: base 350, scores 350..=950 on agency-8.
///   CURRENT_RATIO      < 1: 0, [1, 2): 100, >= 2: 200, missing 50
///   MAX_DAYS_OVERDUE   < 1: 200, [1, 30): 100, >= 30: 0, missing 100
///   INDUSTRY           prefixes "F": 50, "F51": 100, "C": 150 (max), missing 0
///   WORST_EXPERIENCE   PROMPT: 50, SLOW: 20, VERY_SLOW: 0, missing 20
pub(crate) fn model(max_reasons: i32) -> ScorecardModel {
    use CharacteristicSource as Source;
    use ValueType::{Categorical, Numeric};
    let proto = UncheckedModel {
        model_id: "hand-checked".into(),
        customer_kind: CustomerKind::Enterprise.into(),
        base_points: "350".into(),
        max_reasons,
        characteristics: vec![
            characteristic(
                "CURRENT_RATIO",
                Source::FinancialStatement,
                "current_ratio",
                Numeric,
                vec![
                    numeric_bin(None, Some("1"), "0"),
                    numeric_bin(Some("1"), Some("2"), "100"),
                    numeric_bin(Some("2"), None, "200"),
                ],
                "50",
            ),
            characteristic(
                "MAX_DAYS_OVERDUE",
                Source::PaymentBehaviour,
                "max_days_overdue_12m",
                Numeric,
                vec![
                    numeric_bin(None, Some("1"), "200"),
                    numeric_bin(Some("1"), Some("30"), "100"),
                    numeric_bin(Some("30"), None, "0"),
                ],
                "100",
            ),
            characteristic(
                "INDUSTRY",
                Source::Customer,
                "industry_code",
                Categorical,
                vec![
                    category_bin("Wholesale and retail", &["F"], "50"),
                    category_bin("Wholesale", &["F51"], "100"),
                    category_bin("Manufacturing", &["C"], "150"),
                ],
                "0",
            ),
            characteristic(
                "WORST_EXPERIENCE",
                Source::TradeReferences,
                "worst_payment_experience",
                Categorical,
                vec![
                    category_bin("PROMPT", &["PROMPT"], "50"),
                    category_bin("SLOW", &["SLOW"], "20"),
                    category_bin("VERY_SLOW", &["VERY_SLOW"], "0"),
                ],
                "20",
            ),
        ],
        master_scale: Some(scale::agency_8()),
        ..Default::default()
    };
    ScorecardModel::try_from(proto).unwrap().with_version(2)
}

pub(crate) fn inputs(values: &[(CharacteristicSource, &str, InputValue)]) -> RatingInputs {
    let mut inputs = RatingInputs::new();
    for (source, key, value) in values {
        inputs.insert(RatingInput::new(*source, *key, value.clone(), "test"));
    }
    inputs
}

pub(crate) fn number(value: Decimal) -> InputValue {
    InputValue::Number(value)
}

fn category(value: &str) -> InputValue {
    InputValue::Category(value.to_owned())
}

#[test]
fn a_hand_computed_rating_matches_exactly() {
    let inputs = inputs(&[
        (FinancialStatement, "current_ratio", number(dec!(1.4))),
        (PaymentBehaviour, "max_days_overdue_12m", number(dec!(12))),
        (Customer, "industry_code", category("F5123")),
        (
            TradeReferences,
            "worst_payment_experience",
            category("SLOW"),
        ),
    ]);
    let result = score(&model(0), &inputs).unwrap();
    // 350 + 100 + 100 + 100 + 20 = 670: BBB (620..700), PD 0.0075, review in 6 months.
    assert_eq!(result.score, dec!(670));
    assert_eq!(result.grade, "BBB");
    assert_eq!(result.grade_rank, 4);
    assert_eq!(result.pd, dec!(0.0075));
    assert_eq!(result.review_interval_months, 6);
    assert_eq!(result.model_version, 2);
    let lines: Vec<(&str, Decimal, Decimal)> = result
        .breakdown
        .iter()
        .map(|line| (line.bin_label.as_str(), line.points, line.points_lost))
        .collect();
    assert_eq!(
        lines,
        [
            ("[1, 2)", dec!(100), dec!(100)),
            ("[1, 30)", dec!(100), dec!(100)),
            ("Wholesale", dec!(100), dec!(50)),
            ("SLOW", dec!(20), dec!(30)),
        ]
    );
    let reasons: Vec<(&str, Decimal)> = result
        .reasons
        .iter()
        .map(|reason| (reason.code.as_str(), reason.points_lost))
        .collect();
    // Ties (100 and 100) keep model order.
    assert_eq!(
        reasons,
        [
            ("CURRENT_RATIO", dec!(100)),
            ("MAX_DAYS_OVERDUE", dec!(100)),
            ("INDUSTRY", dec!(50)),
            ("WORST_EXPERIENCE", dec!(30)),
        ]
    );
    assert_eq!(result.reasons[0].message, "CURRENT_RATIO is weak");
    assert_eq!(result.reasons[0].value, "1.4");
}

#[test]
fn missing_inputs_take_the_missing_points() {
    let result = score(&model(0), &RatingInputs::new()).unwrap();
    // 350 + 50 + 100 + 0 + 20 = 520: B.
    assert_eq!(result.score, dec!(520));
    assert_eq!(result.grade, "B");
    assert!(result.breakdown.iter().all(|line| line.missing));
    assert!(
        result
            .breakdown
            .iter()
            .all(|line| line.bin_label == MISSING_BIN_LABEL)
    );
    assert_eq!(result.reasons[0].value, "missing");
}

#[test]
fn explicit_missing_values_wrong_types_and_unknown_categories_are_missing() {
    let inputs = inputs(&[
        (FinancialStatement, "current_ratio", InputValue::Missing),
        (PaymentBehaviour, "max_days_overdue_12m", category("LATE")),
        (Customer, "industry_code", category("K66")),
        (
            TradeReferences,
            "worst_payment_experience",
            category("prompt"),
        ),
    ]);
    let result = score(&model(0), &inputs).unwrap();
    assert_eq!(result.score, dec!(520));
    assert!(result.breakdown.iter().all(|line| line.missing));
    assert_eq!(result.breakdown[3].value, category("prompt"));
}

#[test]
fn the_longest_industry_prefix_wins() {
    let result_for = |code: &str| {
        let inputs = inputs(&[(Customer, "industry_code", category(code))]);
        score(&model(0), &inputs).unwrap().breakdown[2].points
    };
    assert_eq!(result_for("F5123"), dec!(100));
    assert_eq!(result_for("F52"), dec!(50));
    assert_eq!(result_for("C3511"), dec!(150));
}

#[test]
fn reasons_are_capped_and_only_for_lost_points() {
    let inputs = inputs(&[
        (FinancialStatement, "current_ratio", number(dec!(0.5))),
        (PaymentBehaviour, "max_days_overdue_12m", number(dec!(0))),
        (Customer, "industry_code", category("C13")),
        (
            TradeReferences,
            "worst_payment_experience",
            category("VERY_SLOW"),
        ),
    ]);
    let result = score(&model(1), &inputs).unwrap();
    let codes: Vec<&str> = result.reasons.iter().map(|r| r.code.as_str()).collect();
    assert_eq!(codes, ["CURRENT_RATIO"]);
    let result = score(&model(0), &inputs).unwrap();
    let codes: Vec<&str> = result.reasons.iter().map(|r| r.code.as_str()).collect();
    assert_eq!(codes, ["CURRENT_RATIO", "WORST_EXPERIENCE"]);
}

fn any_value() -> impl Strategy<Value = InputValue> {
    prop_oneof![
        Just(InputValue::Missing),
        (-500i64..500).prop_map(|tenths| InputValue::Number(Decimal::new(tenths, 1))),
        prop::sample::select(vec!["PROMPT", "SLOW", "VERY_SLOW", "F51", "C3", "X"])
            .prop_map(|value| InputValue::Category(value.to_owned())),
    ]
}

proptest! {
    #[test]
    fn scoring_is_deterministic_and_within_the_model_range(
        values in proptest::collection::vec(any_value(), 4),
    ) {
        let keys = [
            (FinancialStatement, "current_ratio"),
            (PaymentBehaviour, "max_days_overdue_12m"),
            (Customer, "industry_code"),
            (TradeReferences, "worst_payment_experience"),
        ];
        let entries: Vec<_> = keys
            .iter()
            .zip(values)
            .map(|((source, key), value)| (*source, *key, value))
            .collect();
        let model = model(0);
        let first = score(&model, &inputs(&entries)).unwrap();
        let mut reversed = entries.clone();
        reversed.reverse();
        let second = score(&model, &inputs(&reversed)).unwrap();
        prop_assert_eq!(&first, &second);
        prop_assert!(first.score >= model.min_score() && first.score <= model.max_score());
        let sum = first.breakdown.iter().fold(model.base_points(), |t, l| t + l.points);
        prop_assert_eq!(sum, first.score);
    }
}
