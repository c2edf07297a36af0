//! Whether a rating's inputs are current (定期审查和更新信用信息): the latest statement, the
//! latest bureau report, the latest document of each type and each data point, against the
//! credit policy's freshness rules. Stale inputs are flagged on the rating, one reason each;
//! the first day a fresh input will go stale tells when the customer's file needs a review.

use std::collections::BTreeSet;

use chrono::{Days, NaiveDate};
use credit_core::freshness::FreshnessRules;

/// The dates of a customer's credit file that freshness looks at.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FileDates {
    /// The latest statement: its id and period end.
    pub statement: Option<(String, NaiveDate)>,
    /// The latest bureau report: its id and report date.
    pub bureau_report: Option<(String, NaiveDate)>,
    /// The customer's documents, newest first.
    pub documents: Vec<DocumentDates>,
    /// The data points the customer has, with the last day each is valid (exclusive: the
    /// value is stale from that day on); `None` when it does not expire.
    pub data_points: Vec<(String, Option<NaiveDate>)>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DocumentDates {
    pub document_id: String,
    pub document_type: String,
    pub issued_on: NaiveDate,
    /// The last day it is valid.
    pub valid_until: Option<NaiveDate>,
}

/// One input past its freshness.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StaleInput {
    /// STALE_STATEMENT, STALE_BUREAU_REPORT, EXPIRED_DOCUMENT, STALE_DOCUMENT, STALE_DATA_POINT.
    pub code: String,
    /// The statement, report or document id, or the data point code.
    pub input: String,
    /// The first day it was stale.
    pub stale_since: NaiveDate,
    pub message: String,
}

/// What freshness found in a credit file.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Freshness {
    /// The inputs stale today, oldest first.
    pub stale: Vec<StaleInput>,
    /// The first day a fresh input goes stale; `None` when none will.
    pub stale_on: Option<NaiveDate>,
}

/// One input and the day it goes stale.
struct Deadline {
    code: &'static str,
    input: String,
    stale_on: NaiveDate,
    what: String,
}

fn after(date: NaiveDate, days: u32) -> Option<NaiveDate> {
    (days > 0)
        .then(|| date.checked_add_days(Days::new(u64::from(days))))
        .flatten()
}

