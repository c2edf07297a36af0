//! Scoring: a model and a customer's input values in; score, grade, PD, a breakdown per
//! characteristic and the reasons out.
//!
//! A stored rating must be reproducible from its input snapshot (ScoreSnapshot re-scores it as a
//! determinism check, and a credit committee may ask why a grade was given), so scoring depends
//! on nothing but the inputs and the model version: no clock, no I/O, no hash-map order, no
//! floating point. Inputs live in a `BTreeMap`, reasons are sorted stably, and every figure is a
//! `Decimal`.

use std::cmp::Reverse;
use std::collections::{BTreeMap, HashMap};
use std::fmt;

use credit_core::{ServiceError, Violations};
use credit_proto::v1 as pb;
use rust_decimal::Decimal;

use super::model::{
    Bins, CategoryBin, Characteristic, CharacteristicSource, IndicatorFamily, ScorecardModel,
    parse_decimal,
};

/// The bin label of a characteristic whose missing-value points applied.
pub const MISSING_BIN_LABEL: &str = "MISSING";
/// How a missing value reads in a reason's `value` metadata.
const MISSING_VALUE_TEXT: &str = "missing";
const MAX_INPUTS: usize = 1_000;
const MAX_KEY_LEN: usize = 100;
const MAX_CATEGORY_LEN: usize = 200;

/// One input value: a number, a category, or nothing (no statement, a zero denominator, no
/// bureau report, a qualitative input not given).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InputValue {
    Number(Decimal),
    Category(String),
    Missing,
}

impl fmt::Display for InputValue {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            InputValue::Number(number) => write!(formatter, "{number}"),
            InputValue::Category(category) => formatter.write_str(category),
            InputValue::Missing => formatter.write_str(MISSING_VALUE_TEXT),
        }
    }
}

/// One value of a rating's input snapshot, with where it came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RatingInput {
    pub source: CharacteristicSource,
    pub key: String,
    pub value: InputValue,
    /// Provenance, for example "statement:<id>" or "analyst".
    pub origin: String,
}

impl RatingInput {
    pub fn new(
        source: CharacteristicSource,
        key: impl Into<String>,
        value: InputValue,
        origin: impl Into<String>,
    ) -> Self {
        Self {
            source,
            key: key.into(),
            value,
            origin: origin.into(),
        }
    }

    pub fn to_proto(&self) -> pb::RatingInput {
        let value = match &self.value {
            InputValue::Number(number) => Some(pb::rating_input::Value::Number(number.to_string())),
            InputValue::Category(category) => {
                Some(pb::rating_input::Value::Category(category.clone()))
            }
            InputValue::Missing => None,
        };
        pb::RatingInput {
            source: self.source.to_proto().into(),
            key: self.key.clone(),
            value,
            origin: self.origin.clone(),
        }
    }
}

/// Every input value of one rating, by source and key. A key not present reads as missing.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RatingInputs {
    by_source_and_key: BTreeMap<(CharacteristicSource, String), RatingInput>,
}

impl RatingInputs {
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a value, replacing an earlier one of the same source and key.
    pub fn insert(&mut self, input: RatingInput) {
        let key = (input.source, input.key.clone());
        self.by_source_and_key.insert(key, input);
    }

    pub fn get(&self, source: CharacteristicSource, key: &str) -> Option<&RatingInput> {
        self.by_source_and_key.get(&(source, key.to_owned()))
    }

    /// By source, then key.
    pub fn iter(&self) -> impl Iterator<Item = &RatingInput> {
        self.by_source_and_key.values()
    }

    pub fn len(&self) -> usize {
        self.by_source_and_key.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_source_and_key.is_empty()
    }

    /// For `RatingInputSnapshot.inputs`, by source then key.
    pub fn to_proto(&self) -> Vec<pb::RatingInput> {
        self.iter().map(RatingInput::to_proto).collect()
    }

    /// Parses the inputs of a snapshot; `field` is where they sit in the request, for example
    /// "inputs.inputs" in ScoreSnapshotRequest. Every problem is reported at once.
    pub fn parse(wire: &[pb::RatingInput], field: &str) -> Result<Self, ServiceError> {
        if wire.len() > MAX_INPUTS {
            return Err(ServiceError::invalid(
                field,
                format!("at most {MAX_INPUTS} inputs are allowed"),
            ));
        }
        let mut violations = Violations::new();
        let mut inputs = Self::new();
        for (index, input) in wire.iter().enumerate() {
            let field = format!("{field}[{index}]");
            let Some(input) = parse_input(input, &field, &mut violations) else {
                continue;
            };
            if inputs.get(input.source, &input.key).is_some() {
                violations.add(
                    format!("{field}.key"),
                    format!("repeats the key '{}' of its source", input.key),
                );
            }
            inputs.insert(input);
        }
        violations.finish()?;
        Ok(inputs)
    }
}

