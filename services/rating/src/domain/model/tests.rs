//! Tests of the model check: every problem named at its place, and bins covering the number line
//! exactly once.

use super::*;
use crate::domain::fields::InvalidFields;
use crate::domain::scale;
use crate::domain::unchecked::{
    BinCondition, UncheckedBin, UncheckedCategories, UncheckedCharacteristic, UncheckedRange,
};
use credit_core::FieldViolation;
use proptest::prelude::*;

fn numeric_bin(lower: Option<&str>, upper: Option<&str>, points: &str) -> UncheckedBin {
    UncheckedBin {
        label: String::new(),
        condition: Some(BinCondition::Range(UncheckedRange {
            lower_bound: lower.map(str::to_owned),
            upper_bound: upper.map(str::to_owned),
            lower_exclusive: false,
            upper_inclusive: false,
        })),
        points: points.to_owned(),
    }
}

fn category_bin(values: &[&str], points: &str) -> UncheckedBin {
    UncheckedBin {
        label: String::new(),
        condition: Some(BinCondition::Categories(UncheckedCategories {
            values: values.iter().map(|value| (*value).to_owned()).collect(),
        })),
        points: points.to_owned(),
    }
}

fn current_ratio(bins: Vec<UncheckedBin>) -> UncheckedCharacteristic {
    UncheckedCharacteristic {
        code: "CURRENT_RATIO".into(),
        display_name: "Current ratio".into(),
        source: CharacteristicSource::FinancialStatement.into(),
        input_key: "current_ratio".into(),
        value_type: ValueType::Numeric.into(),
        family: IndicatorFamily::Solvency.into(),
        bins,
        missing_points: "0".into(),
        reason_text: "Liquidity is weak (current ratio)".into(),
    }
}

fn trade_experience() -> UncheckedCharacteristic {
    UncheckedCharacteristic {
        code: "WORST_PAYMENT_EXPERIENCE".into(),
        display_name: "Worst payment experience".into(),
        source: CharacteristicSource::TradeReferences.into(),
        input_key: "worst_payment_experience".into(),
        value_type: ValueType::Categorical.into(),
        family: IndicatorFamily::PaymentBehaviour.into(),
        bins: vec![
            category_bin(&["PROMPT"], "300"),
            category_bin(&["SLOW"], "150"),
            category_bin(&["VERY_SLOW"], "0"),
        ],
        missing_points: "100".into(),
        reason_text: "Other suppliers report late payment".into(),
    }
}

/// A small valid model scoring 0..=900 with agency-8 (D below 380, AAA from 850).
fn valid_model() -> UncheckedModel {
    UncheckedModel {
        model_id: "test-model".into(),
        display_name: "Test".into(),
        customer_kind: CustomerKind::Enterprise.into(),
        base_points: "0".into(),
        characteristics: vec![
            current_ratio(vec![
                numeric_bin(None, Some("1.0"), "0"),
                numeric_bin(Some("1.0"), Some("1.5"), "300"),
                numeric_bin(Some("1.5"), None, "600"),
            ]),
            trade_experience(),
        ],
        master_scale: Some(scale::agency_8()),
        ..Default::default()
    }
}

fn violations_of(proto: &UncheckedModel) -> Vec<FieldViolation> {
    match ScorecardModel::try_from(proto) {
        Err(ModelError::Invalid(InvalidFields(violations))) => violations,
        other => panic!("expected INVALID_ARGUMENT, got {other:?}"),
    }
}

fn has_violation(violations: &[FieldViolation], field: &str, description: &str) -> bool {
    violations
        .iter()
        .any(|violation| violation.field == field && violation.description == description)
}

#[test]
fn a_valid_model_parses_and_computes_its_score_range() {
    let model = ScorecardModel::try_from(valid_model()).unwrap();
    assert_eq!(model.model_id().as_str(), "test-model");
    assert_eq!(model.version(), 0);
    assert_eq!(model.min_score(), Decimal::ZERO);
    assert_eq!(model.max_score(), Decimal::from(900));
    assert_eq!(model.max_reasons(), DEFAULT_MAX_REASONS);
    assert!(model.is_default_for_kind());
}

#[test]
fn a_gap_between_bins_is_named_at_the_bin_after_it() {
    let mut proto = valid_model();
    proto.characteristics[0].bins[2] = numeric_bin(Some("1.6"), None, "600");
    let violations = violations_of(&proto);
    assert_eq!(
        violations,
        [FieldViolation::new(
            "model.characteristics[0].bins[2].range",
            "gap between 1.5 and 1.6"
        )]
    );
}

#[test]
fn an_overlap_names_the_bin_it_overlaps() {
    let mut proto = valid_model();
    proto.characteristics[0].bins[2] = numeric_bin(Some("1.2"), None, "600");
    let violations = violations_of(&proto);
    assert_eq!(
        violations,
        [FieldViolation::new(
            "model.characteristics[0].bins[2].range",
            "overlaps bins[1] between 1.2 and 1.5"
        )]
    );
}