/// The freshness of `file` on `today` under `rules`.
pub fn assess(file: &FileDates, rules: &FreshnessRules, today: NaiveDate) -> Freshness {
    let mut deadlines = Vec::new();
    if let Some((id, period_end)) = &file.statement
        && let Some(stale_on) = after(*period_end, rules.statement_max_age_days)
    {
        deadlines.push(Deadline {
            code: "STALE_STATEMENT",
            input: id.clone(),
            stale_on,
            what: format!(
                "the latest financial statement (period end {period_end}) is older than {} days",
                rules.statement_max_age_days
            ),
        });
    }
    if let Some((id, report_date)) = &file.bureau_report
        && let Some(stale_on) = after(*report_date, rules.bureau_report_max_age_days)
    {
        deadlines.push(Deadline {
            code: "STALE_BUREAU_REPORT",
            input: id.clone(),
            stale_on,
            what: format!(
                "the latest bureau report ({report_date}) is older than {} days",
                rules.bureau_report_max_age_days
            ),
        });
    }
    // The latest document of each type speaks for its type: an expired licence replaced by a
    // new one is no longer a concern.
    let mut seen_types = BTreeSet::new();
    for document in &file.documents {
        if !seen_types.insert(document.document_type.as_str()) {
            continue;
        }
        if let Some(stale_on) = document.valid_until.and_then(|until| until.succ_opt()) {
            deadlines.push(Deadline {
                code: "EXPIRED_DOCUMENT",
                input: document.document_id.clone(),
                stale_on,
                what: format!(
                    "the {} is valid until {}",
                    document.document_type.replace('_', " "),
                    stale_on.pred_opt().unwrap_or(stale_on)
                ),
            });
        }
        let max_age = rules
            .document_max_age_days
            .get(&document.document_type)
            .copied()
            .unwrap_or(0);
        if let Some(stale_on) = after(document.issued_on, max_age) {
            deadlines.push(Deadline {
                code: "STALE_DOCUMENT",
                input: document.document_id.clone(),
                stale_on,
                what: format!(
                    "the {} (issued {}) is older than {max_age} days",
                    document.document_type.replace('_', " "),
                    document.issued_on
                ),
            });
        }
    }
    for (code, valid_until) in &file.data_points {
        if let Some(stale_on) = valid_until {
            deadlines.push(Deadline {
                code: "STALE_DATA_POINT",
                input: code.clone(),
                stale_on: *stale_on,
                what: format!("the data point {code} was valid until {stale_on}"),
            });
        }
    }
    let mut freshness = Freshness::default();
    for deadline in deadlines {
        if deadline.stale_on <= today {
            freshness.stale.push(StaleInput {
                code: deadline.code.to_owned(),
                input: deadline.input,
                stale_since: deadline.stale_on,
                message: format!("{}: stale since {}", deadline.what, deadline.stale_on),
            });
        } else {
            freshness.stale_on = Some(
                freshness
                    .stale_on
                    .map_or(deadline.stale_on, |first| first.min(deadline.stale_on)),
            );
        }
    }
    freshness.stale.sort_by_key(|stale| stale.stale_since);
    freshness
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests")]

    use super::*;

    fn date(year: i32, month: u32, day: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(year, month, day).unwrap()
    }

    fn file() -> FileDates {
        FileDates {
            statement: Some(("st_2024".into(), date(2024, 12, 31))),
            bureau_report: Some(("br_1".into(), date(2026, 1, 10))),
            documents: vec![
                DocumentDates {
                    document_id: "doc_new".into(),
                    document_type: "business_licence".into(),
                    issued_on: date(2026, 2, 1),
                    valid_until: Some(date(2036, 1, 31)),
                },
                DocumentDates {
                    document_id: "doc_guarantee".into(),
                    document_type: "guarantee".into(),
                    issued_on: date(2025, 3, 1),
                    valid_until: Some(date(2026, 2, 28)),
                },
                DocumentDates {
                    document_id: "doc_old".into(),
                    document_type: "business_licence".into(),
                    issued_on: date(2016, 2, 1),
                    valid_until: Some(date(2026, 1, 31)),
                },
            ],
            data_points: vec![
                ("site_visit_result".into(), Some(date(2026, 4, 1))),
                ("housing".into(), None),
            ],
        }
    }

    #[test]
    fn stale_inputs_are_flagged_and_the_next_one_to_go_stale_is_named() {
        let rules = FreshnessRules::default();
        let freshness = assess(&file(), &rules, date(2026, 7, 3));
        let flagged: Vec<(&str, &str)> = freshness
            .stale
            .iter()
            .map(|stale| (stale.code.as_str(), stale.input.as_str()))
            .collect();
        // The statement of 2024 passed 548 days on 2026-07-03; the old licence is replaced by
        // the new one and is no concern.
        assert_eq!(
            flagged,
            [
                ("EXPIRED_DOCUMENT", "doc_guarantee"),
                ("STALE_DATA_POINT", "site_visit_result"),
                ("STALE_STATEMENT", "st_2024"),
            ]
        );
        assert_eq!(freshness.stale[0].stale_since, date(2026, 3, 1));
        assert_eq!(
            freshness.stale_on,
            Some(date(2027, 1, 10)),
            "the bureau report next"
        );
    }

    #[test]
    fn a_file_is_fresh_until_its_first_input_goes_stale() {
        let mut rules = FreshnessRules::default();
        rules
            .document_max_age_days
            .insert("business_licence".into(), 30);
        let freshness = assess(&file(), &rules, date(2026, 2, 20));
        assert!(freshness.stale.is_empty(), "{:?}", freshness.stale);
        assert_eq!(
            freshness.stale_on,
            Some(date(2026, 3, 1)),
            "the guarantee expires first"
        );
        let later = assess(&file(), &rules, date(2026, 3, 4));
        assert_eq!(later.stale[0].code, "EXPIRED_DOCUMENT");
        assert_eq!(
            later.stale[1].code, "STALE_DOCUMENT",
            "the licence is 31 days old"
        );
        let never = FreshnessRules {
            statement_max_age_days: 0,
            bureau_report_max_age_days: 0,
            ..FreshnessRules::default()
        };
        let empty = FileDates {
            statement: Some(("st".into(), date(2001, 1, 1))),
            ..FileDates::default()
        };
        assert_eq!(
            assess(&empty, &never, date(2026, 1, 1)),
            Freshness::default()
        );
    }
}
