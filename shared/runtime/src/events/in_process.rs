//! The embedded default's bus: subscribers are called while the relay publishes.
//!
//! The relay marks an outbox row published only after every subscriber is done with its
//! events (applied, skipped, or dead-lettered), so the outbox itself is the pending list: an
//! event held back by an outage is published again on the relay's next round.

use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use tokio::sync::watch;

use super::delivery::{Entry, EventPipeline};
use super::{EventBus, EventError, EventHandler, OutboxEvent, event_type};

pub struct InProcessBus {
    pipeline: EventPipeline,
    handlers: Mutex<Vec<Arc<dyn EventHandler>>>,
    /// Never set: a publish is not interrupted by the process stopping, since the relay that
    /// calls it finishes its round anyway. The sender is kept so the receiver stays open.
    _never_stop: watch::Sender<bool>,
    never_stop: watch::Receiver<bool>,
}

impl InProcessBus {
    pub fn new(pipeline: EventPipeline) -> Self {
        let (never_stop_sender, never_stop) = watch::channel(false);
        Self {
            pipeline,
            handlers: Mutex::new(Vec::new()),
            _never_stop: never_stop_sender,
            never_stop,
        }
    }

    fn handlers(&self) -> Vec<Arc<dyn EventHandler>> {
        self.handlers
            .lock()
            .map(|handlers| handlers.clone())
            .unwrap_or_default()
    }
}

impl std::fmt::Debug for InProcessBus {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("InProcessBus")
            .field("handlers", &self.handlers().len())
            .finish_non_exhaustive()
    }
}

#[async_trait]
impl EventBus for InProcessBus {
    async fn publish_all(&self, events: &[OutboxEvent]) -> Result<(), EventError> {
        let handlers = self.handlers();
        for OutboxEvent { event, encoded, .. } in events {
            let entry = Entry {
                producer: &event.producer,
                source: "in-process",
                event_type: Some(event_type(event)),
                payload: encoded,
            };
            for handler in &handlers {
                if handler.producers().contains(&event.producer.as_str()) {
                    self.pipeline
                        .deliver(handler.as_ref(), entry, &self.never_stop)
                        .await?;
                }
            }
        }
        Ok(())
    }

    /// Registers `handler` for the events published from now on, and runs its replays.
    fn subscribe(
        &self,
        handler: Arc<dyn EventHandler>,
        stop: watch::Receiver<bool>,
    ) -> tokio::task::JoinHandle<()> {
        if let Ok(mut handlers) = self.handlers.lock() {
            handlers.push(handler.clone());
        }
        let pipeline = self.pipeline.clone();
        tokio::spawn(async move { pipeline.run_replays(handler.as_ref(), stop).await })
    }

    fn pipeline(&self) -> &EventPipeline {
        &self.pipeline
    }
}
