//! Ratings, overrides and the customers' status, on both backends (one body each, through
//! `on_database!`).
//!
//! A rating row keeps the rating as scored in `document` (an encoded `credit.v1.Rating`, decoded
//! into the domain's [`Rating`] here) and,
//! in columns, what may change afterwards: the effective grade (an approved override) and
//! whether it is still current. Reading a row lays the columns over the document, so the
//! document's copies of those fields never matter.
//!
//! The decisions that depend on the current state (the previous grade of a new rating, whether
//! a rating may still be overridden) are taken by closures the handlers pass in, inside the
//! write transaction, so the state they see is the state that is written over.

use async_trait::async_trait;
use chrono::{DateTime, NaiveDate, Utc};
use credit_core::Actor;
use credit_core::ServiceError;
use credit_core::approval::Chain;
use credit_proto::v1 as pb;
use credit_proto::v1::Event;
use credit_runtime::sql::{IdempotencyKey, retry_once_on_race};
use credit_runtime::{
    Database, insert_idempotency_key, insert_outbox_event, lookup_idempotency_key, on_database,
};
use prost::Message;
use sqlx::types::Json;

use super::{Outcome, StoreError, StoreResult, stored_time};
use crate::domain::rating::{ApprovalStatus, Rating, RatingOverride, ReviewRun, SYSTEM_PRINCIPAL};

/// Builds the new current rating from the customer's previous one (if any).
pub type RatingBuilder<'a> =
    &'a (dyn Fn(Option<&Rating>) -> Result<NewRating, ServiceError> + Send + Sync);

/// A rating about to become current: the event to publish with it, and the approval its
/// model grade waits for when it cannot take effect at once.
#[derive(Debug, Clone)]
pub struct NewRating {
    pub rating: Rating,
    /// RatingRecorded, and RatingChanged when the grade in force changes.
    pub events: Vec<Event>,
    pub grade_approval: Option<RatingOverride>,
}

/// Builds a proposal from the rating it overrides (the current one).
pub type OverrideBuilder<'a> =
    &'a (dyn Fn(&Rating) -> Result<RatingOverride, ServiceError> + Send + Sync);

/// Decides a pending override of a current rating: the decided override, the rating's new
/// effective grade when approved, and the event to publish.
pub type OverrideDecider<'a> = &'a (
        dyn Fn(
    &RatingOverride,
    &Rating,
) -> Result<(RatingOverride, Option<EffectiveGrade>, Option<Event>), ServiceError>
            + Send
            + Sync
    );

/// A rating's effective grade, as an approved override or grade approval sets it
/// (`override_id` empty for the latter: the model grade itself takes effect).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EffectiveGrade {
    pub grade: String,
    pub grade_rank: i32,
    pub pd: String,
    pub override_id: String,
    pub next_review_date: NaiveDate,
}

/// A rating stored now or by an earlier call with the same key, with the customer's rating
/// before it (`None` for a first rating).
#[derive(Debug, Clone)]
pub struct RecordedRating {
    pub rating: Rating,
    pub previous: Option<Rating>,
}

/// A customer whose current rating is due for review.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct DueRating {
    pub customer_id: String,
    pub rating_id: String,
    pub grade: String,
    pub next_review_date: NaiveDate,
}

/// The page key of a customer's row in a list ordered by a date, then customer.
pub fn dated_key(date: NaiveDate, customer_id: &str) -> String {
    format!("{date}/{customer_id}")
}

impl DueRating {
    /// "2026-06-30/cus_…": dates sort as text, customer ids never contain "/".
    pub fn cursor(&self) -> String {
        dated_key(self.next_review_date, &self.customer_id)
    }

    pub fn parse_cursor(key: &str) -> Option<(NaiveDate, String)> {
        let (date, customer_id) = key.split_once('/')?;
        Some((date.parse().ok()?, customer_id.to_owned()))
    }
}

