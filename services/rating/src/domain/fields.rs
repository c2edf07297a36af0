//! Field checks that models, master scales and scorecard tables share, and the collector of the
//! problems they find.
//!
//! Both [`super::model`] and [`super::scale`] check ids, decimals and texts the same way and name
//! every problem at its place in the request; keeping those checks here lets the model depend on
//! the scale without the scale depending back on the model.

use std::str::FromStr;

use credit_core::FieldViolation;
use rust_decimal::Decimal;

const MAX_ID_LEN: usize = 63;
/// Longest decimal accepted; far beyond any real bound or points, short enough to parse cheaply.
const MAX_DECIMAL_LEN: usize = 40;

// ---------------------------------------------------------------------------------------------
// Violations
// ---------------------------------------------------------------------------------------------

/// Input refused with every problem found, each at its field. The api answers it as
/// INVALID_ARGUMENT with one field violation per problem.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the request has invalid fields")]
pub struct InvalidFields(pub Vec<FieldViolation>);

impl InvalidFields {
    /// One problem with one field.
    pub fn one(field: impl Into<String>, description: impl Into<String>) -> Self {
        Self(vec![FieldViolation::new(field, description)])
    }
}

/// Collects every problem of an input before refusing it, so a caller fixes all at once.
#[derive(Debug, Default)]
pub struct Violations(Vec<FieldViolation>);

impl Violations {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn add(&mut self, field: impl Into<String>, description: impl Into<String>) {
        self.0.push(FieldViolation::new(field, description));
    }

    /// Records the error of `result` against `field` and hands back the value when it is fine.
    pub fn check<T, E: std::fmt::Display>(
        &mut self,
        field: &str,
        result: Result<T, E>,
    ) -> Option<T> {
        match result {
            Ok(value) => Some(value),
            Err(error) => {
                self.add(field, error.to_string());
                None
            }
        }
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// `Ok` when nothing was recorded, otherwise everything that was.
    pub fn finish(self) -> Result<(), InvalidFields> {
        if self.0.is_empty() {
            return Ok(());
        }
        Err(InvalidFields(self.0))
    }
}

// ---------------------------------------------------------------------------------------------
// Ids, decimals and text
// ---------------------------------------------------------------------------------------------

/// What is wrong with a model or scale id; the text is safe to show callers.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SlugError {
    #[error("is required")]
    Missing,
    #[error("must be at most {MAX_ID_LEN} characters")]
    TooLong,
    #[error("must contain only lower-case letters, digits and \"-\"")]
    NotASlug,
}

/// Model ids and scale ids share one format, so both read well in URLs and logs.
pub fn check_slug(text: &str) -> Result<(), SlugError> {
    if text.is_empty() {
        return Err(SlugError::Missing);
    }
    if text.chars().count() > MAX_ID_LEN {
        return Err(SlugError::TooLong);
    }
    let allowed = |character: char| {
        character.is_ascii_lowercase() || character.is_ascii_digit() || character == '-'
    };
    if !text.chars().all(allowed) {
        return Err(SlugError::NotASlug);
    }
    Ok(())
}

/// What is wrong with a decimal a caller sent; the text is safe to show callers.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecimalError {
    #[error("is required")]
    Missing,
    #[error("'{0}' is not a decimal number such as 1.25 or -3")]
    NotADecimal(String),
}

/// Parses a plain decimal ("12", "-0.5", "1.250"). Scientific notation and digit separators are
/// refused so that the figure a person reads is the figure the model uses.
pub fn parse_decimal(text: &str) -> Result<Decimal, DecimalError> {
    let text = text.trim();
    if text.is_empty() {
        return Err(DecimalError::Missing);
    }
    let shown: String = text.chars().take(MAX_DECIMAL_LEN).collect();
    let plain = text
        .chars()
        .all(|character| character.is_ascii_digit() || ".+-".contains(character));
    if text.len() > MAX_DECIMAL_LEN || !plain {
        return Err(DecimalError::NotADecimal(shown));
    }
    Decimal::from_str(text).map_err(|_| DecimalError::NotADecimal(shown))
}

/// Names and labels are one line; descriptions may span several.
pub fn check_text(
    text: &str,
    max_chars: usize,
    multi_line: bool,
    field: &str,
    violations: &mut Violations,
) {
    if text.chars().count() > max_chars {
        violations.add(field, format!("must be at most {max_chars} characters"));
    }
    let forbidden = |character: char| {
        character.is_control() && !(multi_line && (character == '\n' || character == '\t'))
    };
    if text.chars().any(forbidden) {
        violations.add(field, "must not contain control characters");
    }
}

pub fn is_upper_snake_case(text: &str) -> bool {
    is_snake_case(text, |character| character.is_ascii_uppercase())
}

pub fn is_lower_snake_case(text: &str) -> bool {
    is_snake_case(text, |character| character.is_ascii_lowercase())
}

/// Letters of one case, digits and single underscores between words; starts with a letter.
fn is_snake_case(text: &str, is_letter: impl Fn(char) -> bool) -> bool {
    let starts_with_letter = text.chars().next().is_some_and(&is_letter);
    let allowed = text
        .chars()
        .all(|character| is_letter(character) || character.is_ascii_digit() || character == '_');
    starts_with_letter && allowed && !text.ends_with('_') && !text.contains("__")
}

// ---------------------------------------------------------------------------------------------
// Field paths
// ---------------------------------------------------------------------------------------------

/// Names the place of each part of a model in the request that carried it, so the same checks
/// report `model.characteristics[2].bins[3].range` for PublishModel and `rows[17].bin` for a
/// scorecard table import.
pub trait FieldPaths {
    /// A field of the model itself, for example `model_id` or `master_scale.grades[2].pd`.
    fn model_field(&self, field: &str) -> String;

    /// A field of one characteristic (`code`, `input_key`, `bins`, `missing_points`, ...).
    fn characteristic_field(&self, characteristic: usize, field: &str) -> String {
        self.model_field(&format!("characteristics[{characteristic}].{field}"))
    }

    /// A field of one bin (`range`, `categories`, `points`).
    fn bin_field(&self, characteristic: usize, bin: usize, field: &str) -> String {
        self.characteristic_field(characteristic, &format!("bins[{bin}].{field}"))
    }

    /// How a description refers to another bin of the same characteristic.
    fn bin_name(&self, _characteristic: usize, bin: usize) -> String {
        format!("bins[{bin}]")
    }

    fn grade_field(&self, grade: usize, field: &str) -> String {
        self.model_field(&format!("master_scale.grades[{grade}].{field}"))
    }
}

/// Paths inside a submitted model that sits at `prefix` of the request ("model" in
/// PublishModelRequest; empty when the model is the whole message).
#[derive(Debug, Clone)]
pub struct ModelPaths {
    prefix: String,
}

impl ModelPaths {
    pub fn new(prefix: impl Into<String>) -> Self {
        Self {
            prefix: prefix.into(),
        }
    }
}

impl FieldPaths for ModelPaths {
    fn model_field(&self, field: &str) -> String {
        if self.prefix.is_empty() {
            field.to_owned()
        } else {
            format!("{}.{field}", self.prefix)
        }
    }
}
