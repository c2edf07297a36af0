//! Domain events between services: a transactional outbox in each service's store, a relay that
//! publishes it, and consumers that apply each event once.
//!
//! Production: the relay publishes to one Redis Stream; each consuming service reads it with
//! its own consumer group and acknowledges an entry after handling it, so an event is
//! delivered at least once per service, even across restarts. Embedded default: the relay
//! hands each event to the in-process subscribers directly and marks it published only when
//! all of them succeeded, which gives the same at-least-once guarantee without Redis.
//! Either way handlers must be idempotent: [`mark_processed_postgres`] /
//! [`mark_processed_sqlite`] record the event id in the handler's own transaction. Replicas
//! of one consuming service share its consumer group and so may apply events out of order;
//! payloads carry state after the change with its time, and handlers keep the newest.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use credit_proto::v1::Event;
use credit_proto::v1::event::Payload;
use prost::Message;
use redis::AsyncCommands;
use redis::streams::{StreamReadOptions, StreamReadReply};
use sqlx::{PgConnection, Row, SqliteConnection};
use tokio::sync::{Notify, watch};

use crate::storage::{Database, RedisHandle};

/// Stable name of an event's kind, as stored in the outbox and the stream.
pub fn event_type(event: &Event) -> &'static str {
    match &event.payload {
        Some(Payload::CustomerRegistered(_)) => "CustomerRegistered",
        Some(Payload::CustomerStatusChanged(_)) => "CustomerStatusChanged",
        Some(Payload::GroupMembershipChanged(_)) => "GroupMembershipChanged",
        Some(Payload::FinancialStatementSubmitted(_)) => "FinancialStatementSubmitted",
        Some(Payload::BureauReportRecorded(_)) => "BureauReportRecorded",
        Some(Payload::RatingChanged(_)) => "RatingChanged",
        Some(Payload::LimitChanged(_)) => "LimitChanged",
        Some(Payload::CreditBlockChanged(_)) => "CreditBlockChanged",
        Some(Payload::ReferralCreated(_)) => "ReferralCreated",
        Some(Payload::ReferralDecided(_)) => "ReferralDecided",
        Some(Payload::HoldCaptured(_)) => "HoldCaptured",
        Some(Payload::HoldReleased(_)) => "HoldReleased",
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

#[derive(Debug, thiserror::Error)]
pub enum EventError {
    #[error("the outbox store failed: {0}")]
    Store(#[from] sqlx::Error),
    #[error("the event stream failed: {0}")]
    Stream(#[from] redis::RedisError),
    #[error("an event could not be decoded: {0}")]
    Decode(#[from] prost::DecodeError),
    #[error("a packed outbox row is malformed: {0}")]
    Packed(&'static str),
    #[error("a handler failed: {0}")]
    Handler(String),
}

/// Appends `event` to the outbox inside the caller's PostgreSQL transaction.
pub async fn append_postgres(
    transaction: &mut PgConnection,
    event: &Event,
) -> Result<(), EventError> {
    sqlx::query("INSERT INTO outbox (event_id, event_type, payload) VALUES ($1, $2, $3)")
        .bind(&event.event_id)
        .bind(event_type(event))
        .bind(event.encode_to_vec())
        .execute(transaction)
        .await?;
    Ok(())
}

/// Appends `event` to the outbox inside the caller's SQLite transaction.
pub async fn append_sqlite(
    transaction: &mut SqliteConnection,
    event: &Event,
) -> Result<(), EventError> {
    sqlx::query("INSERT INTO outbox (event_id, event_type, payload) VALUES (?1, ?2, ?3)")
        .bind(&event.event_id)
        .bind(event_type(event))
        .bind(event.encode_to_vec())
        .execute(transaction)
        .await?;
    Ok(())
}

/// One event's part of a packed outbox payload (see the `outbox_packed` migration): its
/// length-delimited encoding. A packed payload is these parts one after another.
pub fn packed_part(event: &Event) -> Vec<u8> {
    event.encode_length_delimited_to_vec()
}

/// The events of one outbox row, each with its own encoding: the payload itself, or, for a
/// packed row, every part of it in order.
pub fn outbox_row_events(
    payload: Vec<u8>,
    packed: bool,
) -> Result<Vec<(Event, Vec<u8>)>, EventError> {
    if !packed {
        return Ok(vec![(Event::decode(payload.as_slice())?, payload)]);
    }
    let mut events = Vec::new();
    let mut rest = payload.as_slice();
    while !rest.is_empty() {
        let length = usize::try_from(prost::encoding::decode_varint(&mut rest)?)
            .map_err(|_| EventError::Packed("an event's length is out of range"))?;
        if length > rest.len() {
            return Err(EventError::Packed("an event runs past the payload"));
        }
        let (encoded, after) = rest.split_at(length);
        events.push((Event::decode(encoded)?, encoded.to_vec()));
        rest = after;
    }
    Ok(events)
}

/// Records that `consumer` applied `event_id`, in the handler's PostgreSQL transaction.
/// `false` means it was applied before: skip the work and commit nothing else.
pub async fn mark_processed_postgres(
    transaction: &mut PgConnection,
    consumer: &str,
    event_id: &str,
) -> Result<bool, EventError> {
    let inserted = sqlx::query(
        "INSERT INTO processed_events (consumer, event_id) VALUES ($1, $2) ON CONFLICT DO NOTHING",
    )
    .bind(consumer)
    .bind(event_id)
    .execute(transaction)
    .await?;
    Ok(inserted.rows_affected() == 1)
}

/// Records that `consumer` applied `event_id`, in the handler's SQLite transaction.
pub async fn mark_processed_sqlite(
    transaction: &mut SqliteConnection,
    consumer: &str,
    event_id: &str,
) -> Result<bool, EventError> {
    let inserted = sqlx::query(
        "INSERT INTO processed_events (consumer, event_id) VALUES (?1, ?2) ON CONFLICT DO NOTHING",
    )
    .bind(consumer)
    .bind(event_id)
    .execute(transaction)
    .await?;
    Ok(inserted.rows_affected() == 1)
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

/// Where published events go.
#[async_trait]
pub trait EventBus: Send + Sync + std::fmt::Debug {
    /// Publishes one event; when this returns `Ok` the event will reach every subscriber.
    async fn publish(&self, event: &Event, encoded: &[u8]) -> Result<(), EventError>;
    /// Publishes events in order; when this returns `Ok` every one will reach every
    /// subscriber. A bus may send them together.
    async fn publish_all(&self, events: &[(Event, Vec<u8>)]) -> Result<(), EventError> {
        for (event, encoded) in events {
            self.publish(event, encoded).await?;
        }
        Ok(())
    }
    /// Starts delivering events to `handler` until `stop` turns true.
    fn subscribe(
        &self,
        handler: Arc<dyn EventHandler>,
        stop: watch::Receiver<bool>,
    ) -> tokio::task::JoinHandle<()>;
}

/// The embedded default's bus: subscribers are called during publish.
#[derive(Default)]
pub struct InProcessBus {
    handlers: Mutex<Vec<Arc<dyn EventHandler>>>,
}

impl std::fmt::Debug for InProcessBus {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let count = self
            .handlers
            .lock()
            .map(|handlers| handlers.len())
            .unwrap_or(0);
        formatter
            .debug_struct("InProcessBus")
            .field("handlers", &count)
            .finish()
    }
}

#[async_trait]
impl EventBus for InProcessBus {
    async fn publish(&self, event: &Event, _encoded: &[u8]) -> Result<(), EventError> {
        let handlers: Vec<_> = self
            .handlers
            .lock()
            .map(|handlers| handlers.clone())
            .unwrap_or_default();
        let kind = event_type(event);
        for handler in handlers {
            if handler.producers().contains(&event.producer.as_str()) && handler.handles(kind) {
                handler.handle(event).await?;
            }
        }
        Ok(())
    }

    fn subscribe(
        &self,
        handler: Arc<dyn EventHandler>,
        _stop: watch::Receiver<bool>,
    ) -> tokio::task::JoinHandle<()> {
        if let Ok(mut handlers) = self.handlers.lock() {
            handlers.push(handler);
        }
        tokio::spawn(async {})
    }
}

/// Trim the stream to about this many entries; consumers far behind that would lose events,
/// so it is set well above a day of traffic of a large seller.
const STREAM_MAX_LENGTH: usize = 1_000_000;
const READ_BATCH: usize = 100;
/// How long a consumer's read waits for new events before it asks again.
const READ_BLOCK_MILLIS: usize = 1_000;
/// The consumer connection's answer deadline: longer than the blocking read.
const READ_RESPONSE_TIMEOUT: Duration = Duration::from_secs(5);
/// The publishing connection's answer deadline, per pipeline.
const PUBLISH_RESPONSE_TIMEOUT: Duration = Duration::from_secs(5);
/// The most XADDs in one pipeline. Under load a relay round carries a thousand events or more;
/// sent as one pipeline, Redis spends milliseconds on them while the `Authorize` script calls
/// wait, and the driver task parses a thousand replies in one go on a worker the requests need.
/// In pipelines of this size the round costs a round trip per hundred events, and no step of
/// it takes long.
const PUBLISH_PIPELINE: usize = 100;

/// The production bus: one Redis Stream per producing service, a consumer group per consuming
/// service on each stream it reads.
#[derive(Debug, Clone)]
pub struct RedisStreamsBus {
    redis: RedisHandle,
    /// This process's consumer name within each group (host and pid), so a restarted process
    /// first re-reads what it had been given but not acknowledged.
    consumer_name: String,
    /// The relay's connection, opened on first publish. Redis answers a connection's commands
    /// in order: on the shared connection, every `Authorize` script call sent during a relay
    /// round would wait behind the round's XADDs.
    publisher: Arc<tokio::sync::OnceCell<redis::aio::ConnectionManager>>,
}

impl RedisStreamsBus {
    pub fn new(redis: RedisHandle) -> Self {
        let host = std::env::var("HOSTNAME").unwrap_or_else(|_| "local".to_owned());
        Self {
            redis,
            consumer_name: host,
            publisher: Arc::new(tokio::sync::OnceCell::new()),
        }
    }

    async fn publisher(&self) -> Result<redis::aio::ConnectionManager, EventError> {
        let connection = self
            .publisher
            .get_or_try_init(|| self.redis.dedicated_connection(PUBLISH_RESPONSE_TIMEOUT))
            .await?;
        Ok(connection.clone())
    }

    /// The stream of one producer's events (`<prefix>events:credit.v1.LimitService`).
    pub fn stream_key(&self, producer: &str) -> String {
        self.redis.key(&format!("events:{producer}"))
    }

    async fn ensure_groups(&self, group: &str, streams: &[String]) -> Result<(), EventError> {
        let mut connection = self.redis.connection();
        for stream in streams {
            // From the start of the stream: a service deployed later still sees every event
            // kept.
            let created: Result<(), redis::RedisError> =
                connection.xgroup_create_mkstream(stream, group, "0").await;
            if let Err(error) = created
                && error.code() != Some("BUSYGROUP")
            {
                return Err(error.into());
            }
        }
        Ok(())
    }

    /// Reads and handles one batch: pending entries of this consumer first (`0`), then new
    /// ones (`>`). Returns how many entries were read.
    async fn consume_batch(
        &self,
        handler: &dyn EventHandler,
        streams: &[String],
        from_pending: bool,
        connection: &mut redis::aio::ConnectionManager,
    ) -> Result<usize, EventError> {
        let group = handler.consumer();

        let mut options = StreamReadOptions::default()
            .group(group, &self.consumer_name)
            .count(READ_BATCH);
        if !from_pending {
            options = options.block(READ_BLOCK_MILLIS);
        }
        let start = if from_pending { "0" } else { ">" };
        let starts = vec![start; streams.len()];
        let reply: Option<StreamReadReply> =
            connection.xread_options(streams, &starts, &options).await?;
        let mut count = 0;
        let mut failure = None;
        for key in reply.into_iter().flat_map(|reply| reply.keys) {
            count += key.ids.len();
            // Acknowledged together after handling, one round trip per stream and batch: on a
            // failure the entries handled so far are acknowledged and the rest stays pending,
            // to be read again (handlers are idempotent by event id).
            let mut handled = Vec::with_capacity(key.ids.len());
            for entry in &key.ids {
                let kind: Option<String> = entry.get("type");
                if kind.is_some_and(|kind| !handler.handles(&kind)) {
                    handled.push(entry.id.as_str());
                    continue;
                }
                let payload: Option<Vec<u8>> = entry.get("payload");
                if let Some(payload) = payload {
                    let outcome = match Event::decode(payload.as_slice()) {
                        Ok(event) => handler.handle(&event).await,
                        Err(error) => Err(error.into()),
                    };
                    if let Err(error) = outcome {
                        failure = Some(error);
                        break;
                    }
                }
                handled.push(entry.id.as_str());
            }
            if !handled.is_empty() {
                let _: usize = connection.xack(&key.key, group, &handled).await?;
            }
            if failure.is_some() {
                break;
            }
        }
        match failure {
            Some(error) => Err(error),
            None => Ok(count),
        }
    }
}

#[async_trait]
impl EventBus for RedisStreamsBus {
    async fn publish_all(&self, events: &[(Event, Vec<u8>)]) -> Result<(), EventError> {
        let mut connection = None;
        for chunk in events.chunks(PUBLISH_PIPELINE) {
            // One pipeline per chunk: Redis applies its XADDs in order, in one round trip, and
            // the chunks go one after another, so the stream keeps the order of `events`.
            let mut pipeline = redis::pipe();
            for (event, encoded) in chunk {
                pipeline
                    .cmd("XADD")
                    .arg(self.stream_key(&event.producer))
                    .arg("MAXLEN")
                    .arg("~")
                    .arg(STREAM_MAX_LENGTH)
                    .arg("*")
                    .arg("event_id")
                    .arg(&event.event_id)
                    .arg("type")
                    .arg(event_type(event))
                    .arg("payload")
                    .arg(encoded.as_slice())
                    .ignore();
            }
            let connection = match &mut connection {
                Some(connection) => connection,
                None => connection.insert(self.publisher().await?),
            };
            pipeline.query_async::<()>(connection).await?;
        }
        Ok(())
    }

    async fn publish(&self, event: &Event, encoded: &[u8]) -> Result<(), EventError> {
        self.publish_all(&[(event.clone(), encoded.to_vec())]).await
    }

    fn subscribe(
        &self,
        handler: Arc<dyn EventHandler>,
        mut stop: watch::Receiver<bool>,
    ) -> tokio::task::JoinHandle<()> {
        let bus = self.clone();
        let streams: Vec<String> = handler
            .producers()
            .iter()
            .map(|producer| bus.stream_key(producer))
            .collect();
        tokio::spawn(async move {
            let mut pending_first = true;
            let mut group_ready = false;
            let mut reader: Option<redis::aio::ConnectionManager> = None;
            while !*stop.borrow() {
                let round = async {
                    if !group_ready {
                        bus.ensure_groups(handler.consumer(), &streams).await?;
                    }
                    // The blocking read gets a connection of its own (see
                    // RedisHandle::dedicated_connection), opened on first use.
                    if reader.is_none() {
                        reader = Some(
                            bus.redis
                                .dedicated_connection(READ_RESPONSE_TIMEOUT)
                                .await?,
                        );
                    }
                    match reader.as_mut() {
                        Some(connection) => {
                            bus.consume_batch(handler.as_ref(), &streams, pending_first, connection)
                                .await
                        }
                        None => Ok(0),
                    }
                };
                let outcome = tokio::select! {
                    outcome = round => outcome,
                    _ = stop.changed() => return,
                };
                group_ready = outcome.is_ok();
                match outcome {
                    // Pending entries exhausted: switch to new ones.
                    Ok(0) if pending_first => pending_first = false,
                    Ok(_) => {}
                    Err(error) => {
                        tracing::warn!(consumer = handler.consumer(), error = %error, "event consumer failed; retrying");
                        // What was read but not acknowledged is re-read from the pending list.
                        pending_first = true;
                        tokio::select! {
                            () = tokio::time::sleep(Duration::from_millis(500)) => {}
                            _ = stop.changed() => return,
                        }
                    }
                }
            }
        })
    }
}

/// Publishes a service's outbox in commit order, then marks the rows published.
#[derive(Debug, Clone)]
pub struct OutboxRelay {
    database: Database,
    bus: Arc<dyn EventBus>,
    /// Woken by producers after a commit, so events leave at once instead of at the next poll.
    wake: Arc<Notify>,
}

const RELAY_BATCH: i64 = 200;
/// Rows of a relay round decoded between two yields to the scheduler.
const RELAY_YIELD_ROWS: usize = 16;
const RELAY_POLL: Duration = Duration::from_millis(250);
/// The relay's rest after a round. Producers wake it after every commit, and under load a
/// limits service commits a few hundred times a second; a round costs a transaction of its
/// own (lock, read, mark, commit). Resting this long lets one round carry what several
/// commits wrote, for at most this much more delay on an event.
const RELAY_REST: Duration = Duration::from_millis(10);

/// What one relay transaction took from the outbox.
struct RelayBatch {
    rows: usize,
    events: usize,
}

impl OutboxRelay {
    pub fn new(database: Database, bus: Arc<dyn EventBus>) -> Self {
        Self {
            database,
            bus,
            wake: Arc::new(Notify::new()),
        }
    }

    /// A handle producers call after committing an event.
    pub fn waker(&self) -> Arc<Notify> {
        self.wake.clone()
    }

    /// Publishes what is pending now, in commit order; returns how many events were published.
    pub async fn publish_pending(&self) -> Result<usize, EventError> {
        let mut published = 0;
        loop {
            let batch = match &self.database {
                Database::Postgres(pool) => self.relay_postgres_batch(pool).await?,
                Database::Sqlite(pool) => self.relay_sqlite_batch(pool).await?,
            };
            published += batch.events;
            // A short batch took everything pending: no need for a transaction to find that
            // nothing is left.
            if batch.rows < RELAY_BATCH as usize {
                return Ok(published);
            }
        }
    }

    /// One batch on PostgreSQL. An advisory lock per schema lets one replica of a service
    /// relay at a time, so events leave in commit order even with several replicas; the rows
    /// are marked in the same transaction, so a crash mid-batch republishes rather than loses.
    async fn relay_postgres_batch(&self, pool: &sqlx::PgPool) -> Result<RelayBatch, EventError> {
        let mut transaction = pool.begin().await?;
        // The mark need not wait for the disk: lost in a crash, it only means the rows are
        // published again, and consumers skip events they have seen (event id). Its commit
        // then no longer flushes the WAL beside the group commit's, which waited for it.
        let locked: bool = sqlx::query_scalar(
            "SELECT pg_try_advisory_xact_lock(hashtext(current_schema() || '.outbox_relay')) \
             FROM set_config('synchronous_commit', 'off', true)",
        )
        .fetch_one(&mut *transaction)
        .await?;
        if !locked {
            // Another replica relays.
            return Ok(RelayBatch { rows: 0, events: 0 });
        }
        let rows = sqlx::query("SELECT position, payload, packed FROM outbox WHERE published_at IS NULL ORDER BY position LIMIT $1")
            .bind(RELAY_BATCH)
            .fetch_all(&mut *transaction)
            .await?;
        let mut positions = Vec::with_capacity(rows.len());
        let mut events = Vec::with_capacity(rows.len());
        for row in &rows {
            positions.push(row.try_get::<i64, _>(0)?);
            events.extend(outbox_row_events(row.try_get(1)?, row.try_get(2)?)?);
            // A round decodes up to a thousand events or so: let the requests waiting on this
            // worker run between rows rather than after all of them.
            if positions.len() % RELAY_YIELD_ROWS == 0 {
                tokio::task::yield_now().await;
            }
        }
        // The batch in one call to the bus (a pipeline per hundred events) and one update, not
        // round trips per event.
        self.bus.publish_all(&events).await?;
        sqlx::query("UPDATE outbox SET published_at = now() WHERE position = ANY($1)")
            .bind(&positions)
            .execute(&mut *transaction)
            .await?;
        transaction.commit().await?;
        Ok(RelayBatch {
            rows: rows.len(),
            events: events.len(),
        })
    }

    /// One batch on SQLite: one process owns the file, so no lock is needed; each row is
    /// marked after its subscribers handled it.
    async fn relay_sqlite_batch(&self, pool: &sqlx::SqlitePool) -> Result<RelayBatch, EventError> {
        let rows = sqlx::query("SELECT position, payload, packed FROM outbox WHERE published_at IS NULL ORDER BY position LIMIT ?1")
            .bind(RELAY_BATCH)
            .fetch_all(pool)
            .await?;
        let mut published = 0;
        for row in &rows {
            let position: i64 = row.try_get(0)?;
            for (event, encoded) in outbox_row_events(row.try_get(1)?, row.try_get(2)?)? {
                self.bus.publish(&event, &encoded).await?;
                published += 1;
            }
            sqlx::query("UPDATE outbox SET published_at = strftime('%Y-%m-%dT%H:%M:%fZ', 'now') WHERE position = ?1")
                .bind(position)
                .execute(pool)
                .await?;
        }
        Ok(RelayBatch {
            rows: rows.len(),
            events: published,
        })
    }

    /// Runs until `stop` turns true: publishes on every wake-up and at least every 250 ms,
    /// resting [`RELAY_REST`] between rounds. An event committed while the relay waits goes
    /// at once; one committed during the rest or a round, at most that much later.
    pub async fn run(self, mut stop: watch::Receiver<bool>) {
        while !*stop.borrow() {
            if let Err(error) = self.publish_pending().await {
                tracing::warn!(error = %error, "outbox relay failed; retrying");
            }
            tokio::select! {
                () = tokio::time::sleep(RELAY_REST) => {}
                _ = stop.changed() => return,
            }
            tokio::select! {
                () = self.wake.notified() => {}
                () = tokio::time::sleep(RELAY_POLL) => {}
                _ = stop.changed() => return,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(event_id: &str) -> Event {
        Event {
            event_id: event_id.to_owned(),
            producer: "limits".to_owned(),
            ..Default::default()
        }
    }

    #[test]
    fn a_packed_row_gives_its_events_in_order_with_their_own_encodings() {
        let events = [event("a"), event("b"), event("c")];
        let payload: Vec<u8> = events.iter().flat_map(packed_part).collect();
        let unpacked = outbox_row_events(payload, true).unwrap();
        let ids: Vec<&str> = unpacked
            .iter()
            .map(|(event, _)| event.event_id.as_str())
            .collect();
        assert_eq!(ids, ["a", "b", "c"]);
        for (event, encoded) in &unpacked {
            assert_eq!(encoded, &event.encode_to_vec());
        }
    }

    #[test]
    fn a_packed_row_cut_short_is_an_error() {
        let mut payload: Vec<u8> = [event("a"), event("b")]
            .iter()
            .flat_map(packed_part)
            .collect();
        payload.truncate(payload.len() - 1);
        assert!(matches!(
            outbox_row_events(payload, true),
            Err(EventError::Packed(_))
        ));
    }
}