/// Which overrides ListOverrides returns.
#[derive(Debug, Clone, Default)]
pub struct OverrideFilter {
    /// "PENDING", "APPROVED" or "REJECTED"; empty = any.
    pub status: String,
    /// Empty = any customer.
    pub customer_id: String,
}

#[async_trait]
pub trait RatingStore: Send + Sync + std::fmt::Debug {
    /// Makes the rating `build` returns the customer's current rating (the previous one stops
    /// being current) and appends its event to the outbox, once per key.
    async fn record_rating(
        &self,
        customer_id: &str,
        key: &IdempotencyKey,
        build: RatingBuilder<'_>,
    ) -> StoreResult<Outcome<RecordedRating>>;

    async fn rating(&self, rating_id: &str) -> StoreResult<Option<Rating>>;

    async fn current_rating(&self, customer_id: &str) -> StoreResult<Option<Rating>>;

    /// A customer's ratings, newest first, after the rating id `after`.
    async fn rating_history(
        &self,
        customer_id: &str,
        after: Option<&str>,
        limit: i64,
    ) -> StoreResult<Vec<Rating>>;

    /// Stores the proposal `build` makes for the current rating `rating_id`, once per key.
    /// FAILED_PRECONDITION when the rating is not current (RATING_SUPERSEDED) or an override
    /// of it already waits for a checker (OVERRIDE_PENDING).
    async fn propose_override(
        &self,
        rating_id: &str,
        key: &IdempotencyKey,
        build: OverrideBuilder<'_>,
    ) -> StoreResult<Outcome<RatingOverride>>;

    /// Decides the pending override `override_id` with `decide`, once per key.
    async fn decide_override(
        &self,
        override_id: &str,
        key: &IdempotencyKey,
        decide: OverrideDecider<'_>,
    ) -> StoreResult<Outcome<(RatingOverride, Rating)>>;

    async fn rating_override(&self, override_id: &str) -> StoreResult<Option<RatingOverride>>;

    /// Overrides newest first, after the override id `after`.
    async fn list_overrides(
        &self,
        filter: &OverrideFilter,
        after: Option<&str>,
        limit: i64,
    ) -> StoreResult<Vec<RatingOverride>>;

    /// Current ratings reviewed on or before `as_of`, most overdue first, of customers not
    /// known to be closed.
    async fn due_ratings(
        &self,
        as_of: NaiveDate,
        after: Option<&(NaiveDate, String)>,
        limit: i64,
    ) -> StoreResult<Vec<DueRating>>;

    /// Current ratings whose file needs a review on or before `through` (a stale input, or
    /// one going stale by then), of `customer_id` unless empty: the soonest first, after the
    /// cursor (review day, customer id).
    async fn file_reviews(
        &self,
        through: NaiveDate,
        customer_id: &str,
        after: Option<&(NaiveDate, String)>,
        limit: i64,
    ) -> StoreResult<Vec<Rating>>;

    /// What a RunScheduledReviews call with this key did; KeyReused when the request_id was
    /// used with other content.
    async fn review_run(&self, key: &IdempotencyKey) -> StoreResult<Option<ReviewRun>>;

    /// Keeps what a RunScheduledReviews call did for its retries (the first of two concurrent
    /// runs wins).
    async fn save_review_run(&self, key: &IdempotencyKey, run: &ReviewRun) -> StoreResult<()>;

    /// Records a customer's lifecycle status from intake's events, keeping the newest.
    async fn note_customer_status(
        &self,
        customer_id: &str,
        status: &str,
        changed_at: DateTime<Utc>,
    ) -> StoreResult<()>;
}

#[derive(Debug, Clone)]
pub struct SqlRatingStore {
    database: Database,
}

impl SqlRatingStore {
    pub fn new(database: Database) -> Self {
        Self { database }
    }
}

/// One row of `ratings`, as both backends decode it.
#[derive(Debug, sqlx::FromRow)]
struct RatingRow {
    rating_id: String,
    current: bool,
    grade: String,
    grade_rank: i32,
    pd: String,
    override_id: Option<String>,
    next_review_date: NaiveDate,
    document: Vec<u8>,
}

