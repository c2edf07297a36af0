//! The approval desk: people's queues and their verdicts on the steps of chains.
//!
//! Limits owns the chains of its own decisions (limit requests, referred orders) and of its
//! governed documents (the approval matrix, the credit policy). A verdict on a limit request
//! goes to [`CreditAdmin`], which grants the limit when the chain completes; a verdict on a
//! proposed version publishes it when its chain completes (`super::governance`).

use std::sync::Arc;

use chrono::{DateTime, Utc};
use credit_core::approval::{
    ApprovalMatrix, Chain, ChainRule, ChainStatus, Conditions, DecisionKind, Figures, Progress,
    StepRefused, Verdict, audiences_of,
};
use credit_core::governance::{self, Governed, Version};
use credit_core::{Actor, Currency, Money, Principal, ServiceError};
use credit_runtime::sql::{IdempotencyKey, Page};

use crate::domain::limits::{LimitRequest, Scope};
use crate::domain::policy::CreditPolicy;
use crate::domain::review::CreditReview;
use crate::domain::security::{ChangeAction, Security};
use crate::store::{LimitStore, TaskRef};

use super::{CreditAdmin, HotPath, ReferralVerdict, from_minor, ledger_error};
use crate::ledger::{Referral, ReferralStatus};
use credit_proto::v1 as pb;

/// What a person does with the step in front of them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StepAction {
    Decide(Verdict),
    /// The maker answers a return.
    Resubmit,
    /// The system escalates a step left waiting past its deadline (never a person's action).
    Escalate,
    /// The system withdraws a request left waiting past the policy's expiry (never a person's
    /// action); the note says why.
    Expire,
}

impl StepAction {
    /// Applies the action of `principal` to step `step_index` of `chain`.
    pub(super) fn apply(
        self,
        chain: &mut Chain,
        principal: &Principal,
        step_index: usize,
        note: &str,
        now: DateTime<Utc>,
    ) -> Result<Progress, StepRefused> {
        match self {
            StepAction::Decide(verdict) => chain.decide(principal, step_index, verdict, note, now),
            StepAction::Resubmit => chain.resubmit(Actor::of(principal), step_index, note, now),
            StepAction::Escalate => chain
                .escalate(Actor::of(principal), now)
                .map(|_| Progress::Advanced),
            StepAction::Expire => {
                if chain.withdraw(Actor::of(principal), note, now) {
                    Ok(Progress::Rejected)
                } else {
                    Err(StepRefused::NotPending {
                        status: chain.status,
                    })
                }
            }
        }
    }
}

/// One entry of a person's queue.
#[derive(Debug, Clone)]
pub struct Task {
    pub kind: DecisionKind,
    pub record_id: String,
    pub summary: String,
    pub amount: Option<Money>,
    pub chain: Chain,
    pub requested_at: DateTime<Utc>,
    pub waiting_since: DateTime<Utc>,
}

#[derive(Debug, Clone)]
pub struct ApprovalDesk {
    store: Arc<dyn LimitStore>,
    hot: HotPath,
    admin: CreditAdmin,
}

impl ApprovalDesk {
    pub fn new(store: Arc<dyn LimitStore>, hot: HotPath, admin: CreditAdmin) -> Self {
        Self { store, hot, admin }
    }

    pub(super) fn store(&self) -> &Arc<dyn LimitStore> {
        &self.store
    }

    pub(super) fn hot(&self) -> &HotPath {
        &self.hot
    }

    /// Limits' administration, which owns the governed documents the desk's chains publish.
    pub fn admin(&self) -> &CreditAdmin {
        &self.admin
    }

