//! The rating service's persistence: the [`ModelStore`] and [`RatingStore`] traits and their
//! SQL implementations for PostgreSQL and the embedded SQLite file (one body for both, through
//! `on_database!`).
//!
//! Published model versions are never changed or deleted: a rating names the model version it
//! was scored with, and re-scoring its snapshot must find exactly that version again.

mod document;
mod ratings;

pub use ratings::{
    DueRating, EffectiveGrade, NewRating, OverrideFilter, RatingStore, RecordedRating,
    SqlRatingStore, dated_key,
};

use async_trait::async_trait;
use chrono::{DateTime, SubsecRound, Utc};
use credit_core::{Actor, ServiceError};
use credit_proto::v1 as pb;
use credit_runtime::sql::{IdempotencyKey, retry_once_on_race};
use credit_runtime::{Database, insert_idempotency_key, lookup_idempotency_key, on_database};
use sqlx::types::Json;

use crate::api::convert::ProtoPaths;
use crate::api::convert::model::unchecked_model;
use crate::domain::model::ModelError;
use crate::domain::{CustomerKind, InvalidFields, ModelId, ScorecardModel};
use document::ModelDocument;

pub use credit_runtime::store::{Outcome, StoreError, StoreResult};

/// When and by whom a version is published.
#[derive(Debug, Clone)]
pub struct Publication {
    pub published_at: DateTime<Utc>,
    pub published_by: Actor,
}

/// A published model version with its publication.
#[derive(Debug, Clone)]
pub struct PublishedModel {
    /// Carries its version (1, 2, ...).
    pub model: ScorecardModel,
    pub published_at: DateTime<Utc>,
    pub published_by: Actor,
}

/// Which versions ListModels returns.
#[derive(Debug, Clone, Default)]
pub struct ModelFilter {
    pub customer_kind: Option<CustomerKind>,
    pub model_id: Option<ModelId>,
    /// Every version, instead of the latest version of each model.
    pub all_versions: bool,
}

/// The last row of a page of models (ordered by model id, then version descending).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModelCursor {
    pub model_id: String,
    pub version: u32,
}

impl ModelCursor {
    pub fn of(model: &ScorecardModel) -> Self {
        Self {
            model_id: model.model_id().to_string(),
            version: model.version(),
        }
    }

    /// "enterprise-default/2": model ids never contain "/".
    pub fn to_key(&self) -> String {
        format!("{}/{}", self.model_id, self.version)
    }

    pub fn from_key(key: &str) -> Option<Self> {
        let (model_id, version) = key.rsplit_once('/')?;
        Some(Self {
            model_id: ModelId::parse(model_id).ok()?.to_string(),
            version: version.parse().ok()?,
        })
    }
}

/// Checks a model about to be published against the latest version of every published model,
/// inside the write, so that the check and the write see the same models.
pub type Admission<'a> = &'a (dyn Fn(&[ScorecardModel]) -> Result<(), ServiceError> + Send + Sync);

#[async_trait]
pub trait ModelStore: ModelProposalStore + Send + Sync + std::fmt::Debug {
    /// Publishes `model` as the next version of its id (1 for a new id), once per key: a
    /// replay returns the version the key published. The RPCs never publish directly: a new
    /// version is published by the approval of its proposal
    /// ([`ModelProposalStore::decide_model_proposal`]), which makes the same write; this form
    /// serves operators' tooling and the store's own tests. `admit` sees the latest version of every
    /// published model and may refuse (`StoreError::Refused`, nothing written). Publications
    /// are queued one after another, so two conflicting models can never both be admitted.
    async fn publish(
        &self,
        model: &ScorecardModel,
        publication: &Publication,
        key: &IdempotencyKey,
        admit: Admission<'_>,
    ) -> StoreResult<Outcome<PublishedModel>>;

    /// Publishes `model` as version 1 unless its id has a version already; `true` when it did.
    /// For the shipped models on every start: replicas starting at once publish each one once.
    async fn publish_first_version(
        &self,
        model: &ScorecardModel,
        publication: &Publication,
    ) -> StoreResult<bool>;

    /// One version of a model, or its latest version when `version` is `None`.
    async fn model(
        &self,
        model_id: &ModelId,
        version: Option<u32>,
    ) -> StoreResult<Option<PublishedModel>>;

    /// The latest version of every model, by model id: the models that rate customers.
    async fn latest_models(&self) -> StoreResult<Vec<PublishedModel>>;

