//! Which model rates a customer, and which models may be published side by side.
//!
//! Models may differ by industry: a customer gets the model of its kind whose industry prefix is
//! the longest match of its industry code, else the default model (no industry codes) of its
//! kind. That choice must never be ambiguous, so two models of one kind may not claim the same
//! prefix, nor both be the default. A new version of a model replaces the old version's claims
//! instead of conflicting with them.

use std::collections::BTreeMap;

use super::model::{CustomerKind, ScorecardModel};

/// ErrorInfo reason when no published model fits a customer (FAILED_PRECONDITION).
pub const NO_MODEL_FOR_CUSTOMER: &str = "NO_MODEL_FOR_CUSTOMER";
/// ErrorInfo reason when a model would share a claim with another (FAILED_PRECONDITION).
pub const MODEL_APPLICABILITY_CONFLICT: &str = "MODEL_APPLICABILITY_CONFLICT";

/// Why no model could be chosen, or a model may not be published beside the others. Both are
/// preconditions the caller can fix by publishing or changing models.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SelectionError {
    #[error(
        "no published model rates customers of kind {} with industry code '{industry_code}', \
         and there is no default model for the kind",
        .kind.contract_name()
    )]
    NoModelFor {
        kind: CustomerKind,
        industry_code: String,
    },
    /// `message` says which claim is shared and how to resolve it.
    #[error("{message}")]
    Conflict {
        conflicting_model_id: String,
        /// Empty when both models would be the default of the kind.
        industry_code: String,
        message: String,
    },
}

impl SelectionError {
    /// The stable reason code callers may branch on.
    pub fn reason(&self) -> &'static str {
        match self {
            Self::NoModelFor { .. } => NO_MODEL_FOR_CUSTOMER,
            Self::Conflict { .. } => MODEL_APPLICABILITY_CONFLICT,
        }
    }

    /// The ids a caller needs to act on the error.
    pub fn metadata(&self) -> Vec<(&'static str, String)> {
        match self {
            Self::NoModelFor {
                kind,
                industry_code,
            } => vec![
                ("customer_kind", kind.contract_name().to_owned()),
                ("industry_code", industry_code.clone()),
            ],
            Self::Conflict {
                conflicting_model_id,
                industry_code,
                ..
            } => vec![
                ("conflicting_model_id", conflicting_model_id.clone()),
                ("industry_code", industry_code.clone()),
            ],
        }
    }
}

/// The latest version of each model, by model id. Older versions no longer claim anything.
pub fn latest_versions(models: &[ScorecardModel]) -> Vec<&ScorecardModel> {
    let mut latest: BTreeMap<&str, &ScorecardModel> = BTreeMap::new();
    for model in models {
        let entry = latest.entry(model.model_id().as_str()).or_insert(model);
        if model.version() > entry.version() {
            *entry = model;
        }
    }
    latest.into_values().collect()
}

/// The model that rates a customer of `kind` with `industry_code`, among `published` (any
/// versions; only the latest of each counts). The longest matching industry prefix wins, then the
/// default of the kind. Ties, which the applicability check prevents, go to the lowest model id.
pub fn select_model<'a>(
    published: &'a [ScorecardModel],
    kind: CustomerKind,
    industry_code: &str,
) -> Result<&'a ScorecardModel, SelectionError> {
    let industry_code = industry_code.trim().to_ascii_uppercase();
    let mut best_match: Option<(usize, &ScorecardModel)> = None;
    let mut default_model = None;
    for model in latest_versions(published) {
        if model.customer_kind() != kind {
            continue;
        }
        if model.is_default_for_kind() {
            default_model.get_or_insert(model);
            continue;
        }
        let longest_prefix = model
            .industry_codes()
            .iter()
            .filter(|prefix| industry_code.starts_with(prefix.as_str()))
            .map(String::len)
            .max();
        if let Some(length) = longest_prefix
            && best_match.is_none_or(|(best_length, _)| length > best_length)
        {
            best_match = Some((length, model));
        }
    }
    best_match
        .map(|(_, model)| model)
        .or(default_model)
        .ok_or_else(|| no_model_for(kind, &industry_code))
}

fn no_model_for(kind: CustomerKind, industry_code: &str) -> SelectionError {
    SelectionError::NoModelFor {
        kind,
        industry_code: industry_code.to_owned(),
    }
}

/// Refuses `candidate` when it would claim what another published model of its kind claims:
/// an industry prefix, or being the default. Versions of the candidate's own model id are
/// replaced by it, so they never conflict.
pub fn check_applicability(
    candidate: &ScorecardModel,
    published: &[ScorecardModel],
) -> Result<(), SelectionError> {
    let rivals = latest_versions(published).into_iter().filter(|other| {
        other.model_id() != candidate.model_id()
            && other.customer_kind() == candidate.customer_kind()
    });
    for other in rivals {
        if candidate.is_default_for_kind() && other.is_default_for_kind() {
            return Err(conflict(
                other,
                "",
                format!(
                    "model '{}' is already the default for its kind; give this model industry \
                     codes or publish it as a new version of '{}'",
                    other.model_id(),
                    other.model_id()
                ),
            ));
        }
        let shared = candidate
            .industry_codes()
            .iter()
            .find(|code| other.industry_codes().contains(code));
        if let Some(code) = shared {
            return Err(conflict(
                other,
                code,
                format!(
                    "model '{}' already claims industry code '{code}' for this kind",
                    other.model_id()
                ),
            ));
        }
    }
    Ok(())
}

