//! Approval chains: who must agree, in which order, before a person's decision takes effect.
//!
//! One mechanism for every kind of decision the credit process asks people to make (a limit
//! request, an order referral, a write-off, a grade, an override, a terms or policy change).
//! The **approval matrix** is data: for each kind of decision, rules in order, each with
//! conditions on the decision's figures and the steps of the chain it starts. The first rule
//! of the kind whose conditions all hold chooses the chain; the last rule of every kind has no
//! conditions, so every decision finds one.
//!
//! A **chain** walks its steps one at a time. A step names the roles that may decide it and
//! whether the decider's approval authority must cover the decision's amount; an *inform
//! only* step (备案, the board's filing) needs nobody's approval and is marked informed when
//! the chain completes. Every step is decided by a different person from the maker and from
//! the deciders of every other step ([`Actor::same_person_as`]). A decider may approve,
//! reject (the chain ends), or return the request to its maker for information; the maker
//! resubmits it to the same step with the answer.
//!
//! Pure: the caller converts money into the matrix's currency before it asks, stores the
//! chain with the record it approves, and acts on [`Progress`].

use std::collections::BTreeSet;

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use crate::actor::Actor;
use crate::error::{ServiceError, Violations};
use crate::identity::{Principal, Role};
use crate::money::{Currency, Money};

mod shipped;

pub use shipped::shipped_matrix;

/// The kinds of decision that go through an approval chain.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum DecisionKind {
    LimitRequest,
    OrderReferral,
    WriteOff,
    RatingApproval,
    RatingOverride,
    TermsChange,
    PolicyChange,
    /// A review of a customer's limit, terms and monitoring after its grade changed.
    CreditReview,
    /// A change of the security register: a registration, a release, a higher valuation.
    SecurityChange,
}

impl DecisionKind {
    pub const ALL: [DecisionKind; 9] = [
        DecisionKind::LimitRequest,
        DecisionKind::OrderReferral,
        DecisionKind::WriteOff,
        DecisionKind::RatingApproval,
        DecisionKind::RatingOverride,
        DecisionKind::TermsChange,
        DecisionKind::PolicyChange,
        DecisionKind::CreditReview,
        DecisionKind::SecurityChange,
    ];

    /// The stored and displayed name, as in the contract's `DecisionKind` without its prefix.
    pub fn as_str(&self) -> &'static str {
        match self {
            DecisionKind::LimitRequest => "LIMIT_REQUEST",
            DecisionKind::OrderReferral => "ORDER_REFERRAL",
            DecisionKind::WriteOff => "WRITE_OFF",
            DecisionKind::RatingApproval => "RATING_APPROVAL",
            DecisionKind::RatingOverride => "RATING_OVERRIDE",
            DecisionKind::TermsChange => "TERMS_CHANGE",
            DecisionKind::PolicyChange => "POLICY_CHANGE",
            DecisionKind::CreditReview => "CREDIT_REVIEW",
            DecisionKind::SecurityChange => "SECURITY_CHANGE",
        }
    }

    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|kind| kind.as_str() == name)
    }
}

/// The figures of one decision that a rule's conditions test, amounts in the matrix's
/// currency. A figure the decision does not have is `None`; a condition on it does not hold.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Figures {
    /// The amount at stake: the limit asked for, the order, the write-off.
    pub amount: Option<Decimal>,
    /// How far the order takes exposure past the limit.
    pub overshoot: Option<Decimal>,
    /// Change of a limit against the one in force, in percent ("25" = +25 %).
    pub change_percent: Option<Decimal>,
    /// The customer's grade.
    pub grade: Option<String>,
    pub oldest_overdue_days: Option<i32>,
    /// Whether the amount exceeds the maximum limit of the customer's grade.
    pub exceeds_grade_max_limit: bool,
    /// How many notches of its scale a grade moves, up or down (an override, a new grade).
    pub grade_notches: Option<u32>,
}

