//! Master scales: how a score becomes a grade, a probability of default (PD) and a review date.
//!
//! A scale is part of every model and is checked with it: score bands contiguous from the best
//! grade down to the worst so that every score has exactly one grade, and PD bands ordered so
//! that a better grade never carries a higher PD. Grade ranks (1 = best) give the notches an
//! override moves. The two scales the suite ships live here as an administrator would
//! submit them, so they pass through exactly the checks any other scale does.

use rust_decimal::Decimal;

use super::fields::{FieldPaths, Violations, check_slug, check_text, parse_decimal};
use super::unchecked::{UncheckedGrade, UncheckedScale};

/// Id of the eight-grade scale modelled on rating agencies' letter grades.
pub const AGENCY_8: &str = "agency-8";
/// Id of the five-tier scale common in company credit policies.
pub const FIVE_TIER: &str = "five-tier";

const MAX_GRADES: usize = 30;
const MAX_GRADE_CODE_LEN: usize = 16;
const MAX_NAME_LEN: usize = 200;
/// Ten years: a longer review interval would mean a rating nobody looks at.
const MAX_REVIEW_INTERVAL_MONTHS: u32 = 120;

/// One grade of a master scale. Plain data; a [`MasterScale`] only lends checked grades out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grade {
    /// For example "BBB" or "EXCELLENT"; unique in the scale.
    pub code: String,
    pub display_name: String,
    /// Lowest score of the grade (inclusive); `None` for the worst grade.
    pub min_score: Option<Decimal>,
    /// Score where the next better grade starts (exclusive); `None` for the best grade.
    pub max_score: Option<Decimal>,
    /// PD assigned to ratings of this grade, a fraction.
    pub pd: Decimal,
    /// PD band: from `pd_lower` (inclusive) to `pd_upper` (exclusive; a band ending at 1
    /// includes 1, since no PD exceeds certainty).
    pub pd_lower: Decimal,
    pub pd_upper: Decimal,
    pub review_interval_months: u32,
    /// Position on the scale, 1 = best.
    pub rank: u32,
}

impl Grade {
    /// True when `score` falls in this grade's band `[min_score, max_score)`.
    pub fn contains_score(&self, score: Decimal) -> bool {
        self.min_score.is_none_or(|min| score >= min)
            && self.max_score.is_none_or(|max| score < max)
    }

    /// "from 620 below 700", "from 850", "below 380": the band as a person reads it.
    fn describe_band(&self) -> String {
        match (self.min_score, self.max_score) {
            (Some(min), Some(max)) => format!("from {min} below {max}"),
            (Some(min), None) => format!("from {min}"),
            (None, Some(max)) => format!("below {max}"),
            (None, None) => "of any value".to_owned(),
        }
    }
}

/// A checked master scale: grades from best to worst whose score bands cover every score once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MasterScale {
    scale_id: String,
    display_name: String,
    grades: Vec<Grade>,
}

impl MasterScale {
    pub fn scale_id(&self) -> &str {
        &self.scale_id
    }

    pub fn display_name(&self) -> &str {
        &self.display_name
    }

    /// Best first.
    pub fn grades(&self) -> &[Grade] {
        &self.grades
    }

    /// The grade of a score. Always `Some` for a checked scale, whose bands cover every score;
    /// an `Option` rather than a panic keeps that promise visible to callers.
    pub fn grade_for_score(&self, score: Decimal) -> Option<&Grade> {
        self.grades.iter().find(|grade| grade.contains_score(score))
    }

    /// The grade with this code, for example the one an override proposes.
    pub fn grade(&self, code: &str) -> Option<&Grade> {
        self.grades.iter().find(|grade| grade.code == code)
    }

    /// Notches from grade `from` to grade `to`: positive when `to` is better, negative when
    /// worse (BBB -> A is +1, BBB -> BB is -1). `None` when either is not on this scale.
    pub fn notches(&self, from: &str, to: &str) -> Option<i32> {
        let from = i64::from(self.grade(from)?.rank);
        let to = i64::from(self.grade(to)?.rank);
        i32::try_from(from - to).ok()
    }

