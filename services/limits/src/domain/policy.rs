//! The credit policy: the defaults and tolerances limits decides with, kept as data so that a
//! credit department changes them without a release. Grade defaults (payment terms, per-order
//! cap, overdue tolerance, grade cap), the over-limit tolerance band, whether a current rating
//! is required, hold lifetimes, the ProposeLimit parameters and the auto-approval rules.
//!
//! The shipped default is a common company credit policy: better grades get longer terms and
//! more overdue tolerance, and orders reach 110 % of a limit before they are declined.

use std::time::Duration;

use chrono::{DateTime, Utc};
use credit_core::{Money, ServiceError, Violations};
use credit_proto::v1 as pb;
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use super::limits::{Person, to_timestamp};

/// Payment terms: due `net_days` after the invoice date, `discount_percent` off when paid
/// within `discount_days` ("2/10 net 30").
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PaymentTerms {
    pub net_days: u32,
    pub discount_percent: Decimal,
    pub discount_days: u32,
}

impl PaymentTerms {
    pub fn net(net_days: u32) -> Self {
        Self {
            net_days,
            discount_percent: Decimal::ZERO,
            discount_days: 0,
        }
    }

    /// Checked terms: at most two years net, a discount below 100 % within the net days.
    pub fn parse(
        wire: &pb::PaymentTerms,
        field: &str,
        violations: &mut Violations,
    ) -> Option<Self> {
        let net_days = u32::try_from(wire.net_days)
            .ok()
            .filter(|days| *days <= 730);
        if net_days.is_none() {
            violations.add(format!("{field}.net_days"), "must be between 0 and 730");
        }
        let discount_percent = match wire.discount_percent.trim() {
            "" => Some(Decimal::ZERO),
            text => match text.parse::<Decimal>() {
                Ok(percent) if percent >= Decimal::ZERO && percent < Decimal::ONE_HUNDRED => {
                    Some(percent.normalize())
                }
                _ => {
                    violations.add(
                        format!("{field}.discount_percent"),
                        "must be a decimal from 0 to below 100",
                    );
                    None
                }
            },
        };
        let discount_days = u32::try_from(wire.discount_days).ok();
        match (net_days, discount_days) {
            (Some(net), Some(days)) if days <= net => {}
            _ => violations.add(
                format!("{field}.discount_days"),
                "must be between 0 and the net days",
            ),
        }
        if discount_percent.is_some_and(|percent| percent > Decimal::ZERO)
            && discount_days == Some(0)
        {
            violations.add(
                format!("{field}.discount_days"),
                "must be positive when there is a discount",
            );
        }
        Some(Self {
            net_days: net_days?,
            discount_percent: discount_percent?,
            discount_days: discount_days?,
        })
    }

    pub fn to_proto(&self) -> pb::PaymentTerms {
        pb::PaymentTerms {
            net_days: i32::try_from(self.net_days).unwrap_or(i32::MAX),
            discount_percent: self.discount_percent.to_string(),
            discount_days: i32::try_from(self.discount_days).unwrap_or(i32::MAX),
        }
    }
}

/// Policy defaults of one grade.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GradePolicy {
    pub grade: String,
    pub payment_terms: PaymentTerms,
    pub order_amount_cap: Option<Money>,
    pub overdue_tolerance_days: u32,
    pub max_limit: Option<Money>,
}

/// Approves a customer limit change without a checker when it is small.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AutoApprovalRule {
    pub rule_id: String,
    pub min_grade: String,
    pub max_increase_percent: Decimal,
    pub max_amount: Option<Money>,
    pub description: String,
}

/// The last change of the policy, for the audit field and the etag.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PolicyChange {
    pub changed_by: Person,
    pub changed_at: DateTime<Utc>,
    pub reason: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CreditPolicy {
    /// Best grade first: this order defines "at or above a grade".
    pub grade_policies: Vec<GradePolicy>,
    pub default_grade_policy: GradePolicy,
    pub over_limit_tolerance_percent: Decimal,
    pub rating_required: bool,
    pub rating_grace_days: u32,
    pub default_hold_ttl_seconds: u64,
    pub max_hold_ttl_seconds: u64,
    pub equity_share_percent: Decimal,
    pub revenue_multiple: Decimal,
    pub auto_approval_rules: Vec<AutoApprovalRule>,
    /// Counts the changes; the etag clients send back.
    pub version: u64,
    pub last_change: Option<PolicyChange>,
}

