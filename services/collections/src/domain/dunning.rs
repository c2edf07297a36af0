//! Dunning policies as data, and the dunning run's decision (`PublishDunningPolicy`,
//! `RunDunning`).
//!
//! A policy is a list of levels by days past due, each with a channel and a message
//! template; policies may differ by the customer's grade, and one policy without grades is
//! the default. The run is a pure function of the open invoices, the actions already taken
//! and the promises: it returns the actions due, and given its own output back as "already
//! taken" it returns nothing new.

use std::collections::BTreeMap;

use chrono::NaiveDate;
use credit_core::{Currency, FieldViolation, Money};
use rust_decimal::Decimal;

use super::promise::{PromiseEvaluation, PromiseStatus, PromiseToPay};
use super::receivable::{CustomerId, InvoiceId, PromiseId, days_past_due};
use super::template::{MessageTemplate, TemplateValues};

const MAX_LEVELS: usize = 20;
const MAX_POLICY_ID_LEN: usize = 64;
const MAX_NAME_LEN: usize = 200;
const MAX_GRADE_LEN: usize = 16;

/// How a customer is contacted (`ContactChannel`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ContactChannel {
    Email,
    Letter,
    Phone,
    Visit,
    /// Hand-over to legal action (lawyer, collection agency, court).
    Legal,
}

/// A level as an administrator sends it; [`DunningPolicy::parse`] checks it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DunningLevelDraft {
    /// 1, 2, … in order.
    pub level: u32,
    pub display_name: String,
    /// Days past due from which the level applies; at least 1, strictly increasing.
    pub days_past_due: u32,
    /// `None` when the caller left it unspecified (refused).
    pub channel: Option<ContactChannel>,
    /// Template id for the messaging platform; may be empty.
    pub template_id: String,
    pub message_template: String,
}

/// A policy as an administrator sends it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DunningPolicyDraft {
    pub policy_id: String,
    pub display_name: String,
    /// Grades it applies to; empty = the default policy.
    pub grades: Vec<String>,
    pub levels: Vec<DunningLevelDraft>,
}

/// A checked level.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DunningLevel {
    level: u32,
    display_name: String,
    days_past_due: u32,
    channel: ContactChannel,
    template_id: String,
    template: MessageTemplate,
}

impl DunningLevel {
    pub fn level(&self) -> u32 {
        self.level
    }
    pub fn display_name(&self) -> &str {
        &self.display_name
    }
    pub fn days_past_due(&self) -> u32 {
        self.days_past_due
    }
    pub fn channel(&self) -> ContactChannel {
        self.channel
    }
    pub fn template_id(&self) -> &str {
        &self.template_id
    }
    pub fn template(&self) -> &MessageTemplate {
        &self.template
    }
}

/// A checked, versioned dunning policy: at least one level, level numbers 1, 2, … and days
/// past due strictly increasing, every template's placeholders known.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DunningPolicy {
    policy_id: String,
    version: u32,
    display_name: String,
    /// In the order published (field paths of later checks index this list).
    grades: Vec<String>,
    levels: Vec<DunningLevel>,
}