/// When a rule applies: every condition it sets must hold; a rule without conditions always
/// applies.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Conditions {
    /// The amount is above this.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub amount_above: Option<Decimal>,
    /// The overshoot past the limit is above this.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub overshoot_above: Option<Decimal>,
    /// The change against the limit in force is above this many percent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub change_percent_above: Option<Decimal>,
    /// The customer's grade is one of these.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub grades: Vec<String>,
    /// The customer's oldest overdue days are above this.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub oldest_overdue_days_above: Option<i32>,
    /// The amount exceeds the grade's maximum limit (`true`) or stays within it (`false`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exceeds_grade_max_limit: Option<bool>,
    /// The grade moves by more than this many notches, up or down.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub grade_notches_above: Option<u32>,
}

impl Conditions {
    pub fn is_empty(&self) -> bool {
        *self == Conditions::default()
    }

    pub fn hold_for(&self, figures: &Figures) -> bool {
        let above = |bound: Option<Decimal>, figure: Option<Decimal>| match bound {
            None => true,
            Some(bound) => figure.is_some_and(|figure| figure > bound),
        };
        above(self.amount_above, figures.amount)
            && above(self.overshoot_above, figures.overshoot)
            && above(self.change_percent_above, figures.change_percent)
            && (self.grades.is_empty()
                || figures
                    .grade
                    .as_ref()
                    .is_some_and(|grade| self.grades.contains(grade)))
            && self
                .oldest_overdue_days_above
                .is_none_or(|bound| figures.oldest_overdue_days.is_some_and(|days| days > bound))
            && self
                .exceeds_grade_max_limit
                .is_none_or(|wanted| wanted == figures.exceeds_grade_max_limit)
            && self
                .grade_notches_above
                .is_none_or(|bound| figures.grade_notches.is_some_and(|notches| notches > bound))
    }
}

/// One step of a chain as the matrix defines it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StepRule {
    /// What the step is, for people: "finance verifies the figures".
    pub name: String,
    /// Who may decide it: a person holding any of these roles (ADMIN may decide any step).
    pub roles: BTreeSet<Role>,
    /// The decider's approval authority must cover the decision's amount.
    #[serde(default)]
    pub needs_authority: bool,
    /// 备案: the step informs these roles when the chain completes; nobody approves it.
    #[serde(default)]
    pub inform_only: bool,
    /// How long the step may wait for its decider before it is escalated (逐级上报): after
    /// that, people holding `escalate_to` may decide it too. `None`: it waits as long as it
    /// takes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub escalate_after_seconds: Option<u32>,
    /// Who an escalated step is put before, beside its own roles.
    #[serde(default, skip_serializing_if = "BTreeSet::is_empty")]
    pub escalate_to: BTreeSet<Role>,
}

/// A rule of the matrix: for a kind of decision and conditions, the chain of steps.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChainRule {
    pub rule_id: String,
    pub kind: DecisionKind,
    pub description: String,
    #[serde(default)]
    pub conditions: Conditions,
    pub steps: Vec<StepRule>,
}

/// The approval matrix: the chain rules of every kind of decision.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApprovalMatrix {
    /// The currency of every amount in the conditions.
    pub currency: Currency,
    pub rules: Vec<ChainRule>,
}

impl crate::governance::Governed for ApprovalMatrix {
    const SUBJECT: &'static str = "approval_matrix";
    const RECORD_PREFIX: &'static str = "matrix";
}

impl ApprovalMatrix {
    /// The rule that chooses the chain of a decision of `kind` with `figures`.
    pub fn chain_rule(&self, kind: DecisionKind, figures: &Figures) -> Option<&ChainRule> {
        self.rules
            .iter()
            .filter(|rule| rule.kind == kind)
            .find(|rule| rule.conditions.hold_for(figures))
    }