    /// At most `limit` versions matching `filter`, ordered by model id then version descending,
    /// after `after` when given.
    async fn list_models(
        &self,
        filter: &ModelFilter,
        after: Option<&ModelCursor>,
        limit: i64,
    ) -> StoreResult<Vec<PublishedModel>>;
}

#[derive(Debug, Clone)]
pub struct SqlModelStore {
    database: Database,
}

impl SqlModelStore {
    pub fn new(database: Database) -> Self {
        Self { database }
    }
}

/// The stored name of a customer kind, as in the contract without its prefix.
fn kind_name(kind: CustomerKind) -> &'static str {
    match kind {
        CustomerKind::Enterprise => "ENTERPRISE",
        CustomerKind::Individual => "INDIVIDUAL",
    }
}

/// One row of `scorecard_models`, as both backends decode it.
#[derive(Debug, sqlx::FromRow)]
struct ModelRow {
    model_id: String,
    version: i64,
    document: Json<ModelDocument>,
    published_at: DateTime<Utc>,
    published_by: Json<Actor>,
}

impl ModelRow {
    /// The stored model passes the same checks as a published one: the domain builds a model
    /// no other way, and a row that no longer passes is reported instead of used.
    fn into_published(self) -> StoreResult<PublishedModel> {
        let place = format!("model {} version {}", self.model_id, self.version);
        let version = u32::try_from(self.version)
            .map_err(|_| StoreError::Corrupt(format!("{place}: version out of range")))?;
        let model = model_from_document(self.document.0, &place)?.with_version(version);
        if model.model_id().as_str() != self.model_id {
            return Err(StoreError::Corrupt(format!(
                "{place}: the document is of model {}",
                model.model_id()
            )));
        }
        Ok(PublishedModel {
            model,
            published_at: self.published_at,
            published_by: self.published_by.0,
        })
    }
}

/// A stored model document, checked like a published model (`place` names it in errors).
fn model_from_document(document: ModelDocument, place: &str) -> StoreResult<ScorecardModel> {
    let wire = pb::ScorecardModel::try_from(document)
        .map_err(|error| StoreError::Corrupt(format!("{place}: {error}")))?;
    ScorecardModel::parse(&unchecked_model(&wire), &ProtoPaths::new(""))
        .map_err(|error| StoreError::Corrupt(format!("{place}: {}", describe(&error))))
}

/// What `after` changes against `before`, field by field, as their stored documents read (the
/// figures the checks derive, like the score range, left out): what a proposal's deciders read.
pub fn model_changes(
    before: &ScorecardModel,
    after: &ScorecardModel,
) -> Vec<credit_core::governance::Change> {
    credit_core::governance::diff(
        &ModelDocument::from(&pb::ScorecardModel::from(before)),
        &ModelDocument::from(&pb::ScorecardModel::from(after)),
    )
}

/// A refused model with every violation, for the log (never for a client: it may be a stored
/// model's problem, not the caller's).
pub(crate) fn describe(error: &ModelError) -> String {
    match error {
        ModelError::Invalid(InvalidFields(violations)) => violations
            .iter()
            .map(|violation| format!("{}: {}", violation.field, violation.description))
            .collect::<Vec<_>>()
            .join("; "),
        other => other.to_string(),
    }
}

fn into_published_models(rows: Vec<ModelRow>) -> StoreResult<Vec<PublishedModel>> {
    rows.into_iter().map(ModelRow::into_published).collect()
}

/// The latest version of every model, by model id.
const LATEST_MODELS: &str = "SELECT model_id, version, document, published_at, published_by \
     FROM scorecard_models AS m \
     WHERE m.version = (SELECT MAX(newer.version) FROM scorecard_models AS newer WHERE newer.model_id = m.model_id) \
     ORDER BY m.model_id";

/// PostgreSQL keeps microseconds: the time a publication answers with is the time a replay
/// or a later read will show.
fn stored_time(time: DateTime<Utc>) -> DateTime<Utc> {
    time.trunc_subsecs(6)
}

/// The idempotency table remembers a publication as "<model id>/<version>".
fn resource_id(model_id: &str, version: i64) -> String {
    format!("{model_id}/{version}")
}