    /// Parses and checks a scale on its own; whether a model reaches every grade is checked with
    /// the model ([`MasterScale::check_reachable`]). `None` when anything is wrong.
    pub(crate) fn parse(
        wire: Option<&UncheckedScale>,
        paths: &dyn FieldPaths,
        violations: &mut Violations,
    ) -> Option<Self> {
        let Some(wire) = wire else {
            violations.add(paths.model_field("master_scale"), "is required");
            return None;
        };
        let scale_id = violations.check(
            &paths.model_field("master_scale.scale_id"),
            check_slug(&wire.scale_id),
        );
        check_text(
            &wire.display_name,
            MAX_NAME_LEN,
            false,
            &paths.model_field("master_scale.display_name"),
            violations,
        );
        let grades = parse_grades(&wire.grades, paths, violations)?;
        let score_bands_sound = check_score_bands(&grades, paths, violations);
        let pd_bands_sound = check_pd_bands(&grades, paths, violations);
        scale_id?;
        (score_bands_sound && pd_bands_sound).then(|| Self {
            scale_id: wire.scale_id.clone(),
            display_name: wire.display_name.trim().to_owned(),
            grades,
        })
    }

    /// Every grade must be reachable by some score between the model's lowest and highest
    /// possible score; a grade no customer can get would make the scale misleading.
    pub(crate) fn check_reachable(
        &self,
        lowest: Decimal,
        highest: Decimal,
        paths: &dyn FieldPaths,
        violations: &mut Violations,
    ) {
        for (index, grade) in self.grades.iter().enumerate() {
            let reaches_band_from_below = grade.min_score.is_none_or(|min| highest >= min);
            let reaches_band_from_above = grade.max_score.is_none_or(|max| lowest < max);
            if !(reaches_band_from_below && reaches_band_from_above) {
                violations.add(
                    paths.model_field(&format!("master_scale.grades[{index}]")),
                    format!(
                        "grade {} (scores {}) is unreachable: the model scores from {} to {}",
                        grade.code,
                        grade.describe_band(),
                        lowest.normalize(),
                        highest.normalize()
                    ),
                );
            }
        }
    }
}

/// `None` when any grade failed to parse or repeats a code (each failure is recorded).
fn parse_grades(
    wire: &[UncheckedGrade],
    paths: &dyn FieldPaths,
    violations: &mut Violations,
) -> Option<Vec<Grade>> {
    if wire.is_empty() || wire.len() > MAX_GRADES {
        violations.add(
            paths.model_field("master_scale.grades"),
            format!("a scale needs 1 to {MAX_GRADES} grades, best first"),
        );
        return None;
    }
    let mut grades = Vec::with_capacity(wire.len());
    let mut all_parsed = true;
    for (index, wire_grade) in wire.iter().enumerate() {
        let Some(grade) = parse_grade(wire_grade, index, paths, violations) else {
            all_parsed = false;
            continue;
        };
        if grades
            .iter()
            .any(|earlier: &Grade| earlier.code == grade.code)
        {
            violations.add(
                paths.grade_field(index, "grade"),
                format!("repeats the grade '{}'", grade.code),
            );
            all_parsed = false;
        }
        grades.push(grade);
    }
    all_parsed.then_some(grades)
}

fn parse_grade(
    wire: &UncheckedGrade,
    index: usize,
    paths: &dyn FieldPaths,
    violations: &mut Violations,
) -> Option<Grade> {
    let field = |name: &str| paths.grade_field(index, name);
    let code = wire.grade.trim();
    let code_is_valid = !code.is_empty()
        && code.chars().count() <= MAX_GRADE_CODE_LEN
        && code.chars().all(|character| character.is_ascii_graphic());
    if !code_is_valid {
        violations.add(
            field("grade"),
            format!("must be 1 to {MAX_GRADE_CODE_LEN} visible ASCII characters, such as BBB"),
        );
    }
    check_text(
        &wire.display_name,
        MAX_NAME_LEN,
        false,
        &field("display_name"),
        violations,
    );
    let optional_score = |text: &Option<String>, name: &str, violations: &mut Violations| match text
    {
        None => Some(None),
        Some(text) => violations
            .check(&field(name), parse_decimal(text))
            .map(Some),
    };
    let min_score = optional_score(&wire.min_score, "min_score", violations);
    let max_score = optional_score(&wire.max_score, "max_score", violations);
    let pd = violations.check(&field("pd"), parse_decimal(&wire.pd));
    let pd_lower = violations.check(&field("pd_lower"), parse_decimal(&wire.pd_lower));
    let pd_upper = violations.check(&field("pd_upper"), parse_decimal(&wire.pd_upper));
    let review_interval_months = u32::try_from(wire.review_interval_months)
        .ok()
        .filter(|months| (1..=MAX_REVIEW_INTERVAL_MONTHS).contains(months));
    if review_interval_months.is_none() {
        violations.add(
            field("review_interval_months"),
            format!("must be 1 to {MAX_REVIEW_INTERVAL_MONTHS} months"),
        );
    }
    let display_name = match wire.display_name.trim() {
        "" => code.to_owned(),
        name => name.to_owned(),
    };
    code_is_valid.then_some(())?;
    Some(Grade {
        code: code.to_owned(),
        display_name,
        min_score: min_score?,
        max_score: max_score?,
        pd: pd?,
        pd_lower: pd_lower?,
        pd_upper: pd_upper?,
        review_interval_months: review_interval_months?,
        rank: u32::try_from(index + 1).ok()?,
    })
}

