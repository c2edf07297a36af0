//! Proposed model versions, on both backends: a new version of a scorecard model waits for a
//! second person (issue #22, 制度修订). A proposal keeps the model as proposed, what it changes
//! against the version it was proposed over, and its approval chain; the verdict that approves
//! the chain's last step publishes the model as the next version in the same transaction, so a
//! proposal is published once or not at all.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use credit_core::ServiceError;
use credit_core::approval::Chain;
pub use credit_core::governance::ProposalFilter;
use credit_core::governance::{Change, Proposal, VersionStatus};
use credit_proto::v1 as pb;
use credit_runtime::sql::IdempotencyKey;
use credit_runtime::{insert_idempotency_key, lookup_idempotency_key, on_database};
use sqlx::types::Json;

use super::document::ModelDocument;
use super::{
    Admission, LATEST_MODELS, ModelRow, Outcome, SqlModelStore, StoreError, StoreResult,
    into_published_models, kind_name, model_from_document, stored_time,
};
use crate::domain::ScorecardModel;

/// A proposed version of a model and where its approval stands (its model not yet a version).
pub type ModelProposal = Proposal<ScorecardModel>;

pub use credit_core::governance::ProposalDecider;

#[async_trait]
pub trait ModelProposalStore: Send + Sync {
    /// Files `proposal` once per key: a replay answers the proposal the key filed.
    async fn propose_model(
        &self,
        proposal: &ModelProposal,
        key: &IdempotencyKey,
    ) -> StoreResult<Outcome<ModelProposal>>;

    async fn model_proposal(&self, proposal_id: &str) -> StoreResult<Option<ModelProposal>>;

    /// Proposals newest first, after the proposal id `after`.
    async fn model_proposals(
        &self,
        filter: &ProposalFilter,
        after: Option<&str>,
        limit: i64,
    ) -> StoreResult<Vec<ModelProposal>>;

    /// Records `decide`'s verdict on the proposal, once per key; a verdict that approves the
    /// chain publishes the model as the next version of its id, after `admit` accepted it
    /// against the latest version of every model (the decision and the publication commit
    /// together or not at all).
    async fn decide_model_proposal(
        &self,
        proposal_id: &str,
        key: &IdempotencyKey,
        decide: ProposalDecider<'_, ScorecardModel>,
        admit: Admission<'_>,
    ) -> StoreResult<Outcome<ModelProposal>>;
}

/// One row of `model_proposals`.
#[derive(Debug, sqlx::FromRow)]
struct ProposalRow {
    proposal_id: String,
    base_version: i64,
    document: Json<ModelDocument>,
    changes: Json<Vec<Change>>,
    approval_chain: Json<Chain>,
    proposed_at: DateTime<Utc>,
    published_version: Option<i64>,
}

impl ProposalRow {
    fn into_proposal(self) -> StoreResult<ModelProposal> {
        let place = format!("model proposal {}", self.proposal_id);
        let version = |number: i64| {
            u32::try_from(number)
                .map_err(|_| StoreError::Corrupt(format!("{place}: version {number}")))
        };
        Ok(ModelProposal {
            document: model_from_document(self.document.0, &place)?,
            base_version: version(self.base_version)?,
            published_version: self.published_version.map(version).transpose()?,
            proposal_id: self.proposal_id,
            changes: self.changes.0,
            chain: self.approval_chain.0,
            proposed_at: self.proposed_at,
        })
    }
}

const PROPOSAL_COLUMNS_SQL: &str = "SELECT proposal_id, base_version, document, changes, approval_chain, proposed_at, published_version \
     FROM model_proposals WHERE proposal_id = $1";

#[async_trait]
impl ModelProposalStore for SqlModelStore {
    async fn propose_model(
        &self,
        proposal: &ModelProposal,
        key: &IdempotencyKey,
    ) -> StoreResult<Outcome<ModelProposal>> {
        let document = Json(ModelDocument::from(&pb::ScorecardModel::from(
            &proposal.document,
        )));
        on_database!(&self.database, |pool, sql, begin_write| {
            let mut tx = pool.begin_with(begin_write).await?;
            if let Some(existing) = lookup_idempotency_key!(tx, sql, key)?.into_replay()? {
                let row = sqlx::query_as::<_, ProposalRow>(&sql(PROPOSAL_COLUMNS_SQL))
                    .bind(&existing)
                    .fetch_one(&mut *tx)
                    .await?;
                return Ok(Outcome::Replayed(row.into_proposal()?));
            }
            sqlx::query(&sql(
                "INSERT INTO model_proposals (proposal_id, model_id, status, base_version, document, changes, approval_chain, proposed_at, published_version) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, NULL)",
            ))
            .bind(&proposal.proposal_id)
            .bind(proposal.document.model_id().as_str())
            .bind(proposal.status().as_str())
            .bind(i64::from(proposal.base_version))
            .bind(&document)
            .bind(Json(&proposal.changes))
            .bind(Json(&proposal.chain))
            .bind(stored_time(proposal.proposed_at))
            .execute(&mut *tx)
            .await?;
            insert_idempotency_key!(
                tx,
                sql,
                key,
                &proposal.proposal_id,
                stored_time(proposal.proposed_at)
            )?;
            tx.commit().await?;
            Ok(Outcome::New(ModelProposal {
                proposed_at: stored_time(proposal.proposed_at),
                ..proposal.clone()
            }))
        })
    }

