//! The rules of a rating's life after scoring: when it is reviewed next, and how a person may
//! override its grade (maker-checker).
//!
//! An override never erases the model grade: the rating keeps both, and the effective grade is
//! the approved override's, else the model's. Limits acts on the effective grade.

use chrono::{Months, NaiveDate};
use credit_core::{Actor, FieldViolation, Principal, Role};

use super::fields::InvalidFields;
use super::scale::{Grade, MasterScale};

/// An override moving the grade by more than this many notches needs an ADMIN as checker.
pub const MAX_MANAGER_NOTCHES: u32 = 2;
/// Longest justification or comment kept with an override.
pub const MAX_JUSTIFICATION_LEN: usize = 2_000;

/// The next review date of a rating of `grade` made on `rated_on`: the grade's review
/// interval later. A day past the end of the target month moves to its last day (31 August +
/// 6 months = 28 or 29 February).
pub fn next_review_date(rated_on: NaiveDate, grade: &Grade) -> NaiveDate {
    rated_on
        .checked_add_months(Months::new(grade.review_interval_months))
        .unwrap_or(NaiveDate::MAX)
}

/// Whole days from `next_review` to `as_of` (0 = due today, negative = not yet due).
pub fn days_overdue(next_review: NaiveDate, as_of: NaiveDate) -> i64 {
    (as_of - next_review).num_days()
}

/// A checked override proposal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OverrideProposal {
    pub proposed_grade: String,
    /// Signed: positive = better than the model grade.
    pub notches: i32,
    pub required_role: Role,
    pub justification: String,
}

/// Checks a proposal against the rating's scale, its model grade and its effective grade.
pub fn propose(
    scale: &MasterScale,
    model_grade: &str,
    effective_grade: &str,
    proposed_grade: &str,
    justification: &str,
) -> Result<OverrideProposal, InvalidFields> {
    let proposed_grade = proposed_grade.trim();
    let justification = justification.trim();
    let mut violations = Vec::new();
    let notches = match scale.notches(model_grade, proposed_grade) {
        Some(notches) => Some(notches),
        None => {
            let grades: Vec<&str> = scale
                .grades()
                .iter()
                .map(|grade| grade.code.as_str())
                .collect();
            violations.push(FieldViolation::new(
                "proposed_grade",
                format!(
                    "'{proposed_grade}' is not a grade of scale {}; expected one of {}",
                    scale.scale_id(),
                    grades.join(", ")
                ),
            ));
            None
        }
    };
    if notches.is_some() && proposed_grade == effective_grade {
        violations.push(FieldViolation::new(
            "proposed_grade",
            format!("is the rating's grade already ({effective_grade})"),
        ));
    }
    if justification.is_empty() {
        violations.push(FieldViolation::new(
            "justification",
            "is required: say why the model grade does not fit",
        ));
    } else if justification.chars().count() > MAX_JUSTIFICATION_LEN {
        violations.push(FieldViolation::new(
            "justification",
            format!("at most {MAX_JUSTIFICATION_LEN} characters"),
        ));
    }
    match notches {
        Some(notches) if violations.is_empty() => Ok(OverrideProposal {
            proposed_grade: proposed_grade.to_owned(),
            notches,
            required_role: required_role(notches),
            justification: justification.to_owned(),
        }),
        _ => Err(InvalidFields(violations)),
    }
}

/// CREDIT_MANAGER decides moves of up to two notches; larger moves need ADMIN.
pub fn required_role(notches: i32) -> Role {
    if notches.unsigned_abs() > MAX_MANAGER_NOTCHES {
        Role::Admin
    } else {
        Role::CreditManager
    }
}

/// Whether `checker` may decide an override proposed by `proposer` needing `required`.
/// Four eyes: never the proposer (with any of their tokens), whatever the checker's roles.
pub fn check_decider(
    checker: &Principal,
    proposer: Option<&Actor>,
    required: Role,
) -> Result<(), DeciderError> {
    if proposer.is_some_and(|proposer| Actor::of(checker).same_person_as(proposer)) {
        return Err(DeciderError::SelfApproval);
    }
    let allowed =
        checker.is_admin() || (required == Role::CreditManager && checker.has_role(required));
    if !allowed {
        return Err(DeciderError::InsufficientRole(required));
    }
    Ok(())
}

/// Why a person may not decide an override; the api answers PERMISSION_DENIED.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DeciderError {
    #[error("an override is decided by another person than the one who proposed it")]
    SelfApproval,
    #[error("this override needs a checker with role {0}")]
    InsufficientRole(Role),
}

