//! The credit policy: the defaults and tolerances limits decides with, kept as data so that a
//! credit department changes them without a release. Grade defaults (payment terms, per-order
//! cap, overdue tolerance, grade cap), the over-limit tolerance band, whether a current rating
//! is required, hold lifetimes, the ProposeLimit parameters and the auto-approval rules.
//!
//! The shipped default is a common company credit policy: better grades get longer terms and
//! more overdue tolerance, and orders reach 110 % of a limit before they are declined.

use std::time::Duration;

use chrono::{DateTime, Utc};
use credit_core::freshness::FreshnessRules;
use credit_core::{Money, Violations};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use super::limits::Actor;

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
}

/// Policy defaults of one grade.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GradePolicy {
    pub grade: String,
    pub payment_terms: PaymentTerms,
    pub order_amount_cap: Option<Money>,
    pub overdue_tolerance_days: u32,
    pub max_limit: Option<Money>,
    /// Step 7.2: an order beyond the over-limit tolerance is referred to people instead of
    /// declined.
    #[serde(default)]
    pub refer_beyond_tolerance: bool,
    /// Eligible security (deposits, guarantees, collateral, insurance) extends the credit
    /// capacity to limit + security; otherwise it only lowers the loss given default. On in
    /// the shipped policy and in policies stored before the setting existed.
    #[serde(default = "on")]
    pub security_extends_capacity: bool,
    /// The margin a sale on credit to this grade must earn for its risk, percent of the price.
    #[serde(default)]
    pub risk_margin_percent: Decimal,
}

/// What credit is priced with (`domain::pricing`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CreditPricing {
    /// The average cost of funds, percent a year.
    pub cost_of_funds_percent: Decimal,
    /// The loss given default of unsecured exposure, percent.
    pub unsecured_lgd_percent: Decimal,
    /// The probability of default assumed for an unrated customer, percent.
    pub unrated_pd_percent: Decimal,
    /// Interest on overdue receivables, percent a year (ACT/365).
    #[serde(default = "customary_overdue_interest")]
    pub overdue_interest_percent: Decimal,
}

/// 0.05 % a day (日万分之五), the customary late-payment rate of Chinese commercial contracts.
fn customary_overdue_interest() -> Decimal {
    Decimal::new(1825, 2)
}

impl Default for CreditPricing {
    /// The documents' 8.2 % cost of funds, the Basel foundation 45 % LGD of senior unsecured
    /// claims, 5 % for a customer nobody has rated, and 0.05 % a day on overdue amounts.
    fn default() -> Self {
        Self {
            cost_of_funds_percent: Decimal::new(82, 1),
            unsecured_lgd_percent: Decimal::from(45),
            unrated_pd_percent: Decimal::from(5),
            overdue_interest_percent: customary_overdue_interest(),
        }
    }
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
    pub changed_by: Actor,
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
    /// An open referral whose cause has cleared (payment, block lifted, limit raised) is
    /// checked again and released by the system when the order now fits. Policies stored
    /// before the setting existed have it on, as the shipped one does.
    #[serde(default = "on")]
    pub auto_release_cleared_referrals: bool,
    /// A new grade takes effect only once the RATING_APPROVAL chain approved it
    /// (报总经理审批). Off in the shipped policy and in policies stored before it existed.
    #[serde(default)]
    pub grade_approval_required: bool,
    /// A request still waiting for its chain this long after it was made is withdrawn by the
    /// system as expired; 0 = never. Policies stored before it existed have the shipped 30
    /// days.
    #[serde(default = "thirty_days")]
    pub approval_expiry_seconds: u64,
    /// No first limit of a customer is approved before its credit investigation (信用调查) is
    /// completed (intake's InvestigationCompleted). Off in the shipped policy and in policies
    /// stored before it existed.
    #[serde(default)]
    pub investigation_required_for_first_limit: bool,
    /// How old a rating's inputs may be. Policies stored before it existed have the shipped
    /// rules.
    #[serde(default)]
    pub freshness: FreshnessRules,
    /// What credit is priced with. Policies stored before it existed have the shipped figures.
    #[serde(default)]
    pub pricing: CreditPricing,
    /// Counts the changes; the etag clients send back.
    pub version: u64,
    pub last_change: Option<PolicyChange>,
}

fn on() -> bool {
    true
}

fn thirty_days() -> u64 {
    30 * DAY
}