fn parse_input(
    wire: &pb::RatingInput,
    field: &str,
    violations: &mut Violations,
) -> Option<RatingInput> {
    let source = CharacteristicSource::from_proto(wire.source);
    if source.is_none() {
        violations.add(format!("{field}.source"), "is required");
    }
    let key = wire.key.trim();
    let key_is_valid = !key.is_empty() && key.chars().count() <= MAX_KEY_LEN;
    if !key_is_valid {
        violations.add(
            format!("{field}.key"),
            format!("must be 1 to {MAX_KEY_LEN} characters"),
        );
    }
    let value = match &wire.value {
        None => Some(InputValue::Missing),
        Some(pb::rating_input::Value::Number(text)) => violations
            .check(&format!("{field}.number"), parse_decimal(text))
            .map(InputValue::Number),
        Some(pb::rating_input::Value::Category(text))
            if text.chars().count() > MAX_CATEGORY_LEN =>
        {
            violations.add(
                format!("{field}.category"),
                format!("must be at most {MAX_CATEGORY_LEN} characters"),
            );
            None
        }
        Some(pb::rating_input::Value::Category(text)) => Some(InputValue::Category(text.clone())),
    };
    key_is_valid.then_some(())?;
    Some(RatingInput::new(source?, key, value?, wire.origin.clone()))
}

/// How one characteristic scored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CharacteristicScore {
    pub code: String,
    pub display_name: String,
    pub source: CharacteristicSource,
    pub input_key: String,
    pub family: Option<IndicatorFamily>,
    /// The value used (`Missing` when the snapshot had none).
    pub value: InputValue,
    /// Provenance of the value; empty when the snapshot had none.
    pub origin: String,
    /// True when the missing-value points applied: no value, a value of the wrong type, or a
    /// category in no bin.
    pub missing: bool,
    /// Label of the matched bin, or [`MISSING_BIN_LABEL`].
    pub bin_label: String,
    pub points: Decimal,
    pub max_points: Decimal,
    /// `max_points - points`; reasons are ranked by it.
    pub points_lost: Decimal,
}

/// One reason: a characteristic that cost points, with the figures behind it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScoreReason {
    /// The characteristic's code, a stable reason code.
    pub code: String,
    /// The characteristic's reason text.
    pub message: String,
    pub points: Decimal,
    pub max_points: Decimal,
    pub points_lost: Decimal,
    /// The input value as text ("missing" when it had none).
    pub value: String,
}

/// The result of scoring one snapshot with one model version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScoreResult {
    pub model_id: String,
    pub model_version: u32,
    pub master_scale_id: String,
    /// Base points plus the points of every characteristic.
    pub score: Decimal,
    pub grade: String,
    /// 1 = best.
    pub grade_rank: u32,
    pub pd: Decimal,
    /// Of the grade; the next review date is the rating date plus this many months.
    pub review_interval_months: u32,
    /// In model order.
    pub breakdown: Vec<CharacteristicScore>,
    /// Most points lost first.
    pub reasons: Vec<ScoreReason>,
}

/// Scores `inputs` with `model`. Same inputs and same model version, same result.
///
/// Fails only if the model's scale has no grade for the score, which a checked model rules out;
/// the error is internal.
pub fn score(model: &ScorecardModel, inputs: &RatingInputs) -> Result<ScoreResult, ServiceError> {
    let breakdown: Vec<CharacteristicScore> = model
        .characteristics()
        .iter()
        .map(|characteristic| score_characteristic(characteristic, inputs))
        .collect();
    let total = breakdown
        .iter()
        .fold(model.base_points(), |total, line| total + line.points);
    let scale = model.master_scale();
    let grade = scale
        .grade_for_score(total)
        .ok_or_else(|| ServiceError::internal(ScoreOffScale(total.to_string())))?;
    Ok(ScoreResult {
        model_id: model.model_id().to_string(),
        model_version: model.version(),
        master_scale_id: scale.scale_id().to_owned(),
        score: total,
        grade: grade.code.clone(),
        grade_rank: grade.rank,
        pd: grade.pd,
        review_interval_months: grade.review_interval_months,
        reasons: rank_reasons(model, &breakdown),
        breakdown,
    })
}

