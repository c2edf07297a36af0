//! The credit policy on the wire: shown as `CreditPolicy`, and UpdateCreditPolicy's masked
//! fields read into the edits the domain applies. Payment terms are read here too (policy
//! grades and SetCreditTerms share them).

use credit_core::{Money, ServiceError, Violations};
use credit_proto::v1 as pb;
use credit_runtime::freshness_wire::{freshness_from_proto, freshness_to_proto};
use rust_decimal::Decimal;

use crate::domain::policy::{
    AutoApprovalRule, CreditPolicy, CreditPricing, GradePolicy, POLICY_FIELDS, PaymentTerms,
    PolicyEdit, PolicyUpdate,
};

use super::to_timestamp;
use crate::app::{PolicyProposal, VersionView};

/// Checked terms: at most two years net, a discount below 100 % within the net days.
pub fn parse_payment_terms(
    wire: &pb::PaymentTerms,
    field: &str,
    violations: &mut Violations,
) -> Option<PaymentTerms> {
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
    if discount_percent.is_some_and(|percent| percent > Decimal::ZERO) && discount_days == Some(0) {
        violations.add(
            format!("{field}.discount_days"),
            "must be positive when there is a discount",
        );
    }
    Some(PaymentTerms {
        net_days: net_days?,
        discount_percent: discount_percent?,
        discount_days: discount_days?,
    })
}

pub fn payment_terms_to_proto(terms: &PaymentTerms) -> pb::PaymentTerms {
    pb::PaymentTerms {
        net_days: i32::try_from(terms.net_days).unwrap_or(i32::MAX),
        discount_percent: terms.discount_percent.to_string(),
        discount_days: i32::try_from(terms.discount_days).unwrap_or(i32::MAX),
    }
}

pub fn policy_to_proto(policy: &CreditPolicy) -> pb::CreditPolicy {
    pb::CreditPolicy {
        grade_policies: policy.grade_policies.iter().map(grade_to_proto).collect(),
        default_grade_policy: Some(grade_to_proto(&policy.default_grade_policy)),
        over_limit_tolerance_percent: policy.over_limit_tolerance_percent.to_string(),
        rating_required: policy.rating_required,
        rating_grace_days: i32::try_from(policy.rating_grace_days).unwrap_or(i32::MAX),
        default_hold_ttl: Some(duration_to_proto(policy.default_hold_ttl_seconds)),
        max_hold_ttl: Some(duration_to_proto(policy.max_hold_ttl_seconds)),
        equity_share_percent: policy.equity_share_percent.to_string(),
        revenue_multiple: policy.revenue_multiple.to_string(),
        auto_approval_rules: policy
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
        etag: policy.etag(),
        auto_release_cleared_referrals: policy.auto_release_cleared_referrals,
        grade_approval_required: policy.grade_approval_required,
        investigation_required_for_first_limit: policy.investigation_required_for_first_limit,
        freshness: Some(freshness_to_proto(&policy.freshness)),
        pricing: Some(pb::CreditPricing {
            cost_of_funds_percent: policy.pricing.cost_of_funds_percent.normalize().to_string(),
            unsecured_lgd_percent: policy.pricing.unsecured_lgd_percent.normalize().to_string(),
            unrated_pd_percent: policy.pricing.unrated_pd_percent.normalize().to_string(),
            overdue_interest_percent: policy
                .pricing
                .overdue_interest_percent
                .normalize()
                .to_string(),
        }),
        approval_expiry: (policy.approval_expiry_seconds > 0)
            .then(|| duration_to_proto(policy.approval_expiry_seconds)),
        audit: policy.last_change.as_ref().map(|change| pb::AuditInfo {
            updated_at: Some(to_timestamp(change.changed_at)),
            updated_by: Some(pb::Actor::from(&change.changed_by)),
            ..Default::default()
        }),
    }
}

/// A version of the credit policy, with its chain and changes.
pub fn policy_version_to_proto(view: &VersionView<CreditPolicy>) -> pb::CreditPolicyVersion {
    let stored = view.stored.as_ref();
    pb::CreditPolicyVersion {
        version: view.version,
        policy: Some(policy_to_proto(&view.document)),
        status: super::version_status_to_proto(view) as i32,
        reason: stored.map_or_else(
            || {
                view.document.last_change.as_ref().map_or_else(
                    || "the policy the suite ships".to_owned(),
                    |change| change.reason.clone(),
                )
            },
            |stored| stored.reason.clone(),
        ),
        effective_from: super::effective_from_to_proto(view),
        chain: stored.map(|stored| super::chain_to_proto(&stored.chain)),
        changes: view.changes().iter().map(super::change_to_proto).collect(),
        proposed_at: stored.map(|stored| to_timestamp(stored.proposed_at)),
        based_on: stored.map_or(0, |stored| stored.based_on),
    }
}