/// The best grade is open upwards, the worst open downwards, every grade in between has both
/// bounds, and each grade starts exactly where the next better one stops. Then every score has
/// exactly one grade. Returns whether the bands are sound.
fn check_score_bands(
    grades: &[Grade],
    paths: &dyn FieldPaths,
    violations: &mut Violations,
) -> bool {
    let mut sound = true;
    let mut complain = |index: usize, name: &str, description: String| {
        violations.add(paths.grade_field(index, name), description);
        sound = false;
    };
    let last = grades.len().saturating_sub(1);
    for (index, grade) in grades.iter().enumerate() {
        match (index == 0, grade.max_score) {
            (true, Some(_)) => complain(
                index,
                "max_score",
                "must be absent for the best grade: it has no upper end".into(),
            ),
            (false, None) => complain(
                index,
                "max_score",
                "is required: the score where the next better grade starts".into(),
            ),
            _ => {}
        }
        match (index == last, grade.min_score) {
            (true, Some(_)) => complain(
                index,
                "min_score",
                "must be absent for the worst grade: it has no lower end".into(),
            ),
            (false, None) => complain(
                index,
                "min_score",
                "is required: the lowest score of the grade".into(),
            ),
            _ => {}
        }
        if let (Some(min), Some(max)) = (grade.min_score, grade.max_score)
            && min >= max
        {
            complain(
                index,
                "min_score",
                format!("must be below max_score ({min} is not below {max})"),
            );
        }
    }
    for (index, pair) in grades.windows(2).enumerate() {
        let (better, worse) = (&pair[0], &pair[1]);
        let (Some(better_starts), Some(worse_ends)) = (better.min_score, worse.max_score) else {
            continue;
        };
        if worse_ends < better_starts {
            complain(
                index + 1,
                "max_score",
                format!("gap between {worse_ends} and {better_starts}: those scores have no grade"),
            );
        } else if worse_ends > better_starts {
            complain(
                index + 1,
                "max_score",
                format!(
                    "overlaps grade {} between {better_starts} and {worse_ends}",
                    better.code
                ),
            );
        }
    }
    sound
}

/// PDs are fractions; each grade's PD lies in its band; and a worse grade's band lies entirely
/// above a better grade's, so a better grade never carries a higher PD. Returns whether sound.
fn check_pd_bands(grades: &[Grade], paths: &dyn FieldPaths, violations: &mut Violations) -> bool {
    let mut sound = true;
    let mut complain = |index: usize, name: &str, description: String| {
        violations.add(paths.grade_field(index, name), description);
        sound = false;
    };
    for (index, grade) in grades.iter().enumerate() {
        if grade.pd_lower < Decimal::ZERO || grade.pd_upper > Decimal::ONE {
            complain(
                index,
                "pd_upper",
                "the PD band must lie within 0 and 1".into(),
            );
        }
        if grade.pd_lower >= grade.pd_upper {
            complain(
                index,
                "pd_upper",
                format!("must be above pd_lower ({})", grade.pd_lower),
            );
        }
        let upper_admits_pd = grade.pd < grade.pd_upper
            || (grade.pd == Decimal::ONE && grade.pd_upper == Decimal::ONE);
        if grade.pd < grade.pd_lower || !upper_admits_pd {
            complain(
                index,
                "pd",
                format!(
                    "{} is outside the grade's PD band [{}, {})",
                    grade.pd, grade.pd_lower, grade.pd_upper
                ),
            );
        }
    }
    for (index, pair) in grades.windows(2).enumerate() {
        let (better, worse) = (&pair[0], &pair[1]);
        if worse.pd_lower < better.pd_upper {
            complain(
                index + 1,
                "pd_lower",
                format!(
                    "must be at least {}, where the PD band of the better grade {} ends: better grades have lower PDs",
                    better.pd_upper, better.code
                ),
            );
        }
    }
    sound
}