    async fn model_proposal(&self, proposal_id: &str) -> StoreResult<Option<ModelProposal>> {
        let row = on_database!(&self.database, |pool, sql| {
            sqlx::query_as::<_, ProposalRow>(&sql(PROPOSAL_COLUMNS_SQL))
                .bind(proposal_id)
                .fetch_optional(pool)
                .await?
        });
        row.map(ProposalRow::into_proposal).transpose()
    }

    async fn model_proposals(
        &self,
        filter: &ProposalFilter,
        after: Option<&str>,
        limit: i64,
    ) -> StoreResult<Vec<ModelProposal>> {
        let status = filter.status.map_or("", |status| status.as_str());
        let after = after.unwrap_or("");
        let rows = on_database!(&self.database, |pool, sql| {
            sqlx::query_as::<_, ProposalRow>(&sql(
                "SELECT proposal_id, base_version, document, changes, approval_chain, proposed_at, published_version \
                 FROM model_proposals \
                 WHERE ($1 = '' OR status = $1) AND ($2 = '' OR model_id = $2) \
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

    async fn decide_model_proposal(
        &self,
        proposal_id: &str,
        key: &IdempotencyKey,
        decide: ProposalDecider<'_, ScorecardModel>,
        admit: Admission<'_>,
    ) -> StoreResult<Outcome<ModelProposal>> {
        on_database!(&self.database, |pool, sql, begin_write| {
            let mut tx = pool.begin_with(begin_write).await?;
            // Taken first: verdicts and publications queue one after another, so the chain and
            // the latest versions read below are those the write goes over.
            sqlx::query(&sql(
                "UPDATE model_publication_lock SET publications = publications + 1 WHERE id = 1",
            ))
            .execute(&mut *tx)
            .await?;
            let row = sqlx::query_as::<_, ProposalRow>(&sql(PROPOSAL_COLUMNS_SQL))
                .bind(proposal_id)
                .fetch_optional(&mut *tx)
                .await?;
            let Some(row) = row else {
                return Err(StoreError::refused(ServiceError::not_found(
                    "model proposal",
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
                "SELECT COALESCE(MAX(version), 0) FROM scorecard_models WHERE model_id = $1",
            ))
            .bind(proposal.document.model_id().as_str())
            .fetch_one(&mut *tx)
            .await?;
            let latest = u32::try_from(latest)
                .map_err(|_| StoreError::Corrupt(format!("model version {latest}")))?;
            let mut decided = decide(&proposal, latest).map_err(StoreError::refused)?;
            let now = stored_time(Utc::now());
            if decided.status() == VersionStatus::Published {
                let document = Json(ModelDocument::from(&pb::ScorecardModel::from(
                    &decided.document,
                )));
                // The version is published by the person whose verdict approved it.
                let publisher = decided
                    .chain
                    .trail
                    .last()
                    .map_or(&decided.chain.maker, |verdict| &verdict.actor)
                    .clone();
                let version = publish_next_version!(
                    tx,
                    sql,
                    &decided.document,
                    &document,
                    now,
                    Json(&publisher),
                    admit
                )?;
                decided.published_version = Some(
                    u32::try_from(version)
                        .map_err(|_| StoreError::Corrupt(format!("model version {version}")))?,
                );
            }
            sqlx::query(&sql(
                "UPDATE model_proposals SET status = $2, approval_chain = $3, published_version = $4 \
                 WHERE proposal_id = $1",
            ))
            .bind(proposal_id)
            .bind(decided.status().as_str())
            .bind(Json(&decided.chain))
            .bind(decided.published_version.map(i64::from))
            .execute(&mut *tx)
            .await?;
            insert_idempotency_key!(tx, sql, key, proposal_id, now)?;
            tx.commit().await?;
            Ok(Outcome::New(decided))
        })
    }
}