    /// Whether the matrix can be published: unique rule ids, every kind with a last rule
    /// without conditions, every chain with a step someone approves, steps with roles, and
    /// inform-only steps after the approving ones (the filing comes at the end).
    pub fn check(&self) -> Result<(), ServiceError> {
        let mut violations = Violations::new();
        let mut ids = BTreeSet::new();
        for (index, rule) in self.rules.iter().enumerate() {
            let field = |name: &str| format!("matrix.rules[{index}].{name}");
            if rule.rule_id.trim().is_empty() {
                violations.add(field("rule_id"), "is required");
            } else if !ids.insert(rule.rule_id.as_str()) {
                violations.add(field("rule_id"), "is used by an earlier rule");
            }
            if !rule.steps.iter().any(|step| !step.inform_only) {
                violations.add(
                    field("steps"),
                    "needs at least one step that is not inform-only",
                );
            }
            let mut informing = false;
            for (step_index, step) in rule.steps.iter().enumerate() {
                let step_field =
                    |name: &str| format!("matrix.rules[{index}].steps[{step_index}].{name}");
                if step.name.trim().is_empty() {
                    violations.add(step_field("name"), "is required");
                }
                if step.roles.is_empty() {
                    violations.add(step_field("roles"), "names at least one role");
                }
                if step.inform_only && step.needs_authority {
                    violations.add(
                        step_field("needs_authority"),
                        "an inform-only step approves nothing",
                    );
                }
                if informing && !step.inform_only {
                    violations.add(
                        step_field("inform_only"),
                        "inform-only steps come after every approving step",
                    );
                }
                match (step.escalate_after_seconds, step.escalate_to.is_empty()) {
                    (Some(0), _) => {
                        violations.add(step_field("escalate_after"), "is a positive duration")
                    }
                    (Some(_), true) => violations.add(
                        step_field("escalate_to"),
                        "names the roles an escalated step is put before",
                    ),
                    (None, false) => {
                        violations.add(step_field("escalate_after"), "is required with escalate_to")
                    }
                    _ => {}
                }
                if step.inform_only && step.escalate_after_seconds.is_some() {
                    violations.add(
                        step_field("escalate_after"),
                        "an inform-only step waits for nobody",
                    );
                }
                informing |= step.inform_only;
            }
            let conditions = &rule.conditions;
            for (name, bound) in [
                ("amount_above", conditions.amount_above),
                ("overshoot_above", conditions.overshoot_above),
                ("change_percent_above", conditions.change_percent_above),
            ] {
                if bound.is_some_and(|bound| bound < Decimal::ZERO) {
                    violations.add(field(&format!("conditions.{name}")), "is not negative");
                }
            }
            if conditions
                .oldest_overdue_days_above
                .is_some_and(|days| days < 0)
            {
                violations.add(
                    field("conditions.oldest_overdue_days_above"),
                    "is not negative",
                );
            }
        }
        for kind in DecisionKind::ALL {
            match self.rules.iter().rfind(|rule| rule.kind == kind) {
                None => violations.add(
                    "matrix.rules",
                    format!("has no rule for {}", kind.as_str()),
                ),
                Some(last) if !last.conditions.is_empty() => violations.add(
                    "matrix.rules",
                    format!(
                        "the last rule for {} ({}) must have no conditions, so that every decision finds a chain",
                        kind.as_str(),
                        last.rule_id
                    ),
                ),
                Some(_) => {}
            }
        }
        violations.finish()
    }
}

/// Where a chain stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ChainStatus {
    /// A step waits for its decider.
    Pending,
    /// Returned to the maker for information; the maker resubmits.
    Returned,
    /// Every approving step approved; the decision takes effect.
    Approved,
    Rejected,
}

/// Where a step stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum StepStatus {
    /// Not reached yet.
    Waiting,
    /// The step whose decider the chain waits for.
    Current,
    /// Returned to the maker; current again once the maker resubmits.
    Returned,
    Approved,
    Rejected,
    /// Inform-only, and the chain completed: filed with its roles.
    Informed,
    /// Inform-only, and the chain ended without approval: nothing to file.
    Skipped,
}

/// What a person does with the step in front of them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Verdict {
    Approve,
    Reject,
    /// Back to the maker for information; [`Chain::resubmit`] answers it.
    Return,
}

impl Verdict {
    pub fn as_str(&self) -> &'static str {
        match self {
            Verdict::Approve => "APPROVE",
            Verdict::Reject => "REJECT",
            Verdict::Return => "RETURN",
        }
    }
}

/// A step of one chain, as it stands.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Step {
    #[serde(flatten)]
    pub rule: StepRule,
    pub status: StepStatus,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub decided_by: Option<Actor>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub decided_at: Option<DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub note: String,
    /// When it waited past its deadline and was put before `escalate_to` too.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub escalated_at: Option<DateTime<Utc>>,
}