impl RatingRow {
    /// The rating as scored, with what changed since laid over it.
    fn into_rating(self) -> StoreResult<Rating> {
        let stored = pb::Rating::decode(self.document.as_slice())
            .map_err(|error| StoreError::Corrupt(format!("rating {}: {error}", self.rating_id)))?;
        let mut rating = Rating::from(&stored);
        rating.current = self.current;
        rating.grade = self.grade;
        rating.grade_rank = self.grade_rank;
        rating.pd = self.pd;
        rating.override_id = self.override_id.unwrap_or_default();
        rating.next_review_date = Some(self.next_review_date);
        rating.rating_id = self.rating_id;
        Ok(rating)
    }
}

/// One row of `rating_overrides`: the override as proposed or last decided, and its chain.
#[derive(Debug, sqlx::FromRow)]
struct OverrideRow {
    override_id: String,
    document: Vec<u8>,
    approval_chain: Option<Json<Chain>>,
}

impl OverrideRow {
    fn into_override(self) -> StoreResult<RatingOverride> {
        let stored = pb::RatingOverride::decode(self.document.as_slice()).map_err(|error| {
            StoreError::Corrupt(format!("override {}: {error}", self.override_id))
        })?;
        Ok(RatingOverride {
            approval_chain: self.approval_chain.map(|chain| Box::new(chain.0)),
            ..RatingOverride::from(&stored)
        })
    }
}

/// One row of `review_runs`: the request's fingerprint and the run as it answered.
#[derive(Debug, sqlx::FromRow)]
struct ReviewRunRow {
    fingerprint: String,
    response: Vec<u8>,
}

/// A rating as its row stores it: the encoded `credit.v1.Rating`, the format of every
/// existing row.
fn rating_document(rating: &Rating) -> Vec<u8> {
    pb::Rating::from(rating).encode_to_vec()
}

/// An override as its row stores it: the encoded `credit.v1.RatingOverride`, its chain in a
/// column of its own (which keeps who decided as people, not only as names).
fn override_document(proposal: &RatingOverride) -> Vec<u8> {
    pb::RatingOverride {
        approval_chain: None,
        ..pb::RatingOverride::from(proposal)
    }
    .encode_to_vec()
}

/// Inserts a new override (or grade approval) of `rating_id`, waiting for its checker.
macro_rules! insert_override {
    ($tx:expr, $sql:expr, $proposal:expr) => {
        sqlx::query(&$sql(
            "INSERT INTO rating_overrides (override_id, rating_id, customer_id, status, document, approval_chain) \
             VALUES ($1, $2, $3, 'PENDING', $4, $5)",
        ))
        .bind(&$proposal.override_id)
        .bind(&$proposal.rating_id)
        .bind(&$proposal.customer_id)
        .bind(override_document($proposal))
        .bind($proposal.approval_chain.as_deref().map(Json))
        .execute(&mut *$tx)
        .await
    };
}

/// Reads one override of a transaction by id.
macro_rules! fetch_override {
    ($tx:expr, $sql:expr, $override_id:expr) => {
        sqlx::query_as::<_, OverrideRow>(&$sql(
            "SELECT override_id, document, approval_chain FROM rating_overrides WHERE override_id = $1",
        ))
        .bind($override_id)
        .fetch_one(&mut *$tx)
        .await
    };
}

fn review_date(rating: &Rating) -> StoreResult<NaiveDate> {
    rating.next_review_date.ok_or_else(|| {
        StoreError::Corrupt(format!("rating {} has no review date", rating.rating_id))
    })
}

fn rated_at(rating: &Rating) -> DateTime<Utc> {
    rating.rated_at.map(stored_time).unwrap_or_default()
}

fn refused(error: ServiceError) -> StoreError {
    StoreError::refused(error)
}

