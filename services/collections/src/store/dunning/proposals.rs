//! Proposed dunning policy versions, on both backends: a new version waits for a second person
//! (issue #22, 制度修订). A proposal keeps the policy as proposed, what it changes against the
//! version it was proposed over, and its approval chain; the verdict that approves the chain's
//! last step publishes the policy as the next version in the same transaction, so a proposal
//! is published once or not at all.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use credit_core::ServiceError;
use credit_core::approval::Chain;
pub use credit_core::governance::ProposalFilter as PolicyProposalFilter;
use credit_core::governance::{Change, Proposal, ProposalDecider, VersionStatus};
use credit_proto::v1 as pb;
use credit_runtime::sql::IdempotencyKey;
use credit_runtime::{insert_idempotency_key, lookup_idempotency_key, on_database};
use prost::Message;
use sqlx::types::Json;

use super::{LATEST_POLICIES, PolicyAdmission, decode_policy, now};
use crate::store::{Outcome, SqlReceivableStore, StoreError, StoreResult};

/// A proposed version of a dunning policy (an encoded `credit.v1.DunningPolicy`, version 0
/// until published) and where its approval stands.
pub type PolicyProposal = Proposal<pb::DunningPolicy>;

/// Decides a dunning policy proposal (see [`ProposalDecider`]).
pub type PolicyDecider<'a> = ProposalDecider<'a, pb::DunningPolicy>;

#[async_trait]
pub trait DunningProposalStore: Send + Sync {
    /// Files `proposal` once per key: a replay answers the proposal the key filed.
    async fn propose_policy(
        &self,
        proposal: &PolicyProposal,
        key: &IdempotencyKey,
    ) -> StoreResult<Outcome<PolicyProposal>>;

    async fn policy_proposal(&self, proposal_id: &str) -> StoreResult<Option<PolicyProposal>>;

    /// Proposals newest first, after the proposal id `after`.
    async fn policy_proposals(
        &self,
        filter: &PolicyProposalFilter,
        after: Option<&str>,
        limit: i64,
    ) -> StoreResult<Vec<PolicyProposal>>;

    /// Records `decide`'s verdict on the proposal, once per key; a verdict that approves the
    /// chain publishes the policy as the next version, as `admit` returns it from the latest
    /// version of every policy (the decision and the publication commit together or not at
    /// all), by `publisher`.
    async fn decide_policy_proposal(
        &self,
        proposal_id: &str,
        key: &IdempotencyKey,
        decide: PolicyDecider<'_>,
        admit: PolicyAdmission<'_>,
    ) -> StoreResult<Outcome<PolicyProposal>>;
}

/// One row of `dunning_policy_proposals`.
#[derive(Debug, sqlx::FromRow)]
struct ProposalRow {
    proposal_id: String,
    base_version: i64,
    document: Vec<u8>,
    changes: Json<Vec<Change>>,
    approval_chain: Json<Chain>,
    proposed_at: DateTime<Utc>,
    published_version: Option<i64>,
}

impl ProposalRow {
    fn into_proposal(self) -> StoreResult<PolicyProposal> {
        let version = |number: i64| {
            u32::try_from(number).map_err(|_| {
                StoreError::Corrupt(format!(
                    "dunning policy proposal {}: version {number}",
                    self.proposal_id
                ))
            })
        };
        Ok(PolicyProposal {
            document: decode_policy(&self.document)?,
            base_version: version(self.base_version)?,
            published_version: self.published_version.map(version).transpose()?,
            changes: self.changes.0,
            chain: self.approval_chain.0,
            proposed_at: self.proposed_at,
            proposal_id: self.proposal_id,
        })
    }
}

const PROPOSAL_BY_ID: &str = "SELECT proposal_id, base_version, document, changes, approval_chain, proposed_at, published_version \
     FROM dunning_policy_proposals WHERE proposal_id = $1";

#[async_trait]
impl DunningProposalStore for SqlReceivableStore {
    async fn propose_policy(
        &self,
        proposal: &PolicyProposal,
        key: &IdempotencyKey,
    ) -> StoreResult<Outcome<PolicyProposal>> {
        let proposed_at = crate::store::stored_time(proposal.proposed_at);
        on_database!(self.database(), |pool, sql, begin_write| {
            let mut tx = pool.begin_with(begin_write).await?;
            if let Some(existing) = lookup_idempotency_key!(tx, sql, key)?.into_replay()? {
                let row = sqlx::query_as::<_, ProposalRow>(&sql(PROPOSAL_BY_ID))
                    .bind(&existing)
                    .fetch_one(&mut *tx)
                    .await?;
                return Ok(Outcome::Replayed(row.into_proposal()?));
            }
            sqlx::query(&sql(
                "INSERT INTO dunning_policy_proposals (proposal_id, policy_id, status, base_version, document, changes, approval_chain, proposed_at, published_version) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, NULL)",
            ))
            .bind(&proposal.proposal_id)
            .bind(&proposal.document.policy_id)
            .bind(proposal.status().as_str())
            .bind(i64::from(proposal.base_version))
            .bind(proposal.document.encode_to_vec())
            .bind(Json(&proposal.changes))
            .bind(Json(&proposal.chain))
            .bind(proposed_at)
            .execute(&mut *tx)
            .await?;
            insert_idempotency_key!(tx, sql, key, &proposal.proposal_id, proposed_at)?;
            tx.commit().await?;
            Ok(Outcome::New(PolicyProposal {
                proposed_at,
                ..proposal.clone()
            }))
        })
    }

