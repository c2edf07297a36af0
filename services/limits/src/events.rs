//! Events limits consumes: intake's customer registrations, status changes and group
//! membership, and rating's RatingChanged, projected into `customer_profiles`; intake's
//! FinancialStatementSubmitted, projected into `customer_statements` for ProposeLimit; and
//! intake's InvestigationCompleted, projected into `customer_investigations` for the first
//! limit's approval; and rating's RatingRecorded, projected into `customer_freshness` for the
//! approvals a stale credit file holds (limits never reads another service's tables).

use std::sync::Arc;

use async_trait::async_trait;
use credit_proto::v1::Event;
use credit_runtime::events::{EventError, EventHandler};

use crate::app::{CreditAdmin, HotPath};
use crate::domain::limits::Scope;
use crate::store::{LimitStore, StoreError};

/// The consumer group and processed-event key of the limits service.
pub const CONSUMER: &str = "limits";

#[derive(Debug, Clone)]
pub struct CustomerProjection {
    store: Arc<dyn LimitStore>,
    hot: HotPath,
    admin: CreditAdmin,
}

impl CustomerProjection {
    pub fn new(store: Arc<dyn LimitStore>, hot: HotPath) -> Self {
        let admin = CreditAdmin::new(store.clone(), hot.clone());
        Self { store, hot, admin }
    }
}

#[async_trait]
impl EventHandler for CustomerProjection {
    fn consumer(&self) -> &'static str {
        CONSUMER
    }

    fn producers(&self) -> &'static [&'static str] {
        &[
            credit_proto::service_names::INTAKE,
            credit_proto::service_names::RATING,
            credit_proto::service_names::COLLECTIONS,
        ]
    }

    /// The events `LimitStore::apply_customer_event` applies.
    fn handles(&self, event_type: &str) -> bool {
        matches!(
            event_type,
            "CustomerRegistered"
                | "CustomerStatusChanged"
                | "GroupMembershipChanged"
                | "RatingChanged"
                | "InvoiceOverdue"
                | "FinancialStatementSubmitted"
                | "InvestigationCompleted"
                | "RatingRecorded"
        )
    }

    async fn handle(&self, event: &Event) -> Result<(), EventError> {
        self.store
            .apply_customer_event(CONSUMER, event)
            .await
            .map_err(|error| match error {
                StoreError::Database(error) => EventError::Store(error),
                other => EventError::Handler(other.to_string()),
            })?;
        // The cached profile carries the old status or group: the next decision rebuilds it
        // (and the groups it left or joined).
        if let Some(payload) = &event.payload {
            use credit_proto::v1::event::Payload;
            match payload {
                // Sets or clears the OVERDUE block against the grade's tolerance.
                Payload::InvoiceOverdue(overdue) => {
                    self.hot
                        .overdue_changed(&overdue.customer_id, &event.event_id)
                        .await
                        .map_err(EventError::from)?;
                    // The customer may be within tolerance again: its referred orders are
                    // examined again (best effort, as after a payment).
                    self.hot.referrals_may_have_cleared(
                        &overdue.customer_id,
                        "the overdue figures changed",
                    );
                }
                // The grade picks the policy defaults and the review date RATING_STALE; a
                // downgrade past the grade's maximum limit drafts a cut of the limit; every
                // change of grade opens a review for a credit manager.
                Payload::RatingChanged(changed) => {
                    self.hot
                        .invalidate(&Scope::Customer(changed.customer_id.clone()))
                        .await;
                    let drafted = self
                        .admin
                        .draft_limit_cut_after_downgrade(
                            &changed.customer_id,
                            &changed.previous_grade,
                            &changed.grade,
                            &event.event_id,
                        )
                        .await
                        .map_err(EventError::from)?;
                    if let Some(drafted) = &drafted {
                        tracing::info!(limit_request_id = %drafted.id, customer_id = %changed.customer_id, "downgrade drafted a limit cut");
                    }
                    let change = crate::app::GradeChange {
                        customer_id: &changed.customer_id,
                        previous_grade: &changed.previous_grade,
                        grade: &changed.grade,
                        rating_id: &changed.rating_id,
                        event_id: &event.event_id,
                    };
                    if let Some(review) = self
                        .admin
                        .open_review_after_grade_change(change, drafted.as_ref())
                        .await
                        .map_err(EventError::from)?
                    {
                        tracing::info!(review_id = %review.review_id, customer_id = %changed.customer_id, "grade change opened a review");
                    }
                }
                Payload::CustomerStatusChanged(changed) => {
                    self.hot
                        .invalidate(&Scope::Customer(changed.customer_id.clone()))
                        .await;
                }
                Payload::GroupMembershipChanged(changed) => {
                    self.hot
                        .invalidate(&Scope::Customer(changed.customer_id.clone()))
                        .await;
                    self.hot
                        .invalidate(&Scope::Group(changed.group_id.clone()))
                        .await;
                }
                _ => {}
            }
        }
        Ok(())
    }
}