#[async_trait]
impl RatingStore for SqlRatingStore {
    async fn record_rating(
        &self,
        customer_id: &str,
        key: &IdempotencyKey,
        build: RatingBuilder<'_>,
    ) -> StoreResult<Outcome<RecordedRating>> {
        // Losing the race for the one current row (two first ratings at once) runs the
        // transaction again, which then sees the winner as the previous rating.
        retry_once_on_race(|| async {
            on_database!(&self.database, |pool, sql, begin_write| {
                let mut tx = pool.begin_with(begin_write).await?;
                if let Some(rating_id) = lookup_idempotency_key!(tx, sql, key)?.into_replay()? {
                    let row = sqlx::query_as::<_, RatingRow>(&sql(
                        "SELECT rating_id, current, grade, grade_rank, pd, override_id, next_review_date, document \
                         FROM ratings WHERE rating_id = $1",
                    ))
                    .bind(&rating_id)
                    .fetch_one(&mut *tx)
                    .await?;
                    let rating = row.into_rating()?;
                    let previous = sqlx::query_as::<_, RatingRow>(&sql(
                        "SELECT rating_id, current, grade, grade_rank, pd, override_id, next_review_date, document \
                         FROM ratings WHERE customer_id = $1 AND rating_id < $2 ORDER BY rating_id DESC LIMIT 1",
                    ))
                    .bind(customer_id)
                    .bind(&rating_id)
                    .fetch_optional(&mut *tx)
                    .await?
                    .map(RatingRow::into_rating)
                    .transpose()?;
                    return Ok(Outcome::Replayed(RecordedRating { rating, previous }));
                }
                // Taking the previous rating's row first queues a concurrent rater behind us.
                let previous = sqlx::query_as::<_, RatingRow>(&sql(
                    "UPDATE ratings SET current = FALSE WHERE customer_id = $1 AND current \
                     RETURNING rating_id, current, grade, grade_rank, pd, override_id, next_review_date, document",
                ))
                .bind(customer_id)
                .fetch_optional(&mut *tx)
                .await?
                .map(RatingRow::into_rating)
                .transpose()?
                .map(|mut previous| {
                    previous.current = true;
                    previous
                });
                let NewRating {
                    rating,
                    events,
                    grade_approval,
                } = build(previous.as_ref()).map_err(refused)?;
                let rated_at = rated_at(&rating);
                // What waited on the previous rating can no longer be decided: it is withdrawn,
                // so that nobody's queue keeps it.
                if let Some(previous) = &previous {
                    let waiting = sqlx::query_as::<_, OverrideRow>(&sql(
                        "SELECT override_id, document, approval_chain FROM rating_overrides \
                         WHERE rating_id = $1 AND status = 'PENDING'",
                    ))
                    .bind(&previous.rating_id)
                    .fetch_optional(&mut *tx)
                    .await?;
                    if let Some(waiting) = waiting {
                        let withdrawn = waiting.into_override()?.withdrawn(
                            &rating.rating_id,
                            Actor::named(SYSTEM_PRINCIPAL),
                            rated_at,
                        );
                        sqlx::query(&sql(
                            "UPDATE rating_overrides SET status = $2, document = $3, approval_chain = $4 \
                             WHERE override_id = $1",
                        ))
                        .bind(&withdrawn.override_id)
                        .bind(withdrawn.status.stored_name())
                        .bind(override_document(&withdrawn))
                        .bind(withdrawn.approval_chain.as_deref().map(Json))
                        .execute(&mut *tx)
                        .await?;
                    }
                }
                sqlx::query(&sql(
                    "INSERT INTO ratings (rating_id, customer_id, rated_at, current, grade, grade_rank, pd, override_id, next_review_date, document, inputs_stale_on) \
                     VALUES ($1, $2, $3, TRUE, $4, $5, $6, NULL, $7, $8, $9)",
                ))
                .bind(&rating.rating_id)
                .bind(customer_id)
                .bind(rated_at)
                .bind(&rating.grade)
                .bind(rating.grade_rank)
                .bind(&rating.pd)
                .bind(review_date(&rating)?)
                .bind(rating_document(&rating))
                .bind(rating.file_review_on())
                .execute(&mut *tx)
                .await?;
                if let Some(approval) = &grade_approval {
                    insert_override!(tx, sql, approval)?;
                }
                for event in &events {
                    insert_outbox_event!(tx, sql, event)?;
                }
                insert_idempotency_key!(tx, sql, key, &rating.rating_id, rated_at)?;
                tx.commit().await?;
                Ok(Outcome::New(RecordedRating { rating, previous }))
            })
        })
        .await
    }

