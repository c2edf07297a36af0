//! Governed documents (制度制定…定期修订): the approval matrix and the credit policy change
//! only through proposals. A proposal is the whole next document, with the changes it makes
//! against the newest published version; it walks the POLICY_CHANGE chain of the matrix in
//! force (so a second person approves it) and is published, effective from the date asked
//! for, when the chain approves it. Every version stays readable.
//!
//! One body serves both documents; [`Document`] says what differs (the shipped version, the
//! checks, what a reader calls it).

use chrono::{DateTime, Utc};
use credit_core::approval::{ApprovalMatrix, Chain, DecisionKind, Progress, shipped_matrix};
use credit_core::governance::{self, Change, Governed, Version, VersionStatus};
use credit_core::{Actor, Principal, ServiceError};
use credit_runtime::sql::IdempotencyKey;

use crate::api::convert::step_decided_event;
use crate::domain::policy::CreditPolicy;
use crate::store::{GovernedStore, LimitStore};

use super::approvals::StepAction;
use super::{CreditAdmin, HotPath};

/// What differs between governed documents.
pub trait Document: Governed {
    /// What a reader calls a version of it: "approval matrix version".
    const VERSION_NAME: &'static str;
    /// The document before any governed version was published, and its number: the shipped
    /// one (0), or for the credit policy the one stored before policies were governed.
    fn ungoverned(hot: &HotPath) -> impl Future<Output = Result<(u32, Self), ServiceError>> + Send;
    /// Whether it can be published: INVALID_ARGUMENT with the fields that cannot.
    fn check(&self) -> Result<(), ServiceError>;
    /// Called when a version comes into force at once, for what depends on it.
    fn published(_hot: &HotPath, _document: &Self) -> impl Future<Output = ()> + Send {
        async {}
    }
}

impl Document for ApprovalMatrix {
    const VERSION_NAME: &'static str = "approval matrix version";

    async fn ungoverned(hot: &HotPath) -> Result<(u32, Self), ServiceError> {
        Ok((0, shipped_matrix(hot.base_currency())))
    }

    fn check(&self) -> Result<(), ServiceError> {
        ApprovalMatrix::check(self)
    }
}

impl Document for CreditPolicy {
    const VERSION_NAME: &'static str = "credit policy version";

    async fn ungoverned(hot: &HotPath) -> Result<(u32, Self), ServiceError> {
        let policy = hot.ungoverned_policy().await?;
        let version = u32::try_from(policy.version).map_err(|_| {
            ServiceError::internal("the stored credit policy's version is too large")
        })?;
        Ok((version, policy))
    }

    fn check(&self) -> Result<(), ServiceError> {
        // A proposal is made by `CreditPolicy::updated`, which checks every field it changes.
        Ok(())
    }

    async fn published(hot: &HotPath, document: &Self) {
        hot.policy_changed(document.clone()).await;
    }
}

/// A version as readers see it: number, document (stamped with its number), and, when it was
/// stored (not the shipped or ungoverned one), its record with chain and changes.
#[derive(Debug, Clone)]
pub struct VersionView<T> {
    pub version: u32,
    pub document: T,
    pub stored: Option<Version<T>>,
}

impl<T: Governed> VersionView<T> {
    pub fn changes(&self) -> &[Change] {
        self.stored
            .as_ref()
            .map_or(&[], |stored| stored.changes.as_slice())
    }

    fn of(stored: Version<T>) -> Self {
        let mut document = stored.document.clone();
        document.stamp(
            stored.version,
            &stored.chain.maker,
            &stored.reason,
            stored.published_at.unwrap_or(stored.proposed_at),
        );
        Self {
            version: stored.version,
            document,
            stored: Some(stored),
        }
    }
}

/// The newest published version (the one a proposal applies to), else the ungoverned one.
fn newest_published<T: Clone>(versions: &[Version<T>]) -> Option<&Version<T>> {
    versions
        .iter()
        .filter(|version| version.status() == VersionStatus::Published)
        .max_by_key(|version| version.version)
}

fn stale_proposal(name: &str) -> ServiceError {
    ServiceError::failed_precondition(
        "PROPOSAL_STALE",
        format!(
            "another {name} was published after this one was proposed; propose the change again over it"
        ),
    )
}

impl CreditAdmin {
    /// Every stored version of `T`, oldest first.
    pub(super) async fn governed_versions<T: Document>(
        &self,
    ) -> Result<Vec<Version<T>>, ServiceError>
    where
        dyn LimitStore: GovernedStore<T>,
    {
        GovernedStore::<T>::governed_versions(&*self.store)
            .await
            .map_err(ServiceError::from)
    }

    /// The version of `T` a proposal made now applies to: the newest published one, or the
    /// ungoverned one.
    pub async fn newest_document<T: Document>(&self) -> Result<VersionView<T>, ServiceError>
    where
        dyn LimitStore: GovernedStore<T>,
    {
        let versions = self.governed_versions::<T>().await?;
        match newest_published(&versions) {
            Some(newest) => Ok(VersionView::of(newest.clone())),
            None => {
                let (version, document) = T::ungoverned(&self.hot).await?;
                Ok(VersionView {
                    version,
                    document,
                    stored: None,
                })
            }
        }
    }