impl DunningPolicy {
    /// Checks `draft` and stamps it with `version` (assigned by the store on publish).
    /// Reports every problem at once, with the request's field paths (`levels[2].channel`).
    pub fn parse(draft: &DunningPolicyDraft, version: u32) -> Result<Self, Vec<FieldViolation>> {
        let mut violations = Vec::new();
        let mut violation = |field: String, description: String| {
            violations.push(FieldViolation::new(field, description))
        };

        let policy_id = draft.policy_id.as_str();
        if policy_id.is_empty() {
            violation("policy_id".into(), "is required".into());
        } else if policy_id.len() > MAX_POLICY_ID_LEN
            || !policy_id
                .bytes()
                .all(|byte| byte.is_ascii_lowercase() || byte.is_ascii_digit() || byte == b'-')
        {
            violation(
                "policy_id".into(),
                format!("must be at most {MAX_POLICY_ID_LEN} lower-case letters, digits or '-'"),
            );
        }
        check_name(&draft.display_name, "display_name", &mut violation);

        let mut grades: Vec<String> = Vec::with_capacity(draft.grades.len());
        for (index, grade) in draft.grades.iter().enumerate() {
            let field = format!("grades[{index}]");
            if grade.is_empty() || grade.len() > MAX_GRADE_LEN || grade.trim() != grade {
                violation(
                    field,
                    format!("must be a grade code of 1 to {MAX_GRADE_LEN} characters"),
                );
            } else if grades.contains(grade) {
                violation(field, format!("grade '{grade}' is listed twice"));
            } else {
                grades.push(grade.clone());
            }
        }

        if draft.levels.is_empty() {
            violation("levels".into(), "must have at least one level".into());
        }
        if draft.levels.len() > MAX_LEVELS {
            violation(
                "levels".into(),
                format!("must have at most {MAX_LEVELS} levels"),
            );
        }
        let mut levels = Vec::with_capacity(draft.levels.len());
        let mut previous_days: Option<u32> = None;
        for (index, level) in draft.levels.iter().enumerate() {
            let path = |name: &str| format!("levels[{index}].{name}");
            let expected_number = u32::try_from(index + 1).unwrap_or(u32::MAX);
            if level.level != expected_number {
                violation(
                    path("level"),
                    format!("must be {expected_number}: levels are numbered 1, 2, … in order"),
                );
            }
            check_name(&level.display_name, &path("display_name"), &mut violation);
            if level.days_past_due == 0 {
                violation(
                    path("days_past_due"),
                    "must be at least 1: an invoice not yet due is not dunned".into(),
                );
            } else if let Some(previous) =
                previous_days.filter(|previous| level.days_past_due <= *previous)
            {
                violation(
                    path("days_past_due"),
                    format!("must be greater than the previous level's {previous}"),
                );
            }
            previous_days = Some(level.days_past_due);
            if level.channel.is_none() {
                violation(path("channel"), "is required".into());
            }
            if level.template_id.len() > MAX_NAME_LEN {
                violation(
                    path("template_id"),
                    format!("must be at most {MAX_NAME_LEN} characters"),
                );
            }
            let template = match MessageTemplate::parse(&level.message_template) {
                Ok(template) => Some(template),
                Err(error) => {
                    violation(path("message_template"), error.to_string());
                    None
                }
            };
            if let (Some(channel), Some(template)) = (level.channel, template) {
                levels.push(DunningLevel {
                    level: level.level,
                    display_name: level.display_name.clone(),
                    days_past_due: level.days_past_due,
                    channel,
                    template_id: level.template_id.clone(),
                    template,
                });
            }
        }
        if !violations.is_empty() {
            return Err(violations);
        }
        Ok(Self {
            policy_id: draft.policy_id.clone(),
            version,
            display_name: draft.display_name.clone(),
            grades,
            levels,
        })
    }

    pub fn policy_id(&self) -> &str {
        &self.policy_id
    }
    pub fn version(&self) -> u32 {
        self.version
    }
    pub fn display_name(&self) -> &str {
        &self.display_name
    }
    pub fn grades(&self) -> &[String] {
        &self.grades
    }
    /// Levels in ascending order; never empty.
    pub fn levels(&self) -> &[DunningLevel] {
        &self.levels
    }
    /// True when `grade` is one of the policy's grades.
    pub fn applies_to(&self, grade: &str) -> bool {
        self.grades.iter().any(|listed| listed == grade)
    }

    /// True for the policy without grades.
    pub fn is_default(&self) -> bool {
        self.grades.is_empty()
    }

    /// The highest level whose days past due are reached, if any.
    pub fn level_for_days(&self, days_past_due: u32) -> Option<&DunningLevel> {
        self.levels
            .iter()
            .rev()
            .find(|level| days_past_due >= level.days_past_due)
    }

    /// The level numbered `number`.
    pub fn level(&self, number: u32) -> Option<&DunningLevel> {
        self.levels.iter().find(|level| level.level == number)
    }

    fn last_level_number(&self) -> u32 {
        self.levels.last().map_or(0, |level| level.level)
    }
}

fn check_name(name: &str, field: &str, violation: &mut impl FnMut(String, String)) {
    if name.trim().is_empty() {
        violation(field.to_owned(), "is required".into());
    } else if name.chars().count() > MAX_NAME_LEN {
        violation(
            field.to_owned(),
            format!("must be at most {MAX_NAME_LEN} characters"),
        );
    }
}