    /// The chains waiting for `principal`: the steps it may decide, the requests returned to
    /// it, and with `include_informed` the filings with its roles. A chain it made (or of which
    /// it decided another step) is not its task. Limit requests and matrix proposals come
    /// first (by record id, from their queue rows), then open referrals, oldest first (from
    /// the referral queue: a referral's chain is chosen when first needed). Returns the page
    /// and the key to continue after, when there is more.
    pub async fn tasks(
        &self,
        principal: &Principal,
        kind: Option<DecisionKind>,
        include_informed: bool,
        page: &Page,
    ) -> Result<(Vec<Task>, Option<String>), ServiceError> {
        let (in_referrals, after) = match page.after.as_deref() {
            Some(key) if key.starts_with(REFERRAL_KEY) => {
                (true, Some(key[REFERRAL_KEY.len()..].to_owned()))
            }
            Some(key) => (false, Some(key.trim_start_matches(RECORD_KEY).to_owned())),
            None => (false, None),
        };
        let mut tasks = Vec::new();
        if !in_referrals && kind != Some(DecisionKind::OrderReferral) {
            let audiences = audiences_of(principal, include_informed);
            let listed = Page {
                size: page.size,
                after,
            };
            let refs = self
                .store
                .approval_tasks(&audiences, kind, &listed)
                .await
                .map_err(ServiceError::from)?;
            let more = refs.len() > page.size;
            let mut last_read = None;
            for task in refs.into_iter().take(page.size) {
                last_read = Some(task.record_id.clone());
                if let Some(task) = self.task(task).await?
                    && visible_to(&task.chain, principal)
                {
                    tasks.push(task);
                }
            }
            if more {
                return Ok((tasks, last_read.map(|id| format!("{RECORD_KEY}{id}"))));
            }
        }
        if kind.is_none() || kind == Some(DecisionKind::OrderReferral) {
            let after = if in_referrals {
                page.after
                    .as_deref()
                    .map(|key| key[REFERRAL_KEY.len()..].to_owned())
            } else {
                None
            };
            let wanted = page.size.saturating_sub(tasks.len());
            let (referrals, next) = self.referral_tasks(principal, after, wanted).await?;
            tasks.extend(referrals);
            return Ok((tasks, next.map(|key| format!("{REFERRAL_KEY}{key}"))));
        }
        Ok((tasks, None))
    }

    /// Up to `wanted` open referrals whose chain `principal` may act on, after queue key
    /// `after`; reads at most a bounded number of the queue's entries per call, and says where
    /// to continue.
    async fn referral_tasks(
        &self,
        principal: &Principal,
        mut after: Option<String>,
        wanted: usize,
    ) -> Result<(Vec<Task>, Option<String>), ServiceError> {
        let mut found = Vec::new();
        if wanted == 0 {
            return Ok((found, after));
        }
        for _ in 0..REFERRAL_PAGES_PER_CALL {
            let page = Page {
                size: REFERRALS_PER_READ,
                after: after.clone(),
            };
            let rows = self
                .hot
                .ledger()
                .referrals(Some(ReferralStatus::Open), "", &page)
                .await
                .map_err(ledger_error)?;
            let exhausted = rows.len() <= REFERRALS_PER_READ;
            let (keys, referrals): (Vec<String>, Vec<Referral>) =
                rows.into_iter().take(REFERRALS_PER_READ).unzip();
            let referrals = self.hot.with_chains(referrals).await?;
            for (key, referral) in keys.into_iter().zip(referrals) {
                after = Some(key);
                if let Some(task) = referral_task(&referral, referral.created_at)
                    && visible_to(&task.chain, principal)
                {
                    found.push(task);
                    if found.len() == wanted {
                        return Ok((found, after));
                    }
                }
            }
            if exhausted {
                return Ok((found, None));
            }
        }
        Ok((found, after))
    }