#[derive(Debug, thiserror::Error)]
#[error("score {0} falls in no grade of the model's master scale")]
struct ScoreOffScale(String);

fn score_characteristic(
    characteristic: &Characteristic,
    inputs: &RatingInputs,
) -> CharacteristicScore {
    let input = inputs.get(characteristic.source, &characteristic.input_key);
    let value = input.map_or(InputValue::Missing, |input| input.value.clone());
    let (bin_label, points, missing) = match matching_bin(characteristic, &value) {
        Some((label, points)) => (label.to_owned(), points, false),
        None => (
            MISSING_BIN_LABEL.to_owned(),
            characteristic.missing_points,
            true,
        ),
    };
    let max_points = characteristic.max_points();
    CharacteristicScore {
        code: characteristic.code.clone(),
        display_name: characteristic.display_name.clone(),
        source: characteristic.source,
        input_key: characteristic.input_key.clone(),
        family: characteristic.family,
        value,
        origin: input.map(|input| input.origin.clone()).unwrap_or_default(),
        missing,
        bin_label,
        points,
        max_points,
        points_lost: max_points - points,
    }
}

/// The label and points of the bin `value` falls in; `None` when the missing-value points apply
/// (no value, a value of the other type, or a category no bin lists).
fn matching_bin<'a>(
    characteristic: &'a Characteristic,
    value: &InputValue,
) -> Option<(&'a str, Decimal)> {
    match (&characteristic.bins, value) {
        (Bins::Numeric(bins), InputValue::Number(number)) => bins
            .iter()
            .find(|bin| bin.range.contains(*number))
            .map(|bin| (bin.label.as_str(), bin.points)),
        (Bins::Categorical(bins), InputValue::Category(category)) => {
            let bin = if characteristic.categories_are_prefixes() {
                longest_prefix_bin(bins, category)
            } else {
                bins.iter().find(|bin| bin.values.contains(category))
            };
            bin.map(|bin| (bin.label.as_str(), bin.points))
        }
        _ => None,
    }
}

/// The bin holding the longest value that `category` starts with ("C35" beats "C" for "C3511").
/// Values are unique across bins, so the longest match is unique too.
fn longest_prefix_bin<'a>(bins: &'a [CategoryBin], category: &str) -> Option<&'a CategoryBin> {
    bins.iter()
        .flat_map(|bin| bin.values.iter().map(move |value| (value, bin)))
        .filter(|(value, _)| category.starts_with(value.as_str()))
        .max_by_key(|(value, _)| value.len())
        .map(|(_, bin)| bin)
}

/// The characteristics that lost points, most lost first, at most the model's `max_reasons`.
/// Ties keep model order (the sort is stable), as the contract says.
fn rank_reasons(model: &ScorecardModel, breakdown: &[CharacteristicScore]) -> Vec<ScoreReason> {
    let reason_texts: HashMap<&str, &str> = model
        .characteristics()
        .iter()
        .map(|characteristic| {
            (
                characteristic.code.as_str(),
                characteristic.reason_text.as_str(),
            )
        })
        .collect();
    let mut losing: Vec<&CharacteristicScore> = breakdown
        .iter()
        .filter(|line| line.points_lost > Decimal::ZERO)
        .collect();
    losing.sort_by_key(|line| Reverse(line.points_lost));
    let limit = usize::try_from(model.max_reasons()).unwrap_or(usize::MAX);
    losing
        .into_iter()
        .take(limit)
        .map(|line| {
            let reason_text = reason_texts
                .get(line.code.as_str())
                .copied()
                .unwrap_or_default();
            ScoreReason {
                code: line.code.clone(),
                message: reason_message(reason_text, &line.display_name),
                points: line.points,
                max_points: line.max_points,
                points_lost: line.points_lost,
                value: line.value.to_string(),
            }
        })
        .collect()
}

/// A model may omit reason texts (an imported table has none); a reason still needs words.
fn reason_message(reason_text: &str, display_name: &str) -> String {
    if reason_text.is_empty() {
        format!("{display_name} lowered the score")
    } else {
        reason_text.to_owned()
    }
}

/// Computed figures are shown without trailing zeros ("45", not "45.00").
fn figure(value: Decimal) -> String {
    value.normalize().to_string()
}