fn parse_resource_id(resource_id: &str) -> StoreResult<(String, i64)> {
    resource_id
        .rsplit_once('/')
        .and_then(|(model_id, version)| Some((model_id.to_owned(), version.parse().ok()?)))
        .ok_or_else(|| StoreError::Corrupt(format!("publication key {resource_id}")))
}

/// Publishes `$model` as the next version of its id inside `$tx` (which holds the publication
/// lock), once `$admit` accepted it against the latest version of every published model;
/// evaluates to the version. Shared by PublishModel's direct path and a proposal's approval.
macro_rules! publish_next_version {
    ($tx:expr, $sql:ident, $model:expr, $document:expr, $published_at:expr, $published_by:expr, $admit:expr) => {
        async {
            let model: &ScorecardModel = $model;
            let latest = sqlx::query_as::<_, ModelRow>(&$sql(LATEST_MODELS))
                .fetch_all(&mut *$tx)
                .await?;
            let published: Vec<ScorecardModel> = into_published_models(latest)?
                .into_iter()
                .map(|published| published.model)
                .collect();
            ($admit)(&published).map_err(StoreError::refused)?;
            let version: i64 = sqlx::query_scalar(&$sql(
                "SELECT COALESCE(MAX(version), 0) + 1 FROM scorecard_models WHERE model_id = $1",
            ))
            .bind(model.model_id().as_str())
            .fetch_one(&mut *$tx)
            .await?;
            sqlx::query(&$sql(
                "INSERT INTO scorecard_models (model_id, version, customer_kind, document, published_at, published_by) \
                 VALUES ($1, $2, $3, $4, $5, $6)",
            ))
            .bind(model.model_id().as_str())
            .bind(version)
            .bind(kind_name(model.customer_kind()))
            .bind($document)
            .bind($published_at)
            .bind($published_by)
            .execute(&mut *$tx)
            .await?;
            Ok::<i64, StoreError>(version)
        }
        .await
    };
}

mod proposals;

pub use proposals::{ModelProposal, ModelProposalStore, ProposalDecider, ProposalFilter};

#[async_trait]
impl ModelStore for SqlModelStore {
    async fn publish(
        &self,
        model: &ScorecardModel,
        publication: &Publication,
        key: &IdempotencyKey,
        admit: Admission<'_>,
    ) -> StoreResult<Outcome<PublishedModel>> {
        let document = Json(ModelDocument::from(&pb::ScorecardModel::from(model)));
        let published_by = Json(&publication.published_by);
        let published_at = stored_time(publication.published_at);
        let model_id = model.model_id().as_str();
        retry_once_on_race(|| async {
            on_database!(&self.database, |pool, sql, begin_write| {
                let mut tx = pool.begin_with(begin_write).await?;
                // Taken first, so every read below sees all publications committed before.
                sqlx::query(&sql(
                    "UPDATE model_publication_lock SET publications = publications + 1 WHERE id = 1",
                ))
                .execute(&mut *tx)
                .await?;
                if let Some(existing) = lookup_idempotency_key!(tx, sql, key)?.into_replay()? {
                    let (existing_id, existing_version) = parse_resource_id(&existing)?;
                    let row = sqlx::query_as::<_, ModelRow>(&sql(
                        "SELECT model_id, version, document, published_at, published_by \
                         FROM scorecard_models WHERE model_id = $1 AND version = $2",
                    ))
                    .bind(&existing_id)
                    .bind(existing_version)
                    .fetch_one(&mut *tx)
                    .await?;
                    return Ok(Outcome::Replayed(row.into_published()?));
                }
                let version = publish_next_version!(
                    tx,
                    sql,
                    model,
                    &document,
                    published_at,
                    &published_by,
                    admit
                )?;
                let version_number = u32::try_from(version)
                    .map_err(|_| StoreError::Corrupt(format!("model {model_id}: version {version}")))?;
                insert_idempotency_key!(
                    tx,
                    sql,
                    key,
                    resource_id(model_id, version),
                    published_at
                )?;
                tx.commit().await?;
                Ok(Outcome::New(PublishedModel {
                    model: model.clone().with_version(version_number),
                    published_at,
                    published_by: publication.published_by.clone(),
                }))
            })
        })
        .await
    }