    /// A verdict (or the maker's resubmission) on step `step_index` of the chain of
    /// `record_id`; the task as it stands afterwards.
    #[allow(clippy::too_many_arguments)]
    pub async fn decide(
        &self,
        principal: &Principal,
        kind: DecisionKind,
        record_id: &str,
        step_index: usize,
        action: StepAction,
        note: &str,
        release_conditions: &[pb::ReleaseCondition],
        key: &IdempotencyKey,
    ) -> Result<Task, ServiceError> {
        let now = Utc::now();
        if kind != DecisionKind::OrderReferral && !release_conditions.is_empty() {
            return Err(ServiceError::invalid(
                "release_conditions",
                "go only with the release of a referred order",
            ));
        }
        match kind {
            DecisionKind::OrderReferral => {
                let verdict = ReferralVerdict {
                    note,
                    conditions: release_conditions,
                    conditions_field: "release_conditions",
                    requested_ttl: None,
                };
                self.hot
                    .decide_referral_step(
                        principal,
                        record_id,
                        Some(step_index),
                        action,
                        &verdict,
                        key,
                    )
                    .await?;
                let referral = self
                    .hot
                    .ledger()
                    .referral(record_id)
                    .await
                    .map_err(ledger_error)?
                    .ok_or_else(|| ServiceError::not_found("referral", record_id))?;
                referral_task(&referral, now).ok_or_else(|| {
                    ServiceError::internal("a decided referral has no approval chain")
                })
            }
            DecisionKind::LimitRequest => {
                let granted = self
                    .admin
                    .decide_limit_step(principal, record_id, Some(step_index), action, note, key)
                    .await?;
                Ok(limit_task(&granted.request, now))
            }
            DecisionKind::PolicyChange => match governed_record(record_id)? {
                GovernedRecord::Matrix(version) => {
                    let decided = self
                        .admin
                        .decide_version::<ApprovalMatrix>(
                            principal, version, step_index, action, note, key, now,
                        )
                        .await?;
                    Ok(version_task(&decided, "approval matrix", now))
                }
                GovernedRecord::Policy(version) => {
                    let decided = self
                        .admin
                        .decide_version::<CreditPolicy>(
                            principal, version, step_index, action, note, key, now,
                        )
                        .await?;
                    Ok(version_task(&decided, "credit policy", now))
                }
            },
            DecisionKind::CreditReview => {
                let decided = self
                    .admin
                    .decide_review_step(principal, record_id, step_index, action, note, key, now)
                    .await?;
                Ok(review_task(&decided, now))
            }
            DecisionKind::SecurityChange => {
                let decided = self
                    .admin
                    .decide_security_step(principal, record_id, step_index, action, note, key, now)
                    .await?;
                if let Some(task) = security_task(&decided, now) {
                    return Ok(task);
                }
                // The change was settled: the task shows the chain it went through.
                let settled = decided.decided.last().ok_or_else(|| {
                    ServiceError::internal("a decided security change was not recorded")
                })?;
                Ok(Task {
                    kind: DecisionKind::SecurityChange,
                    record_id: decided.security_id.clone(),
                    summary: decided.summary(),
                    amount: Some(decided.amount),
                    chain: settled.chain.clone(),
                    requested_at: settled.requested_at,
                    waiting_since: now,
                })
            }
            other => Err(ServiceError::failed_precondition(
                "DECISION_KIND_NOT_WALKED",
                format!(
                    "{} decisions are not walked through ApprovalService yet; decide them with their own RPC",
                    other.as_str()
                ),
            )),
        }
    }

    async fn task(&self, task: TaskRef) -> Result<Option<Task>, ServiceError> {
        match task.kind {
            DecisionKind::LimitRequest => {
                let request = self
                    .store
                    .limit_request(&task.record_id)
                    .await
                    .map_err(ServiceError::from)?;
                Ok(request.map(|request| limit_task(&request, task.waiting_since)))
            }
            DecisionKind::PolicyChange => match governed_record(&task.record_id)? {
                GovernedRecord::Matrix(version) => Ok(self
                    .admin
                    .governed_versions::<ApprovalMatrix>()
                    .await?
                    .into_iter()
                    .find(|stored| stored.version == version)
                    .map(|stored| version_task(&stored, "approval matrix", task.waiting_since))),
                GovernedRecord::Policy(version) => Ok(self
                    .admin
                    .governed_versions::<CreditPolicy>()
                    .await?
                    .into_iter()
                    .find(|stored| stored.version == version)
                    .map(|stored| version_task(&stored, "credit policy", task.waiting_since))),
            },
            DecisionKind::OrderReferral => {
                let referral = self
                    .hot
                    .ledger()
                    .referral(&task.record_id)
                    .await
                    .map_err(ledger_error)?;
                // An open referral is listed from the referral queue; its row here is a
                // filing of a decided one.
                Ok(referral
                    .filter(|referral| referral.status != ReferralStatus::Open)
                    .and_then(|referral| referral_task(&referral, task.waiting_since)))
            }
            DecisionKind::SecurityChange => Ok(self
                .store
                .security(&task.record_id)
                .await
                .map_err(ServiceError::from)?
                .and_then(|security| security_task(&security, task.waiting_since))),
            DecisionKind::CreditReview => Ok(self
                .store
                .review(&task.record_id)
                .await
                .map_err(ServiceError::from)?
                .map(|review| review_task(&review, task.waiting_since))),
            _ => Ok(None),
        }
    }
}