impl Step {
    /// Who may decide it now: its roles, and once escalated the roles it was escalated to.
    pub fn deciding_roles(&self) -> BTreeSet<Role> {
        let mut roles = self.rule.roles.clone();
        if self.escalated_at.is_some() {
            roles.extend(self.rule.escalate_to.iter().copied());
        }
        roles
    }
}

/// What a trail entry records: a decider's verdict, or the maker's answer to a return.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum TrailAction {
    Approve,
    Reject,
    Return,
    Resubmit,
    /// The step waited past its deadline; the system put it before its escalation roles.
    Escalate,
    /// The system ended the chain undecided: what it asked about is gone (an override or a
    /// new grade of a rating that a newer rating replaced).
    Withdraw,
}

impl From<Verdict> for TrailAction {
    fn from(verdict: Verdict) -> Self {
        match verdict {
            Verdict::Approve => TrailAction::Approve,
            Verdict::Reject => TrailAction::Reject,
            Verdict::Return => TrailAction::Return,
        }
    }
}

/// One thing that happened to a chain, kept in order: the trail a reader sees.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TrailEntry {
    pub step_index: usize,
    pub action: TrailAction,
    pub actor: Actor,
    pub at: DateTime<Utc>,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub note: String,
}

/// The chain of one decision: the matrix version and rule that chose it, its steps and trail.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Chain {
    pub kind: DecisionKind,
    pub matrix_version: u32,
    pub rule_id: String,
    pub status: ChainStatus,
    pub steps: Vec<Step>,
    #[serde(default)]
    pub trail: Vec<TrailEntry>,
    /// Who asked; never a decider of any step.
    pub maker: Actor,
    /// The amount the deciders' authority must cover, in the authority's currency.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub authority_amount: Option<Money>,
}

/// What a decision did to the chain; the caller acts on it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Progress {
    /// The next step waits (or the same step again after a resubmission).
    Advanced,
    /// The request went back to its maker.
    Returned,
    /// Every approving step approved: the decision takes effect now.
    Approved,
    Rejected,
}

/// Why a decision on a step is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StepRefused {
    #[error("the maker of a request or the decider of another of its steps may not decide it")]
    SamePerson,
    #[error("this step is decided by {roles}")]
    RoleRequired { roles: String },
    #[error("{decider}'s approval authority does not cover {amount}")]
    AuthorityInsufficient { amount: Money, decider: String },
    #[error("the chain is {status:?}; nothing waits for this decision")]
    NotPending { status: ChainStatus },
    #[error("only the maker answers a request returned for information")]
    NotTheMaker,
    #[error("step {asked} is not the step that waits (step {current})")]
    StepMovedOn { asked: usize, current: usize },
    #[error("the step that waits has no escalation, or was escalated already")]
    NothingToEscalate,
}

impl From<StepRefused> for ServiceError {
    fn from(refused: StepRefused) -> Self {
        let message = refused.to_string();
        match refused {
            StepRefused::SamePerson => ServiceError::PermissionDenied {
                reason: "SELF_APPROVAL",
                message,
            },
            StepRefused::RoleRequired { .. } | StepRefused::NotTheMaker => {
                ServiceError::PermissionDenied {
                    reason: "STEP_ROLE_REQUIRED",
                    message,
                }
            }
            StepRefused::AuthorityInsufficient { .. } => ServiceError::PermissionDenied {
                reason: "AUTHORITY_INSUFFICIENT",
                message,
            },
            StepRefused::NotPending { .. } => {
                ServiceError::failed_precondition("REQUEST_NOT_PENDING", message)
            }
            StepRefused::StepMovedOn { .. } => {
                ServiceError::failed_precondition("STEP_NOT_CURRENT", message)
            }
            StepRefused::NothingToEscalate => {
                ServiceError::failed_precondition("NOTHING_TO_ESCALATE", message)
            }
        }
    }
}

