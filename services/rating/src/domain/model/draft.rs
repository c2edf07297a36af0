//! A model while it is parsed from its submitted form (or a scorecard table): the parts that
//! parsed, the violations of those that did not, and the checks that span parts.

use std::collections::HashMap;

use rust_decimal::Decimal;

use super::ValueType::{Categorical, Numeric};
use super::{
    Bins, CategoryBin, Characteristic, CustomerKind, DEFAULT_MAX_REASONS, MAX_DESCRIPTION_LEN,
    MAX_INDUSTRY_CODE_LEN, MAX_NAME_LEN, MAX_REASONS_LIMIT, ModelError, ModelId, NumericBin,
    NumericRange, ScorecardModel, check_characteristic, parse_points,
};
use crate::domain::fields::{FieldPaths, Violations, check_text, parse_decimal};
use crate::domain::scale::MasterScale;
use crate::domain::unchecked::{
    BinCondition, UncheckedBin, UncheckedCharacteristic, UncheckedRange, UncheckedScale,
};

/// The fields a model shares with an ImportScorecardTableRequest, parsed the same way for both.
#[derive(Debug)]
pub(crate) struct ModelHeader<'a> {
    pub model_id: &'a str,
    pub display_name: &'a str,
    pub description: &'a str,
    pub change_note: &'a str,
    pub customer_kind: Option<CustomerKind>,
    pub industry_codes: &'a [String],
    pub master_scale: Option<&'a UncheckedScale>,
    pub max_reasons: i32,
}

/// A characteristic as parsed, possibly with parts missing because they failed to parse (their
/// violations are recorded). It is still checked as far as it can be, so a caller learns about
/// a bad code and a bad bin in one answer.
#[derive(Debug)]
pub(crate) struct ParsedCharacteristic {
    pub characteristic: Characteristic,
    /// False when a bin failed to parse: the bins are incomplete and coverage is not checked.
    pub bins_parsed: bool,
    /// False when anything failed to parse: the model's score range is then unknown.
    pub fully_parsed: bool,
}

/// A model while it is being parsed: every part that parsed, `None` for parts that did not (their
/// violations are already recorded). [`ModelDraft::finish`] runs the checks that span parts.
#[derive(Debug, Default)]
pub(crate) struct ModelDraft {
    pub model_id: Option<ModelId>,
    pub display_name: String,
    pub description: String,
    pub change_note: String,
    pub customer_kind: Option<CustomerKind>,
    pub industry_codes: Option<Vec<String>>,
    pub base_points: Option<Decimal>,
    pub characteristics: Vec<Option<ParsedCharacteristic>>,
    pub master_scale: Option<MasterScale>,
    pub max_reasons: Option<u32>,
}

impl ModelDraft {
    pub(crate) fn from_header(
        header: &ModelHeader<'_>,
        paths: &dyn FieldPaths,
        violations: &mut Violations,
    ) -> Self {
        let field = |name: &str| paths.model_field(name);
        let model_id = violations.check(&field("model_id"), ModelId::parse(header.model_id));
        check_text(
            header.display_name,
            MAX_NAME_LEN,
            false,
            &field("display_name"),
            violations,
        );
        check_text(
            header.description,
            MAX_DESCRIPTION_LEN,
            true,
            &field("description"),
            violations,
        );
        check_text(
            header.change_note,
            MAX_DESCRIPTION_LEN,
            true,
            &field("change_note"),
            violations,
        );
        let customer_kind = header.customer_kind;
        if customer_kind.is_none() {
            violations.add(
                field("customer_kind"),
                "is required: CUSTOMER_KIND_ENTERPRISE or CUSTOMER_KIND_INDIVIDUAL",
            );
        }
        let max_reasons = parse_max_reasons(header.max_reasons);
        if max_reasons.is_none() {
            violations.add(
                field("max_reasons"),
                format!(
                    "must be between 0 (meaning {DEFAULT_MAX_REASONS}) and {MAX_REASONS_LIMIT}"
                ),
            );
        }
        Self {
            model_id,
            display_name: header.display_name.trim().to_owned(),
            description: header.description.to_owned(),
            change_note: header.change_note.to_owned(),
            customer_kind,
            industry_codes: parse_industry_codes(header.industry_codes, paths, violations),
            base_points: None,
            characteristics: Vec::new(),
            master_scale: MasterScale::parse(header.master_scale, paths, violations),
            max_reasons,
        }
    }