/// The fields UpdateCreditPolicy may name in its mask.
pub const POLICY_FIELDS: [&str; 10] = [
    "grade_policies",
    "default_grade_policy",
    "over_limit_tolerance_percent",
    "rating_required",
    "rating_grace_days",
    "default_hold_ttl",
    "max_hold_ttl",
    "equity_share_percent",
    "revenue_multiple",
    "auto_approval_rules",
];

const DAY: u64 = 24 * 60 * 60;

fn cny(amount: i64) -> Option<Money> {
    Money::parse(&amount.to_string(), "CNY").ok()
}

fn grade(
    grade: &str,
    net_days: u32,
    overdue_tolerance_days: u32,
    order_amount_cap: Option<i64>,
    max_limit: Option<i64>,
) -> GradePolicy {
    GradePolicy {
        grade: grade.to_owned(),
        payment_terms: PaymentTerms::net(net_days),
        order_amount_cap: order_amount_cap.and_then(cny),
        overdue_tolerance_days,
        max_limit: max_limit.and_then(cny),
    }
}

impl Default for CreditPolicy {
    /// The shipped policy, on the agency-8 scale; caps in CNY.
    fn default() -> Self {
        Self {
            grade_policies: vec![
                grade("AAA", 60, 30, None, Some(50_000_000)),
                grade("AA", 60, 30, None, Some(30_000_000)),
                grade("A", 45, 30, None, Some(20_000_000)),
                grade("BBB", 30, 15, Some(2_000_000), Some(10_000_000)),
                grade("BB", 30, 10, Some(1_000_000), Some(5_000_000)),
                grade("B", 15, 5, Some(500_000), Some(1_000_000)),
                grade("CCC", 0, 0, Some(100_000), Some(200_000)),
                grade("D", 0, 0, Some(0), Some(0)),
            ],
            default_grade_policy: grade("", 30, 30, None, None),
            over_limit_tolerance_percent: Decimal::TEN,
            rating_required: false,
            rating_grace_days: 30,
            default_hold_ttl_seconds: 7 * DAY,
            max_hold_ttl_seconds: 90 * DAY,
            equity_share_percent: Decimal::from(20),
            revenue_multiple: Decimal::new(15, 1),
            auto_approval_rules: Vec::new(),
            version: 0,
            last_change: None,
        }
    }
}

impl CreditPolicy {
    pub fn etag(&self) -> String {
        format!("v{}", self.version)
    }

    /// The defaults of `grade`, or the default grade policy for unrated customers and grades
    /// the table does not list.
    pub fn for_grade(&self, grade: Option<&str>) -> (&GradePolicy, bool) {
        match grade.and_then(|grade| {
            self.grade_policies
                .iter()
                .find(|policy| policy.grade == grade)
        }) {
            Some(policy) => (policy, true),
            None => (&self.default_grade_policy, false),
        }
    }

    /// The tolerance band in basis points (10 % = 1000), as the exposure cache takes it.
    pub fn tolerance_bps(&self) -> u32 {
        self.over_limit_tolerance_percent
            .checked_mul(Decimal::ONE_HUNDRED)
            .and_then(|bps| bps.trunc().try_into().ok())
            .unwrap_or(0)
    }

    pub fn default_hold_ttl(&self) -> Duration {
        Duration::from_secs(self.default_hold_ttl_seconds)
    }

    pub fn max_hold_ttl(&self) -> Duration {
        Duration::from_secs(self.max_hold_ttl_seconds)
    }

