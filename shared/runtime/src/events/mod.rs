//! Domain events between services: a transactional outbox in each service's store, a relay that
//! publishes it, and consumers that apply each event once.
//!
//! Production: the relay publishes to one Redis Stream per producing service; each consuming
//! service reads it with its own consumer group and acknowledges an entry after handling it,
//! so an event is delivered at least once per service, even across restarts. Embedded
//! default: the relay hands each event to the in-process subscribers directly and marks it
//! published only when all of them are done with it, which gives the same at-least-once
//! guarantee without Redis. Either way handlers must be idempotent:
//! [`mark_processed_postgres`] / [`mark_processed_sqlite`] record the event id in the
//! handler's own transaction. Replicas of one consuming service share its consumer group and
//! so may apply events out of order; payloads carry state after the change with its time, and
//! handlers keep the newest.
//!
//! No event may stall the ones behind it, and none may be lost ([`delivery`]): a failure is
//! classified ([`EventError::disposition`]); an event that can never be applied goes to the
//! dead letters at once, one that keeps failing after a few tries with backoff too, and only
//! an outage of a dependency (every event would fail) holds the consumer until it is over.
//! Dead letters wait in the events store ([`dead_letters`]) for an operator to replay or drop
//! them. On Redis, entries of a consumer that died are claimed by a live one after an idle
//! time, and a stream Redis lost (a restart without persistence, a FLUSHALL) is published
//! again from the outbox from the point every consumer group had reached ([`outbox`]).

mod dead_letters;
mod delivery;
mod in_process;
mod outbox;
mod redis_streams;

use std::sync::Arc;

use async_trait::async_trait;
use credit_core::ServiceError;
use credit_proto::v1::Event;
use credit_proto::v1::event::Payload;
use tokio::sync::watch;

pub use dead_letters::{
    DeadLetter, DeadLetterAction, DeadLetterError, DeadLetterPage, DeadLetterStatus,
    DeadLetterStore, EVENTS_STORE, NewDeadLetter,
};
pub use delivery::{Delivered, DeliveryPolicy, EventPipeline};
pub use in_process::InProcessBus;
pub use outbox::{
    OutboxRelay, append_postgres, append_sqlite, mark_processed_postgres, mark_processed_sqlite,
    outbox_row_events, packed_part,
};
pub use redis_streams::RedisStreamsBus;

/// Stable name of an event's kind, as stored in the outbox and the stream.
pub fn event_type(event: &Event) -> &'static str {
    match &event.payload {
        Some(Payload::CustomerRegistered(_)) => "CustomerRegistered",
        Some(Payload::CustomerStatusChanged(_)) => "CustomerStatusChanged",
        Some(Payload::GroupMembershipChanged(_)) => "GroupMembershipChanged",
        Some(Payload::FinancialStatementSubmitted(_)) => "FinancialStatementSubmitted",
        Some(Payload::BureauReportRecorded(_)) => "BureauReportRecorded",
        Some(Payload::InvestigationCompleted(_)) => "InvestigationCompleted",
        Some(Payload::CreditFileUpdated(_)) => "CreditFileUpdated",
        Some(Payload::RatingChanged(_)) => "RatingChanged",
        Some(Payload::RatingRecorded(_)) => "RatingRecorded",
        Some(Payload::LimitChanged(_)) => "LimitChanged",
        Some(Payload::CreditBlockChanged(_)) => "CreditBlockChanged",
        Some(Payload::ReferralCreated(_)) => "ReferralCreated",
        Some(Payload::ReferralDecided(_)) => "ReferralDecided",
        Some(Payload::HoldCaptured(_)) => "HoldCaptured",
        Some(Payload::HoldReleased(_)) => "HoldReleased",
        Some(Payload::ApprovalStepDecided(_)) => "ApprovalStepDecided",
        Some(Payload::SecurityChanged(_)) => "SecurityChanged",
        Some(Payload::InvoicePosted(_)) => "InvoicePosted",
        Some(Payload::CreditNotePosted(_)) => "CreditNotePosted",
        Some(Payload::PaymentReceived(_)) => "PaymentReceived",
        Some(Payload::InvoiceOverdue(_)) => "InvoiceOverdue",
        Some(Payload::ReceivableWrittenOff(_)) => "ReceivableWrittenOff",
        Some(Payload::RecoveryRecorded(_)) => "RecoveryRecorded",
        Some(Payload::DunningActionCreated(_)) => "DunningActionCreated",
        None => "Unknown",
    }
}

