//! How one event reaches one consumer, on either bus: what is tried again, for how long, and
//! what is set aside as a dead letter so that the events behind it go on.
//!
//! An attempt that fails is judged by [`EventError::disposition`]:
//! - an event that can never be applied (undecodable, a value out of range) is dead-lettered
//!   at once;
//! - any other failure of the event's own (a conflict, an unexpected state, a handler that
//!   panicked or did not answer in time) is tried again with a doubling backoff, up to
//!   [`DeliveryPolicy::max_attempts`], then dead-lettered;
//! - an outage of a dependency (the consumer's database, Redis) is not the event's fault:
//!   the event stays where it is (pending in its stream, unpublished in the embedded outbox)
//!   and the bus tries again once the dependency answers. Dead-lettering during an outage
//!   would only move every event of the outage aside for an operator to replay.
//!
//! Dead letters are replayed by the consumer that failed them when an operator asks
//! (`credit-suite events replay`): [`EventPipeline::run_replays`] runs beside each consumer.

use std::any::Any;
use std::panic::AssertUnwindSafe;
use std::time::Duration;

use credit_proto::v1::Event;
use futures::FutureExt;
use prost::Message;
use tokio::sync::watch;

use super::dead_letters::{DeadLetter, DeadLetterStore, NewDeadLetter};
use super::{Disposition, EventError, EventHandler, event_type};
use crate::metrics::EventMetrics;

/// How hard the pipeline tries before it sets an event aside.
#[derive(Debug, Clone)]
pub struct DeliveryPolicy {
    /// Tries of an event whose failure may pass, before it is dead-lettered.
    pub max_attempts: u32,
    /// Wait after the first failed try; doubled after each further one.
    pub first_backoff: Duration,
    /// The longest wait between two tries.
    pub max_backoff: Duration,
    /// A try that has not answered after this long counts as failed.
    pub attempt_timeout: Duration,
    /// Redis: an entry read by a consumer and left unacknowledged this long is taken over by
    /// another (the first one's process died, or its pod was rolled).
    pub claim_idle: Duration,
    /// How often a consumer looks for replays an operator asked for.
    pub replay_poll: Duration,
}

impl Default for DeliveryPolicy {
    fn default() -> Self {
        Self {
            max_attempts: 5,
            first_backoff: Duration::from_millis(200),
            max_backoff: Duration::from_secs(5),
            attempt_timeout: Duration::from_secs(30),
            claim_idle: Duration::from_secs(30),
            replay_poll: Duration::from_secs(2),
        }
    }
}

impl DeliveryPolicy {
    /// The wait after failed try number `attempt` (1-based).
    fn backoff(&self, attempt: u32) -> Duration {
        let doublings = attempt.saturating_sub(1).min(16);
        self.first_backoff
            .saturating_mul(1_u32 << doublings)
            .min(self.max_backoff)
    }
}

/// What became of an event handed to a consumer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Delivered {
    /// The handler applied it (or had applied it before).
    Applied,
    /// Not of a type the consumer handles.
    Skipped,
    /// Set aside in the dead letters.
    DeadLettered,
}

/// One event as it came off a bus.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Entry<'a> {
    /// The producing service, as the stream names it.
    pub producer: &'a str,
    /// The stream entry id, or where in the embedded outbox it came from.
    pub source: &'a str,
    /// The type the entry was published with, when it says.
    pub event_type: Option<&'a str>,
    /// The encoded event.
    pub payload: &'a [u8],
}

/// The policy, the dead letters and the metrics every consumer of a process delivers through.
#[derive(Debug, Clone)]
pub struct EventPipeline {
    dead_letters: DeadLetterStore,
    metrics: EventMetrics,
    policy: DeliveryPolicy,
}

impl EventPipeline {
    pub fn new(
        dead_letters: DeadLetterStore,
        metrics: EventMetrics,
        policy: DeliveryPolicy,
    ) -> Self {
        Self {
            dead_letters,
            metrics,
            policy,
        }
    }

    pub fn policy(&self) -> &DeliveryPolicy {
        &self.policy
    }

    pub fn metrics(&self) -> &EventMetrics {
        &self.metrics
    }

    pub fn dead_letters(&self) -> &DeadLetterStore {
        &self.dead_letters
    }