// ---------------------------------------------------------------------------------------------
// The shipped scales
// ---------------------------------------------------------------------------------------------

/// One row of a shipped scale: code, display name, min score, max score, PD, PD band, months.
type ShippedGrade = (
    &'static str,
    &'static str,
    Option<&'static str>,
    Option<&'static str>,
    &'static str,
    &'static str,
    &'static str,
    i32,
);

fn shipped_scale(scale_id: &str, display_name: &str, rows: &[ShippedGrade]) -> UncheckedScale {
    let grades = rows
        .iter()
        .map(
            |&(code, display_name, min_score, max_score, pd, pd_lower, pd_upper, months)| {
                UncheckedGrade {
                    grade: code.to_owned(),
                    display_name: display_name.to_owned(),
                    min_score: min_score.map(str::to_owned),
                    max_score: max_score.map(str::to_owned),
                    pd: pd.to_owned(),
                    pd_lower: pd_lower.to_owned(),
                    pd_upper: pd_upper.to_owned(),
                    review_interval_months: months,
                }
            },
        )
        .collect();
    UncheckedScale {
        scale_id: scale_id.to_owned(),
        display_name: display_name.to_owned(),
        grades,
    }
}

/// "agency-8": the letter grades of the rating agencies, for scores of 0..1000. PDs are one-year
/// default probabilities in line with long-run agency default studies (with the 0.05 % floor
/// banks apply to the best grades). D here is the scorecard's worst band, a profile close to
/// default, not an observed default. Reviews: yearly for A and above, half-yearly for BBB and
/// BB, quarterly below.
pub fn agency_8() -> UncheckedScale {
    shipped_scale(
        AGENCY_8,
        "Agency letter grades (8)",
        &[
            ("AAA", "AAA", Some("850"), None, "0.0005", "0", "0.0008", 12),
            (
                "AA",
                "AA",
                Some("780"),
                Some("850"),
                "0.0010",
                "0.0008",
                "0.0015",
                12,
            ),
            (
                "A",
                "A",
                Some("700"),
                Some("780"),
                "0.0025",
                "0.0015",
                "0.0040",
                12,
            ),
            (
                "BBB",
                "BBB",
                Some("620"),
                Some("700"),
                "0.0075",
                "0.0040",
                "0.0125",
                6,
            ),
            (
                "BB",
                "BB",
                Some("540"),
                Some("620"),
                "0.0200",
                "0.0125",
                "0.0350",
                6,
            ),
            (
                "B",
                "B",
                Some("460"),
                Some("540"),
                "0.0600",
                "0.0350",
                "0.1000",
                3,
            ),
            (
                "CCC",
                "CCC",
                Some("380"),
                Some("460"),
                "0.2000",
                "0.1000",
                "0.3500",
                3,
            ),
            ("D", "D", None, Some("380"), "0.5000", "0.3500", "1", 3),
        ],
    )
}

/// "five-tier": the five grades of many company credit policies (优秀, 良好, 一般, 关注, 不良),
/// on the same 0..1000 score range as agency-8 so that either scale fits the shipped models.
pub fn five_tier() -> UncheckedScale {
    shipped_scale(
        FIVE_TIER,
        "Five-tier credit policy grades",
        &[
            (
                "EXCELLENT",
                "优秀 Excellent",
                Some("800"),
                None,
                "0.0015",
                "0",
                "0.0030",
                12,
            ),
            (
                "GOOD",
                "良好 Good",
                Some("680"),
                Some("800"),
                "0.0060",
                "0.0030",
                "0.0100",
                12,
            ),
            (
                "FAIR",
                "一般 Fair",
                Some("560"),
                Some("680"),
                "0.0200",
                "0.0100",
                "0.0400",
                6,
            ),
            (
                "WATCH",
                "关注 Watch",
                Some("440"),
                Some("560"),
                "0.0800",
                "0.0400",
                "0.1500",
                3,
            ),
            (
                "POOR",
                "不良 Poor",
                None,
                Some("440"),
                "0.3000",
                "0.1500",
                "1",
                3,
            ),
        ],
    )
}

/// The shipped scale with this id, if any.
pub fn shipped(scale_id: &str) -> Option<UncheckedScale> {
    match scale_id {
        AGENCY_8 => Some(agency_8()),
        FIVE_TIER => Some(five_tier()),
        _ => None,
    }
}

#[cfg(test)]
mod tests;
