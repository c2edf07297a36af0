//! What makes rating act without being asked: other services' events and the review schedule.
//!
//! - A new financial statement or bureau report re-rates a customer already rated (a first
//!   rating is an analyst's RateCustomer, with the qualitative assessment; the qualitative
//!   inputs carry over to every re-rating).
//! - An invoice going overdue past [`OVERDUE_RERATING_DAYS`] re-rates it once, when the
//!   customer's oldest overdue days cross the threshold.
//! - Intake's status events keep closed customers off the review list.
//! - [`ReviewScheduler`] re-rates the customers whose review date has come, once a day.
//!
//! Each event is decoded once into a `Signal` and then acted on. Each event is rated under the
//! key `event:<event id>`, so a redelivered event replays the rating it made instead of rating
//! again.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use credit_core::ServiceError;
use credit_proto::time::from_timestamp;
use credit_proto::v1 as pb;
use credit_proto::v1::Event;
use credit_proto::v1::event::Payload;
use credit_runtime::events::{EventError, EventHandler};
use credit_runtime::sql::{IdempotencyKey, fingerprint};
use tokio::sync::watch;

use crate::app::rater::{RateRequest, Rater};
use crate::app::reviews::{run_reviews, system_actor};
use crate::domain::inputs::QualitativeInputs;
use crate::domain::rating::{RatingTrigger, ReviewRun};
use crate::store::RatingStore;

/// The consumer group and processed-event key of the rating service.
pub const CONSUMER: &str = "rating";
/// An invoice this many days past due re-rates its customer.
pub const OVERDUE_RERATING_DAYS: i32 = 30;
/// How often the scheduler looks for due reviews.
pub const REVIEW_CHECK_INTERVAL: Duration = Duration::from_secs(3600);
const EVENT_RATING: &str = "EventRating";

#[derive(Debug, Clone)]
pub struct RatingTriggers {
    rater: Rater,
    ratings: Arc<dyn RatingStore>,
}

impl RatingTriggers {
    pub fn new(rater: Rater) -> Self {
        Self {
            ratings: rater.ratings().clone(),
            rater,
        }
    }

    async fn rerate(
        &self,
        event: &Event,
        occurred_at: Option<DateTime<Utc>>,
        customer_id: &str,
        trigger: RatingTrigger,
    ) -> Result<(), EventError> {
        // A first rating is an analyst's act (with the qualitative assessment); events only
        // re-rate customers already rated.
        let current = self
            .ratings
            .current_rating(customer_id)
            .await
            .map_err(store_failure)?;
        let Some(current) = current else {
            return Ok(());
        };
        // A rating made after the event read what the event announces already.
        if current.rated_at >= occurred_at {
            return Ok(());
        }
        let request = RateRequest {
            customer_id: customer_id.to_owned(),
            qualitative: QualitativeInputs::default(),
            model_id: None,
            note: String::new(),
            trigger,
            rated_by: system_actor(),
            key: IdempotencyKey::of_system(
                "rating",
                format!("event:{}", event.event_id),
                EVENT_RATING,
                fingerprint(event),
            ),
        };
        match self.rater.rate(&request, Utc::now()).await {
            Ok(_) => Ok(()),
            // Nothing to rate with (no model for the customer's kind, a customer intake no
            // longer has): retrying would fail the same way.
            Err(
                error @ (ServiceError::NotFound { .. }
                | ServiceError::FailedPrecondition { .. }
                | ServiceError::InvalidArgument(_)),
            ) => {
                tracing::warn!(%customer_id, event_id = %event.event_id, %error, "event did not re-rate the customer");
                Ok(())
            }
            // A peer or the store did not answer: the event is delivered again.
            Err(error) => Err(EventError::from(error)),
        }
    }
}

#[async_trait]
impl EventHandler for RatingTriggers {
    fn consumer(&self) -> &'static str {
        CONSUMER
    }

    fn producers(&self) -> &'static [&'static str] {
        &[
            credit_proto::service_names::INTAKE,
            credit_proto::service_names::COLLECTIONS,
        ]
    }

    fn handles(&self, event_type: &str) -> bool {
        matches!(
            event_type,
            "FinancialStatementSubmitted"
                | "BureauReportRecorded"
                | "CreditFileUpdated"
                | "InvoiceOverdue"
                | "CustomerRegistered"
                | "CustomerStatusChanged"
        )
    }

    async fn handle(&self, event: &Event) -> Result<(), EventError> {
        let occurred_at = event.occurred_at.as_ref().and_then(from_timestamp);
        match Signal::of(event) {
            Signal::Rerate {
                customer_id,
                trigger,
            } => self.rerate(event, occurred_at, customer_id, trigger).await,
            Signal::CustomerStatus {
                customer_id,
                status,
            } => self
                .ratings
                .note_customer_status(customer_id, status, occurred_at.unwrap_or_else(Utc::now))
                .await
                .map_err(store_failure),
            Signal::Nothing => Ok(()),
        }
    }
}