    /// Version `wanted` of `T`, or the one in force now; NOT_FOUND for a number never used.
    pub async fn governed_version<T: Document>(
        &self,
        wanted: Option<u32>,
    ) -> Result<VersionView<T>, ServiceError>
    where
        dyn LimitStore: GovernedStore<T>,
    {
        let (versions, in_force) = self.governed_history::<T>().await?;
        let wanted = wanted.unwrap_or(in_force);
        versions
            .into_iter()
            .find(|view| view.version == wanted)
            .ok_or_else(|| ServiceError::not_found(T::VERSION_NAME, wanted.to_string()))
    }

    /// Every version of `T`, newest first, the ungoverned one last; and the number of the
    /// version in force now.
    pub async fn governed_history<T: Document>(
        &self,
    ) -> Result<(Vec<VersionView<T>>, u32), ServiceError>
    where
        dyn LimitStore: GovernedStore<T>,
    {
        let versions = self.governed_versions::<T>().await?;
        let (ungoverned_version, ungoverned) = T::ungoverned(&self.hot).await?;
        let in_force = governance::in_force(&versions, Utc::now())
            .map_or(ungoverned_version, |found| found.version);
        let mut views: Vec<VersionView<T>> =
            versions.into_iter().rev().map(VersionView::of).collect();
        views.push(VersionView {
            version: ungoverned_version,
            document: ungoverned,
            stored: None,
        });
        Ok((views, in_force))
    }

    /// Files `document` as the next version of `T`, proposed by `proposer` over `base` (the
    /// version it was made from, see [`CreditAdmin::newest_document`]). It walks the
    /// POLICY_CHANGE chain of the matrix in force; nothing changes until that approves it.
    pub async fn propose_version<T: Document>(
        &self,
        proposer: &Principal,
        base: &VersionView<T>,
        document: T,
        reason: String,
        effective_from: Option<DateTime<Utc>>,
        key: &IdempotencyKey,
    ) -> Result<VersionView<T>, ServiceError>
    where
        dyn LimitStore: GovernedStore<T>,
    {
        document.check()?;
        let now = Utc::now();
        let (matrix_version, matrix) = self.matrix_in_force(now).await?;
        let rule = matrix
            .chain_rule(DecisionKind::PolicyChange, &Default::default())
            .ok_or_else(|| {
                ServiceError::internal("the matrix in force has no POLICY_CHANGE chain")
            })?;
        // A proposal carries its base's changes, so it cannot take effect before its base does.
        let base_effective = base.stored.as_ref().map(|stored| stored.effective_from);
        let effective_from = effective_from
            .unwrap_or(now)
            .max(now)
            .max(base_effective.unwrap_or(now));
        let proposal = Version {
            version: 0,
            changes: governance::changes(&base.document, &document),
            based_on: base.version,
            document,
            reason,
            proposed_at: now,
            effective_from,
            published_at: None,
            chain: Chain::start(rule, matrix_version, Actor::of(proposer), None),
        };
        let stored =
            GovernedStore::<T>::propose_version(&*self.store, &proposal, base.version + 1, key)
                .await
                .map_err(ServiceError::from)?
                .into_inner();
        Ok(VersionView::of(stored))
    }

    /// A verdict (or the proposer's resubmission) on step `step_index` of version `version`'s
    /// chain; published when its chain approves it, in force from its effective date.
    #[allow(clippy::too_many_arguments)]
    pub(super) async fn decide_version<T: Document>(
        &self,
        principal: &Principal,
        version: u32,
        step_index: usize,
        action: StepAction,
        note: &str,
        key: &IdempotencyKey,
        now: DateTime<Utc>,
    ) -> Result<Version<T>, ServiceError>
    where
        dyn LimitStore: GovernedStore<T>,
    {
        let versions = self.governed_versions::<T>().await?;
        let newest = newest_published(&versions).map(|newest| newest.version);
        let mut proposal = versions
            .into_iter()
            .find(|stored| stored.version == version)
            .ok_or_else(|| ServiceError::not_found(T::VERSION_NAME, version.to_string()))?;
        let expected_trail = proposal.chain.trail.len();
        let as_stored = proposal.clone();
        let progress = action.apply(&mut proposal.chain, principal, step_index, note, now);
        match progress {
            Err(refused) => {
                // A retry of a verdict already recorded is answered with the version as it is.
                if self
                    .store
                    .recorded_under(key)
                    .await
                    .map_err(ServiceError::from)?
                    .is_some()
                {
                    return Ok(as_stored);
                }
                return Err(refused.into());
            }
            Ok(Progress::Approved) => {
                // Published over a version newer than the one it was made from, it would undo
                // that version's changes without anyone having read them.
                if newest.is_some_and(|newest| newest > proposal.based_on) {
                    return Err(stale_proposal(T::VERSION_NAME));
                }
                proposal.publish(now);
                let (number, maker, reason) = (
                    proposal.version,
                    proposal.chain.maker.clone(),
                    proposal.reason.clone(),
                );
                proposal.document.stamp(number, &maker, &reason, now);
            }
            Ok(_) => {}
        }
        let step_event = step_decided_event(
            &proposal.chain,
            &governance::record_id::<T>(proposal.version),
            "",
            &key.request_id,
        );
        let decided = GovernedStore::<T>::decide_version(
            &*self.store,
            &proposal,
            expected_trail,
            key,
            step_event.as_ref(),
            now,
        )
        .await
        .map_err(ServiceError::from)?;
        if let credit_runtime::store::Outcome::New(published) = &decided
            && published.status() == VersionStatus::Published
            && published.effective_from <= now
        {
            T::published(&self.hot, &published.document).await;
        }
        Ok(decided.into_inner())
    }
}
