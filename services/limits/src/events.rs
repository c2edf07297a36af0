//! Events limits consumes: intake's customer registrations, status changes and group
//! membership, projected into `customer_profiles` (limits never reads intake's tables).

use std::sync::Arc;

use async_trait::async_trait;
use credit_proto::v1::Event;
use credit_runtime::events::{EventError, EventHandler};

use crate::store::{LimitStore, StoreError};

/// The consumer group and processed-event key of the limits service.
pub const CONSUMER: &str = "limits";

#[derive(Debug, Clone)]
pub struct CustomerProjection {
    store: Arc<dyn LimitStore>,
}

impl CustomerProjection {
    pub fn new(store: Arc<dyn LimitStore>) -> Self {
        Self { store }
    }
}

#[async_trait]
impl EventHandler for CustomerProjection {
    fn consumer(&self) -> &'static str {
        CONSUMER
    }

    async fn handle(&self, event: &Event) -> Result<(), EventError> {
        self.store
            .apply_customer_event(CONSUMER, event)
            .await
            .map_err(|error| match error {
                StoreError::Database(error) => EventError::Store(error),
                other => EventError::Handler(other.to_string()),
            })
    }
}
