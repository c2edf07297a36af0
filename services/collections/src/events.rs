//! Events collections consumes: rating's RatingChanged, projected into `customer_ratings`
//! (customer -> grade, PD) for the worklist's expected loss. Collections never reads another
//! service's tables.

use std::sync::Arc;

use async_trait::async_trait;
use credit_proto::v1::Event;
use credit_runtime::events::{EventError, EventHandler};

use crate::store::{CaseStore, StoreError};

/// The consumer group and processed-event key of the collections service.
pub const CONSUMER: &str = "collections";

#[derive(Debug, Clone)]
pub struct RatingProjection {
    store: Arc<dyn CaseStore>,
}

impl RatingProjection {
    pub fn new(store: Arc<dyn CaseStore>) -> Self {
        Self { store }
    }
}

#[async_trait]
impl EventHandler for RatingProjection {
    fn consumer(&self) -> &'static str {
        CONSUMER
    }

    fn producers(&self) -> &'static [&'static str] {
        &[credit_proto::service_names::RATING]
    }

    fn handles(&self, event_type: &str) -> bool {
        event_type == "RatingChanged"
    }

    async fn handle(&self, event: &Event) -> Result<(), EventError> {
        self.store
            .apply_rating_event(CONSUMER, event)
            .await
            .map_err(|error| match error {
                StoreError::Database(error) => EventError::Store(error),
                other => EventError::Handler(other.to_string()),
            })
    }
}
