//! Tests of the proto forms: what a model, a scale and a score look like on the wire, and that
//! they come back unchanged.

use credit_core::FieldViolation;
use credit_proto::v1 as pb;
use rust_decimal_macros::dec;

use super::model::{ProtoPaths, unchecked_scale, unchecked_scale_to_proto};
use super::{inputs_from_proto, inputs_to_proto};
use crate::domain::fields::Violations;
use crate::domain::model::CharacteristicSource::FinancialStatement;
use crate::domain::scale::{self, MasterScale};
use crate::domain::scoring::tests::{inputs, model, number};
use crate::domain::scoring::{InputValue, RatingInput, score};
use crate::domain::{InvalidFields, ScorecardModel};

fn parse(wire: &pb::MasterScale) -> Result<MasterScale, Vec<FieldViolation>> {
    let mut violations = Violations::new();
    let scale = MasterScale::parse(
        Some(&unchecked_scale(wire)),
        &ProtoPaths::new("model"),
        &mut violations,
    );
    match (scale, violations.finish()) {
        (Some(scale), Ok(())) => Ok(scale),
        (_, Err(InvalidFields(found))) => Err(found),
        (scale, other) => panic!("inconsistent outcome {scale:?} {other:?}"),
    }
}

fn agency() -> MasterScale {
    parse(&unchecked_scale_to_proto(&scale::agency_8())).unwrap()
}

fn numeric_bin(lower: Option<&str>, upper: Option<&str>, points: &str) -> pb::ScorecardBin {
    pb::ScorecardBin {
        label: String::new(),
        condition: Some(pb::scorecard_bin::Condition::Range(pb::NumericRange {
            lower_bound: lower.map(str::to_owned),
            upper_bound: upper.map(str::to_owned),
            lower_exclusive: false,
            upper_inclusive: false,
        })),
        points: points.to_owned(),
    }
}

fn category_bin(values: &[&str], points: &str) -> pb::ScorecardBin {
    pb::ScorecardBin {
        label: String::new(),
        condition: Some(pb::scorecard_bin::Condition::Categories(pb::CategorySet {
            values: values.iter().map(|value| (*value).to_owned()).collect(),
        })),
        points: points.to_owned(),
    }
}

fn current_ratio(bins: Vec<pb::ScorecardBin>) -> pb::Characteristic {
    pb::Characteristic {
        code: "CURRENT_RATIO".into(),
        display_name: "Current ratio".into(),
        source: pb::CharacteristicSource::FinancialStatement.into(),
        input_key: "current_ratio".into(),
        value_type: pb::CharacteristicValueType::Numeric.into(),
        family: pb::IndicatorFamily::Solvency.into(),
        bins,
        missing_points: "0".into(),
        reason_text: "Liquidity is weak (current ratio)".into(),
    }
}

fn trade_experience() -> pb::Characteristic {
    pb::Characteristic {
        code: "WORST_PAYMENT_EXPERIENCE".into(),
        display_name: "Worst payment experience".into(),
        source: pb::CharacteristicSource::TradeReferences.into(),
        input_key: "worst_payment_experience".into(),
        value_type: pb::CharacteristicValueType::Categorical.into(),
        family: pb::IndicatorFamily::PaymentBehaviour.into(),
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
fn valid_model() -> pb::ScorecardModel {
    pb::ScorecardModel {
        model_id: "test-model".into(),
        display_name: "Test".into(),
        customer_kind: pb::CustomerKind::Enterprise.into(),
        base_points: "0".into(),
        characteristics: vec![
            current_ratio(vec![
                numeric_bin(None, Some("1.0"), "0"),
                numeric_bin(Some("1.0"), Some("1.5"), "300"),
                numeric_bin(Some("1.5"), None, "600"),
            ]),
            trade_experience(),
        ],
        master_scale: Some(unchecked_scale_to_proto(&scale::agency_8())),
        ..Default::default()
    }
}

#[test]
fn the_proto_form_carries_the_output_only_fields() {
    let model = ScorecardModel::try_from(valid_model())
        .unwrap()
        .with_version(3);
    let proto = pb::ScorecardModel::from(&model);
    assert_eq!(proto.version, 3);
    assert_eq!(proto.min_score, "0");
    assert_eq!(proto.max_score, "900");
    assert_eq!(proto.max_reasons, 4);
    let ranks: Vec<i32> = proto
        .master_scale
        .unwrap()
        .grades
        .iter()
        .map(|g| g.rank)
        .collect();
    assert_eq!(ranks, [1, 2, 3, 4, 5, 6, 7, 8]);
    assert_eq!(proto.characteristics[0].bins[1].label, "[1.0, 1.5)");
}

#[test]
fn a_model_survives_the_round_trip_through_its_proto_form() {
    let model = ScorecardModel::try_from(valid_model()).unwrap();
    let again = ScorecardModel::try_from(pb::ScorecardModel::from(&model)).unwrap();
    assert_eq!(model, again);
}

#[test]
fn ranks_and_bounds_survive_the_proto_form() {
    let agency = agency();
    let wire = super::model::scale_to_proto(&agency);
    assert_eq!(wire.grades[3].rank, 4);
    assert_eq!(wire.grades[3].pd, "0.0075");
    assert_eq!(parse(&wire).unwrap(), agency);
}

#[test]
fn the_proto_form_carries_the_figures_and_metadata() {
    let inputs = inputs(&[(FinancialStatement, "current_ratio", number(dec!(2.50)))]);
    let result = pb::ScoreResult::from(&score(&model(0), &inputs).unwrap());
    assert_eq!(result.model_id, "hand-checked");
    assert_eq!(result.score, "670");
    assert_eq!(result.grade, "BBB");
    assert_eq!(result.pd, "0.0075");
    let first = &result.breakdown[0];
    assert_eq!(
        (first.points.as_str(), first.points_lost.as_str()),
        ("200", "0")
    );
    let input = first.input.as_ref().unwrap();
    assert_eq!(
        input.value,
        Some(pb::rating_input::Value::Number("2.50".into()))
    );
    assert_eq!(input.origin, "test");
    let reason = &result.reasons[0];
    assert_eq!(reason.code, "INDUSTRY");
    assert_eq!(reason.message, "INDUSTRY is weak");
    assert_eq!(reason.metadata["points"], "0");
    assert_eq!(reason.metadata["max_points"], "150");
    assert_eq!(reason.metadata["points_lost"], "150");
    assert_eq!(reason.metadata["value"], "missing");
}

#[test]
fn snapshot_inputs_parse_with_every_problem_named() {
    let wire = vec![
        pb::RatingInput::from(&RatingInput::new(
            FinancialStatement,
            "current_ratio",
            number(dec!(1.2)),
            "s",
        )),
        pb::RatingInput {
            source: 0,
            key: "x".into(),
            value: Some(pb::rating_input::Value::Number("1,5".into())),
            origin: String::new(),
        },
        pb::RatingInput::from(&RatingInput::new(
            FinancialStatement,
            "current_ratio",
            InputValue::Missing,
            "s",
        )),
    ];
    let Err(InvalidFields(violations)) = inputs_from_proto(&wire, "inputs.inputs") else {
        panic!("expected INVALID_ARGUMENT");
    };
    let fields: Vec<&str> = violations.iter().map(|v| v.field.as_str()).collect();
    assert_eq!(
        fields,
        [
            "inputs.inputs[1].source",
            "inputs.inputs[1].number",
            "inputs.inputs[2].key"
        ]
    );
    let parsed = inputs_from_proto(&wire[..1], "inputs.inputs").unwrap();
    assert_eq!(inputs_to_proto(&parsed), wire[..1]);
}