impl DeciderError {
    /// The stable reason code callers may branch on.
    pub fn reason(&self) -> &'static str {
        match self {
            Self::SelfApproval => "SELF_APPROVAL",
            Self::InsufficientRole(_) => "INSUFFICIENT_ROLE",
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;
    use crate::domain::scale;
    use credit_core::ServiceError;

    fn agency_8() -> MasterScale {
        let mut violations = crate::domain::fields::Violations::new();
        let scale = MasterScale::parse(
            Some(&scale::agency_8()),
            &crate::domain::model::ModelPaths::new("model"),
            &mut violations,
        );
        violations.finish().unwrap();
        scale.unwrap()
    }

    fn date(year: i32, month: u32, day: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(year, month, day).unwrap()
    }

    fn principal(name: &str, roles: &[Role]) -> Principal {
        Principal {
            id: format!("prn_{name}"),
            person_id: format!("psn_{name}"),
            name: name.into(),
            roles: roles.iter().copied().collect::<BTreeSet<_>>(),
            approval_authority: None,
        }
    }

    #[test]
    fn reviews_fall_due_by_the_grades_interval_and_month_ends_clamp() {
        let scale = agency_8();
        let a = scale.grade("A").unwrap();
        let bbb = scale.grade("BBB").unwrap();
        let b = scale.grade("B").unwrap();
        assert_eq!(next_review_date(date(2026, 3, 15), a), date(2027, 3, 15));
        assert_eq!(next_review_date(date(2026, 8, 31), bbb), date(2027, 2, 28));
        assert_eq!(next_review_date(date(2026, 11, 30), b), date(2027, 2, 28));
        assert_eq!(days_overdue(date(2027, 2, 28), date(2027, 3, 2)), 2);
        assert_eq!(days_overdue(date(2027, 2, 28), date(2027, 2, 28)), 0);
    }

    #[test]
    fn a_proposal_counts_notches_from_the_model_grade_and_picks_the_checker_role() {
        let scale = agency_8();
        let up_two = propose(&scale, "BBB", "BBB", "AA", "parent guarantee").unwrap();
        assert_eq!(up_two.notches, 2);
        assert_eq!(up_two.required_role, Role::CreditManager);
        let down_three = propose(&scale, "BBB", "BBB", "CCC", "fraud suspicion").unwrap();
        assert_eq!(down_three.notches, -3);
        assert_eq!(down_three.required_role, Role::Admin);
    }

    #[test]
    fn a_proposal_needs_a_grade_of_the_scale_a_change_and_a_justification() {
        let scale = agency_8();
        let Err(InvalidFields(violations)) = propose(&scale, "BBB", "BBB", "EXCELLENT", " ") else {
            panic!("expected INVALID_ARGUMENT");
        };
        let fields: Vec<&str> = violations
            .iter()
            .map(|violation| violation.field.as_str())
            .collect();
        assert_eq!(fields, ["proposed_grade", "justification"]);
        assert!(
            violations[0]
                .description
                .contains("AAA, AA, A, BBB, BB, B, CCC, D")
        );
        assert!(propose(&scale, "BBB", "A", "A", "again").is_err());
        // Back to the model grade from an override in force is a change.
        assert!(propose(&scale, "BBB", "A", "BBB", "guarantee expired").is_ok());
    }

    #[test]
    fn the_proposer_never_decides_and_large_moves_need_an_admin() {
        let manager = principal("mei", &[Role::CreditManager]);
        let admin = principal("root", &[Role::Admin]);
        let analyst = principal("ana", &[Role::Analyst]);
        assert!(check_decider(&manager, Some(&Actor::named("ana")), Role::CreditManager).is_ok());
        assert!(matches!(
            check_decider(&manager, Some(&Actor::named("mei")), Role::CreditManager)
                .map_err(ServiceError::from),
            Err(ServiceError::PermissionDenied {
                reason: "SELF_APPROVAL",
                ..
            })
        ));
        assert!(matches!(
            check_decider(&admin, Some(&Actor::named("root")), Role::Admin)
                .map_err(ServiceError::from),
            Err(ServiceError::PermissionDenied {
                reason: "SELF_APPROVAL",
                ..
            })
        ));
        // The proposer's second token is still the proposer.
        let second_token = Actor {
            principal_id: "prn_mei_phone".into(),
            person_id: "psn_mei".into(),
            name: "mei".into(),
            roles: vec![],
        };
        assert!(check_decider(&manager, Some(&second_token), Role::CreditManager).is_err());
        assert!(check_decider(&manager, Some(&Actor::named("ana")), Role::Admin).is_err());
        assert!(check_decider(&admin, Some(&Actor::named("ana")), Role::Admin).is_ok());
        assert!(check_decider(&analyst, Some(&Actor::named("mei")), Role::CreditManager).is_err());
    }
}
