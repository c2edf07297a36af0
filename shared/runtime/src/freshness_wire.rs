//! The credit policy's freshness rules between the contract (`CreditFileFreshness`) and
//! `credit_core::freshness`: limits keeps them in its policy, rating reads them from it.

use credit_core::Violations;
use credit_core::freshness::FreshnessRules;
use credit_proto::v1 as pb;

pub fn freshness_to_proto(rules: &FreshnessRules) -> pb::CreditFileFreshness {
    let days = |days: u32| i32::try_from(days).unwrap_or(i32::MAX);
    pb::CreditFileFreshness {
        statement_max_age_days: days(rules.statement_max_age_days),
        bureau_report_max_age_days: days(rules.bureau_report_max_age_days),
        document_max_age_days: rules
            .document_max_age_days
            .iter()
            .map(|(document_type, max)| (document_type.clone(), days(*max)))
            .collect(),
        notice_days: days(rules.notice_days),
        block_rating: rules.block_rating,
        block_approval: rules.block_approval,
    }
}

/// The rules a request (or a peer's answer) carries, each problem at `<prefix>.<field>`; a
/// negative number of days is refused.
pub fn freshness_from_proto(
    wire: &pb::CreditFileFreshness,
    prefix: &str,
    violations: &mut Violations,
) -> FreshnessRules {
    let mut days = |name: &str, value: i32| {
        u32::try_from(value).unwrap_or_else(|_| {
            violations.add(format!("{prefix}.{name}"), "must not be negative");
            0
        })
    };
    let statement_max_age_days = days("statement_max_age_days", wire.statement_max_age_days);
    let bureau_report_max_age_days = days(
        "bureau_report_max_age_days",
        wire.bureau_report_max_age_days,
    );
    let notice_days = days("notice_days", wire.notice_days);
    let document_max_age_days = wire
        .document_max_age_days
        .iter()
        .map(|(document_type, max)| {
            (
                document_type.clone(),
                days(&format!("document_max_age_days[{document_type}]"), *max),
            )
        })
        .collect();
    let rules = FreshnessRules {
        statement_max_age_days,
        bureau_report_max_age_days,
        document_max_age_days,
        notice_days,
        block_rating: wire.block_rating,
        block_approval: wire.block_approval,
    };
    rules.check(prefix, violations);
    rules
}