/// The fields UpdateCreditPolicy may name in its mask.
pub const POLICY_FIELDS: [&str; 16] = [
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
    "auto_release_cleared_referrals",
    "grade_approval_required",
    "approval_expiry",
    "investigation_required_for_first_limit",
    "freshness",
    "pricing",
];

/// One masked field of UpdateCreditPolicy, read and checked on its own.
#[derive(Debug, Clone, PartialEq)]
pub enum PolicyEdit {
    GradePolicies(Vec<GradePolicy>),
    DefaultGradePolicy(GradePolicy),
    OverLimitTolerancePercent(Decimal),
    RatingRequired(bool),
    RatingGraceDays(u32),
    DefaultHoldTtlSeconds(u64),
    MaxHoldTtlSeconds(u64),
    EquitySharePercent(Decimal),
    RevenueMultiple(Decimal),
    AutoApprovalRules(Vec<AutoApprovalRule>),
    AutoReleaseClearedReferrals(bool),
    GradeApprovalRequired(bool),
    ApprovalExpirySeconds(u64),
    InvestigationRequiredForFirstLimit(bool),
    Freshness(FreshnessRules),
    Pricing(CreditPricing),
}

/// A requested change of the policy: the masked fields that read well, in mask order, and
/// the problems of the others. The problems are refused only together with those of the
/// policy as a whole (see [`CreditPolicy::updated`]), so a caller fixes all at once.
#[derive(Debug)]
pub struct PolicyUpdate {
    /// The field names of the mask, as the request gave them.
    pub fields: Vec<String>,
    pub edits: Vec<PolicyEdit>,
    pub violations: Violations,
}

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
        refer_beyond_tolerance: false,
        security_extends_capacity: true,
        risk_margin_percent: risk_margin(grade),
    }
}

/// The shipped risk margin of a grade, percent of the price: the riskier the grade, the more
/// a sale on credit must earn (对于有风险的订单,公司应当追求更高的利润).
fn risk_margin(grade: &str) -> Decimal {
    match grade {
        "AAA" | "AA" | "A" | "EXCELLENT" => Decimal::new(5, 1),
        "BBB" | "GOOD" => Decimal::ONE,
        "BB" | "FAIR" | "" => Decimal::TWO,
        "B" | "WATCH" => Decimal::from(3),
        _ => Decimal::from(5),
    }
}

/// A grade whose orders beyond the tolerance go to people (step 7.2) instead of declining:
/// a good customer's large order is worth the general manager's look.
fn referring(policy: GradePolicy) -> GradePolicy {
    GradePolicy {
        refer_beyond_tolerance: true,
        ..policy
    }
}

impl Default for CreditPolicy {
    /// The shipped policy, caps in CNY, for both shipped rating scales: the agency-8 grades
    /// (AAA…D) and the five tiers of the credit documents (优秀 EXCELLENT, 良好 GOOD, 一般 FAIR,
    /// 关注 WATCH, 不良 POOR), each with its own terms, per-order cap, overdue tolerance and
    /// maximum limit. The list runs from least to most risky; a five-tier grade stands where
    /// its probability of default does on the agency scale (优秀 beside A, 良好 beside BBB,
    /// 一般 beside BB, 关注 beside B, 不良 beside CCC), so "at or above a grade" means the
    /// same risk whichever scale rated the customer.
    fn default() -> Self {
        Self {
            grade_policies: vec![
                referring(grade("AAA", 60, 30, None, Some(50_000_000))),
                referring(grade("AA", 60, 30, None, Some(30_000_000))),
                referring(grade("A", 45, 30, None, Some(20_000_000))),
                // 优秀: the longest terms the documents give, no per-order cap.
                referring(grade("EXCELLENT", 60, 30, None, Some(20_000_000))),
                referring(grade("BBB", 30, 15, Some(2_000_000), Some(10_000_000))),
                // 良好: standard terms.
                referring(grade("GOOD", 45, 15, Some(2_000_000), Some(10_000_000))),
                grade("BB", 30, 10, Some(1_000_000), Some(5_000_000)),
                // 一般: shorter terms, a per-order cap.
                grade("FAIR", 30, 10, Some(1_000_000), Some(5_000_000)),
                grade("B", 15, 5, Some(500_000), Some(1_000_000)),
                // 关注: short terms, small orders, watched (reviewed every three months).
                grade("WATCH", 15, 5, Some(300_000), Some(1_000_000)),
                grade("CCC", 0, 0, Some(100_000), Some(200_000)),
                // 不良: no credit; every order is referred (cash or prepayment).
                grade("POOR", 0, 0, Some(0), Some(0)),
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
            auto_release_cleared_referrals: true,
            grade_approval_required: false,
            approval_expiry_seconds: thirty_days(),
            investigation_required_for_first_limit: false,
            freshness: FreshnessRules::default(),
            pricing: CreditPricing::default(),
            version: 0,
            last_change: None,
        }
    }
}

/// The credit policy changes through proposals approved by a second person (issue #22): its
/// versions are the governed versions, numbered on from any policy stored before.
impl credit_core::governance::Governed for CreditPolicy {
    const SUBJECT: &'static str = "credit_policy";
    const RECORD_PREFIX: &'static str = "policy";