    async fn policy_proposal(&self, proposal_id: &str) -> StoreResult<Option<PolicyProposal>> {
        let row = on_database!(self.database(), |pool, sql| {
            sqlx::query_as::<_, ProposalRow>(&sql(PROPOSAL_BY_ID))
                .bind(proposal_id)
                .fetch_optional(pool)
                .await?
        });
        row.map(ProposalRow::into_proposal).transpose()
    }

    async fn policy_proposals(
        &self,
        filter: &PolicyProposalFilter,
        after: Option<&str>,
        limit: i64,
    ) -> StoreResult<Vec<PolicyProposal>> {
        let status = filter.status.map_or("", |status| status.as_str());
        let after = after.unwrap_or("");
        let rows = on_database!(self.database(), |pool, sql| {
            sqlx::query_as::<_, ProposalRow>(&sql(
                "SELECT proposal_id, base_version, document, changes, approval_chain, proposed_at, published_version \
                 FROM dunning_policy_proposals \
                 WHERE ($1 = '' OR status = $1) AND ($2 = '' OR policy_id = $2) \
                 AND ($3 = '' OR proposal_id < $3) \
                 ORDER BY proposal_id DESC LIMIT $4",
            ))
            .bind(status)
            .bind(&filter.document_id)
            .bind(after)
            .bind(limit)
            .fetch_all(pool)
            .await?
        });
        rows.into_iter().map(ProposalRow::into_proposal).collect()
    }

    async fn decide_policy_proposal(
        &self,
        proposal_id: &str,
        key: &IdempotencyKey,
        decide: PolicyDecider<'_>,
        admit: PolicyAdmission<'_>,
    ) -> StoreResult<Outcome<PolicyProposal>> {
        on_database!(self.database(), |pool, sql, begin_write| {
            let mut tx = pool.begin_with(begin_write).await?;
            // Taken first: verdicts and publications queue one after another, so the chain and
            // the versions read below are those the write goes over.
            sqlx::query(&sql(
                "UPDATE dunning_policy_lock SET publications = publications + 1 WHERE id = 1",
            ))
            .execute(&mut *tx)
            .await?;
            let row = sqlx::query_as::<_, ProposalRow>(&sql(PROPOSAL_BY_ID))
                .bind(proposal_id)
                .fetch_optional(&mut *tx)
                .await?;
            let Some(row) = row else {
                return Err(StoreError::refused(ServiceError::not_found(
                    "dunning policy proposal",
                    proposal_id,
                )));
            };
            let proposal = row.into_proposal()?;
            if lookup_idempotency_key!(tx, sql, key)?
                .into_replay()?
                .is_some()
            {
                return Ok(Outcome::Replayed(proposal));
            }
            let latest: i64 = sqlx::query_scalar(&sql(
                "SELECT COALESCE(MAX(version), 0) FROM dunning_policies WHERE policy_id = $1",
            ))
            .bind(&proposal.document.policy_id)
            .fetch_one(&mut *tx)
            .await?;
            let latest = u32::try_from(latest)
                .map_err(|_| StoreError::Corrupt(format!("dunning policy version {latest}")))?;
            let mut decided = decide(&proposal, latest).map_err(StoreError::refused)?;
            if decided.status() == VersionStatus::Published {
                // Published by the person whose verdict approved it, under the proposal's id.
                let publisher = decided
                    .chain
                    .trail
                    .last()
                    .map_or(&decided.chain.maker, |verdict| &verdict.actor)
                    .name
                    .clone();
                let published = publish_policy_version!(
                    tx,
                    sql,
                    &decided.document.policy_id,
                    proposal_id,
                    "proposal",
                    &publisher,
                    admit
                )?;
                decided.published_version = u32::try_from(published.version).ok();
            }
            sqlx::query(&sql(
                "UPDATE dunning_policy_proposals SET status = $2, approval_chain = $3, published_version = $4 \
                 WHERE proposal_id = $1",
            ))
            .bind(proposal_id)
            .bind(decided.status().as_str())
            .bind(Json(&decided.chain))
            .bind(decided.published_version.map(i64::from))
            .execute(&mut *tx)
            .await?;
            insert_idempotency_key!(tx, sql, key, proposal_id, now())?;
            tx.commit().await?;
            Ok(Outcome::New(decided))
        })
    }
}