    async fn rating(&self, rating_id: &str) -> StoreResult<Option<Rating>> {
        let row = on_database!(&self.database, |pool, sql| {
            sqlx::query_as::<_, RatingRow>(&sql(
                "SELECT rating_id, current, grade, grade_rank, pd, override_id, next_review_date, document \
                 FROM ratings WHERE rating_id = $1",
            ))
            .bind(rating_id)
            .fetch_optional(pool)
            .await?
            .map(RatingRow::into_rating)
            .transpose()?
        });
        Ok(row)
    }

    async fn current_rating(&self, customer_id: &str) -> StoreResult<Option<Rating>> {
        let row = on_database!(&self.database, |pool, sql| {
            sqlx::query_as::<_, RatingRow>(&sql(
                "SELECT rating_id, current, grade, grade_rank, pd, override_id, next_review_date, document \
                 FROM ratings WHERE customer_id = $1 AND current",
            ))
            .bind(customer_id)
            .fetch_optional(pool)
            .await?
            .map(RatingRow::into_rating)
            .transpose()?
        });
        Ok(row)
    }

    async fn rating_history(
        &self,
        customer_id: &str,
        after: Option<&str>,
        limit: i64,
    ) -> StoreResult<Vec<Rating>> {
        let after = after.unwrap_or("");
        on_database!(&self.database, |pool, sql| {
            sqlx::query_as::<_, RatingRow>(&sql(
                "SELECT rating_id, current, grade, grade_rank, pd, override_id, next_review_date, document \
                 FROM ratings WHERE customer_id = $1 AND ($2 = '' OR rating_id < $2) \
                 ORDER BY rating_id DESC LIMIT $3",
            ))
            .bind(customer_id)
            .bind(after)
            .bind(limit)
            .fetch_all(pool)
            .await?
            .into_iter()
            .map(RatingRow::into_rating)
            .collect()
        })
    }

    async fn propose_override(
        &self,
        rating_id: &str,
        key: &IdempotencyKey,
        build: OverrideBuilder<'_>,
    ) -> StoreResult<Outcome<RatingOverride>> {
        on_database!(&self.database, |pool, sql, begin_write| {
            let mut tx = pool.begin_with(begin_write).await?;
            if let Some(override_id) = lookup_idempotency_key!(tx, sql, key)?.into_replay()? {
                let row = fetch_override!(tx, sql, &override_id)?;
                return Ok(Outcome::Replayed(row.into_override()?));
            }
            // Touching the rating row queues a concurrent proposer or rater behind us.
            let row = sqlx::query_as::<_, RatingRow>(&sql(
                "UPDATE ratings SET current = current WHERE rating_id = $1 \
                 RETURNING rating_id, current, grade, grade_rank, pd, override_id, next_review_date, document",
            ))
            .bind(rating_id)
            .fetch_optional(&mut *tx)
            .await?;
            let Some(row) = row else {
                return Err(refused(ServiceError::not_found("rating", rating_id)));
            };
            let rating = row.into_rating()?;
            if !rating.current {
                return Err(refused(superseded(rating_id)));
            }
            let pending: Option<String> = sqlx::query_scalar(&sql(
                "SELECT override_id FROM rating_overrides WHERE rating_id = $1 AND status = 'PENDING'",
            ))
            .bind(rating_id)
            .fetch_optional(&mut *tx)
            .await?;
            if let Some(pending) = pending {
                return Err(refused(ServiceError::FailedPrecondition {
                    reason: "OVERRIDE_PENDING",
                    message: format!(
                        "{pending} (an override or the approval of the new grade) waits for a checker; decide it first"
                    ),
                    metadata: vec![("override_id", pending)],
                }));
            }
            let proposal = build(&rating).map_err(refused)?;
            insert_override!(tx, sql, &proposal)?;
            insert_idempotency_key!(tx, sql, key, &proposal.override_id, Utc::now())?;
            tx.commit().await?;
            Ok(Outcome::New(proposal))
        })
    }