    fn without_bookkeeping(&self) -> Self {
        Self {
            version: 0,
            last_change: None,
            ..self.clone()
        }
    }

    fn stamp(&mut self, version: u32, proposer: &Actor, reason: &str, at: DateTime<Utc>) {
        self.version = u64::from(version);
        self.last_change = Some(PolicyChange {
            changed_by: proposer.clone(),
            changed_at: at,
            reason: reason.to_owned(),
        });
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

    /// The policy with `update`'s edits applied in order, checked as a whole; every problem
    /// (those found reading the request and those of the result) is reported at once.
    pub fn updated(&self, update: PolicyUpdate) -> Result<Self, Violations> {
        let PolicyUpdate {
            edits,
            mut violations,
            ..
        } = update;
        let mut next = self.clone();
        for edit in edits {
            match edit {
                PolicyEdit::GradePolicies(grades) => next.grade_policies = grades,
                PolicyEdit::DefaultGradePolicy(grade) => next.default_grade_policy = grade,
                PolicyEdit::OverLimitTolerancePercent(percent) => {
                    next.over_limit_tolerance_percent = percent;
                }
                PolicyEdit::RatingRequired(required) => next.rating_required = required,
                PolicyEdit::RatingGraceDays(days) => next.rating_grace_days = days,
                PolicyEdit::DefaultHoldTtlSeconds(seconds) => {
                    next.default_hold_ttl_seconds = seconds;
                }
                PolicyEdit::MaxHoldTtlSeconds(seconds) => next.max_hold_ttl_seconds = seconds,
                PolicyEdit::EquitySharePercent(percent) => next.equity_share_percent = percent,
                PolicyEdit::RevenueMultiple(multiple) => next.revenue_multiple = multiple,
                PolicyEdit::AutoApprovalRules(rules) => next.auto_approval_rules = rules,
                PolicyEdit::AutoReleaseClearedReferrals(on) => {
                    next.auto_release_cleared_referrals = on;
                }
                PolicyEdit::GradeApprovalRequired(on) => next.grade_approval_required = on,
                PolicyEdit::ApprovalExpirySeconds(seconds) => {
                    next.approval_expiry_seconds = seconds;
                }
                PolicyEdit::InvestigationRequiredForFirstLimit(on) => {
                    next.investigation_required_for_first_limit = on;
                }
                PolicyEdit::Freshness(rules) => next.freshness = rules,
                PolicyEdit::Pricing(pricing) => next.pricing = pricing,
            }
        }
        next.check_whole(&mut violations);
        if !violations.is_empty() {
            return Err(violations);
        }
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

#[cfg(test)]
#[allow(clippy::arithmetic_side_effects)] // fixed test figures
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn the_shipped_policy_refers_up_to_ten_percent_over_and_orders_grades_best_first() {
        let policy = CreditPolicy::default();
        assert_eq!(policy.tolerance_bps(), 1000);
        assert_eq!(policy.rank("AAA"), Some(0));
        assert_eq!(policy.rank("D"), Some(12));
        // A five-tier grade ranks with the agency grades of its probability of default.
        assert!(policy.rank("A") < policy.rank("EXCELLENT"));
        assert!(policy.rank("EXCELLENT") < policy.rank("BBB"));
        assert!(policy.rank("WATCH") < policy.rank("POOR"));
        let (bbb, listed) = policy.for_grade(Some("BBB"));
        assert!(listed);
        assert_eq!(bbb.payment_terms.net_days, 30);
        let (unrated, listed) = policy.for_grade(None);
        assert!(!listed);
        assert_eq!(unrated.overdue_tolerance_days, 30);
        assert_eq!(policy.etag(), "v0");
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
}