    /// Hands `entry` to `handler` under the policy. `Err` only when the entry must stay where
    /// it is: a dependency is down (or the dead letters cannot be written), or `stop` came
    /// during a backoff. The bus then keeps it and tries again later.
    pub(crate) async fn deliver(
        &self,
        handler: &dyn EventHandler,
        entry: Entry<'_>,
        stop: &watch::Receiver<bool>,
    ) -> Result<Delivered, EventError> {
        if entry.event_type.is_some_and(|kind| !handler.handles(kind)) {
            return Ok(Delivered::Skipped);
        }
        let event = match Event::decode(entry.payload) {
            Ok(event) => event,
            Err(error) => {
                let error = EventError::from(error);
                let kind = entry.event_type.unwrap_or("Unknown");
                return self.dead_letter(handler, &entry, "", kind, &error, 1).await;
            }
        };
        let kind = event_type(&event);
        if !handler.handles(kind) {
            return Ok(Delivered::Skipped);
        }
        match self.apply_with_retries(handler, &event, stop).await {
            Ok(()) => Ok(Delivered::Applied),
            Err(Failure::Gave { error, attempts }) => {
                self.dead_letter(handler, &entry, &event.event_id, kind, &error, attempts)
                    .await
            }
            Err(Failure::Held(error)) => Err(error),
        }
    }

    /// Tries `event` until it is applied, the policy gives up on it, or it must be held.
    async fn apply_with_retries(
        &self,
        handler: &dyn EventHandler,
        event: &Event,
        stop: &watch::Receiver<bool>,
    ) -> Result<(), Failure> {
        let consumer = handler.consumer();
        let mut attempt = 0_u32;
        loop {
            attempt = attempt.saturating_add(1);
            let error = match self.attempt(handler, event).await {
                Ok(()) => {
                    self.metrics.delivered(consumer, "applied");
                    return Ok(());
                }
                Err(error) => error,
            };
            match error.disposition() {
                Disposition::DeadLetter => {
                    return Err(Failure::Gave {
                        error,
                        attempts: attempt,
                    });
                }
                Disposition::Retry if attempt >= self.policy.max_attempts => {
                    return Err(Failure::Gave {
                        error,
                        attempts: attempt,
                    });
                }
                Disposition::Retry => {
                    self.metrics.delivered(consumer, "retried");
                    tracing::warn!(consumer, event_id = %event.event_id, event_type = event_type(event), attempt, error = %error, "event not applied; trying again");
                    let mut stop = stop.clone();
                    tokio::select! {
                        () = tokio::time::sleep(self.policy.backoff(attempt)) => {}
                        _ = stop.wait_for(|stopped| *stopped) => return Err(Failure::Held(error)),
                    }
                }
                Disposition::Wait => {
                    self.metrics.delivered(consumer, "waited");
                    return Err(Failure::Held(error));
                }
            }
        }
    }

    /// One try, bounded in time; a panic in the handler is a failure like any other, so it
    /// cannot take the consumer down with it.
    async fn attempt(&self, handler: &dyn EventHandler, event: &Event) -> Result<(), EventError> {
        let handled = AssertUnwindSafe(handler.handle(event)).catch_unwind();
        match tokio::time::timeout(self.policy.attempt_timeout, handled).await {
            Ok(Ok(outcome)) => outcome,
            Ok(Err(panic)) => Err(EventError::Invalid(format!(
                "the handler panicked: {}",
                panic_message(panic.as_ref())
            ))),
            Err(_) => Err(EventError::Handler(format!(
                "the handler did not answer within {} s",
                self.policy.attempt_timeout.as_secs()
            ))),
        }
    }

    async fn dead_letter(
        &self,
        handler: &dyn EventHandler,
        entry: &Entry<'_>,
        event_id: &str,
        kind: &str,
        error: &EventError,
        attempts: u32,
    ) -> Result<Delivered, EventError> {
        let consumer = handler.consumer();
        let error_text = error.to_string();
        let dead_letter_id = self
            .dead_letters
            .record(&NewDeadLetter {
                consumer,
                producer: entry.producer,
                event_id,
                event_type: kind,
                payload: entry.payload,
                source: entry.source,
                error: &error_text,
                attempts,
            })
            .await?;
        self.metrics.delivered(consumer, "dead_lettered");
        tracing::error!(consumer, %event_id, event_type = kind, source = entry.source, attempts, %dead_letter_id, error = %error_text, "event dead-lettered; the events behind it go on (credit-suite events list-dead)");
        Ok(Delivered::DeadLettered)
    }