/// A new event with a fresh id, the current time, the producer and the W3C trace context of
/// the current span (so consumers continue the trace); the caller fills in the ids.
pub fn new_event(producer: &str, payload: Payload) -> Event {
    use tracing_opentelemetry::OpenTelemetrySpanExt;
    let mut carrier = std::collections::HashMap::new();
    let context = tracing::Span::current().context();
    opentelemetry::global::get_text_map_propagator(|propagator| {
        propagator.inject_context(&context, &mut carrier)
    });
    let now = chrono::Utc::now();
    Event {
        event_id: uuid::Uuid::now_v7().to_string(),
        occurred_at: Some(prost_types::Timestamp {
            seconds: now.timestamp(),
            nanos: i32::try_from(now.timestamp_subsec_nanos()).unwrap_or(0),
        }),
        producer: producer.to_owned(),
        traceparent: carrier.remove("traceparent").unwrap_or_default(),
        tracestate: carrier.remove("tracestate").unwrap_or_default(),
        payload: Some(payload),
        ..Default::default()
    }
}

/// Why an event could not be handled. [`EventError::disposition`] says what the pipeline does
/// about it.
#[derive(Debug, thiserror::Error)]
pub enum EventError {
    #[error("the store failed: {0}")]
    Store(#[from] sqlx::Error),
    #[error("the event stream failed: {0}")]
    Stream(#[from] redis::RedisError),
    #[error("an event could not be decoded: {0}")]
    Decode(#[from] prost::DecodeError),
    #[error("a packed outbox row is malformed: {0}")]
    Packed(&'static str),
    /// The handler failed in a way that may pass on a later try (a conflict, a state it did
    /// not expect yet): tried again a few times, then dead-lettered.
    #[error("a handler failed: {0}")]
    Handler(String),
    /// The event can never be applied as it is (a value out of range, a malformed payload):
    /// dead-lettered at once, so it never holds up the events behind it.
    #[error("the event cannot be applied: {0}")]
    Invalid(String),
    /// Something the handler needs does not answer (its database, the cache): every event
    /// would fail the same way, so the consumer waits for it instead of dead-lettering.
    #[error("a dependency is unavailable: {0}")]
    Unavailable(String),
}

/// What the pipeline does with an event whose handling failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Disposition {
    /// Dead-letter it now: no retry can succeed.
    DeadLetter,
    /// Try again after a backoff, a bounded number of times, then dead-letter it.
    Retry,
    /// Leave it where it is and try again once the dependency answers: it is not the event's
    /// fault, and dead-lettering would only move every event of the outage aside.
    Wait,
}

impl EventError {
    pub fn disposition(&self) -> Disposition {
        match self {
            Self::Decode(_) | Self::Packed(_) | Self::Invalid(_) => Disposition::DeadLetter,
            Self::Handler(_) => Disposition::Retry,
            Self::Unavailable(_) => Disposition::Wait,
            Self::Store(error) => store_disposition(error),
            Self::Stream(error) => {
                if error.is_io_error()
                    || error.is_connection_dropped()
                    || error.is_connection_refusal()
                    || error.is_timeout()
                {
                    Disposition::Wait
                } else {
                    Disposition::Retry
                }
            }
        }
    }
}

/// A database that does not answer (or is shutting down, or out of resources) is an outage;
/// any other database error is the statement's and may be the event's own: retried, then
/// dead-lettered.
fn store_disposition(error: &sqlx::Error) -> Disposition {
    match error {
        sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::WorkerCrashed => Disposition::Wait,
        sqlx::Error::Database(database_error) => {
            let code = database_error.code().unwrap_or_default();
            // 08: connection exception; 53: insufficient resources; 57: operator intervention
            // (admin shutdown, cannot connect now); SQLite 5/6: busy or locked.
            let outage = code.starts_with("08")
                || code.starts_with("53")
                || code.starts_with("57")
                || code == "5"
                || code == "6";
            if outage {
                Disposition::Wait
            } else {
                Disposition::Retry
            }
        }
        _ => Disposition::Retry,
    }
}

/// A service's own error, as a handler returns it: bad values can never be applied, an
/// unavailable dependency is waited for, anything else is tried again.
impl From<ServiceError> for EventError {
    fn from(error: ServiceError) -> Self {
        match error {
            ServiceError::InvalidArgument(violations) => Self::Invalid(
                violations
                    .iter()
                    .map(|violation| format!("{}: {}", violation.field, violation.description))
                    .collect::<Vec<_>>()
                    .join("; "),
            ),
            ServiceError::Unavailable { message, source } => {
                Self::Unavailable(format!("{message}: {source}"))
            }
            ServiceError::Internal(source) => Self::Handler(format!("internal error: {source}")),
            other => Self::Handler(other.to_string()),
        }
    }
}

/// Applies events of other services. Must be idempotent: the same event may come twice.
#[async_trait]
pub trait EventHandler: Send + Sync + std::fmt::Debug {
    /// Consumer name, unique per service ("limits"): the Redis consumer group, and the key
    /// under which processed event ids are recorded.
    fn consumer(&self) -> &'static str;
    /// The services whose events the handler reads (`credit.v1.IntakeService`, ...): on Redis
    /// each producer has a stream of its own, so a consumer reads only the streams it needs
    /// (nobody in the suite reads limits' referrals and holds, the bulk under load). Events of
    /// one producer arrive in the order they were committed.
    fn producers(&self) -> &'static [&'static str] {
        &ALL_PRODUCERS
    }
    /// Whether events of this type (see [`event_type`]) concern the handler. The bus skips
    /// the others without decoding them: most of the stream under load is referrals and holds
    /// that few consumers read.
    fn handles(&self, event_type: &str) -> bool {
        let _ = event_type;
        true
    }
    async fn handle(&self, event: &Event) -> Result<(), EventError>;
}

/// Every producing service of the suite.
pub const ALL_PRODUCERS: [&str; 4] = [
    credit_proto::service_names::INTAKE,
    credit_proto::service_names::RATING,
    credit_proto::service_names::LIMITS,
    credit_proto::service_names::COLLECTIONS,
];

/// An event as a relay hands it to a bus: decoded (to route it), encoded (as stored), and
/// where it stands in its outbox.
#[derive(Debug, Clone)]
pub struct OutboxEvent {
    pub event: Event,
    pub encoded: Vec<u8>,
    pub mark: OutboxMark,
}

/// Where an event stands in its producer's outbox: published in the relay round that began
/// at `published_micros`, from the row at `position`, under the stream generation
/// `generation`. Relay rounds are serialized and take rows in position order, so marks
/// increase in the order events enter the stream; from the mark every consumer group has
/// reached, a relay can publish again what a stream lost (see [`OutboxRelay`]). Zero when
/// unknown (an event published outside a relay).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord)]
pub struct OutboxMark {
    pub published_micros: i64,
    pub position: i64,
    pub generation: i64,
}

/// Where published events go.
#[async_trait]
pub trait EventBus: Send + Sync + std::fmt::Debug {
    /// Publishes one event; when this returns `Ok` the event will reach every subscriber (or
    /// its dead letters).
    async fn publish(&self, event: &Event, encoded: &[u8]) -> Result<(), EventError> {
        self.publish_all(&[OutboxEvent {
            event: event.clone(),
            encoded: encoded.to_vec(),
            mark: OutboxMark::default(),
        }])
        .await
    }
    /// Publishes events in order; when this returns `Ok` every one will reach every
    /// subscriber (or its dead letters). A bus may send them together.
    async fn publish_all(&self, events: &[OutboxEvent]) -> Result<(), EventError>;
    /// Starts delivering events to `handler` until `stop` turns true. The task ends only
    /// then; one that ends before is a fault the process's readiness reports.
    fn subscribe(
        &self,
        handler: Arc<dyn EventHandler>,
        stop: watch::Receiver<bool>,
    ) -> tokio::task::JoinHandle<()>;
    /// The pipeline the bus delivers through (policy, dead letters, metrics).
    fn pipeline(&self) -> &EventPipeline;
    /// The Redis Streams behind the bus, whose loss the relays watch for (see
    /// [`OutboxRelay`]); `None` for a bus that cannot lose what it was handed.
    fn redis_streams(&self) -> Option<&RedisStreamsBus> {
        None
    }
}