    /// The first auto-approval rule that approves a customer's limit change from `current`
    /// to `new` at `grade`: the grade at or above the rule's, the new amount at most the
    /// rule's percent above the current limit (decreases always qualify) and within its
    /// absolute bound. A first limit, another currency or an unrated customer never
    /// qualifies: those need a person.
    pub fn auto_approval(
        &self,
        grade: Option<&str>,
        current: Option<Money>,
        new: Money,
    ) -> Option<&AutoApprovalRule> {
        let rank = self.rank(grade?)?;
        let current = current.filter(|current| current.currency() == new.currency())?;
        self.auto_approval_rules.iter().find(|rule| {
            let grade_ok = self.rank(&rule.min_grade).is_some_and(|min| rank <= min);
            let ceiling = rule
                .max_increase_percent
                .checked_div(Decimal::ONE_HUNDRED)
                .and_then(|fraction| Decimal::ONE.checked_add(fraction))
                .and_then(|factor| current.amount().checked_mul(factor));
            // A ceiling beyond Decimal's range bounds nothing.
            let increase_ok = ceiling.is_none_or(|ceiling| new.amount() <= ceiling);
            let bound_ok = rule.max_amount.is_none_or(|bound| {
                bound.currency() == new.currency() && new.amount() <= bound.amount()
            });
            grade_ok && increase_ok && bound_ok
        })
    }

    /// Position of `grade` in the table, 0 = best; `None` for unlisted grades.
    pub fn rank(&self, grade: &str) -> Option<usize> {
        self.grade_policies
            .iter()
            .position(|policy| policy.grade == grade)
    }

    pub fn to_proto(&self) -> pb::CreditPolicy {
        pb::CreditPolicy {
            grade_policies: self.grade_policies.iter().map(grade_to_proto).collect(),
            default_grade_policy: Some(grade_to_proto(&self.default_grade_policy)),
            over_limit_tolerance_percent: self.over_limit_tolerance_percent.to_string(),
            rating_required: self.rating_required,
            rating_grace_days: i32::try_from(self.rating_grace_days).unwrap_or(i32::MAX),
            default_hold_ttl: Some(duration_to_proto(self.default_hold_ttl_seconds)),
            max_hold_ttl: Some(duration_to_proto(self.max_hold_ttl_seconds)),
            equity_share_percent: self.equity_share_percent.to_string(),
            revenue_multiple: self.revenue_multiple.to_string(),
            auto_approval_rules: self
                .auto_approval_rules
                .iter()
                .map(|rule| pb::AutoApprovalRule {
                    rule_id: rule.rule_id.clone(),
                    min_grade: rule.min_grade.clone(),
                    max_increase_percent: rule.max_increase_percent.to_string(),
                    max_amount: rule.max_amount.map(Into::into),
                    description: rule.description.clone(),
                })
                .collect(),
            etag: self.etag(),
            audit: self.last_change.as_ref().map(|change| pb::AuditInfo {
                updated_at: Some(to_timestamp(change.changed_at)),
                updated_by: Some(change.changed_by.to_proto()),
                ..Default::default()
            }),
        }
    }