    async fn publish_first_version(
        &self,
        model: &ScorecardModel,
        publication: &Publication,
    ) -> StoreResult<bool> {
        let document = Json(ModelDocument::from(&pb::ScorecardModel::from(model)));
        let published_by = Json(&publication.published_by);
        on_database!(&self.database, |pool, sql, begin_write| {
            let mut tx = pool.begin_with(begin_write).await?;
            sqlx::query(&sql(
                "UPDATE model_publication_lock SET publications = publications + 1 WHERE id = 1",
            ))
            .execute(&mut *tx)
            .await?;
            // Version 1 exists whenever any version does: versions are never deleted.
            let inserted = sqlx::query(&sql(
                "INSERT INTO scorecard_models (model_id, version, customer_kind, document, published_at, published_by) \
                 VALUES ($1, 1, $2, $3, $4, $5) ON CONFLICT (model_id, version) DO NOTHING",
            ))
            .bind(model.model_id().as_str())
            .bind(kind_name(model.customer_kind()))
            .bind(&document)
            .bind(stored_time(publication.published_at))
            .bind(published_by)
            .execute(&mut *tx)
            .await?
            .rows_affected()
                == 1;
            tx.commit().await?;
            Ok(inserted)
        })
    }

    async fn model(
        &self,
        model_id: &ModelId,
        version: Option<u32>,
    ) -> StoreResult<Option<PublishedModel>> {
        // 0 never matches a stored version; it stands for "the latest".
        let version = version.map_or(0, i64::from);
        let row = on_database!(&self.database, |pool, sql| {
            sqlx::query_as::<_, ModelRow>(&sql(
                "SELECT model_id, version, document, published_at, published_by \
                 FROM scorecard_models WHERE model_id = $1 AND ($2 = 0 OR version = $2) \
                 ORDER BY version DESC LIMIT 1",
            ))
            .bind(model_id.as_str())
            .bind(version)
            .fetch_optional(pool)
            .await?
        });
        row.map(ModelRow::into_published).transpose()
    }

    async fn latest_models(&self) -> StoreResult<Vec<PublishedModel>> {
        let rows = on_database!(&self.database, |pool, sql| {
            sqlx::query_as::<_, ModelRow>(&sql(LATEST_MODELS))
                .fetch_all(pool)
                .await?
        });
        into_published_models(rows)
    }

    async fn list_models(
        &self,
        filter: &ModelFilter,
        after: Option<&ModelCursor>,
        limit: i64,
    ) -> StoreResult<Vec<PublishedModel>> {
        let kind = filter.customer_kind.map(kind_name).unwrap_or_default();
        let model_id = filter
            .model_id
            .as_ref()
            .map(ModelId::as_str)
            .unwrap_or_default();
        let after_id = after.map(|cursor| cursor.model_id.as_str()).unwrap_or("");
        let after_version = after.map_or(0, |cursor| i64::from(cursor.version));
        let rows = on_database!(&self.database, |pool, sql| {
            sqlx::query_as::<_, ModelRow>(&sql(
                "SELECT model_id, version, document, published_at, published_by \
                 FROM scorecard_models AS m \
                 WHERE ($1 OR m.version = (SELECT MAX(newer.version) FROM scorecard_models AS newer WHERE newer.model_id = m.model_id)) \
                 AND ($2 = '' OR m.customer_kind = $2) \
                 AND ($3 = '' OR m.model_id = $3) \
                 AND ($4 = '' OR m.model_id > $4 OR (m.model_id = $4 AND m.version < $5)) \
                 ORDER BY m.model_id, m.version DESC LIMIT $6",
            ))
            .bind(filter.all_versions)
            .bind(kind)
            .bind(model_id)
            .bind(after_id)
            .bind(after_version)
            .bind(limit)
            .fetch_all(pool)
            .await?
        });
        into_published_models(rows)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_refuse_foreign_keys() {
        let cursor = ModelCursor {
            model_id: "enterprise-default".into(),
            version: 12,
        };
        assert_eq!(cursor.to_key(), "enterprise-default/12");
        assert_eq!(ModelCursor::from_key(&cursor.to_key()), Some(cursor));
        assert_eq!(ModelCursor::from_key("enterprise-default"), None);
        assert_eq!(ModelCursor::from_key("Enterprise/1"), None);
        assert_eq!(ModelCursor::from_key("enterprise/-1"), None);
    }

    #[test]
    fn publication_keys_round_trip() {
        let key = resource_id("individual-default", 3);
        assert_eq!(
            parse_resource_id(&key).unwrap(),
            ("individual-default".to_owned(), 3)
        );
        assert!(parse_resource_id("nonsense").is_err());
    }
}
