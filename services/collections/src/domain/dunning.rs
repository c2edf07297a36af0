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
mod tests;