    /// The policy with the masked fields taken from `wire`, checked as a whole; every
    /// problem is reported at once, named by its field path.
    pub fn updated(&self, wire: &pb::CreditPolicy, mask: &[String]) -> Result<Self, ServiceError> {
        let mut violations = Violations::new();
        if mask.is_empty() {
            violations.add("update_mask", "names no field; name the fields to change");
        }
        let mut next = self.clone();
        for field in mask {
            match field.as_str() {
                "grade_policies" => {
                    next.grade_policies = wire
                        .grade_policies
                        .iter()
                        .enumerate()
                        .filter_map(|(index, grade)| {
                            parse_grade(
                                grade,
                                &format!("policy.grade_policies[{index}]"),
                                true,
                                &mut violations,
                            )
                        })
                        .collect();
                }
                "default_grade_policy" => match &wire.default_grade_policy {
                    Some(grade) => {
                        if let Some(parsed) = parse_grade(
                            grade,
                            "policy.default_grade_policy",
                            false,
                            &mut violations,
                        ) {
                            next.default_grade_policy = parsed;
                        }
                    }
                    None => violations.add("policy.default_grade_policy", "is required"),
                },
                "over_limit_tolerance_percent" => {
                    if let Some(percent) = percent(
                        &wire.over_limit_tolerance_percent,
                        "policy.over_limit_tolerance_percent",
                        Decimal::ONE_HUNDRED,
                        &mut violations,
                    ) {
                        next.over_limit_tolerance_percent = percent;
                    }
                }
                "rating_required" => next.rating_required = wire.rating_required,
                "rating_grace_days" => match u32::try_from(wire.rating_grace_days) {
                    Ok(days) if days <= 365 => next.rating_grace_days = days,
                    _ => violations.add("policy.rating_grace_days", "must be between 0 and 365"),
                },
                "default_hold_ttl" => {
                    if let Some(seconds) = hold_ttl(
                        wire.default_hold_ttl.as_ref(),
                        "policy.default_hold_ttl",
                        &mut violations,
                    ) {
                        next.default_hold_ttl_seconds = seconds;
                    }
                }
                "max_hold_ttl" => {
                    if let Some(seconds) = hold_ttl(
                        wire.max_hold_ttl.as_ref(),
                        "policy.max_hold_ttl",
                        &mut violations,
                    ) {
                        next.max_hold_ttl_seconds = seconds;
                    }
                }
                "equity_share_percent" => {
                    if let Some(percent) = percent(
                        &wire.equity_share_percent,
                        "policy.equity_share_percent",
                        Decimal::ONE_HUNDRED,
                        &mut violations,
                    ) {
                        next.equity_share_percent = percent;
                    }
                }
                "revenue_multiple" => {
                    if let Some(multiple) = percent(
                        &wire.revenue_multiple,
                        "policy.revenue_multiple",
                        Decimal::ONE_HUNDRED,
                        &mut violations,
                    ) {
                        next.revenue_multiple = multiple;
                    }
                }
                "auto_approval_rules" => {
                    next.auto_approval_rules = wire
                        .auto_approval_rules
                        .iter()
                        .enumerate()
                        .filter_map(|(index, rule)| {
                            parse_rule(
                                rule,
                                &format!("policy.auto_approval_rules[{index}]"),
                                &mut violations,
                            )
                        })
                        .collect();
                }
                other => violations.add(
                    "update_mask",
                    format!(
                        "{other:?} is not a policy field; fields: {}",
                        POLICY_FIELDS.join(", ")
                    ),
                ),
            }
        }
        next.check_whole(&mut violations);
        violations.finish()?;
        Ok(next)
    }

    /// Checks that need more than one field: unique grades, rules naming listed grades, a
    /// default hold lifetime within the maximum.
    fn check_whole(&self, violations: &mut Violations) {
        let mut seen = std::collections::HashSet::new();
        for (index, grade) in self.grade_policies.iter().enumerate() {
            if !seen.insert(grade.grade.as_str()) {
                violations.add(
                    format!("policy.grade_policies[{index}].grade"),
                    format!("{} is listed twice", grade.grade),
                );
            }
        }
        for (index, rule) in self.auto_approval_rules.iter().enumerate() {
            if self.rank(&rule.min_grade).is_none() {
                violations.add(
                    format!("policy.auto_approval_rules[{index}].min_grade"),
                    format!("{} is not a grade of grade_policies", rule.min_grade),
                );
            }
        }
        if self.default_hold_ttl_seconds > self.max_hold_ttl_seconds {
            violations.add("policy.default_hold_ttl", "must not exceed max_hold_ttl");
        }
    }
}

fn grade_to_proto(grade: &GradePolicy) -> pb::GradePolicy {
    pb::GradePolicy {
        grade: grade.grade.clone(),
        payment_terms: Some(grade.payment_terms.to_proto()),
        order_amount_cap: grade.order_amount_cap.map(Into::into),
        overdue_tolerance_days: i32::try_from(grade.overdue_tolerance_days).unwrap_or(i32::MAX),
        max_limit: grade.max_limit.map(Into::into),
    }
}

fn duration_to_proto(seconds: u64) -> prost_types::Duration {
    prost_types::Duration {
        seconds: i64::try_from(seconds).unwrap_or(i64::MAX),
        nanos: 0,
    }
}

fn optional_money(
    wire: Option<&pb::Money>,
    field: String,
    violations: &mut Violations,
) -> Option<Option<Money>> {
    match wire {
        None => Some(None),
        Some(money) => violations
            .check(&field, Money::try_from(money).and_then(Money::non_negative))
            .map(Some),
    }
}