#[test]
fn bins_may_come_in_any_order_and_with_either_bracket() {
    let mut proto = valid_model();
    let mut middle = numeric_bin(Some("1.0"), Some("1.5"), "300");
    if let Some(BinCondition::Range(range)) = &mut middle.condition {
        range.lower_exclusive = true;
        range.upper_inclusive = true;
    }
    let mut low = numeric_bin(None, Some("1.0"), "0");
    if let Some(BinCondition::Range(range)) = &mut low.condition {
        range.upper_inclusive = true;
    }
    let mut high = numeric_bin(Some("1.5"), None, "600");
    if let Some(BinCondition::Range(range)) = &mut high.condition {
        range.lower_exclusive = true;
    }
    proto.characteristics[0].bins = vec![high, low, middle];
    assert!(ScorecardModel::try_from(proto).is_ok());
}

#[test]
fn a_single_uncovered_number_is_a_gap_at_that_number() {
    let mut proto = valid_model();
    let mut high = numeric_bin(Some("1.5"), None, "600");
    if let Some(BinCondition::Range(range)) = &mut high.condition {
        range.lower_exclusive = true;
    }
    proto.characteristics[0].bins[2] = high;
    let violations = violations_of(&proto);
    assert_eq!(
        violations,
        [FieldViolation::new(
            "model.characteristics[0].bins[2].range",
            "gap at 1.5"
        )]
    );
}

#[test]
fn uncovered_ends_of_the_number_line_are_gaps() {
    let mut proto = valid_model();
    proto.characteristics[0].bins = vec![numeric_bin(Some("0"), Some("10"), "5")];
    let violations = violations_of(&proto);
    let field = "model.characteristics[0].bins[0].range";
    assert!(has_violation(&violations, field, "gap between -inf and 0"));
    assert!(has_violation(&violations, field, "gap between 10 and +inf"));
}

#[test]
fn an_empty_range_is_refused() {
    let mut proto = valid_model();
    proto.characteristics[0]
        .bins
        .push(numeric_bin(Some("2"), Some("2"), "1"));
    let violations = violations_of(&proto);
    assert!(has_violation(
        &violations,
        "model.characteristics[0].bins[3].range",
        "range [2, 2) contains no number"
    ));
}

#[test]
fn a_category_in_two_bins_is_refused() {
    let mut proto = valid_model();
    proto.characteristics[1].bins[2] = category_bin(&["VERY_SLOW", "SLOW"], "0");
    let violations = violations_of(&proto);
    assert_eq!(
        violations,
        [FieldViolation::new(
            "model.characteristics[1].bins[2].categories",
            "the value 'SLOW' is also in bins[1]"
        )]
    );
}

#[test]
fn every_problem_is_reported_at_once() {
    let mut proto = valid_model();
    proto.model_id = "Not An Id".into();
    proto.customer_kind = None;
    proto.characteristics[0].code = "current ratio".into();
    proto.characteristics[0].bins[1].points = "lots".into();
    proto.characteristics[1].input_key = "worst_experience".into();
    proto.characteristics.push(trade_experience());
    let violations = violations_of(&proto);
    let fields: Vec<&str> = violations.iter().map(|v| v.field.as_str()).collect();
    assert_eq!(
        fields,
        [
            "model.model_id",
            "model.customer_kind",
            "model.characteristics[0].bins[1].points",
            "model.characteristics[0].code",
            "model.characteristics[1].input_key",
            "model.characteristics[2].code",
        ]
    );
    assert_eq!(
        violations[5].description,
        "'WORST_PAYMENT_EXPERIENCE' is already the code of characteristics[1]"
    );
}

#[test]
fn a_key_must_exist_in_its_source_with_the_right_type() {
    let mut proto = valid_model();
    proto.characteristics[1].source = CharacteristicSource::PaymentBehaviour.into();
    proto.characteristics[1].input_key = "max_days_overdue_12m".into();
    let violations = violations_of(&proto);
    assert_eq!(
        violations,
        [FieldViolation::new(
            "model.characteristics[1].value_type",
            "must be NUMERIC: the values of 'max_days_overdue_12m' are numeric"
        )]
    );
}

#[test]
fn qualitative_sources_accept_new_keys() {
    assert_eq!(
        CharacteristicSource::Qualitative.value_type_of("supplier_dependence"),
        Some(ValueType::Numeric)
    );
    assert_eq!(
        CharacteristicSource::FinancialStatement.value_type_of("supplier_dependence"),
        None
    );
}