/// Checks that `candidate` can be published next to the latest versions of the other
/// policies (`published`; an earlier version of the candidate itself is ignored): at most one
/// default policy, and a grade in one policy only. Field paths are the candidate's.
pub fn check_publishable(
    published: &[DunningPolicy],
    candidate: &DunningPolicy,
) -> Vec<FieldViolation> {
    let others: Vec<&DunningPolicy> = published
        .iter()
        .filter(|policy| policy.policy_id != candidate.policy_id)
        .collect();
    let mut violations = Vec::new();
    if candidate.is_default()
        && let Some(default) = others.iter().find(|policy| policy.is_default())
    {
        violations.push(FieldViolation::new(
            "grades",
            format!(
                "policy '{}' is already the default; list the grades this policy applies to",
                default.policy_id
            ),
        ));
    }
    for (index, grade) in candidate.grades.iter().enumerate() {
        if let Some(owner) = others.iter().find(|policy| policy.applies_to(grade)) {
            violations.push(FieldViolation::new(
                format!("grades[{index}]"),
                format!(
                    "grade '{grade}' already belongs to policy '{}'",
                    owner.policy_id
                ),
            ));
        }
    }
    violations
}

/// The policy for a customer of `grade`: the one listing the grade, else the default.
pub fn select_policy<'a>(
    policies: &'a [DunningPolicy],
    grade: Option<&str>,
) -> Option<&'a DunningPolicy> {
    grade
        .and_then(|grade| policies.iter().find(|policy| policy.applies_to(grade)))
        .or_else(|| policies.iter().find(|policy| policy.is_default()))
}

/// An open invoice considered by a dunning run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DunningCandidate {
    pub customer_id: CustomerId,
    /// For the `{{customer_name}}` placeholder.
    pub customer_name: String,
    /// The customer's current grade; `None` when unrated (the default policy applies).
    pub grade: Option<String>,
    pub invoice_id: InvoiceId,
    pub invoice_number: String,
    pub currency: Currency,
    pub due_date: NaiveDate,
    pub open_amount: Decimal,
    /// Part of the open amount under open disputes: never dunned.
    pub disputed_amount: Decimal,
}

/// An action created by an earlier run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TakenAction {
    pub invoice_id: InvoiceId,
    pub level: u32,
    /// The as-of date of the run that created it.
    pub as_of: NaiveDate,
}

/// A promise with its evaluation as of the run's date ([`super::promise::evaluate_promise`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PromiseState {
    pub promise: PromiseToPay,
    pub evaluation: PromiseEvaluation,
}

/// An action the run decided to create (`DunningAction` without ids and timestamps).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DunningActionDraft {
    pub customer_id: CustomerId,
    pub invoice_id: InvoiceId,
    pub invoice_number: String,
    pub level: u32,
    pub channel: ContactChannel,
    pub days_past_due: u32,
    /// Open amount less the disputed amount.
    pub amount: Decimal,
    pub currency: Currency,
    pub template_id: String,
    pub message: String,
    pub policy_id: String,
    pub policy_version: u32,
    pub as_of: NaiveDate,
    /// Set when the level was raised above what the days past due give because a promise
    /// covering the invoice was broken since its last action.
    pub escalated_by: Option<PromiseId>,
}

/// Why an open invoice got no action in a run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SkipReason {
    /// Not yet due, or not past the first level's days.
    NoLevelReached,
    /// The whole open amount is disputed.
    FullyDisputed,
    /// An unexpired promise covers it.
    PausedByPromise(PromiseId),
    /// The level due (or a higher one) was already taken.
    AlreadyAtLevel(u32),
    /// No policy for the customer's grade and no default policy.
    NoPolicy,
}

/// What a run decided.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct DunningPlan {
    /// Actions to create, in candidate order.
    pub actions: Vec<DunningActionDraft>,
    /// Open invoices left alone, with why.
    pub skipped: Vec<(InvoiceId, SkipReason)>,
}

