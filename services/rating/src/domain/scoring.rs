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

use rust_decimal::Decimal;

use super::fields::{InvalidFields, Violations, parse_decimal};
use super::model::{
    Bins, CategoryBin, Characteristic, CharacteristicSource, IndicatorFamily, ScorecardModel,
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

    /// Parses the inputs of a snapshot; `field` is where they sit in the request, for example
    /// "inputs.inputs" in ScoreSnapshotRequest. Every problem is reported at once.
    pub fn parse(wire: &[UncheckedInput], field: &str) -> Result<Self, InvalidFields> {
        if wire.len() > MAX_INPUTS {
            return Err(InvalidFields::one(
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

/// One input value as a caller sent it, before any check.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct UncheckedInput {
    /// `None` when absent or unknown to this build.
    pub source: Option<CharacteristicSource>,
    pub key: String,
    /// `None` for a missing value.
    pub value: Option<UncheckedValue>,
    pub origin: String,
}

impl From<&RatingInput> for UncheckedInput {
    /// The input as a snapshot records it, numbers as their exact text.
    fn from(input: &RatingInput) -> Self {
        let value = match &input.value {
            InputValue::Number(number) => Some(UncheckedValue::Number(number.to_string())),
            InputValue::Category(category) => Some(UncheckedValue::Category(category.clone())),
            InputValue::Missing => None,
        };
        Self {
            source: Some(input.source),
            key: input.key.clone(),
            value,
            origin: input.origin.clone(),
        }
    }
}

/// An input value as sent: a number still as text, or a category.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UncheckedValue {
    Number(String),
    Category(String),
}

fn parse_input(
    wire: &UncheckedInput,
    field: &str,
    violations: &mut Violations,
) -> Option<RatingInput> {
    let source = wire.source;
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
        Some(UncheckedValue::Number(text)) => violations
            .check(&format!("{field}.number"), parse_decimal(text))
            .map(InputValue::Number),
        Some(UncheckedValue::Category(text)) if text.chars().count() > MAX_CATEGORY_LEN => {
            violations.add(
                format!("{field}.category"),
                format!("must be at most {MAX_CATEGORY_LEN} characters"),
            );
            None
        }
        Some(UncheckedValue::Category(text)) => Some(InputValue::Category(text.clone())),
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
pub fn score(model: &ScorecardModel, inputs: &RatingInputs) -> Result<ScoreResult, ScoreError> {
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
        .ok_or_else(|| ScoreError::OffScale(total.to_string()))?;
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

/// Why a model could not score; a checked model rules it out, so it is a bug.
#[derive(Debug, thiserror::Error)]
pub enum ScoreError {
    #[error("score {0} falls in no grade of the model's master scale")]
    OffScale(String),
}

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
pub fn figure(value: Decimal) -> String {
    value.normalize().to_string()
}

#[cfg(test)]
pub(crate) mod tests;