#[test]
fn a_bin_of_the_wrong_kind_is_refused() {
    let mut proto = valid_model();
    proto.characteristics[0].bins[0] = category_bin(&["LOW"], "0");
    let violations = violations_of(&proto);
    assert_eq!(
        violations,
        [FieldViolation::new(
            "model.characteristics[0].bins[0].range",
            "a NUMERIC characteristic's bins need a range"
        )]
    );
}

#[test]
fn industry_codes_are_normalised_and_unique() {
    let mut proto = valid_model();
    proto.industry_codes = vec![" c35".into(), "C36".into()];
    let model = ScorecardModel::try_from(&proto).unwrap();
    assert_eq!(model.industry_codes(), ["C35", "C36"]);
    proto.industry_codes.push("c35".into());
    let violations = violations_of(&proto);
    assert_eq!(
        violations,
        [FieldViolation::new(
            "model.industry_codes[2]",
            "repeats the industry code 'C35'"
        )]
    );
}

#[test]
fn a_grade_the_model_cannot_reach_is_refused() {
    let mut proto = valid_model();
    // Scores now range from 0 to 600: AAA..BBB (620 and up) cannot be reached.
    proto.characteristics[0].bins[2].points = "200".into();
    let violations = violations_of(&proto);
    let fields: Vec<&str> = violations.iter().map(|v| v.field.as_str()).collect();
    assert_eq!(
        fields,
        [
            "model.master_scale.grades[0]",
            "model.master_scale.grades[1]",
            "model.master_scale.grades[2]",
            "model.master_scale.grades[3]",
        ]
    );
    assert_eq!(
        violations[3].description,
        "grade BBB (scores from 620 below 700) is unreachable: the model scores from 0 to 600"
    );
}

#[test]
fn decimals_are_plain_and_max_reasons_is_bounded() {
    let mut proto = valid_model();
    proto.base_points = "1e3".into();
    proto.max_reasons = -1;
    let violations = violations_of(&proto);
    assert!(has_violation(
        &violations,
        "model.base_points",
        "'1e3' is not a decimal number such as 1.25 or -3"
    ));
    assert!(violations.iter().any(|v| v.field == "model.max_reasons"));
}

#[test]
fn cuts_order_the_number_line() {
    let one = Decimal::ONE;
    let two = Decimal::TWO;
    let ordered = [
        Cut::MinusInfinity,
        Cut::JustBelow(one),
        Cut::JustAbove(one),
        Cut::JustBelow(two),
        Cut::PlusInfinity,
    ];
    assert!(ordered.windows(2).all(|pair| pair[0] < pair[1]));
}

/// Arbitrary cut points, as sorted distinct decimals with one decimal place.
fn cut_points() -> impl Strategy<Value = Vec<Decimal>> {
    proptest::collection::btree_set(-1000i64..1000, 1..8).prop_map(|set| {
        set.into_iter()
            .map(|tenths| Decimal::new(tenths, 1))
            .collect()
    })
}

fn bins_from_cuts(cuts: &[Decimal]) -> Vec<NumericBin> {
    let mut bounds: Vec<Option<Decimal>> = vec![None];
    bounds.extend(cuts.iter().copied().map(Some));
    bounds.push(None);
    bounds
        .windows(2)
        .map(|pair| NumericBin {
            label: String::new(),
            range: NumericRange::half_open(pair[0], pair[1]),
            points: Decimal::ZERO,
        })
        .collect()
}

fn coverage_violations(bins: &[NumericBin]) -> Vec<FieldViolation> {
    let mut violations = Violations::new();
    check_numeric_coverage(bins, 0, &ModelPaths::new("model"), &mut violations);
    match violations.finish() {
        Ok(()) => Vec::new(),
        Err(InvalidFields(found)) => found,
    }
}

proptest! {
    #[test]
    fn bins_cut_at_any_points_cover_the_line_in_any_order(
        cuts in cut_points(),
        rotation in 0usize..8,
    ) {
        let mut bins = bins_from_cuts(&cuts);
        let len = bins.len();
        bins.rotate_left(rotation % len);
        prop_assert!(coverage_violations(&bins).is_empty());
    }

    #[test]
    fn removing_an_inner_bin_always_leaves_a_gap(cuts in cut_points(), pick in 0usize..8) {
        prop_assume!(cuts.len() >= 2);
        let mut bins = bins_from_cuts(&cuts);
        let removed = 1 + pick % (bins.len() - 2);
        bins.remove(removed);
        let violations = coverage_violations(&bins);
        prop_assert_eq!(violations.len(), 1);
        prop_assert!(violations[0].description.starts_with("gap between"));
    }

    #[test]
    fn every_number_falls_in_exactly_one_bin(cuts in cut_points(), tenths in -1100i64..1100) {
        let value = Decimal::new(tenths, 1);
        let bins = bins_from_cuts(&cuts);
        let matching = bins.iter().filter(|bin| bin.range.contains(value)).count();
        prop_assert_eq!(matching, 1);
    }
}