fn conflict(other: &ScorecardModel, industry_code: &str, message: String) -> SelectionError {
    SelectionError::Conflict {
        conflicting_model_id: other.model_id().to_string(),
        industry_code: industry_code.to_owned(),
        message,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::defaults;
    use credit_core::ServiceError;

    fn model(id: &str, kind: CustomerKind, codes: &[&str], version: u32) -> ScorecardModel {
        let mut proto = defaults::enterprise_default();
        proto.model_id = id.into();
        proto.customer_kind = kind.into();
        proto.industry_codes = codes.iter().map(|code| (*code).to_owned()).collect();
        ScorecardModel::try_from(proto)
            .unwrap()
            .with_version(version)
    }

    fn published() -> Vec<ScorecardModel> {
        use CustomerKind::{Enterprise, Individual};
        vec![
            model("enterprise-default", Enterprise, &[], 1),
            model("manufacturing", Enterprise, &["C"], 1),
            model("power", Enterprise, &["D44", "C35"], 1),
            model("individual-default", Individual, &[], 1),
        ]
    }

    fn selected(kind: CustomerKind, industry_code: &str) -> String {
        let models = published();
        select_model(&models, kind, industry_code)
            .unwrap()
            .model_id()
            .to_string()
    }

    fn reason_of(error: SelectionError) -> &'static str {
        match ServiceError::from(error) {
            ServiceError::FailedPrecondition { reason, .. } => reason,
            other => panic!("expected FAILED_PRECONDITION, got {other:?}"),
        }
    }

    #[test]
    fn the_longest_industry_prefix_wins_then_the_default() {
        assert_eq!(selected(CustomerKind::Enterprise, "C3511"), "power");
        assert_eq!(selected(CustomerKind::Enterprise, "C1310"), "manufacturing");
        assert_eq!(selected(CustomerKind::Enterprise, "c13"), "manufacturing");
        assert_eq!(
            selected(CustomerKind::Enterprise, "F51"),
            "enterprise-default"
        );
        assert_eq!(selected(CustomerKind::Enterprise, ""), "enterprise-default");
        assert_eq!(
            selected(CustomerKind::Individual, "C35"),
            "individual-default"
        );
    }

    #[test]
    fn no_model_for_the_kind_is_a_failed_precondition() {
        let models = vec![model("manufacturing", CustomerKind::Enterprise, &["C"], 1)];
        let error = select_model(&models, CustomerKind::Enterprise, "F51").unwrap_err();
        assert!(matches!(
            ServiceError::from(error.clone()),
            ServiceError::FailedPrecondition { .. }
        ));
        assert_eq!(reason_of(error), NO_MODEL_FOR_CUSTOMER);
    }

    #[test]
    fn only_the_latest_version_of_a_model_is_selected() {
        let mut models = published();
        models.push(model("manufacturing", CustomerKind::Enterprise, &["G"], 2));
        assert_eq!(
            select_model(&models, CustomerKind::Enterprise, "C1310")
                .unwrap()
                .model_id()
                .as_str(),
            "enterprise-default"
        );
        let chosen = select_model(&models, CustomerKind::Enterprise, "G54").unwrap();
        assert_eq!(chosen.version(), 2);
    }

    #[test]
    fn a_second_default_or_a_shared_prefix_conflicts() {
        let models = published();
        let second_default = model("enterprise-2", CustomerKind::Enterprise, &[], 0);
        let error = check_applicability(&second_default, &models).unwrap_err();
        assert_eq!(reason_of(error), MODEL_APPLICABILITY_CONFLICT);
        let shared = model("utilities", CustomerKind::Enterprise, &["E", "C35"], 0);
        let ServiceError::FailedPrecondition { metadata, .. } =
            ServiceError::from(check_applicability(&shared, &models).unwrap_err())
        else {
            panic!("expected FAILED_PRECONDITION");
        };
        assert_eq!(
            metadata,
            [
                ("conflicting_model_id", "power".to_owned()),
                ("industry_code", "C35".to_owned())
            ]
        );
    }

    #[test]
    fn a_new_version_replaces_its_own_claims_and_other_kinds_do_not_conflict() {
        let models = published();
        let new_version = model("power", CustomerKind::Enterprise, &["C35"], 0);
        assert!(check_applicability(&new_version, &models).is_ok());
        let new_default = model("enterprise-default", CustomerKind::Enterprise, &[], 0);
        assert!(check_applicability(&new_default, &models).is_ok());
        let other_kind = model("individual-c35", CustomerKind::Individual, &["C35"], 0);
        assert!(check_applicability(&other_kind, &models).is_ok());
        let nested = model("power-plants", CustomerKind::Enterprise, &["C351"], 0);
        assert!(check_applicability(&nested, &models).is_ok());
    }
}