impl From<&CharacteristicScore> for pb::CharacteristicScore {
    fn from(line: &CharacteristicScore) -> Self {
        let input = RatingInput::new(
            line.source,
            &line.input_key,
            line.value.clone(),
            &line.origin,
        );
        pb::CharacteristicScore {
            code: line.code.clone(),
            display_name: line.display_name.clone(),
            source: line.source.to_proto().into(),
            family: IndicatorFamily::to_proto(line.family).into(),
            input: Some(input.to_proto()),
            missing: line.missing,
            bin_label: line.bin_label.clone(),
            points: figure(line.points),
            max_points: figure(line.max_points),
            points_lost: figure(line.points_lost),
        }
    }
}

impl From<&ScoreReason> for pb::Reason {
    fn from(reason: &ScoreReason) -> Self {
        let metadata = [
            ("points", figure(reason.points)),
            ("max_points", figure(reason.max_points)),
            ("points_lost", figure(reason.points_lost)),
            ("value", reason.value.clone()),
        ]
        .into_iter()
        .map(|(key, value)| (key.to_owned(), value))
        .collect();
        pb::Reason {
            code: reason.code.clone(),
            message: reason.message.clone(),
            metadata,
        }
    }
}

impl From<&ScoreResult> for pb::ScoreResult {
    fn from(result: &ScoreResult) -> Self {
        pb::ScoreResult {
            model_id: result.model_id.clone(),
            model_version: i32::try_from(result.model_version).unwrap_or(i32::MAX),
            score: figure(result.score),
            grade: result.grade.clone(),
            grade_rank: i32::try_from(result.grade_rank).unwrap_or(i32::MAX),
            pd: result.pd.to_string(),
            breakdown: result.breakdown.iter().map(Into::into).collect(),
            reasons: result.reasons.iter().map(Into::into).collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::scale;
    use CharacteristicSource::{Customer, FinancialStatement, PaymentBehaviour, TradeReferences};
    use proptest::prelude::*;
    use rust_decimal_macros::dec;

    fn numeric_bin(lower: Option<&str>, upper: Option<&str>, points: &str) -> pb::ScorecardBin {
        pb::ScorecardBin {
            label: String::new(),
            condition: Some(pb::scorecard_bin::Condition::Range(pb::NumericRange {
                lower_bound: lower.map(str::to_owned),
                upper_bound: upper.map(str::to_owned),
                ..Default::default()
            })),
            points: points.to_owned(),
        }
    }

    fn category_bin(label: &str, values: &[&str], points: &str) -> pb::ScorecardBin {
        pb::ScorecardBin {
            label: label.to_owned(),
            condition: Some(pb::scorecard_bin::Condition::Categories(pb::CategorySet {
                values: values.iter().map(|value| (*value).to_owned()).collect(),
            })),
            points: points.to_owned(),
        }
    }

    fn characteristic(
        code: &str,
        source: pb::CharacteristicSource,
        key: &str,
        value_type: pb::CharacteristicValueType,
        bins: Vec<pb::ScorecardBin>,
        missing_points: &str,
    ) -> pb::Characteristic {
        pb::Characteristic {
            code: code.into(),
            display_name: code.to_lowercase(),
            source: source.into(),
            input_key: key.into(),
            value_type: value_type.into(),
            family: 0,
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
    fn model(max_reasons: i32) -> ScorecardModel {
        use pb::CharacteristicSource as Source;
        use pb::CharacteristicValueType::{Categorical, Numeric};
        let proto = pb::ScorecardModel {
            model_id: "hand-checked".into(),
            customer_kind: pb::CustomerKind::Enterprise.into(),
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

    fn inputs(values: &[(CharacteristicSource, &str, InputValue)]) -> RatingInputs {
        let mut inputs = RatingInputs::new();
        for (source, key, value) in values {
            inputs.insert(RatingInput::new(*source, *key, value.clone(), "test"));
        }
        inputs
    }

    fn number(value: Decimal) -> InputValue {
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
            RatingInput::new(FinancialStatement, "current_ratio", number(dec!(1.2)), "s")
                .to_proto(),
            pb::RatingInput {
                source: 0,
                key: "x".into(),
                value: Some(pb::rating_input::Value::Number("1,5".into())),
                origin: String::new(),
            },
            RatingInput::new(
                FinancialStatement,
                "current_ratio",
                InputValue::Missing,
                "s",
            )
            .to_proto(),
        ];
        let Err(ServiceError::InvalidArgument(violations)) =
            RatingInputs::parse(&wire, "inputs.inputs")
        else {
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
        let parsed = RatingInputs::parse(&wire[..1], "inputs.inputs").unwrap();
        assert_eq!(parsed.to_proto(), wire[..1]);
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
}