/// What an incoming event asks of rating, decoded once from its payload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Signal<'e> {
    /// Re-rate a customer already rated.
    Rerate {
        customer_id: &'e str,
        trigger: RatingTrigger,
    },
    /// Keep a customer's lifecycle status, by the contract's name without its prefix.
    CustomerStatus {
        customer_id: &'e str,
        status: &'static str,
    },
    Nothing,
}

impl<'e> Signal<'e> {
    fn of(event: &'e Event) -> Self {
        let Some(payload) = &event.payload else {
            return Self::Nothing;
        };
        match payload {
            Payload::FinancialStatementSubmitted(submitted) => Self::Rerate {
                customer_id: &submitted.customer_id,
                trigger: RatingTrigger::FinancialStatement,
            },
            Payload::BureauReportRecorded(recorded) => Self::Rerate {
                customer_id: &recorded.customer_id,
                trigger: RatingTrigger::BureauReport,
            },
            Payload::CreditFileUpdated(updated) => Self::Rerate {
                customer_id: &updated.customer_id,
                trigger: RatingTrigger::CreditFile,
            },
            Payload::InvoiceOverdue(overdue)
                if overdue.previous_oldest_overdue_days < OVERDUE_RERATING_DAYS
                    && overdue.oldest_overdue_days >= OVERDUE_RERATING_DAYS =>
            {
                Self::Rerate {
                    customer_id: &overdue.customer_id,
                    trigger: RatingTrigger::Overdue,
                }
            }
            Payload::CustomerRegistered(registered) => Self::CustomerStatus {
                customer_id: &registered.customer_id,
                status: status_name(registered.status),
            },
            Payload::CustomerStatusChanged(changed) => Self::CustomerStatus {
                customer_id: &changed.customer_id,
                status: status_name(changed.status),
            },
            _ => Self::Nothing,
        }
    }
}

/// A customer status as rating stores it: the contract's name without its prefix.
fn status_name(status: i32) -> &'static str {
    pb::CustomerStatus::try_from(status)
        .unwrap_or(pb::CustomerStatus::Unspecified)
        .as_str_name()
        .trim_start_matches("CUSTOMER_STATUS_")
}

/// A store failure as the event pipeline judges it: an unreachable database is waited for.
fn store_failure(error: crate::store::StoreError) -> EventError {
    match error {
        crate::store::StoreError::Database(error) => EventError::Store(error),
        other => EventError::Handler(other.to_string()),
    }
}

/// Re-rates due customers once a day (the run of a day is keyed by its date, so several
/// replicas, or a restart, run it once).
#[derive(Debug, Clone)]
pub struct ReviewScheduler {
    rater: Rater,
    interval: Duration,
}

impl ReviewScheduler {
    pub fn new(rater: Rater) -> Self {
        Self {
            rater,
            interval: REVIEW_CHECK_INTERVAL,
        }
    }

    /// Runs today's reviews (once per day and key).
    pub async fn run_due_reviews(&self, now: DateTime<Utc>) -> Result<ReviewRun, ServiceError> {
        let today = now.date_naive();
        let key = IdempotencyKey::of_system(
            "rating",
            format!("schedule:{today}"),
            "ScheduledReviews",
            today.to_string(),
        );
        run_reviews(&self.rater, &key, today, usize::MAX).await
    }

    /// Checks for due reviews every interval until `stop` turns true.
    pub async fn run(self, mut stop: watch::Receiver<bool>) {
        loop {
            match self.run_due_reviews(Utc::now()).await {
                Ok(response) if response.rerated_count + response.failed_count > 0 => {
                    tracing::info!(
                        rerated = response.rerated_count,
                        failed = response.failed_count,
                        "scheduled reviews done"
                    );
                }
                Ok(_) => {}
                Err(error) => tracing::warn!(%error, "scheduled reviews could not run"),
            }
            tokio::select! {
                _ = tokio::time::sleep(self.interval) => {}
                _ = stop.changed() => return,
            }
            if *stop.borrow() {
                return;
            }
        }
    }
}
