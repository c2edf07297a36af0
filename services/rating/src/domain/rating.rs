//! A customer's rating as it is recorded, an override of its grade, and a run of scheduled
//! reviews: what the store keeps and the use cases read back.
//!
//! Figures (score, PD, points) are kept as the exact text they were scored with, the way the
//! contract carries decimals: a rating is a record of a decision, and reading it back must show
//! the very figures the committee saw, whatever model or formatting came later.

use std::collections::BTreeMap;

use chrono::{DateTime, NaiveDate, Utc};
use credit_core::approval::{Chain, DecisionKind};
use credit_core::{Actor, Role};

pub use super::freshness::StaleInput;
use super::model::{CharacteristicSource, CustomerKind, IndicatorFamily};
use super::scoring::{
    CharacteristicScore, InputValue, ScoreReason, UncheckedInput, UncheckedValue, figure,
};

/// The name rating acts under when nobody asked: shipped models, scheduled and event-driven
/// ratings, withdrawals.
pub const SYSTEM_PRINCIPAL: &str = "system:rating";

/// What started a rating.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum RatingTrigger {
    /// Not recorded (or a value this build does not know).
    #[default]
    Unspecified,
    /// A person asked for it.
    Manual,
    /// The review schedule.
    ScheduledReview,
    /// A new financial statement.
    FinancialStatement,
    /// A new bureau report.
    BureauReport,
    /// An invoice overdue beyond the re-rating threshold.
    Overdue,
    /// Data points set, or a document recorded.
    CreditFile,
}

impl RatingTrigger {
    /// The name the contract gives this trigger, as logs show it.
    pub fn contract_name(self) -> &'static str {
        match self {
            Self::Unspecified => "RATING_TRIGGER_UNSPECIFIED",
            Self::Manual => "RATING_TRIGGER_MANUAL",
            Self::ScheduledReview => "RATING_TRIGGER_SCHEDULED_REVIEW",
            Self::FinancialStatement => "RATING_TRIGGER_FINANCIAL_STATEMENT",
            Self::BureauReport => "RATING_TRIGGER_BUREAU_REPORT",
            Self::Overdue => "RATING_TRIGGER_OVERDUE",
            Self::CreditFile => "RATING_TRIGGER_CREDIT_FILE",
        }
    }
}

/// Where an override stands in maker-checker.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ApprovalStatus {
    /// Not recorded (or a value this build does not know); read as pending.
    #[default]
    Unspecified,
    Pending,
    Approved,
    Rejected,
}

impl ApprovalStatus {
    /// The name an override row is filtered by: "PENDING", "APPROVED" or "REJECTED".
    pub fn stored_name(self) -> &'static str {
        match self {
            Self::Approved => "APPROVED",
            Self::Rejected => "REJECTED",
            Self::Pending | Self::Unspecified => "PENDING",
        }
    }
}

/// A recorded rating: the result as scored, the snapshot it was scored from, and what changed
/// since (an approved override, whether it is still the customer's current rating).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Rating {
    pub rating_id: String,
    pub customer_id: String,
    pub model_id: String,
    pub model_version: i32,
    pub master_scale_id: String,
    pub score: String,
    /// The grade and PD the model gave; kept when an override changes the effective ones.
    pub model_grade: String,
    pub model_pd: String,
    /// The effective grade: the approved override's, else the model's.
    pub grade: String,
    pub grade_rank: i32,
    pub pd: String,
    /// Empty unless an approved override set the effective grade.
    pub override_id: String,
    pub breakdown: Vec<RatedCharacteristic>,
    pub reasons: Vec<RatingReason>,
    pub inputs: Option<InputSnapshot>,
    pub trigger: RatingTrigger,
    pub rated_at: Option<DateTime<Utc>>,
    pub rated_by: Option<Actor>,
    pub next_review_date: Option<NaiveDate>,
    pub current: bool,
    pub note: String,
    /// The approval the model grade waits for (or waited for) before taking effect; empty
    /// when it took effect at once.
    pub grade_approval_id: String,
    /// The inputs stale when the customer was rated.
    pub stale_inputs: Vec<StaleInput>,
    /// The first day an input fresh at rating goes stale.
    pub inputs_stale_on: Option<NaiveDate>,
}

impl Rating {
    /// The day the customer's file needs a review: the first day an input was or will be
    /// stale; `None` when none will.
    pub fn file_review_on(&self) -> Option<NaiveDate> {
        self.stale_inputs
            .iter()
            .map(|stale| stale.stale_since)
            .chain(self.inputs_stale_on)
            .min()
    }
}

/// How one characteristic scored, as recorded.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RatedCharacteristic {
    pub code: String,
    pub display_name: String,
    pub source: Option<CharacteristicSource>,
    pub family: Option<IndicatorFamily>,
    pub input: Option<UncheckedInput>,
    pub missing: bool,
    pub bin_label: String,
    pub points: String,
    pub max_points: String,
    pub points_lost: String,
}