/// A decision another service walks, as it asks for its chain.
#[derive(Debug, Clone)]
pub struct ChainChoice {
    pub kind: DecisionKind,
    /// The amount at stake (a write-off's); required for WRITE_OFF.
    pub amount: Option<Money>,
    /// The customer, for rules on its grade; empty when none.
    pub customer_id: String,
    /// How many notches a grade moves (an override, a new grade).
    pub grade_notches: Option<u32>,
}

/// The chain the matrix chose for a decision another service walks.
#[derive(Debug, Clone)]
pub struct ChosenChain {
    pub matrix_version: u32,
    /// The rule that chose the chain; its steps are empty when nobody needs to approve (a new
    /// grade while the credit policy does not ask for grades to be approved).
    pub rule: ChainRule,
    /// What the deciders' authority must cover, in the base currency; `None` without an
    /// amount.
    pub authority_amount: Option<Money>,
}

impl ApprovalDesk {
    /// The chain the matrix in force chooses for a kind of decision walked elsewhere (a
    /// write-off in collections, an override or a new grade in rating), from its amount
    /// (converted into the matrix's currency), the customer's grade and the notches a grade
    /// moves. A new grade needs no approval unless the credit policy asks for it.
    pub async fn choose_chain_for(
        &self,
        choice: &ChainChoice,
    ) -> Result<ChosenChain, ServiceError> {
        let kind = choice.kind;
        // POLICY_CHANGE is asked for by the owners of other governed documents (rating's
        // scorecard models); limits' own policy documents choose theirs when proposed.
        if matches!(
            kind,
            DecisionKind::LimitRequest
                | DecisionKind::OrderReferral
                | DecisionKind::CreditReview
                | DecisionKind::SecurityChange
        ) {
            return Err(ServiceError::invalid(
                "decision_kind",
                "is walked by limits itself: its chain is chosen with the request",
            ));
        }
        if kind == DecisionKind::WriteOff && choice.amount.is_none() {
            return Err(ServiceError::invalid(
                "amount",
                "is required for a write-off",
            ));
        }
        let (version, matrix) = self.hot.matrix_in_force(Utc::now()).await?;
        if kind == DecisionKind::RatingApproval && !self.hot.policy().await?.grade_approval_required
        {
            return Ok(ChosenChain {
                matrix_version: version,
                rule: ChainRule {
                    rule_id: String::new(),
                    kind,
                    description: "the credit policy does not ask for grades to be approved"
                        .to_owned(),
                    conditions: Conditions::default(),
                    steps: Vec::new(),
                },
                authority_amount: None,
            });
        }
        let grade = if choice.customer_id.is_empty() {
            None
        } else {
            self.store
                .customer(&choice.customer_id)
                .await
                .map_err(ServiceError::from)?
                .and_then(|facts| facts.rating)
                .map(|rating| rating.grade)
        };
        let in_matrix = match choice.amount {
            Some(amount) => Some(self.hot.converted(amount, matrix.currency).await?),
            None => None,
        };
        let authority_amount = match choice.amount {
            Some(amount) => Some(self.hot.converted(amount, self.hot.base_currency()).await?),
            None => None,
        };
        let figures = Figures {
            amount: in_matrix.map(|amount| amount.amount()),
            grade,
            grade_notches: choice.grade_notches,
            ..Figures::default()
        };
        let rule = matrix.chain_rule(kind, &figures).cloned().ok_or_else(|| {
            ServiceError::internal("the matrix in force has no chain for this kind")
        })?;
        Ok(ChosenChain {
            matrix_version: version,
            rule,
            authority_amount,
        })
    }
}