    /// Runs the checks that span parts and builds the model, or refuses it with every violation
    /// found so far and here.
    pub(crate) fn finish(
        self,
        paths: &dyn FieldPaths,
        mut violations: Violations,
    ) -> Result<ScorecardModel, ModelError> {
        if self.characteristics.is_empty() {
            violations.add(
                paths.model_field("characteristics"),
                "a model needs at least one characteristic",
            );
        }
        for (index, parsed) in self.characteristics.iter().enumerate() {
            if let Some(parsed) = parsed {
                check_characteristic(parsed, index, paths, &mut violations);
            }
        }
        check_codes_are_unique(&self.characteristics, paths, &mut violations);
        let score_range = self.score_range();
        if let (Some(scale), Some((lowest, highest))) = (&self.master_scale, score_range) {
            scale.check_reachable(lowest, highest, paths, &mut violations);
        }
        violations.finish()?;

        let (
            Some(model_id),
            Some(customer_kind),
            Some(industry_codes),
            Some(base_points),
            Some(characteristics),
            Some(master_scale),
            Some(max_reasons),
            Some((min_score, max_score)),
        ) = (
            self.model_id,
            self.customer_kind,
            self.industry_codes,
            self.base_points,
            self.characteristics
                .into_iter()
                .map(|parsed| parsed.map(|parsed| parsed.characteristic))
                .collect::<Option<Vec<_>>>(),
            self.master_scale,
            self.max_reasons,
            score_range,
        )
        else {
            // Every part that failed to parse recorded a violation, so this is a bug.
            return Err(ModelError::IncompleteDraft);
        };
        Ok(ScorecardModel {
            model_id,
            version: 0,
            display_name: self.display_name,
            description: self.description,
            customer_kind,
            industry_codes,
            base_points,
            characteristics,
            master_scale,
            max_reasons,
            change_note: self.change_note,
            min_score,
            max_score,
        })
    }

    /// The lowest and highest possible score, once base points and every characteristic parsed.
    /// `None` without characteristics: that model is refused anyway, and grades unreachable by
    /// its base points alone would only add noise to the answer.
    fn score_range(&self) -> Option<(Decimal, Decimal)> {
        if self.characteristics.is_empty() {
            return None;
        }
        let base_points = self.base_points?;
        let mut lowest = base_points;
        let mut highest = base_points;
        for parsed in &self.characteristics {
            let parsed = parsed.as_ref().filter(|parsed| parsed.fully_parsed)?;
            let characteristic = &parsed.characteristic;
            lowest += characteristic.min_points();
            highest += characteristic.max_points();
        }
        Some((lowest, highest))
    }
}

fn parse_max_reasons(wire: i32) -> Option<u32> {
    match u32::try_from(wire) {
        Ok(0) => Some(DEFAULT_MAX_REASONS),
        Ok(count) if count <= MAX_REASONS_LIMIT => Some(count),
        _ => None,
    }
}

/// Industry prefixes are compared with intake's industry codes, which intake stores trimmed and
/// upper-case; the same normalisation here makes "c35" and "C35" the same claim.
fn parse_industry_codes(
    wire: &[String],
    paths: &dyn FieldPaths,
    violations: &mut Violations,
) -> Option<Vec<String>> {
    let mut codes: Vec<String> = Vec::with_capacity(wire.len());
    let mut valid = true;
    for (index, code) in wire.iter().enumerate() {
        let field = paths.model_field(&format!("industry_codes[{index}]"));
        let code = code.trim().to_ascii_uppercase();
        let allowed =
            |character: char| character.is_ascii_alphanumeric() || ".-".contains(character);
        if code.is_empty() || code.len() > MAX_INDUSTRY_CODE_LEN || !code.chars().all(allowed) {
            violations.add(
                field,
                format!(
                    "must be 1 to {MAX_INDUSTRY_CODE_LEN} letters, digits, dots or dashes, \
                     like the industry codes of customers"
                ),
            );
            valid = false;
        } else if codes.contains(&code) {
            violations.add(field, format!("repeats the industry code '{code}'"));
            valid = false;
        } else {
            codes.push(code);
        }
    }
    valid.then_some(codes)
}

fn check_codes_are_unique(
    characteristics: &[Option<ParsedCharacteristic>],
    paths: &dyn FieldPaths,
    violations: &mut Violations,
) {
    let mut first_index_of: HashMap<&str, usize> = HashMap::new();
    for (index, parsed) in characteristics.iter().enumerate() {
        let Some(ParsedCharacteristic { characteristic, .. }) = parsed else {
            continue;
        };
        if let Some(first) = first_index_of.get(characteristic.code.as_str()) {
            violations.add(
                paths.characteristic_field(index, "code"),
                format!(
                    "'{}' is already the code of characteristics[{first}]",
                    characteristic.code
                ),
            );
        } else {
            first_index_of.insert(&characteristic.code, index);
        }
    }
}