    async fn decide_override(
        &self,
        override_id: &str,
        key: &IdempotencyKey,
        decide: OverrideDecider<'_>,
    ) -> StoreResult<Outcome<(RatingOverride, Rating)>> {
        on_database!(&self.database, |pool, sql, begin_write| {
            let mut tx = pool.begin_with(begin_write).await?;
            let replay = lookup_idempotency_key!(tx, sql, key)?.into_replay()?;
            let row = sqlx::query_as::<_, OverrideRow>(&sql(
                "UPDATE rating_overrides SET status = status WHERE override_id = $1 \
                 RETURNING override_id, document, approval_chain",
            ))
            .bind(override_id)
            .fetch_optional(&mut *tx)
            .await?;
            let Some(row) = row else {
                return Err(refused(ServiceError::not_found("override", override_id)));
            };
            let proposal = row.into_override()?;
            let rating_id = proposal.rating_id.clone();
            let rating_row = sqlx::query_as::<_, RatingRow>(&sql(
                "UPDATE ratings SET current = current WHERE rating_id = $1 \
                 RETURNING rating_id, current, grade, grade_rank, pd, override_id, next_review_date, document",
            ))
            .bind(&rating_id)
            .fetch_one(&mut *tx)
            .await?;
            let rating = rating_row.into_rating()?;
            if replay.is_some() {
                return Ok(Outcome::Replayed((proposal, rating)));
            }
            if proposal.status != ApprovalStatus::Pending {
                return Err(refused(ServiceError::FailedPrecondition {
                    reason: "OVERRIDE_NOT_PENDING",
                    message: format!(
                        "override {override_id} was {} already",
                        proposal.status.stored_name().to_lowercase()
                    ),
                    metadata: Vec::new(),
                }));
            }
            if !rating.current {
                return Err(refused(superseded(&rating_id)));
            }
            let (decided, effective, event) = decide(&proposal, &rating).map_err(refused)?;
            sqlx::query(&sql(
                "UPDATE rating_overrides SET status = $2, document = $3, approval_chain = $4 \
                 WHERE override_id = $1",
            ))
            .bind(override_id)
            .bind(decided.status.stored_name())
            .bind(override_document(&decided))
            .bind(decided.approval_chain.as_deref().map(Json))
            .execute(&mut *tx)
            .await?;
            let entry = serde_json::json!({
                "override_id": override_id,
                "rating_id": &rating_id,
                "status": decided.status.stored_name(),
                "proposed_by": decided.proposed_by.as_ref().map(|actor| &actor.name),
                "decided_by": decided.decided_by.as_ref().map(|actor| &actor.name),
                "comment": &decided.decision_comment,
            });
            credit_runtime::append_audit!(
                tx,
                sql,
                &credit_runtime::audit::AuditRecord {
                    kind: "rating_override.decided",
                    record_id: override_id,
                    actor: decided
                        .decided_by
                        .as_ref()
                        .map_or("", |actor| actor.name.as_str()),
                    entry: entry.to_string(),
                }
            )
            .await?;
            if let Some(effective) = &effective {
                sqlx::query(&sql(
                    "UPDATE ratings SET grade = $2, grade_rank = $3, pd = $4, override_id = $5, next_review_date = $6 \
                     WHERE rating_id = $1",
                ))
                .bind(&rating_id)
                .bind(&effective.grade)
                .bind(effective.grade_rank)
                .bind(&effective.pd)
                .bind((!effective.override_id.is_empty()).then_some(&effective.override_id))
                .bind(effective.next_review_date)
                .execute(&mut *tx)
                .await?;
            }
            if let Some(event) = &event {
                insert_outbox_event!(tx, sql, event)?;
            }
            insert_idempotency_key!(tx, sql, key, override_id, Utc::now())?;
            let rating_row = sqlx::query_as::<_, RatingRow>(&sql(
                "SELECT rating_id, current, grade, grade_rank, pd, override_id, next_review_date, document \
                 FROM ratings WHERE rating_id = $1",
            ))
            .bind(&rating_id)
            .fetch_one(&mut *tx)
            .await?;
            let rating = rating_row.into_rating()?;
            tx.commit().await?;
            Ok(Outcome::New((decided, rating)))
        })
    }