fn parse_grade(
    wire: &pb::GradePolicy,
    field: &str,
    grade_required: bool,
    violations: &mut Violations,
) -> Option<GradePolicy> {
    let grade = wire.grade.trim();
    if grade_required && (grade.is_empty() || grade.len() > 16) {
        violations.add(
            format!("{field}.grade"),
            "is required, at most 16 characters",
        );
    }
    let payment_terms = match &wire.payment_terms {
        Some(terms) => PaymentTerms::parse(terms, &format!("{field}.payment_terms"), violations),
        None => {
            violations.add(format!("{field}.payment_terms"), "is required");
            None
        }
    };
    let overdue_tolerance_days = match u32::try_from(wire.overdue_tolerance_days) {
        Ok(days) if days <= 365 => Some(days),
        _ => {
            violations.add(
                format!("{field}.overdue_tolerance_days"),
                "must be between 0 and 365",
            );
            None
        }
    };
    let order_amount_cap = optional_money(
        wire.order_amount_cap.as_ref(),
        format!("{field}.order_amount_cap"),
        violations,
    );
    let max_limit = optional_money(
        wire.max_limit.as_ref(),
        format!("{field}.max_limit"),
        violations,
    );
    Some(GradePolicy {
        grade: grade.to_owned(),
        payment_terms: payment_terms?,
        order_amount_cap: order_amount_cap?,
        overdue_tolerance_days: overdue_tolerance_days?,
        max_limit: max_limit?,
    })
}

fn parse_rule(
    wire: &pb::AutoApprovalRule,
    field: &str,
    violations: &mut Violations,
) -> Option<AutoApprovalRule> {
    let rule_id = wire.rule_id.trim();
    if rule_id.is_empty() || rule_id.len() > 64 {
        violations.add(
            format!("{field}.rule_id"),
            "is required, at most 64 characters",
        );
    }
    let max_increase_percent = percent(
        &wire.max_increase_percent,
        &format!("{field}.max_increase_percent"),
        Decimal::ONE_HUNDRED,
        violations,
    );
    let max_amount = optional_money(
        wire.max_amount.as_ref(),
        format!("{field}.max_amount"),
        violations,
    );
    Some(AutoApprovalRule {
        rule_id: rule_id.to_owned(),
        min_grade: wire.min_grade.trim().to_owned(),
        max_increase_percent: max_increase_percent?,
        max_amount: max_amount?,
        description: wire.description.trim().to_owned(),
    })
}

/// A decimal from 0 to `max` (inclusive).
fn percent(text: &str, field: &str, max: Decimal, violations: &mut Violations) -> Option<Decimal> {
    match text.trim().parse::<Decimal>() {
        Ok(value) if value >= Decimal::ZERO && value <= max => Some(value.normalize()),
        _ => {
            violations.add(field, format!("must be a decimal from 0 to {max}"));
            None
        }
    }
}

/// A hold lifetime: from a minute to a year, whole seconds.
fn hold_ttl(
    wire: Option<&prost_types::Duration>,
    field: &str,
    violations: &mut Violations,
) -> Option<u64> {
    match wire.map(|duration| (duration.seconds, duration.nanos)) {
        Some((seconds, 0)) if (60..=365 * 86_400).contains(&seconds) => u64::try_from(seconds).ok(),
        _ => {
            violations.add(field, "must be whole seconds from one minute to one year");
            None
        }
    }
}