impl Chain {
    /// The chain `rule` starts for a request of `maker`, its first step current.
    pub fn start(
        rule: &ChainRule,
        matrix_version: u32,
        maker: Actor,
        authority_amount: Option<Money>,
    ) -> Self {
        let mut steps: Vec<Step> = rule
            .steps
            .iter()
            .map(|step| Step {
                rule: step.clone(),
                status: StepStatus::Waiting,
                decided_by: None,
                decided_at: None,
                note: String::new(),
                escalated_at: None,
            })
            .collect();
        if let Some(first) = steps.iter_mut().find(|step| !step.rule.inform_only) {
            first.status = StepStatus::Current;
        }
        Self {
            kind: rule.kind,
            matrix_version,
            rule_id: rule.rule_id.clone(),
            status: ChainStatus::Pending,
            steps,
            trail: Vec::new(),
            maker,
            authority_amount,
        }
    }

    /// The step that waits for a decider (or, once returned, for the maker's answer).
    pub fn current_step(&self) -> Option<usize> {
        self.steps
            .iter()
            .position(|step| matches!(step.status, StepStatus::Current | StepStatus::Returned))
    }

    /// The roles whose people the chain waits for now; empty when it waits for nobody
    /// (completed) or for the maker (returned).
    pub fn waiting_roles(&self) -> BTreeSet<Role> {
        match (self.status, self.current_step()) {
            (ChainStatus::Pending, Some(index)) => self.steps[index].deciding_roles(),
            _ => BTreeSet::new(),
        }
    }

    /// Whose queues show the chain now: each role of the current step while it is pending
    /// (`role:FINANCE`), its maker once returned (`person:<id>`), each role of its
    /// inform-only steps once approved (`informed:BOARD`), nobody once rejected.
    pub fn audiences(&self) -> Vec<String> {
        match self.status {
            ChainStatus::Pending => self
                .waiting_roles()
                .into_iter()
                .map(|role| format!("role:{}", role.as_str()))
                .collect(),
            ChainStatus::Returned => vec![format!("person:{}", person_key(&self.maker))],
            ChainStatus::Approved => self
                .steps
                .iter()
                .filter(|step| step.rule.inform_only)
                .flat_map(|step| step.rule.roles.iter())
                .collect::<BTreeSet<_>>()
                .into_iter()
                .map(|role| format!("informed:{}", role.as_str()))
                .collect(),
            ChainStatus::Rejected => Vec::new(),
        }
    }

    /// Whether `principal` could decide the current step now (its index): the role and four
    /// eyes. The queue of a person lists what this allows; approving also needs authority
    /// ([`Chain::check_authority`]).
    pub fn may_decide(&self, principal: &Principal) -> Result<usize, StepRefused> {
        let index = self.step_waiting_for_a_decider()?;
        let roles = self.steps[index].deciding_roles();
        if !principal.is_admin() && !roles.iter().any(|role| principal.has_role(*role)) {
            return Err(StepRefused::RoleRequired {
                roles: role_names(&roles),
            });
        }
        let actor = Actor::of(principal);
        let decided_another_step = self.trail.iter().any(|entry| {
            entry.step_index != index
                && entry.action == TrailAction::Approve
                && entry.actor.same_person_as(&actor)
        });
        if actor.same_person_as(&self.maker) || decided_another_step {
            return Err(StepRefused::SamePerson);
        }
        Ok(index)
    }

    /// The step that waits for a decider; NotPending when the chain waits for nobody (ended)
    /// or for its maker (returned).
    fn step_waiting_for_a_decider(&self) -> Result<usize, StepRefused> {
        let not_pending = StepRefused::NotPending {
            status: self.status,
        };
        if self.status != ChainStatus::Pending {
            return Err(not_pending);
        }
        self.current_step().ok_or(not_pending)
    }

    /// When the step that waits now, waiting since `waiting_since`, is due to be escalated:
    /// `None` when the chain does not wait for a decider, the step has no deadline, or it
    /// was escalated already.
    pub fn escalation_due(&self, waiting_since: DateTime<Utc>) -> Option<DateTime<Utc>> {
        if self.status != ChainStatus::Pending {
            return None;
        }
        let step = &self.steps[self.current_step()?];
        if step.escalated_at.is_some() || step.rule.escalate_to.is_empty() {
            return None;
        }
        let seconds = step.rule.escalate_after_seconds?;
        waiting_since.checked_add_signed(chrono::Duration::seconds(i64::from(seconds)))
    }