    /// Until `stop`: applies the dead letters of `handler`'s consumer group that an operator
    /// asked to replay, and keeps the open dead letters' gauge current.
    pub(crate) async fn run_replays(
        &self,
        handler: &dyn EventHandler,
        mut stop: watch::Receiver<bool>,
    ) {
        let consumer = handler.consumer();
        while !*stop.borrow() {
            match self.dead_letters.take_replays(consumer, 10).await {
                Ok(letters) => {
                    for letter in letters {
                        self.replay(handler, &letter, &stop).await;
                    }
                }
                Err(error) => {
                    tracing::warn!(consumer, error = %error, "cannot read requested replays; trying again");
                }
            }
            // Every process reports every group's open letters (the relay's too, which has no
            // consumer task): the store is shared, so the figures agree across processes.
            if let Ok(counts) = self.dead_letters.open_counts().await {
                let own = counts.iter().any(|(name, _)| name == consumer);
                for (name, open) in &counts {
                    self.metrics.set_dead_letters_open(name, *open);
                }
                if !own {
                    self.metrics.set_dead_letters_open(consumer, 0);
                }
            }
            tokio::select! {
                () = tokio::time::sleep(self.policy.replay_poll) => {}
                _ = stop.changed() => return,
            }
        }
    }

    async fn replay(
        &self,
        handler: &dyn EventHandler,
        letter: &DeadLetter,
        stop: &watch::Receiver<bool>,
    ) {
        let consumer = handler.consumer();
        let outcome = match Event::decode(letter.payload.as_slice()) {
            Err(error) => Err(EventError::from(error)),
            Ok(event) => match self.apply_with_retries(handler, &event, stop).await {
                Ok(()) => Ok(()),
                Err(Failure::Gave { error, .. }) => Err(error),
                // Left REPLAYING: once stale it is taken again, after the outage.
                Err(Failure::Held(error)) => {
                    tracing::warn!(consumer, dead_letter_id = %letter.dead_letter_id, error = %error, "replay held back: a dependency is unavailable");
                    return;
                }
            },
        };
        let error_text = outcome.as_ref().err().map(ToString::to_string);
        let finished = self
            .dead_letters
            .finish_replay(
                &letter.dead_letter_id,
                consumer,
                error_text.as_deref().map_or(Ok(()), Err),
            )
            .await;
        match (&error_text, finished) {
            (_, Err(error)) => {
                tracing::warn!(consumer, dead_letter_id = %letter.dead_letter_id, error = %error, "replay done but not recorded; it will be taken again");
            }
            (None, Ok(())) => {
                tracing::info!(consumer, dead_letter_id = %letter.dead_letter_id, event_id = %letter.event_id, "dead letter replayed");
            }
            (Some(error), Ok(())) => {
                tracing::warn!(consumer, dead_letter_id = %letter.dead_letter_id, event_id = %letter.event_id, error = %error, "dead letter replayed and failed again");
            }
        }
    }
}

/// Why [`EventPipeline::apply_with_retries`] stopped without applying the event.
enum Failure {
    /// The policy gave up on it: dead-letter it.
    Gave { error: EventError, attempts: u32 },
    /// It must stay where it is (an outage, or the process is stopping).
    Held(EventError),
}

fn panic_message(panic: &(dyn Any + Send)) -> &str {
    if let Some(text) = panic.downcast_ref::<&str>() {
        return text;
    }
    if let Some(text) = panic.downcast_ref::<String>() {
        return text;
    }
    "no message"
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_its_ceiling() {
        let policy = DeliveryPolicy {
            first_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_millis(700),
            ..DeliveryPolicy::default()
        };
        let waits: Vec<u128> = (1..=6)
            .map(|attempt| policy.backoff(attempt).as_millis())
            .collect();
        assert_eq!(waits, [100, 200, 400, 700, 700, 700]);
        assert_eq!(policy.backoff(u32::MAX), Duration::from_millis(700));
    }
}
