//! Reviews after a grade change in SQL: one row per rating event that moved a grade, its
//! chain's queue rows written with it and rewritten with every verdict.

use chrono::{DateTime, Utc};
use credit_core::approval::DecisionKind;
use credit_proto::v1::Event;
use credit_runtime::sql::IdempotencyKey;
use credit_runtime::store::DocumentRow;
use credit_runtime::{insert_idempotency_key, lookup_idempotency_key, on_database};
use sqlx::types::Json;

use super::sql::SqlLimitStore;
use super::{Outcome, StoreError, StoreResult};
use crate::domain::review::CreditReview;

impl SqlLimitStore {
    /// Opens `review` for the rating event `event_id`, once: a redelivered event finds the
    /// review it opened.
    pub(super) async fn insert_review(
        &self,
        review: &CreditReview,
        event_id: &str,
    ) -> StoreResult<CreditReview> {
        on_database!(&self.database, |pool, sql, begin_write| {
            let mut tx = pool.begin_with(begin_write).await?;
            let opened = sqlx::query(&sql(
                "INSERT INTO credit_reviews (review_id, event_id, customer_id, document, opened_at) \
                 VALUES ($1, $2, $3, $4, $5) ON CONFLICT (event_id) DO NOTHING",
            ))
            .bind(&review.review_id)
            .bind(event_id)
            .bind(&review.customer_id)
            .bind(Json(review))
            .bind(review.opened_at)
            .execute(&mut *tx)
            .await?
            .rows_affected()
                == 1;
            if opened {
                crate::replace_approval_tasks!(
                    tx,
                    sql,
                    DecisionKind::CreditReview.as_str(),
                    &review.review_id,
                    Some(&review.chain),
                    review.opened_at,
                    review.opened_at
                )
                .await?;
            }
            let stored = sqlx::query_as::<_, DocumentRow<CreditReview>>(&sql(
                "SELECT document FROM credit_reviews WHERE event_id = $1",
            ))
            .bind(event_id)
            .fetch_one(&mut *tx)
            .await?
            .into_record();
            tx.commit().await?;
            Ok(stored)
        })
    }

    pub(super) async fn stored_review(&self, review_id: &str) -> StoreResult<Option<CreditReview>> {
        on_database!(&self.database, |pool, sql| {
            let row = sqlx::query_as::<_, DocumentRow<CreditReview>>(&sql(
                "SELECT document FROM credit_reviews WHERE review_id = $1",
            ))
            .bind(review_id)
            .fetch_optional(pool)
            .await?;
            Ok(row.map(DocumentRow::into_record))
        })
    }

    /// Records a verdict on a review's chain if no other verdict came since the caller read
    /// it (its trail is still `expected_trail` long); `step_event` is written with it.
    pub(super) async fn update_review(
        &self,
        decided: &CreditReview,
        expected_trail: usize,
        key: &IdempotencyKey,
        step_event: Option<&Event>,
        now: DateTime<Utc>,
    ) -> StoreResult<Outcome<CreditReview>> {
        on_database!(&self.database, |pool, sql, begin_write| {
            let mut tx = pool.begin_with(begin_write).await?;
            let select = sql("SELECT document FROM credit_reviews WHERE review_id = $1");
            if let Some(existing) = lookup_idempotency_key!(tx, sql, key)?.into_replay()? {
                let existing = sqlx::query_as::<_, DocumentRow<CreditReview>>(&select)
                    .bind(existing)
                    .fetch_one(&mut *tx)
                    .await?;
                return Ok(Outcome::Replayed(existing.into_record()));
            }
            // Takes the row first, so two verdicts on the same step cannot both see the trail
            // as it was.
            sqlx::query(&sql(
                "UPDATE credit_reviews SET opened_at = opened_at WHERE review_id = $1",
            ))
            .bind(&decided.review_id)
            .execute(&mut *tx)
            .await?;
            let stored = sqlx::query_as::<_, DocumentRow<CreditReview>>(&select)
                .bind(&decided.review_id)
                .fetch_one(&mut *tx)
                .await?
                .into_record();
            if stored.chain.trail.len() != expected_trail {
                return Err(StoreError::refused(
                    credit_core::ServiceError::failed_precondition(
                        "REQUEST_NOT_PENDING",
                        "another verdict on this review came first; read it again",
                    ),
                ));
            }
            sqlx::query(&sql(
                "UPDATE credit_reviews SET document = $1 WHERE review_id = $2",
            ))
            .bind(Json(decided))
            .bind(&decided.review_id)
            .execute(&mut *tx)
            .await?;
            crate::replace_approval_tasks!(
                tx,
                sql,
                DecisionKind::CreditReview.as_str(),
                &decided.review_id,
                Some(&decided.chain),
                decided.opened_at,
                now
            )
            .await?;
            if let Some(step_event) = step_event {
                credit_runtime::insert_outbox_event!(tx, sql, step_event)?;
            }
            insert_idempotency_key!(tx, sql, key, &decided.review_id, now)?;
            tx.commit().await?;
            Ok(Outcome::New(decided.clone()))
        })
    }
}