impl From<&CharacteristicScore> for RatedCharacteristic {
    fn from(line: &CharacteristicScore) -> Self {
        let value = match &line.value {
            InputValue::Number(number) => Some(UncheckedValue::Number(number.to_string())),
            InputValue::Category(category) => Some(UncheckedValue::Category(category.clone())),
            InputValue::Missing => None,
        };
        Self {
            code: line.code.clone(),
            display_name: line.display_name.clone(),
            source: Some(line.source),
            family: line.family,
            input: Some(UncheckedInput {
                source: Some(line.source),
                key: line.input_key.clone(),
                value,
                origin: line.origin.clone(),
            }),
            missing: line.missing,
            bin_label: line.bin_label.clone(),
            points: figure(line.points),
            max_points: figure(line.max_points),
            points_lost: figure(line.points_lost),
        }
    }
}

/// A reason of a rating: a characteristic that cost points, with its figures as metadata.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RatingReason {
    pub code: String,
    pub message: String,
    pub metadata: BTreeMap<String, String>,
}

impl From<&ScoreReason> for RatingReason {
    fn from(reason: &ScoreReason) -> Self {
        let metadata = [
            ("points", figure(reason.points)),
            ("max_points", figure(reason.max_points)),
            ("points_lost", figure(reason.points_lost)),
            ("value", reason.value.clone()),
        ]
        .into_iter()
        .map(|(key, value)| (key.to_owned(), value))
        .collect();
        Self {
            code: reason.code.clone(),
            message: reason.message.clone(),
            metadata,
        }
    }
}

/// The inputs a rating was scored from, and where they came from.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct InputSnapshot {
    pub customer_kind: Option<CustomerKind>,
    pub industry_code: String,
    pub inputs: Vec<UncheckedInput>,
    pub statement_id: String,
    pub bureau_report_id: String,
    pub captured_at: Option<DateTime<Utc>>,
}

/// What a [`RatingOverride`] asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum OverrideKind {
    /// A person proposes another grade than the model's.
    #[default]
    Override,
    /// A new model grade waits for approval before it takes effect (报总经理审批).
    GradeApproval,
}

impl OverrideKind {
    pub fn decision_kind(self) -> DecisionKind {
        match self {
            Self::Override => DecisionKind::RatingOverride,
            Self::GradeApproval => DecisionKind::RatingApproval,
        }
    }
}

/// A proposed change of a rating's grade (an override, or a new grade awaiting approval)
/// and, once decided, the decision.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RatingOverride {
    pub override_id: String,
    pub rating_id: String,
    pub customer_id: String,
    pub model_grade: String,
    pub proposed_grade: String,
    /// Signed: positive = better than the model grade.
    pub notches: i32,
    pub justification: String,
    pub status: ApprovalStatus,
    /// The checker's role the move needs; `None` when not recorded.
    pub required_role: Option<Role>,
    pub proposed_by: Option<Actor>,
    pub proposed_at: Option<DateTime<Utc>>,
    pub decided_by: Option<Actor>,
    pub decided_at: Option<DateTime<Utc>>,
    pub decision_comment: String,
    pub kind: OverrideKind,
    /// The approval matrix's chain it walks; `None` for an override proposed before chains
    /// or without a limits service: one checker decides, as `required_role` says.
    pub approval_chain: Option<Box<Chain>>,
}

impl RatingOverride {
    /// The override ended undecided because the rating it was about is no longer current:
    /// rating `superseded_by` replaced it (a new rating starts again from its model grade, and
    /// asks for its own approval). Rejected by `system`, its chain withdrawn.
    pub fn withdrawn(&self, superseded_by: &str, system: Actor, now: DateTime<Utc>) -> Self {
        let note = format!(
            "withdrawn: rating {superseded_by} replaced rating {}",
            self.rating_id
        );
        let approval_chain = self.approval_chain.clone().map(|mut chain| {
            chain.withdraw(system.clone(), &note, now);
            chain
        });
        Self {
            status: ApprovalStatus::Rejected,
            decided_by: Some(system),
            decided_at: Some(now),
            decision_comment: note,
            approval_chain,
            ..self.clone()
        }
    }
}

/// What one run of scheduled reviews did, kept so that a retry answers the same.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ReviewRun {
    pub results: Vec<ReviewResult>,
    pub rerated_count: i32,
    pub failed_count: i32,
}

/// One customer of a review run: re-rated, or why not.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ReviewResult {
    pub customer_id: String,
    pub rating_id: String,
    pub previous_grade: String,
    pub grade: String,
    pub error: Option<ReviewFailure>,
}

/// Why a customer of a review run was not re-rated: a stable code and a message without
/// internals.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ReviewFailure {
    pub code: String,
    pub message: String,
}