/// Decides the dunning actions due as of `as_of`.
///
/// For each candidate invoice with an undisputed open amount:
/// - it is skipped while a promise covering it is unexpired (made by `as_of`, promised date
///   not passed, not cancelled), kept or not;
/// - the level due is the highest level whose days past due are reached. **When several
///   levels are due at once (a first run on an old invoice, or after a pause), only the
///   highest is created**; the skipped lower levels are never created later;
/// - a promise covering it that was broken (the day after its date) with no action taken on
///   the invoice since escalates: the level due is at least the one after the highest level
///   already taken (capped at the policy's last level);
/// - an action is created only if the level due is above every level already taken for the
///   invoice, so the same level is never created twice.
///
/// Idempotent by construction: run again with the returned actions added to `taken`, the
/// highest taken level of every dunned invoice equals its level due and the escalations are
/// consumed (an action now exists on or after the break), so nothing new is returned.
pub fn plan_dunning(
    as_of: NaiveDate,
    policies: &[DunningPolicy],
    candidates: &[DunningCandidate],
    taken: &[TakenAction],
    promises: &[PromiseState],
) -> DunningPlan {
    let mut highest_taken: BTreeMap<&InvoiceId, (u32, NaiveDate)> = BTreeMap::new();
    for action in taken {
        let entry = highest_taken
            .entry(&action.invoice_id)
            .or_insert((0, action.as_of));
        entry.0 = entry.0.max(action.level);
        entry.1 = entry.1.max(action.as_of);
    }

    let mut plan = DunningPlan::default();
    for candidate in candidates {
        let skip = |plan: &mut DunningPlan, reason| {
            plan.skipped.push((candidate.invoice_id.clone(), reason));
        };
        let amount = candidate.open_amount - candidate.disputed_amount;
        if candidate.open_amount <= Decimal::ZERO {
            continue;
        }
        if amount <= Decimal::ZERO {
            skip(&mut plan, SkipReason::FullyDisputed);
            continue;
        }
        let days = days_past_due(candidate.due_date, as_of);
        if days == 0 {
            skip(&mut plan, SkipReason::NoLevelReached);
            continue;
        }
        let Some(policy) = select_policy(policies, candidate.grade.as_deref()) else {
            skip(&mut plan, SkipReason::NoPolicy);
            continue;
        };
        let covering = || {
            promises.iter().filter(move |state| {
                state
                    .promise
                    .covers(&candidate.customer_id, &candidate.invoice_id)
            })
        };
        if let Some(pausing) = covering().find(|state| {
            state
                .promise
                .pauses_dunning(&candidate.customer_id, &candidate.invoice_id, as_of)
        }) {
            skip(
                &mut plan,
                SkipReason::PausedByPromise(pausing.promise.promise_id.clone()),
            );
            continue;
        }

        let (taken_level, last_action_on) = highest_taken
            .get(&candidate.invoice_id)
            .map_or((0, None), |(level, on)| (*level, Some(*on)));
        let by_days = policy.level_for_days(days).map_or(0, DunningLevel::level);
        let escalation = covering().find(|state| {
            state.evaluation.status == PromiseStatus::Broken
                && state.evaluation.decided_on.is_some_and(|broken_on| {
                    broken_on <= as_of && last_action_on.is_none_or(|last| last < broken_on)
                })
        });
        let mut due_level = by_days;
        let mut escalated_by = None;
        if let Some(broken) = escalation {
            let next = (taken_level + 1).min(policy.last_level_number());
            if next > due_level {
                due_level = next;
                escalated_by = Some(broken.promise.promise_id.clone());
            }
        }
        if due_level == 0 {
            skip(&mut plan, SkipReason::NoLevelReached);
            continue;
        }
        if due_level <= taken_level {
            skip(&mut plan, SkipReason::AlreadyAtLevel(taken_level));
            continue;
        }
        let Some(level) = policy.level(due_level) else {
            skip(&mut plan, SkipReason::NoPolicy);
            continue;
        };
        let values = TemplateValues {
            customer_name: candidate.customer_name.clone(),
            invoice_number: candidate.invoice_number.clone(),
            amount: Money::new(amount, candidate.currency).to_string(),
            due_date: candidate.due_date.format("%Y-%m-%d").to_string(),
            days_past_due: days.to_string(),
        };
        plan.actions.push(DunningActionDraft {
            customer_id: candidate.customer_id.clone(),
            invoice_id: candidate.invoice_id.clone(),
            invoice_number: candidate.invoice_number.clone(),
            level: level.level,
            channel: level.channel,
            days_past_due: days,
            amount,
            currency: candidate.currency,
            template_id: level.template_id.clone(),
            message: level.template.render(&values),
            policy_id: policy.policy_id.clone(),
            policy_version: policy.version,
            as_of,
            escalated_by,
        });
    }
    plan
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::promise::evaluate_promise;
    use crate::domain::promise::test_support::{paid, promise};
    use crate::domain::receivable::test_support::*;
    use rust_decimal_macros::dec;

    fn level(number: u32, days: u32, channel: ContactChannel, name: &str) -> DunningLevelDraft {
        DunningLevelDraft {
            level: number,
            display_name: name.into(),
            days_past_due: days,
            channel: Some(channel),
            template_id: format!("tpl-{number}"),
            message_template: format!(
                "{name}: invoice {{{{invoice_number}}}}, {{{{amount}}}} due {{{{due_date}}}}, \
                 {{{{days_past_due}}}} days late"
            ),
        }
    }

    /// Reminder at 1, email at 10, phone at 30, final notice at 60, legal at 90.
    fn default_draft() -> DunningPolicyDraft {
        DunningPolicyDraft {
            policy_id: "default".into(),
            display_name: "Default".into(),
            grades: vec![],
            levels: vec![
                level(1, 1, ContactChannel::Letter, "Reminder"),
                level(2, 10, ContactChannel::Email, "Email"),
                level(3, 30, ContactChannel::Phone, "Call"),
                level(4, 60, ContactChannel::Letter, "Final notice"),
                level(5, 90, ContactChannel::Legal, "Legal"),
            ],
        }
    }

    fn default_policy() -> DunningPolicy {
        DunningPolicy::parse(&default_draft(), 1).unwrap()
    }

    fn candidate(number: &str, due: &str, open: Decimal) -> DunningCandidate {
        DunningCandidate {
            customer_id: CustomerId::parse("c1").unwrap(),
            customer_name: "Acme".into(),
            grade: None,
            invoice_id: InvoiceId::parse(&format!("inv-{number}")).unwrap(),
            invoice_number: number.into(),
            currency: cny(),
            due_date: date(due),
            open_amount: open,
            disputed_amount: Decimal::ZERO,
        }
    }

    fn as_taken(plan: &DunningPlan) -> Vec<TakenAction> {
        plan.actions
            .iter()
            .map(|action| TakenAction {
                invoice_id: action.invoice_id.clone(),
                level: action.level,
                as_of: action.as_of,
            })
            .collect()
    }

    fn levels(plan: &DunningPlan) -> Vec<(&str, u32)> {
        plan.actions
            .iter()
            .map(|action| (action.invoice_number.as_str(), action.level))
            .collect()
    }

    #[test]
    fn policy_validation_names_every_bad_field() {
        let mut draft = default_draft();
        draft.policy_id = "Default Policy".into();
        draft.grades = vec!["A".into(), "A".into()];
        draft.levels[1].level = 7;
        draft.levels[2].days_past_due = 10; // not above level 2's 10
        draft.levels[3].channel = None;
        draft.levels[4].message_template = "Pay {{amount}} to {{lawyer}}".into();
        let fields: Vec<String> = DunningPolicy::parse(&draft, 1)
            .unwrap_err()
            .into_iter()
            .map(|violation| violation.field)
            .collect();
        assert_eq!(
            fields,
            [
                "policy_id",
                "grades[1]",
                "levels[1].level",
                "levels[2].days_past_due",
                "levels[3].channel",
                "levels[4].message_template",
            ]
        );
        let mut empty = default_draft();
        empty.levels.clear();
        assert_eq!(
            DunningPolicy::parse(&empty, 1).unwrap_err()[0].field,
            "levels"
        );
        let mut at_zero = default_draft();
        at_zero.levels[0].days_past_due = 0;
        assert_eq!(
            DunningPolicy::parse(&at_zero, 1).unwrap_err()[0].field,
            "levels[0].days_past_due"
        );
    }

    #[test]
    fn one_default_policy_and_each_grade_in_one_policy() {
        let default = default_policy();
        let mut high_risk = default_draft();
        high_risk.policy_id = "high-risk".into();
        high_risk.grades = vec!["CCC".into(), "D".into()];
        let high_risk = DunningPolicy::parse(&high_risk, 1).unwrap();
        let published = [default.clone(), high_risk.clone()];

        let mut second_default = default_draft();
        second_default.policy_id = "other".into();
        let second_default = DunningPolicy::parse(&second_default, 1).unwrap();
        assert_eq!(
            check_publishable(&published, &second_default)[0].field,
            "grades"
        );

        let mut overlapping = default_draft();
        overlapping.policy_id = "watch".into();
        overlapping.grades = vec!["E".into(), "D".into(), "B".into()];
        let overlapping = DunningPolicy::parse(&overlapping, 1).unwrap();
        // The path indexes the request's list: D is grades[1].
        assert_eq!(
            check_publishable(&published, &overlapping)[0].field,
            "grades[1]"
        );
        // A new version of the default itself is fine.
        assert!(
            check_publishable(
                &published,
                &DunningPolicy::parse(&default_draft(), 2).unwrap()
            )
            .is_empty()
        );

        assert_eq!(
            select_policy(&published, Some("D")).unwrap().policy_id(),
            "high-risk"
        );
        assert_eq!(
            select_policy(&published, Some("A")).unwrap().policy_id(),
            "default"
        );
        assert_eq!(
            select_policy(&published, None).unwrap().policy_id(),
            "default"
        );
        assert!(select_policy(&[high_risk], Some("A")).is_none());
    }

    #[test]
    fn a_run_creates_the_highest_level_due_and_a_second_run_creates_nothing() {
        let policies = [default_policy()];
        let as_of = date("2026-03-31");
        let mut disputed = candidate("D", "2026-03-01", dec!(300.00));
        disputed.disputed_amount = dec!(300.00);
        let mut partly_disputed = candidate("E", "2026-03-01", dec!(300.00));
        partly_disputed.disputed_amount = dec!(120.00);
        let candidates = [
            candidate("A", "2026-03-30", dec!(100.00)), // 1 day → level 1
            candidate("B", "2026-01-01", dec!(200.00)), // 89 days → levels 1–4 due, only 4
            candidate("C", "2026-04-30", dec!(50.00)),  // not due
            disputed,                                   // 30 days, all disputed
            partly_disputed,                            // 30 days → level 3 on 300 − 120
        ];
        let first = plan_dunning(as_of, &policies, &candidates, &[], &[]);
        assert_eq!(levels(&first), [("A", 1), ("B", 4), ("E", 3)]);
        let e = &first.actions[2];
        assert_eq!(e.amount, dec!(180.00));
        assert_eq!(e.channel, ContactChannel::Phone);
        assert_eq!(
            e.message,
            "Call: invoice E, 180.00 CNY due 2026-03-01, 30 days late"
        );
        assert!(first.skipped.contains(&(
            InvoiceId::parse("inv-D").unwrap(),
            SkipReason::FullyDisputed
        )));

        let taken = as_taken(&first);
        let second = plan_dunning(as_of, &policies, &candidates, &taken, &[]);
        assert!(second.actions.is_empty(), "{:?}", second.actions);

        // A day later B reaches 90 days: level 5 only; A (2 days) stays at level 1.
        let next_day = plan_dunning(date("2026-04-01"), &policies, &candidates, &taken, &[]);
        assert_eq!(levels(&next_day), [("B", 5)]);
        // The skipped levels 1–3 of B are never created afterwards.
        let mut all_taken = taken.clone();
        all_taken.extend(as_taken(&next_day));
        assert!(
            plan_dunning(date("2026-06-01"), &policies, &candidates, &all_taken, &[])
                .actions
                .iter()
                .all(|action| action.invoice_number != "B")
        );
    }

    #[test]
    fn a_promise_pauses_dunning_and_a_broken_one_escalates() {
        let policies = [default_policy()];
        let invoice = candidate("A", "2026-03-01", dec!(500.00));
        let candidates = [invoice];
        // Level 1 reminder on 03-02 (1 day past due).
        let reminder = plan_dunning(date("2026-03-02"), &policies, &candidates, &[], &[]);
        assert_eq!(levels(&reminder), [("A", 1)]);
        let taken = as_taken(&reminder);

        // On 03-05 the customer promises 500 by 03-20.
        let pledge = promise(dec!(500.00), "2026-03-05", "2026-03-20");
        let state_on = |day: &str, payments: &[_]| PromiseState {
            promise: pledge.clone(),
            evaluation: evaluate_promise(&pledge, payments, date(day)),
        };
        // 03-15: 14 days past due would give level 2 (10 days), but the promise pauses it.
        let paused = plan_dunning(
            date("2026-03-15"),
            &policies,
            &candidates,
            &taken,
            &[state_on("2026-03-15", &[])],
        );
        assert!(paused.actions.is_empty());
        assert_eq!(
            paused.skipped,
            [(
                InvoiceId::parse("inv-A").unwrap(),
                SkipReason::PausedByPromise(pledge.promise_id.clone())
            )]
        );

        // Only 200 paid by 03-20: broken on 03-21. On 03-21 (20 days) the days give level 2;
        // the broken promise asks for at least taken + 1 = 2 as well: level 2, no escalation.
        let partial = [paid("inv-A", dec!(200.00), "2026-03-10")];
        let broken = state_on("2026-03-21", &partial);
        assert_eq!(broken.evaluation.status, PromiseStatus::Broken);
        let mut after_break = candidates.clone();
        after_break[0].open_amount = dec!(300.00);
        let resumed = plan_dunning(
            date("2026-03-21"),
            &policies,
            &after_break,
            &taken,
            std::slice::from_ref(&broken),
        );
        assert_eq!(levels(&resumed), [("A", 2)]);
        assert_eq!(resumed.actions[0].escalated_by, None);
        assert_eq!(resumed.actions[0].amount, dec!(300.00));

        // Escalation proper: invoice B due 02-01 got level 1 on 02-02 and level 2 on 02-11
        // (10 days); a promise made 02-15 for 02-20 was not paid. On 02-21 B is 20 days past
        // due, which only reaches level 2, but the break escalates to taken + 1 = level 3
        // (which the days alone would give on 03-03, at 30 days).
        let b = [candidate("B", "2026-02-01", dec!(800.00))];
        let b_id = InvoiceId::parse("inv-B").unwrap();
        let mut b_taken = vec![
            TakenAction {
                invoice_id: b_id.clone(),
                level: 1,
                as_of: date("2026-02-02"),
            },
            TakenAction {
                invoice_id: b_id.clone(),
                level: 2,
                as_of: date("2026-02-11"),
            },
        ];
        let b_promise = promise(dec!(800.00), "2026-02-15", "2026-02-20");
        let b_broken = PromiseState {
            evaluation: evaluate_promise(&b_promise, &[], date("2026-02-21")),
            promise: b_promise.clone(),
        };
        assert_eq!(b_broken.evaluation.decided_on, Some(date("2026-02-21")));
        // On the promised date itself B is still paused.
        let b_paused = PromiseState {
            evaluation: evaluate_promise(&b_promise, &[], date("2026-02-20")),
            promise: b_promise.clone(),
        };
        assert!(
            plan_dunning(date("2026-02-20"), &policies, &b, &b_taken, &[b_paused])
                .actions
                .is_empty()
        );
        let escalated = plan_dunning(
            date("2026-02-21"),
            &policies,
            &b,
            &b_taken,
            std::slice::from_ref(&b_broken),
        );
        assert_eq!(levels(&escalated), [("B", 3)]);
        assert_eq!(
            escalated.actions[0].escalated_by,
            Some(b_promise.promise_id.clone())
        );
        assert_eq!(escalated.actions[0].channel, ContactChannel::Phone);
        assert_eq!(escalated.actions[0].days_past_due, 20);
        // Run again with that action taken: the escalation is consumed, nothing new, on the
        // same day or the next.
        b_taken.extend(as_taken(&escalated));
        for day in ["2026-02-21", "2026-02-22"] {
            let again = plan_dunning(
                date(day),
                &policies,
                &b,
                &b_taken,
                std::slice::from_ref(&b_broken),
            );
            assert!(again.actions.is_empty(), "{day}: {:?}", again.actions);
        }
    }

    #[test]
    fn the_policy_of_the_customers_grade_applies() {
        let mut strict = default_draft();
        strict.policy_id = "strict".into();
        strict.grades = vec!["D".into()];
        strict.levels = vec![level(1, 1, ContactChannel::Legal, "Legal")];
        let policies = [default_policy(), DunningPolicy::parse(&strict, 3).unwrap()];
        let mut risky = candidate("R", "2026-03-25", dec!(10.00));
        risky.grade = Some("D".into());
        let plan = plan_dunning(date("2026-03-31"), &policies, &[risky], &[], &[]);
        assert_eq!(plan.actions[0].channel, ContactChannel::Legal);
        assert_eq!(plan.actions[0].policy_id, "strict");
        assert_eq!(plan.actions[0].policy_version, 3);
    }
}
