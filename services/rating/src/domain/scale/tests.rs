//! Tests of master scales: the shipped scales, score and PD bands, and every problem named.

use super::*;
use crate::domain::fields::{InvalidFields, ModelPaths};
use credit_core::FieldViolation;
use proptest::prelude::*;
use rust_decimal_macros::dec;

fn parse(wire: &UncheckedScale) -> Result<MasterScale, Vec<FieldViolation>> {
    let mut violations = Violations::new();
    let scale = MasterScale::parse(Some(wire), &ModelPaths::new("model"), &mut violations);
    match (scale, violations.finish()) {
        (Some(scale), Ok(())) => Ok(scale),
        (_, Err(InvalidFields(found))) => Err(found),
        (scale, other) => panic!("inconsistent outcome {scale:?} {other:?}"),
    }
}

fn agency() -> MasterScale {
    parse(&agency_8()).unwrap()
}

#[test]
fn both_shipped_scales_are_valid() {
    let agency = agency();
    let codes: Vec<&str> = agency.grades().iter().map(|g| g.code.as_str()).collect();
    assert_eq!(codes, ["AAA", "AA", "A", "BBB", "BB", "B", "CCC", "D"]);
    let five = parse(&five_tier()).unwrap();
    let codes: Vec<&str> = five.grades().iter().map(|g| g.code.as_str()).collect();
    assert_eq!(codes, ["EXCELLENT", "GOOD", "FAIR", "WATCH", "POOR"]);
    assert_eq!(five.grade("FAIR").unwrap().display_name, "一般 Fair");
}

#[test]
fn review_intervals_follow_the_grade() {
    let agency = agency();
    let months = |code: &str| agency.grade(code).unwrap().review_interval_months;
    assert_eq!([months("AAA"), months("AA"), months("A")], [12, 12, 12]);
    assert_eq!([months("BBB"), months("BB")], [6, 6]);
    assert_eq!([months("B"), months("CCC"), months("D")], [3, 3, 3]);
}

#[test]
fn a_score_gets_the_grade_of_its_band() {
    let agency = agency();
    let grade_of = |score: Decimal| agency.grade_for_score(score).unwrap().code.clone();
    assert_eq!(grade_of(dec!(1000)), "AAA");
    assert_eq!(grade_of(dec!(850)), "AAA");
    assert_eq!(grade_of(dec!(849.99)), "AA");
    assert_eq!(grade_of(dec!(700)), "A");
    assert_eq!(grade_of(dec!(620)), "BBB");
    assert_eq!(grade_of(dec!(379.5)), "D");
    assert_eq!(grade_of(dec!(-50)), "D");
}

#[test]
fn notches_count_ranks_signed_towards_better() {
    let agency = agency();
    assert_eq!(agency.notches("BBB", "A"), Some(1));
    assert_eq!(agency.notches("BBB", "B"), Some(-2));
    assert_eq!(agency.notches("AAA", "D"), Some(-7));
    assert_eq!(agency.notches("BBB", "BBB"), Some(0));
    assert_eq!(agency.notches("BBB", "EXCELLENT"), None);
}

#[test]
fn a_gap_between_score_bands_is_refused() {
    let mut wire = agency_8();
    wire.grades[3].max_score = Some("690".into());
    let violations = parse(&wire).unwrap_err();
    assert_eq!(
        violations,
        [FieldViolation::new(
            "model.master_scale.grades[3].max_score",
            "gap between 690 and 700: those scores have no grade"
        )]
    );
}

#[test]
fn overlapping_score_bands_are_refused() {
    let mut wire = agency_8();
    wire.grades[1].max_score = Some("900".into());
    let violations = parse(&wire).unwrap_err();
    assert_eq!(
        violations,
        [FieldViolation::new(
            "model.master_scale.grades[1].max_score",
            "overlaps grade AAA between 850 and 900"
        )]
    );
}

#[test]
fn the_ends_of_the_scale_must_be_open() {
    let mut wire = agency_8();
    wire.grades[0].max_score = Some("1000".into());
    wire.grades[7].min_score = Some("0".into());
    let fields: Vec<String> = parse(&wire)
        .unwrap_err()
        .into_iter()
        .map(|v| v.field)
        .collect();
    assert_eq!(
        fields,
        [
            "model.master_scale.grades[0].max_score",
            "model.master_scale.grades[7].min_score"
        ]
    );
}

#[test]
fn pd_bands_must_rise_as_grades_worsen() {
    let mut wire = agency_8();
    wire.grades[2].pd_lower = "0.0010".into();
    let violations = parse(&wire).unwrap_err();
    assert_eq!(
        violations,
        [FieldViolation::new(
            "model.master_scale.grades[2].pd_lower",
            "must be at least 0.0015, where the PD band of the better grade AA ends: \
             better grades have lower PDs"
        )]
    );
}

#[test]
fn a_pd_outside_its_band_is_refused() {
    let mut wire = agency_8();
    wire.grades[4].pd = "0.05".into();
    let violations = parse(&wire).unwrap_err();
    assert_eq!(
        violations,
        [FieldViolation::new(
            "model.master_scale.grades[4].pd",
            "0.05 is outside the grade's PD band [0.0125, 0.0350)"
        )]
    );
}

#[test]
fn repeated_grades_and_bad_intervals_are_refused() {
    let mut wire = five_tier();
    wire.grades[1].grade = "EXCELLENT".into();
    wire.grades[2].review_interval_months = 0;
    let fields: Vec<String> = parse(&wire)
        .unwrap_err()
        .into_iter()
        .map(|v| v.field)
        .collect();
    assert_eq!(
        fields,
        [
            "model.master_scale.grades[1].grade",
            "model.master_scale.grades[2].review_interval_months"
        ]
    );
}

proptest! {
    #[test]
    fn every_score_has_exactly_one_grade(hundredths in -100_000i64..200_000) {
        let score = Decimal::new(hundredths, 2);
        for scale in [agency(), parse(&five_tier()).unwrap()] {
            let matching = scale.grades().iter().filter(|g| g.contains_score(score)).count();
            prop_assert_eq!(matching, 1);
        }
    }

    #[test]
    fn a_higher_score_never_gets_a_worse_grade(a in 0i64..100_000, b in 0i64..100_000) {
        let agency = agency();
        let (low, high) = (Decimal::new(a.min(b), 2), Decimal::new(a.max(b), 2));
        let rank = |score| agency.grade_for_score(score).unwrap().rank;
        prop_assert!(rank(high) <= rank(low));
    }
}