#[cfg(test)]
#[allow(clippy::arithmetic_side_effects)] // fixed test figures
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    fn mask(fields: &[&str]) -> Vec<String> {
        fields.iter().map(|field| (*field).to_owned()).collect()
    }

    #[test]
    fn the_shipped_policy_refers_up_to_ten_percent_over_and_orders_grades_best_first() {
        let policy = CreditPolicy::default();
        assert_eq!(policy.tolerance_bps(), 1000);
        assert_eq!(policy.rank("AAA"), Some(0));
        assert_eq!(policy.rank("D"), Some(7));
        let (bbb, listed) = policy.for_grade(Some("BBB"));
        assert!(listed);
        assert_eq!(bbb.payment_terms.net_days, 30);
        let (unrated, listed) = policy.for_grade(None);
        assert!(!listed);
        assert_eq!(unrated.overdue_tolerance_days, 30);
        assert_eq!(policy.etag(), "v0");
    }

    #[test]
    fn an_update_changes_only_the_masked_fields() {
        let policy = CreditPolicy::default();
        let mut wire = policy.to_proto();
        wire.over_limit_tolerance_percent = "5".to_owned();
        wire.rating_required = true;
        let updated = policy
            .updated(&wire, &mask(&["over_limit_tolerance_percent"]))
            .unwrap();
        assert_eq!(updated.tolerance_bps(), 500);
        assert!(!updated.rating_required, "not in the mask");
        assert_eq!(updated.grade_policies, policy.grade_policies);
    }

    #[test]
    fn every_problem_of_an_update_is_named() {
        let policy = CreditPolicy::default();
        let mut wire = policy.to_proto();
        wire.over_limit_tolerance_percent = "-1".to_owned();
        wire.grade_policies[1].grade = "AAA".to_owned();
        wire.grade_policies[2].payment_terms = Some(pb::PaymentTerms {
            net_days: 30,
            discount_percent: "2".to_owned(),
            discount_days: 45,
        });
        wire.auto_approval_rules.push(pb::AutoApprovalRule {
            rule_id: "small".to_owned(),
            min_grade: "Z".to_owned(),
            max_increase_percent: "10".to_owned(),
            ..Default::default()
        });
        wire.default_hold_ttl = Some(prost_types::Duration {
            seconds: 5,
            nanos: 0,
        });
        let error = policy
            .updated(
                &wire,
                &mask(&[
                    "over_limit_tolerance_percent",
                    "grade_policies",
                    "auto_approval_rules",
                    "default_hold_ttl",
                    "colour",
                ]),
            )
            .unwrap_err();
        let text = format!("{error:?}");
        for field in [
            "policy.over_limit_tolerance_percent",
            "policy.grade_policies[1].grade",
            "policy.grade_policies[2].payment_terms.discount_days",
            "policy.auto_approval_rules[0].min_grade",
            "policy.default_hold_ttl",
            "update_mask",
        ] {
            assert!(text.contains(field), "{field} missing in {text}");
        }
    }

    #[test]
    fn small_changes_of_good_grades_are_approved_by_the_first_rule_that_applies() {
        let policy = CreditPolicy {
            auto_approval_rules: vec![AutoApprovalRule {
                rule_id: "small-increase".to_owned(),
                min_grade: "BBB".to_owned(),
                max_increase_percent: Decimal::TEN,
                max_amount: Money::parse("2000000", "CNY").ok(),
                description: String::new(),
            }],
            ..CreditPolicy::default()
        };
        let money = |amount: &str| Money::parse(amount, "CNY").unwrap();
        let current = Some(money("1000000"));
        let approve = |grade, current, new| {
            policy
                .auto_approval(grade, current, new)
                .map(|rule| rule.rule_id.clone())
        };
        assert_eq!(
            approve(Some("A"), current, money("1100000")),
            Some("small-increase".to_owned())
        );
        assert_eq!(
            approve(Some("BBB"), current, money("900000")),
            Some("small-increase".to_owned())
        );
        assert_eq!(
            approve(Some("A"), current, money("1100000.01")),
            None,
            "over 10 %"
        );
        assert_eq!(
            approve(Some("BB"), current, money("1000001")),
            None,
            "grade below BBB"
        );
        assert_eq!(approve(None, current, money("1000001")), None, "unrated");
        assert_eq!(
            approve(Some("A"), None, money("1000")),
            None,
            "a first limit"
        );
        assert_eq!(
            approve(Some("AAA"), Some(money("1900000")), money("2000001")),
            None,
            "beyond the absolute bound"
        );
    }

    #[test]
    fn two_ten_net_thirty_is_accepted() {
        let mut violations = Violations::new();
        let terms = PaymentTerms::parse(
            &pb::PaymentTerms {
                net_days: 30,
                discount_percent: "2".to_owned(),
                discount_days: 10,
            },
            "terms.payment_terms",
            &mut violations,
        )
        .unwrap();
        assert!(violations.is_empty());
        assert_eq!(terms.discount_percent, Decimal::TWO);
    }
}