    /// Escalates the step that waits (its deadline has passed): people holding its
    /// escalation roles may decide it from now on, and the trail records it, by `actor` (the
    /// system). Refused when nothing waits for a decider or the step has no escalation (or
    /// was escalated already).
    pub fn escalate(&mut self, actor: Actor, now: DateTime<Utc>) -> Result<usize, StepRefused> {
        let index = self.step_waiting_for_a_decider()?;
        let step = &mut self.steps[index];
        if step.escalated_at.is_some() || step.rule.escalate_to.is_empty() {
            return Err(StepRefused::NothingToEscalate);
        }
        step.escalated_at = Some(now);
        let note = format!(
            "waited past its deadline; put before {}",
            role_names(&step.rule.escalate_to)
        );
        self.trail.push(TrailEntry {
            step_index: index,
            action: TrailAction::Escalate,
            actor,
            at: now,
            note,
        });
        Ok(index)
    }

    /// Whether `principal`'s approval authority covers the chain's amount where step `index`
    /// needs it. Only approving needs authority: anyone who may decide a step may reject it
    /// or ask for information.
    pub fn check_authority(&self, principal: &Principal, index: usize) -> Result<(), StepRefused> {
        let needs = self
            .steps
            .get(index)
            .is_some_and(|step| step.rule.needs_authority);
        match &self.authority_amount {
            Some(amount) if needs && !principal.may_approve(amount) => {
                Err(StepRefused::AuthorityInsufficient {
                    amount: *amount,
                    decider: principal.name.clone(),
                })
            }
            _ => Ok(()),
        }
    }

    /// Applies `verdict` of `principal` to step `step_index` (the step the caller saw, so
    /// that a decision meant for one step never lands on the next).
    pub fn decide(
        &mut self,
        principal: &Principal,
        step_index: usize,
        verdict: Verdict,
        note: &str,
        now: DateTime<Utc>,
    ) -> Result<Progress, StepRefused> {
        let actor = Actor::of(principal);
        let index = self.may_decide(principal)?;
        if index != step_index {
            return Err(StepRefused::StepMovedOn {
                asked: step_index,
                current: index,
            });
        }
        if verdict == Verdict::Approve {
            self.check_authority(principal, index)?;
        }
        self.trail.push(TrailEntry {
            step_index: index,
            action: verdict.into(),
            actor: actor.clone(),
            at: now,
            note: note.to_owned(),
        });
        let step = &mut self.steps[index];
        step.decided_by = Some(actor);
        step.decided_at = Some(now);
        step.note = note.to_owned();
        match verdict {
            Verdict::Approve => {
                step.status = StepStatus::Approved;
                let next = self
                    .steps
                    .iter()
                    .enumerate()
                    .skip(index + 1)
                    .find(|(_, step)| !step.rule.inform_only)
                    .map(|(next, _)| next);
                match next {
                    Some(next) => {
                        self.steps[next].status = StepStatus::Current;
                        Ok(Progress::Advanced)
                    }
                    None => {
                        self.finish(ChainStatus::Approved, now);
                        Ok(Progress::Approved)
                    }
                }
            }
            Verdict::Reject => {
                step.status = StepStatus::Rejected;
                self.finish(ChainStatus::Rejected, now);
                Ok(Progress::Rejected)
            }
            Verdict::Return => {
                step.status = StepStatus::Returned;
                self.status = ChainStatus::Returned;
                Ok(Progress::Returned)
            }
        }
    }

    /// Applies `verdict` of `principal` to whichever step waits now: for a service whose
    /// deciders name the request, not the step (a write-off, an override).
    pub fn decide_current(
        &mut self,
        principal: &Principal,
        verdict: Verdict,
        note: &str,
        now: DateTime<Utc>,
    ) -> Result<Progress, StepRefused> {
        let step = self.may_decide(principal)?;
        self.decide(principal, step, verdict, note, now)
    }

