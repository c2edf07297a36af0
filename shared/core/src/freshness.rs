//! How old a customer's credit file may be (定期审查和更新信用信息): the credit policy's rules,
//! which limits keeps and governs, rating applies to every rating, and limits applies again
//! to approvals.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::Violations;

/// Ten years: any maximum age beyond it is better written as "never".
pub const MAX_AGE_DAYS: u32 = 3_650;
/// A review listed more than a year ahead would only be noise.
pub const MAX_NOTICE_DAYS: u32 = 365;
/// Document types the rules may name.
pub const MAX_DOCUMENT_TYPES: usize = 50;

/// The freshness rules of the credit policy.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FreshnessRules {
    /// Days after its period end a financial statement is stale; 0 = never.
    pub statement_max_age_days: u32,
    /// Days after its report date a bureau report is stale; 0 = never.
    pub bureau_report_max_age_days: u32,
    /// Days after its issue date a document of each type is stale.
    #[serde(default)]
    pub document_max_age_days: BTreeMap<String, u32>,
    /// A file review is listed this many days before a rating's first input goes stale.
    pub notice_days: u32,
    /// RateCustomer refuses while an input is stale.
    #[serde(default)]
    pub block_rating: bool,
    /// The last approving step of a limit refuses while the current rating has stale inputs.
    #[serde(default)]
    pub block_approval: bool,
}

/// The shipped rules: an annual statement stays current 18 months after its period end (the
/// next one is due well before), a bureau report a year, reviews come a month ahead, and
/// stale inputs are flagged without stopping anything.
impl Default for FreshnessRules {
    fn default() -> Self {
        Self {
            statement_max_age_days: 548,
            bureau_report_max_age_days: 365,
            document_max_age_days: BTreeMap::new(),
            notice_days: 30,
            block_rating: false,
            block_approval: false,
        }
    }
}

impl FreshnessRules {
    /// Every problem of the rules, at `<prefix>.<field>`.
    pub fn check(&self, prefix: &str, violations: &mut Violations) {
        for (name, days) in [
            ("statement_max_age_days", self.statement_max_age_days),
            (
                "bureau_report_max_age_days",
                self.bureau_report_max_age_days,
            ),
        ] {
            if days > MAX_AGE_DAYS {
                violations.add(
                    format!("{prefix}.{name}"),
                    format!("must be 0 (never) to {MAX_AGE_DAYS} days"),
                );
            }
        }
        if self.notice_days > MAX_NOTICE_DAYS {
            violations.add(
                format!("{prefix}.notice_days"),
                format!("must be 0 to {MAX_NOTICE_DAYS} days"),
            );
        }
        if self.document_max_age_days.len() > MAX_DOCUMENT_TYPES {
            violations.add(
                format!("{prefix}.document_max_age_days"),
                format!("at most {MAX_DOCUMENT_TYPES} document types"),
            );
        }
        for (document_type, days) in &self.document_max_age_days {
            let field = format!("{prefix}.document_max_age_days[{document_type}]");
            let lower_snake = crate::names::is_snake_code(document_type, 64);
            if !lower_snake {
                violations.add(
                    &field,
                    "a document type is lower_snake_case, such as audited_statement",
                );
            } else if *days == 0 || *days > MAX_AGE_DAYS {
                violations.add(&field, format!("must be 1 to {MAX_AGE_DAYS} days"));
            }
        }
    }
}