    async fn rating_override(&self, override_id: &str) -> StoreResult<Option<RatingOverride>> {
        let row: Option<OverrideRow> = on_database!(&self.database, |pool, sql| {
            sqlx::query_as(&sql(
                "SELECT override_id, document, approval_chain FROM rating_overrides WHERE override_id = $1",
            ))
            .bind(override_id)
            .fetch_optional(pool)
            .await?
        });
        row.map(OverrideRow::into_override).transpose()
    }

    async fn list_overrides(
        &self,
        filter: &OverrideFilter,
        after: Option<&str>,
        limit: i64,
    ) -> StoreResult<Vec<RatingOverride>> {
        let after = after.unwrap_or("");
        let rows: Vec<OverrideRow> = on_database!(&self.database, |pool, sql| {
            sqlx::query_as(&sql(
                "SELECT override_id, document, approval_chain FROM rating_overrides \
                 WHERE ($1 = '' OR status = $1) AND ($2 = '' OR customer_id = $2) \
                 AND ($3 = '' OR override_id < $3) \
                 ORDER BY override_id DESC LIMIT $4",
            ))
            .bind(&filter.status)
            .bind(&filter.customer_id)
            .bind(after)
            .bind(limit)
            .fetch_all(pool)
            .await?
        });
        rows.into_iter().map(OverrideRow::into_override).collect()
    }

    async fn due_ratings(
        &self,
        as_of: NaiveDate,
        after: Option<&(NaiveDate, String)>,
        limit: i64,
    ) -> StoreResult<Vec<DueRating>> {
        // Without a cursor, start before any date a rating can have (and both databases hold).
        let (after_date, after_customer) = after.cloned().unwrap_or((
            NaiveDate::from_ymd_opt(1, 1, 1).unwrap_or_default(),
            String::new(),
        ));
        let rows: Vec<DueRating> = on_database!(&self.database, |pool, sql| {
            sqlx::query_as(&sql(
                    "SELECT r.customer_id, r.rating_id, r.grade, r.next_review_date FROM ratings AS r \
                     LEFT JOIN rated_customers AS c ON c.customer_id = r.customer_id \
                     WHERE r.current AND r.next_review_date <= $1 \
                     AND (c.status IS NULL OR c.status <> 'CLOSED') \
                     AND (r.next_review_date > $2 OR (r.next_review_date = $2 AND r.customer_id > $3)) \
                     ORDER BY r.next_review_date, r.customer_id LIMIT $4",
                ))
                .bind(as_of)
                .bind(after_date)
                .bind(&after_customer)
                .bind(limit)
                .fetch_all(pool)
                .await?
        });
        Ok(rows)
    }