    /// This chain after `principal` approved (`approve`) or rejected the step that waits,
    /// with how far it got; `self` is left as it was, for a caller that stores the answer
    /// only if everything else it checks passes.
    pub fn walked(
        &self,
        principal: &Principal,
        approve: bool,
        note: &str,
        now: DateTime<Utc>,
    ) -> Result<(Chain, Progress), StepRefused> {
        let mut chain = self.clone();
        let verdict = if approve {
            Verdict::Approve
        } else {
            Verdict::Reject
        };
        let progress = chain.decide_current(principal, verdict, note, now)?;
        Ok((chain, progress))
    }

    /// Ends a chain that still waits, undecided, because what it asked about is gone: it is
    /// rejected, its waiting step skipped, and the trail says why, by `actor` (the system).
    /// A chain that already ended stays as it is (`false`).
    pub fn withdraw(&mut self, actor: Actor, note: &str, now: DateTime<Utc>) -> bool {
        if !matches!(self.status, ChainStatus::Pending | ChainStatus::Returned) {
            return false;
        }
        let step_index = self.current_step().unwrap_or_default();
        if let Some(step) = self.steps.get_mut(step_index) {
            step.status = StepStatus::Skipped;
        }
        self.trail.push(TrailEntry {
            step_index,
            action: TrailAction::Withdraw,
            actor,
            at: now,
            note: note.to_owned(),
        });
        self.finish(ChainStatus::Rejected, now);
        true
    }

    /// The maker's answer to a return: the returned step is current again.
    pub fn resubmit(
        &mut self,
        actor: Actor,
        step_index: usize,
        note: &str,
        now: DateTime<Utc>,
    ) -> Result<Progress, StepRefused> {
        if self.status != ChainStatus::Returned {
            return Err(StepRefused::NotPending {
                status: self.status,
            });
        }
        if !actor.same_person_as(&self.maker) {
            return Err(StepRefused::NotTheMaker);
        }
        let index = self.current_step().ok_or(StepRefused::NotPending {
            status: self.status,
        })?;
        if index != step_index {
            return Err(StepRefused::StepMovedOn {
                asked: step_index,
                current: index,
            });
        }
        self.trail.push(TrailEntry {
            step_index: index,
            action: TrailAction::Resubmit,
            actor,
            at: now,
            note: note.to_owned(),
        });
        let step = &mut self.steps[index];
        step.status = StepStatus::Current;
        step.decided_by = None;
        step.decided_at = None;
        step.note = String::new();
        self.status = ChainStatus::Pending;
        Ok(Progress::Advanced)
    }

    /// Ends the chain: inform-only steps are filed when it was approved, skipped otherwise;
    /// steps never reached stay waiting.
    fn finish(&mut self, status: ChainStatus, now: DateTime<Utc>) {
        self.status = status;
        for step in self.steps.iter_mut().filter(|step| step.rule.inform_only) {
            if status == ChainStatus::Approved {
                step.status = StepStatus::Informed;
                step.decided_at = Some(now);
            } else {
                step.status = StepStatus::Skipped;
            }
        }
    }
}

/// The audiences whose chains `principal`'s queue lists (see [`Chain::audiences`]): its
/// roles (every role for ADMIN), itself as a maker, and with `include_informed` the filings
/// with its roles.
pub fn audiences_of(principal: &Principal, include_informed: bool) -> Vec<String> {
    let roles: Vec<Role> = if principal.is_admin() {
        Role::ALL.to_vec()
    } else {
        principal.roles.iter().copied().collect()
    };
    let mut audiences: Vec<String> = roles
        .iter()
        .map(|role| format!("role:{}", role.as_str()))
        .collect();
    audiences.push(format!("person:{}", person_key(&Actor::of(principal))));
    if include_informed {
        audiences.extend(
            roles
                .iter()
                .map(|role| format!("informed:{}", role.as_str())),
        );
    }
    audiences
}

/// The most stable identifier an actor record has: its person, else its token, else its name.
fn person_key(actor: &Actor) -> &str {
    [&actor.person_id, &actor.principal_id, &actor.name]
        .into_iter()
        .find(|key| !key.is_empty())
        .map_or("", String::as_str)
}

fn role_names(roles: &BTreeSet<Role>) -> String {
    roles
        .iter()
        .map(Role::as_str)
        .collect::<Vec<_>>()
        .join(" or ")
}

#[cfg(test)]
mod tests;
