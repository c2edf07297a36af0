//! Company-defined data points as scorecards read them.
//!
//! Intake keeps the definitions (code, type, kind of customer) and each customer's values;
//! rating only needs to know, for a model that names a data point, that it exists and what
//! kind of bins its values fall into. The [`DataPointCatalog`] holds that, read from intake
//! when a model is proposed.

use std::collections::BTreeMap;

use super::fields::InvalidFields;
use super::model::{CharacteristicSource, CustomerKind, ScorecardModel, ValueType};

/// Longest data point code (intake's rule).
pub const MAX_CODE_LEN: usize = 64;

/// Whether `code` is a data point code: lower_snake_case, at most [`MAX_CODE_LEN`].
pub fn is_data_point_code(code: &str) -> bool {
    credit_core::names::is_snake_code(code, MAX_CODE_LEN)
}

/// What a scorecard needs to know of one data point.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DataPointSpec {
    /// NUMBER, MONEY and DATE are numeric; CATEGORY and YES_NO categorical.
    pub value_type: ValueType,
    /// `None`: both kinds of customer.
    pub customer_kind: Option<CustomerKind>,
}

/// The data points a company has defined, by code.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DataPointCatalog(BTreeMap<String, DataPointSpec>);

impl DataPointCatalog {
    pub fn new(specs: impl IntoIterator<Item = (String, DataPointSpec)>) -> Self {
        Self(specs.into_iter().collect())
    }

    pub fn get(&self, code: &str) -> Option<DataPointSpec> {
        self.0.get(code).copied()
    }

    /// Why `code` cannot feed a `value_type` characteristic of a model for `kind`, if it
    /// cannot.
    pub fn problem(
        &self,
        code: &str,
        value_type: Option<ValueType>,
        kind: Option<CustomerKind>,
    ) -> Option<String> {
        let Some(spec) = self.get(code) else {
            return Some(format!(
                "'{code}' is not a defined data point (IntakeService.DefineDataPoint)"
            ));
        };
        if let Some(value_type) = value_type.filter(|value_type| *value_type != spec.value_type) {
            return Some(format!(
                "'{code}' holds {} values, and these bins are {}",
                spec.value_type.name().to_lowercase(),
                value_type.name().to_lowercase()
            ));
        }
        match (kind, spec.customer_kind) {
            (Some(model_kind), Some(own)) if model_kind != own => Some(format!(
                "'{code}' describes {} customers, and the model rates {} ones",
                kind_word(own),
                kind_word(model_kind)
            )),
            _ => None,
        }
    }
}

fn kind_word(kind: CustomerKind) -> &'static str {
    match kind {
        CustomerKind::Enterprise => "enterprise",
        CustomerKind::Individual => "individual",
    }
}

/// Whether a model reads any data point (and so needs the catalog to be checked).
pub fn reads_data_points(model: &ScorecardModel) -> bool {
    model
        .characteristics()
        .iter()
        .any(|characteristic| characteristic.source == CharacteristicSource::DataPoint)
}

/// Every data point characteristic of `model` checked against the catalog; each problem at
/// `<prefix>characteristics[i].input_key`.
pub fn check_model_data_points(
    model: &ScorecardModel,
    catalog: &DataPointCatalog,
    prefix: &str,
) -> Result<(), InvalidFields> {
    let problems: Vec<credit_core::FieldViolation> = model
        .characteristics()
        .iter()
        .enumerate()
        .filter(|(_, characteristic)| characteristic.source == CharacteristicSource::DataPoint)
        .filter_map(|(index, characteristic)| {
            catalog
                .problem(
                    &characteristic.input_key,
                    Some(characteristic.value_type()),
                    Some(model.customer_kind()),
                )
                .map(|problem| {
                    credit_core::FieldViolation::new(
                        format!("{prefix}characteristics[{index}].input_key"),
                        problem,
                    )
                })
        })
        .collect();
    if problems.is_empty() {
        Ok(())
    } else {
        Err(InvalidFields(problems))
    }
}

/// The data point a table characteristic without a mapping reads: its name in
/// lower_snake_case ("credit.amount", "Credit Amount" and "credit_amount" all read
/// "credit_amount").
pub fn implied_code(name: &str) -> String {
    let mut code = String::with_capacity(name.len());
    for character in name.trim().chars() {
        if character.is_ascii_alphanumeric() {
            code.push(character.to_ascii_lowercase());
        } else if !code.is_empty() && !code.ends_with('_') {
            code.push('_');
        }
    }
    code.trim_end_matches('_').to_owned()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests")]

    use super::*;

    #[test]
    fn a_table_name_implies_its_data_point_code() {
        assert_eq!(implied_code("credit.amount"), "credit_amount");
        assert_eq!(implied_code(" Credit Amount "), "credit_amount");
        assert_eq!(implied_code("age_in_years"), "age_in_years");
        assert_eq!(
            implied_code("status.of.existing.checking.account"),
            "status_of_existing_checking_account"
        );
    }

    #[test]
    fn the_catalog_names_what_does_not_fit() {
        let catalog = DataPointCatalog::new([(
            "housing".to_owned(),
            DataPointSpec {
                value_type: ValueType::Categorical,
                customer_kind: Some(CustomerKind::Individual),
            },
        )]);
        assert_eq!(
            catalog.problem(
                "housing",
                Some(ValueType::Categorical),
                Some(CustomerKind::Individual)
            ),
            None
        );
        assert!(
            catalog
                .problem("housing", Some(ValueType::Numeric), None)
                .unwrap()
                .contains("categorical")
        );
        assert!(
            catalog
                .problem("housing", None, Some(CustomerKind::Enterprise))
                .unwrap()
                .contains("individual")
        );
        assert!(
            catalog
                .problem("tenure", None, None)
                .unwrap()
                .contains("not a defined")
        );
    }
}