    async fn file_reviews(
        &self,
        through: NaiveDate,
        customer_id: &str,
        after: Option<&(NaiveDate, String)>,
        limit: i64,
    ) -> StoreResult<Vec<Rating>> {
        let (after_date, after_customer) = after.cloned().unwrap_or((
            NaiveDate::from_ymd_opt(1, 1, 1).unwrap_or_default(),
            String::new(),
        ));
        let rows: Vec<RatingRow> = on_database!(&self.database, |pool, sql| {
            sqlx::query_as(&sql(
                "SELECT rating_id, current, grade, grade_rank, pd, override_id, next_review_date, document \
                 FROM ratings WHERE current AND inputs_stale_on IS NOT NULL AND inputs_stale_on <= $1 \
                 AND ($2 = '' OR customer_id = $2) \
                 AND (inputs_stale_on > $3 OR (inputs_stale_on = $3 AND customer_id > $4)) \
                 ORDER BY inputs_stale_on, customer_id LIMIT $5",
            ))
            .bind(through)
            .bind(customer_id)
            .bind(after_date)
            .bind(&after_customer)
            .bind(limit)
            .fetch_all(pool)
            .await?
        });
        rows.into_iter().map(RatingRow::into_rating).collect()
    }

    async fn review_run(&self, key: &IdempotencyKey) -> StoreResult<Option<ReviewRun>> {
        let row: Option<ReviewRunRow> = on_database!(&self.database, |pool, sql| {
            sqlx::query_as(&sql(
                "SELECT fingerprint, response FROM review_runs WHERE caller = $1 AND request_id = $2",
            ))
            .bind(&key.caller)
            .bind(&key.request_id)
            .fetch_optional(pool)
            .await?
        });
        let Some(ReviewRunRow {
            fingerprint,
            response,
        }) = row
        else {
            return Ok(None);
        };
        if fingerprint != key.fingerprint {
            return Err(StoreError::KeyReused(credit_runtime::sql::KeyReused));
        }
        pb::RunScheduledReviewsResponse::decode(response.as_slice())
            .map(|stored| Some(ReviewRun::from(&stored)))
            .map_err(|error| StoreError::Corrupt(format!("review run {}: {error}", key.request_id)))
    }

    async fn save_review_run(&self, key: &IdempotencyKey, run: &ReviewRun) -> StoreResult<()> {
        on_database!(&self.database, |pool, sql| {
            sqlx::query(&sql(
                "INSERT INTO review_runs (caller, request_id, fingerprint, response, created_at) \
                 VALUES ($1, $2, $3, $4, $5) ON CONFLICT (caller, request_id) DO NOTHING",
            ))
            .bind(&key.caller)
            .bind(&key.request_id)
            .bind(&key.fingerprint)
            .bind(pb::RunScheduledReviewsResponse::from(run).encode_to_vec())
            .bind(stored_time(Utc::now()))
            .execute(pool)
            .await?;
        });
        Ok(())
    }

    async fn note_customer_status(
        &self,
        customer_id: &str,
        status: &str,
        changed_at: DateTime<Utc>,
    ) -> StoreResult<()> {
        let changed_at = stored_time(changed_at);
        on_database!(&self.database, |pool, sql| {
            // Events may arrive out of order: the newest status wins.
            sqlx::query(&sql(
                "INSERT INTO rated_customers (customer_id, status, changed_at) VALUES ($1, $2, $3) \
                 ON CONFLICT (customer_id) DO UPDATE SET status = excluded.status, changed_at = excluded.changed_at \
                 WHERE rated_customers.changed_at <= excluded.changed_at",
            ))
            .bind(customer_id)
            .bind(status)
            .bind(changed_at)
            .execute(pool)
            .await?;
        });
        Ok(())
    }
}

fn superseded(rating_id: &str) -> ServiceError {
    ServiceError::FailedPrecondition {
        reason: "RATING_SUPERSEDED",
        message: format!("rating {rating_id} is no longer the customer's current rating"),
        metadata: Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn due_cursors_round_trip() {
        let due = DueRating {
            customer_id: "cus_1".into(),
            rating_id: "rtg_1".into(),
            grade: "BB".into(),
            next_review_date: NaiveDate::from_ymd_opt(2026, 6, 30).unwrap(),
        };
        assert_eq!(
            DueRating::parse_cursor(&due.cursor()),
            Some((due.next_review_date, "cus_1".to_owned()))
        );
        assert_eq!(DueRating::parse_cursor("yesterday/cus_1"), None);
    }
}