/// Page keys of the two parts of a queue: records with queue rows, then referrals.
const RECORD_KEY: &str = "a:";
const REFERRAL_KEY: &str = "r:";
/// The referral queue is read this many entries at a time, at most this many times a call.
const REFERRALS_PER_READ: usize = 100;
const REFERRAL_PAGES_PER_CALL: usize = 10;

/// Whether a chain belongs in `principal`'s queue: a step it may decide, a request returned
/// to it, or a chain that ended (a filing); never one it made or of which it decided
/// another step.
fn visible_to(chain: &Chain, principal: &Principal) -> bool {
    match chain.may_decide(principal) {
        Ok(_) => true,
        Err(StepRefused::NotPending { status }) => match status {
            ChainStatus::Returned => chain.maker.same_person_as(&Actor::of(principal)),
            _ => true,
        },
        Err(_) => false,
    }
}

/// The governed document a POLICY_CHANGE record id names: `matrix:3`, `policy:5`.
enum GovernedRecord {
    Matrix(u32),
    Policy(u32),
}

fn governed_record(record_id: &str) -> Result<GovernedRecord, ServiceError> {
    governance::parse_record_id::<ApprovalMatrix>(record_id)
        .map(GovernedRecord::Matrix)
        .or_else(|| {
            governance::parse_record_id::<CreditPolicy>(record_id).map(GovernedRecord::Policy)
        })
        .ok_or_else(|| {
            ServiceError::invalid(
                "record_id",
                "is not a version of a governed document (\"matrix:N\" or \"policy:N\")",
            )
        })
}

fn limit_task(request: &LimitRequest, waiting_since: DateTime<Utc>) -> Task {
    let scope = match &request.scope {
        Scope::Customer(id) => format!("customer {id}"),
        Scope::Group(id) => format!("group {id}"),
        Scope::Portfolio => "the portfolio cap".to_owned(),
    };
    let temporary = if request.temporary { "temporary " } else { "" };
    Task {
        kind: DecisionKind::LimitRequest,
        record_id: request.id.clone(),
        summary: format!("{temporary}limit of {} for {scope}", request.amount),
        amount: Some(request.amount),
        chain: request.chain(),
        requested_at: request.requested_at,
        waiting_since,
    }
}

/// A referred order as a task: `None` until its chain is opened.
fn referral_task(referral: &Referral, waiting_since: DateTime<Utc>) -> Option<Task> {
    let chain = referral.approval_chain.clone()?;
    let currency = Currency::parse(&referral.currency).ok()?;
    let amount = from_minor(referral.amount_minor, currency);
    let reasons = referral.reasons.join(", ");
    Some(Task {
        kind: DecisionKind::OrderReferral,
        record_id: referral.id.clone(),
        summary: format!(
            "order {} of customer {} for {amount}, referred: {reasons}",
            referral.order_id, referral.customer_id
        ),
        amount: Some(amount),
        chain,
        requested_at: referral.created_at,
        waiting_since,
    })
}

fn review_task(review: &CreditReview, waiting_since: DateTime<Utc>) -> Task {
    Task {
        kind: DecisionKind::CreditReview,
        record_id: review.review_id.clone(),
        summary: review.summary(),
        amount: None,
        chain: review.chain.clone(),
        requested_at: review.opened_at,
        waiting_since,
    }
}

/// The task of a security's pending change; `None` when no change waits.
fn security_task(security: &Security, waiting_since: DateTime<Utc>) -> Option<Task> {
    let pending = security.pending.as_ref()?;
    Some(Task {
        kind: DecisionKind::SecurityChange,
        record_id: security.security_id.clone(),
        summary: security.summary(),
        amount: Some(match &pending.action {
            ChangeAction::Revalue { amount, .. } => *amount,
            _ => security.amount,
        }),
        chain: pending.chain.clone(),
        requested_at: pending.requested_at,
        waiting_since,
    })
}

fn version_task<T: Governed>(
    version: &Version<T>,
    name: &str,
    waiting_since: DateTime<Utc>,
) -> Task {
    Task {
        kind: DecisionKind::PolicyChange,
        record_id: governance::record_id::<T>(version.version),
        summary: format!("{name} version {}: {}", version.version, version.reason),
        amount: None,
        chain: version.chain.clone(),
        requested_at: version.proposed_at,
        waiting_since,
    }
}