/// Parses one submitted characteristic. Checks that hold for every origin run later, in
/// [`check_characteristic`]; here only what can go wrong in the submitted form. `None` only when the
/// source or value type is unknown, without which nothing else can be checked.
pub(super) fn parse_characteristic(
    wire: &UncheckedCharacteristic,
    index: usize,
    paths: &dyn FieldPaths,
    violations: &mut Violations,
) -> Option<ParsedCharacteristic> {
    let field = |name: &str| paths.characteristic_field(index, name);
    let source = wire.source;
    if source.is_none() {
        violations.add(field("source"), "is required");
    }
    let value_type = wire.value_type;
    if value_type.is_none() {
        violations.add(field("value_type"), "is required: NUMERIC or CATEGORICAL");
    }
    let family = violations.check(&field("family"), wire.family.check());
    let missing_points =
        violations.check(&field("missing_points"), parse_points(&wire.missing_points));
    let (bins, bins_parsed) = match value_type? {
        Numeric => {
            let (bins, all_parsed) = parse_numeric_bins(&wire.bins, index, paths, violations);
            (Bins::Numeric(bins), all_parsed)
        }
        Categorical => {
            let (bins, all_parsed) = parse_category_bins(&wire.bins, index, paths, violations);
            (Bins::Categorical(bins), all_parsed)
        }
    };
    let code = wire.code.trim().to_owned();
    let display_name = label_or(&wire.display_name, || code.clone());
    let characteristic = Characteristic {
        code,
        display_name,
        source: source?,
        input_key: wire.input_key.trim().to_owned(),
        family: family.flatten(),
        bins,
        missing_points: missing_points.unwrap_or_default(),
        reason_text: wire.reason_text.trim().to_owned(),
    };
    Some(ParsedCharacteristic {
        characteristic,
        bins_parsed,
        fully_parsed: bins_parsed && family.is_some() && missing_points.is_some(),
    })
}

/// The bins that parsed, and whether all did (each failure is recorded).
fn parse_numeric_bins(
    wire: &[UncheckedBin],
    characteristic: usize,
    paths: &dyn FieldPaths,
    violations: &mut Violations,
) -> (Vec<NumericBin>, bool) {
    let parsed: Vec<Option<NumericBin>> = wire
        .iter()
        .enumerate()
        .map(|(index, bin)| {
            let field = |name: &str| paths.bin_field(characteristic, index, name);
            let points = violations.check(&field("points"), parse_points(&bin.points));
            let Some(BinCondition::Range(range)) = &bin.condition else {
                violations.add(
                    field("range"),
                    "a NUMERIC characteristic's bins need a range",
                );
                return None;
            };
            let range = parse_range(range, &field("range"), violations)?;
            Some(NumericBin {
                label: label_or(&bin.label, || range.to_string()),
                range,
                points: points?,
            })
        })
        .collect();
    all_that_parsed(parsed)
}

fn parse_range(
    wire: &UncheckedRange,
    field: &str,
    violations: &mut Violations,
) -> Option<NumericRange> {
    let parse_bound = |bound: &Option<String>, violations: &mut Violations, name: &str| match bound
    {
        None => Some(None),
        Some(text) => violations
            .check(&format!("{field}.{name}"), parse_decimal(text))
            .map(Some),
    };
    let lower = parse_bound(&wire.lower_bound, violations, "lower_bound");
    let upper = parse_bound(&wire.upper_bound, violations, "upper_bound");
    Some(NumericRange {
        lower: lower?,
        upper: upper?,
        lower_exclusive: wire.lower_exclusive,
        upper_inclusive: wire.upper_inclusive,
    })
}

/// The bins that parsed, and whether all did (each failure is recorded).
fn parse_category_bins(
    wire: &[UncheckedBin],
    characteristic: usize,
    paths: &dyn FieldPaths,
    violations: &mut Violations,
) -> (Vec<CategoryBin>, bool) {
    let parsed: Vec<Option<CategoryBin>> = wire
        .iter()
        .enumerate()
        .map(|(index, bin)| {
            let field = |name: &str| paths.bin_field(characteristic, index, name);
            let points = violations.check(&field("points"), parse_points(&bin.points));
            let Some(BinCondition::Categories(categories)) = &bin.condition else {
                violations.add(
                    field("categories"),
                    "a CATEGORICAL characteristic's bins need categories",
                );
                return None;
            };
            let values = categories.values.clone();
            Some(CategoryBin {
                label: label_or(&bin.label, || values.join(", ")),
                values,
                points: points?,
            })
        })
        .collect();
    all_that_parsed(parsed)
}

/// The items that parsed, and whether every one did.
pub(crate) fn all_that_parsed<T>(items: Vec<Option<T>>) -> (Vec<T>, bool) {
    let count = items.len();
    let parsed: Vec<T> = items.into_iter().flatten().collect();
    let all_parsed = parsed.len() == count;
    (parsed, all_parsed)
}

/// A bin without a label is shown by its condition, so the breakdown never has a blank.
pub(crate) fn label_or(label: &str, describe: impl FnOnce() -> String) -> String {
    match label.trim() {
        "" => describe(),
        label => label.to_owned(),
    }
}