/// UpdateCreditPolicy read and checked: the masked fields as edits (their problems are
/// reported with the policy's own checks when the proposal is made), the reason and the date.
pub fn parse_policy_proposal(
    request: &pb::UpdateCreditPolicyRequest,
) -> Result<PolicyProposal, ServiceError> {
    let mut violations = Violations::new();
    let wire = request.policy.clone().unwrap_or_default();
    if request.policy.is_none() {
        violations.add("policy", "is required");
    }
    let reason = request.reason.trim().to_owned();
    if reason.is_empty() {
        violations.add("reason", "is required: say why the policy changes");
    }
    let effective_from = match request.effective_from.as_ref().map(super::timestamp) {
        None => None,
        Some(Ok(at)) => Some(at),
        Some(Err(problem)) => {
            violations.add("effective_from", problem);
            None
        }
    };
    violations.finish()?;
    let paths = request
        .update_mask
        .as_ref()
        .map(|mask| mask.paths.clone())
        .unwrap_or_default();
    Ok(PolicyProposal {
        update: parse_policy_update(&wire, &paths),
        etag: wire.etag.clone(),
        reason,
        effective_from,
    })
}

/// The masked fields of `wire` as edits, in mask order, with every problem found reading
/// them; the domain adds the checks of the policy as a whole before refusing.
pub fn parse_policy_update(wire: &pb::CreditPolicy, mask: &[String]) -> PolicyUpdate {
    let mut violations = Violations::new();
    if mask.is_empty() {
        violations.add("update_mask", "names no field; name the fields to change");
    }
    let mut edits = Vec::with_capacity(mask.len());
    for field in mask {
        match field.as_str() {
            "grade_policies" => edits.push(PolicyEdit::GradePolicies(
                wire.grade_policies
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
                    .collect(),
            )),
            "default_grade_policy" => match &wire.default_grade_policy {
                Some(grade) => {
                    if let Some(parsed) =
                        parse_grade(grade, "policy.default_grade_policy", false, &mut violations)
                    {
                        edits.push(PolicyEdit::DefaultGradePolicy(parsed));
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
                    edits.push(PolicyEdit::OverLimitTolerancePercent(percent));
                }
            }
            "rating_required" => edits.push(PolicyEdit::RatingRequired(wire.rating_required)),
            "rating_grace_days" => match u32::try_from(wire.rating_grace_days) {
                Ok(days) if days <= 365 => edits.push(PolicyEdit::RatingGraceDays(days)),
                _ => violations.add("policy.rating_grace_days", "must be between 0 and 365"),
            },
            "default_hold_ttl" => {
                if let Some(seconds) = hold_ttl(
                    wire.default_hold_ttl.as_ref(),
                    "policy.default_hold_ttl",
                    &mut violations,
                ) {
                    edits.push(PolicyEdit::DefaultHoldTtlSeconds(seconds));
                }
            }
            "max_hold_ttl" => {
                if let Some(seconds) = hold_ttl(
                    wire.max_hold_ttl.as_ref(),
                    "policy.max_hold_ttl",
                    &mut violations,
                ) {
                    edits.push(PolicyEdit::MaxHoldTtlSeconds(seconds));
                }
            }
            "equity_share_percent" => {
                if let Some(percent) = percent(
                    &wire.equity_share_percent,
                    "policy.equity_share_percent",
                    Decimal::ONE_HUNDRED,
                    &mut violations,
                ) {
                    edits.push(PolicyEdit::EquitySharePercent(percent));
                }
            }
            "revenue_multiple" => {
                if let Some(multiple) = percent(
                    &wire.revenue_multiple,
                    "policy.revenue_multiple",
                    Decimal::ONE_HUNDRED,
                    &mut violations,
                ) {
                    edits.push(PolicyEdit::RevenueMultiple(multiple));
                }
            }
            "auto_approval_rules" => edits.push(PolicyEdit::AutoApprovalRules(
                wire.auto_approval_rules
                    .iter()
                    .enumerate()
                    .filter_map(|(index, rule)| {
                        parse_rule(
                            rule,
                            &format!("policy.auto_approval_rules[{index}]"),
                            &mut violations,
                        )
                    })
                    .collect(),
            )),
            "auto_release_cleared_referrals" => edits.push(
                PolicyEdit::AutoReleaseClearedReferrals(wire.auto_release_cleared_referrals),
            ),
            "grade_approval_required" => edits.push(PolicyEdit::GradeApprovalRequired(
                wire.grade_approval_required,
            )),
            "investigation_required_for_first_limit" => {
                edits.push(PolicyEdit::InvestigationRequiredForFirstLimit(
                    wire.investigation_required_for_first_limit,
                ))
            }
            "pricing" => match &wire.pricing {
                None => edits.push(PolicyEdit::Pricing(CreditPricing::default())),
                Some(pricing) => {
                    let hundred = Decimal::ONE_HUNDRED;
                    let cost = percent(
                        &pricing.cost_of_funds_percent,
                        "policy.pricing.cost_of_funds_percent",
                        hundred,
                        &mut violations,
                    );
                    let lgd = percent(
                        &pricing.unsecured_lgd_percent,
                        "policy.pricing.unsecured_lgd_percent",
                        hundred,
                        &mut violations,
                    );
                    let pd = percent(
                        &pricing.unrated_pd_percent,
                        "policy.pricing.unrated_pd_percent",
                        hundred,
                        &mut violations,
                    );
                    let interest = percent(
                        &pricing.overdue_interest_percent,
                        "policy.pricing.overdue_interest_percent",
                        hundred,
                        &mut violations,
                    );
                    if let (Some(cost), Some(lgd), Some(pd), Some(interest)) =
                        (cost, lgd, pd, interest)
                    {
                        edits.push(PolicyEdit::Pricing(CreditPricing {
                            cost_of_funds_percent: cost,
                            unsecured_lgd_percent: lgd,
                            unrated_pd_percent: pd,
                            overdue_interest_percent: interest,
                        }));
                    }
                }
            },
            "freshness" => match &wire.freshness {
                None => violations.add("policy.freshness", "is required when the mask names it"),
                Some(rules) => {
                    let rules = freshness_from_proto(rules, "policy.freshness", &mut violations);
                    edits.push(PolicyEdit::Freshness(rules));
                }
            },
            "approval_expiry" => match wire
                .approval_expiry
                .as_ref()
                .map(|duration| (duration.seconds, duration.nanos))
            {
                None => edits.push(PolicyEdit::ApprovalExpirySeconds(0)),
                Some((seconds, 0)) if (0..=365 * 86_400).contains(&seconds) => edits.push(
                    PolicyEdit::ApprovalExpirySeconds(u64::try_from(seconds).unwrap_or(0)),
                ),
                Some(_) => violations.add(
                    "policy.approval_expiry",
                    "must be whole seconds from zero (never) to one year",
                ),
            },
            other => violations.add(
                "update_mask",
                format!(
                    "{other:?} is not a policy field; fields: {}",
                    POLICY_FIELDS.join(", ")
                ),
            ),
        }
    }
    PolicyUpdate {
        fields: mask.to_vec(),
        edits,
        violations,
    }
}

fn grade_to_proto(grade: &GradePolicy) -> pb::GradePolicy {
    pb::GradePolicy {
        grade: grade.grade.clone(),
        payment_terms: Some(payment_terms_to_proto(&grade.payment_terms)),
        order_amount_cap: grade.order_amount_cap.map(Into::into),
        overdue_tolerance_days: i32::try_from(grade.overdue_tolerance_days).unwrap_or(i32::MAX),
        max_limit: grade.max_limit.map(Into::into),
        refer_beyond_tolerance: grade.refer_beyond_tolerance,
        risk_margin_percent: grade.risk_margin_percent.normalize().to_string(),
        security_use: if grade.security_extends_capacity {
            pb::SecurityUse::ExtendsCapacity
        } else {
            pb::SecurityUse::LowersLossOnly
        } as i32,
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
        Some(terms) => parse_payment_terms(terms, &format!("{field}.payment_terms"), violations),
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
    let risk_margin = if wire.risk_margin_percent.trim().is_empty() {
        Some(Decimal::ZERO)
    } else {
        percent(
            &wire.risk_margin_percent,
            &format!("{field}.risk_margin_percent"),
            Decimal::ONE_HUNDRED,
            violations,
        )
    };
    Some(GradePolicy {
        grade: grade.to_owned(),
        payment_terms: payment_terms?,
        order_amount_cap: order_amount_cap?,
        overdue_tolerance_days: overdue_tolerance_days?,
        max_limit: max_limit?,
        refer_beyond_tolerance: wire.refer_beyond_tolerance,
        // Unset reads as the shipped choice: security extends the capacity.
        security_extends_capacity: wire.security_use != pb::SecurityUse::LowersLossOnly as i32,
        risk_margin_percent: risk_margin?,
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
    fn an_update_changes_only_the_masked_fields() {
        let policy = CreditPolicy::default();
        let mut wire = policy_to_proto(&policy);
        wire.over_limit_tolerance_percent = "5".to_owned();
        wire.rating_required = true;
        let updated = policy
            .updated(parse_policy_update(
                &wire,
                &mask(&["over_limit_tolerance_percent"]),
            ))
            .unwrap();
        assert_eq!(updated.tolerance_bps(), 500);
        assert!(!updated.rating_required, "not in the mask");
        assert_eq!(updated.grade_policies, policy.grade_policies);
    }

    #[test]
    fn every_problem_of_an_update_is_named() {
        let policy = CreditPolicy::default();
        let mut wire = policy_to_proto(&policy);
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
            .updated(parse_policy_update(
                &wire,
                &mask(&[
                    "over_limit_tolerance_percent",
                    "grade_policies",
                    "auto_approval_rules",
                    "default_hold_ttl",
                    "colour",
                ]),
            ))
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
    fn two_ten_net_thirty_is_accepted() {
        let mut violations = Violations::new();
        let terms = parse_payment_terms(
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
