//! The transactional outbox every producing service keeps, and the relay that publishes it.
//!
//! A service appends an event in the same transaction as the change it announces; its relay
//! publishes the rows in commit order and marks them published. On PostgreSQL one replica of a
//! service relays at a time (an advisory lock per schema), so events leave in order even with
//! several replicas, and a crash mid-round publishes again rather than loses.
//!
//! Redis may lose a stream (a restart without persistence, a FLUSHALL). Each stream carries
//! a generation key beside it, which goes when the stream goes; every event carries its
//! [`OutboxMark`], and the relay keeps, in the events store, the mark up to which every
//! consumer group has acknowledged the stream (`outbox_watermarks`). When the generation key
//! is gone, or a consumer reports entries trimmed before it read them, the relay publishes
//! again, under a new generation, every row from that mark on, before anything new: consumers
//! skip what they had applied (by event id), and nothing in between is lost.
//!
//! A row the relay cannot decode is dead-lettered (consumer `outbox-relay`) and marked
//! published, so it never holds up the rows behind it.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use credit_proto::v1::Event;
use prost::Message;
use sqlx::{PgConnection, Row, SqliteConnection};
use tokio::sync::{Notify, watch};

use super::dead_letters::{NewDeadLetter, RELAY_CONSUMER};
use super::redis_streams::RedisStreamsBus;
use super::{EventBus, EventError, OutboxEvent, OutboxMark, event_type};
use crate::storage::Database;

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

/// Publishes a service's outbox in commit order, then marks the rows published.
#[derive(Debug, Clone)]
pub struct OutboxRelay {
    /// The store's name (`limits`), for the metrics and the stream generations.
    store: &'static str,
    database: Database,
    bus: Arc<dyn EventBus>,
    /// Woken by producers after a commit, so events leave at once instead of at the next poll.
    wake: Arc<Notify>,
    /// What the relay knows of the streams it publishes to (Redis only).
    streams: Arc<Mutex<BTreeMap<String, StreamBook>>>,
    /// Whether the streams this store published to before were read from the events store.
    streams_loaded: Arc<AtomicBool>,
}

/// The relay's view of one producer's stream.
#[derive(Debug, Clone, Copy, Default)]
struct StreamBook {
    /// The generation the stream's entries are published under; 0 until known.
    generation: i64,
    /// The last resync request of consumers this relay answered.
    resync_answered: Option<i64>,
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
/// How often the relay reads how far consumers got, and measures the outbox's backlog.
const BOOKKEEPING_INTERVAL: Duration = Duration::from_secs(5);
/// Rows published again per query when a stream is refilled.
const RESYNC_BATCH: i64 = 500;

/// What one relay transaction took from the outbox.
struct RelayBatch {
    rows: usize,
    events: usize,
}

impl OutboxRelay {
    pub fn new(store: &'static str, database: Database, bus: Arc<dyn EventBus>) -> Self {
        Self {
            store,
            database,
            bus,
            wake: Arc::new(Notify::new()),
            streams: Arc::new(Mutex::new(BTreeMap::new())),
            streams_loaded: Arc::new(AtomicBool::new(false)),
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
        // `now()` is the round's start: rounds are serialized by the lock, so it orders them.
        let round = sqlx::query(
            "SELECT pg_try_advisory_xact_lock(hashtext(current_schema() || '.outbox_relay')), \
             now() FROM set_config('synchronous_commit', 'off', true)",
        )
        .fetch_one(&mut *transaction)
        .await?;
        let locked: bool = round.try_get(0)?;
        if !locked {
            // Another replica relays.
            return Ok(RelayBatch { rows: 0, events: 0 });
        }
        let round_started: DateTime<Utc> = round.try_get(1)?;
        let round_micros = round_started.timestamp_micros();
        let rows = sqlx::query("SELECT position, payload, packed FROM outbox WHERE published_at IS NULL ORDER BY position LIMIT $1")
            .bind(RELAY_BATCH)
            .fetch_all(&mut *transaction)
            .await?;
        let mut positions = Vec::with_capacity(rows.len());
        let mut events = Vec::with_capacity(rows.len());
        for row in &rows {
            let position: i64 = row.try_get(0)?;
            positions.push(position);
            let mark = OutboxMark {
                published_micros: round_micros,
                position,
                generation: 0,
            };
            if let Some(decoded) = self
                .decode_row(position, row.try_get(1)?, row.try_get(2)?)
                .await?
            {
                events.extend(decoded.into_iter().map(|(event, encoded)| OutboxEvent {
                    event,
                    encoded,
                    mark,
                }));
            }
            // A round decodes up to a thousand events or so: let the requests waiting on this
            // worker run between rows rather than after all of them.
            if positions.len() % RELAY_YIELD_ROWS == 0 {
                tokio::task::yield_now().await;
            }
        }
        if let Some(streams) = self.bus.redis_streams() {
            let producers: Vec<String> = events
                .iter()
                .map(|published| published.event.producer.clone())
                .collect();
            let generations = self
                .keep_streams(&mut transaction, streams, &producers, round_micros)
                .await?;
            for published in &mut events {
                published.mark.generation = generations
                    .get(&published.event.producer)
                    .copied()
                    .unwrap_or(0);
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
    /// marked after its subscribers were done with it.
    async fn relay_sqlite_batch(&self, pool: &sqlx::SqlitePool) -> Result<RelayBatch, EventError> {
        let rows = sqlx::query("SELECT position, payload, packed FROM outbox WHERE published_at IS NULL ORDER BY position LIMIT ?1")
            .bind(RELAY_BATCH)
            .fetch_all(pool)
            .await?;
        let mut published = 0;
        for row in &rows {
            let position: i64 = row.try_get(0)?;
            let events = self
                .decode_row(position, row.try_get(1)?, row.try_get(2)?)
                .await?
                .unwrap_or_default();
            let events: Vec<OutboxEvent> = events
                .into_iter()
                .map(|(event, encoded)| OutboxEvent {
                    event,
                    encoded,
                    mark: OutboxMark::default(),
                })
                .collect();
            self.bus.publish_all(&events).await?;
            published += events.len();
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

    /// The events of one outbox row, or `None` when the row is malformed: it is then
    /// dead-lettered, and the caller marks it published so it never blocks the rows behind.
    async fn decode_row(
        &self,
        position: i64,
        payload: Vec<u8>,
        packed: bool,
    ) -> Result<Option<Vec<(Event, Vec<u8>)>>, EventError> {
        let error = match outbox_row_events(payload.clone(), packed) {
            Ok(events) => return Ok(Some(events)),
            Err(error) => error,
        };
        let source = format!("outbox:{}:{position}", self.store);
        let error_text = error.to_string();
        self.bus
            .pipeline()
            .dead_letters()
            .record(&NewDeadLetter {
                consumer: RELAY_CONSUMER,
                producer: self.store,
                event_id: "",
                event_type: "Unknown",
                payload: &payload,
                source: &source,
                error: &error_text,
                attempts: 1,
            })
            .await?;
        self.bus
            .pipeline()
            .metrics()
            .delivered(RELAY_CONSUMER, "dead_lettered");
        tracing::error!(store = self.store, position, error = %error_text, "outbox row cannot be decoded; dead-lettered and passed over");
        Ok(None)
    }

    /// Before a round publishes: for each producer it publishes to, learns the stream's
    /// generation, starts one for a stream seen the first time, and refills a stream Redis
    /// lost (or consumers asked for). Returns the generation per producer.
    async fn keep_streams(
        &self,
        transaction: &mut PgConnection,
        streams: &RedisStreamsBus,
        producers_of_round: &[String],
        round_micros: i64,
    ) -> Result<BTreeMap<String, i64>, EventError> {
        let mut books = self.streams_snapshot();
        for producer in producers_of_round {
            books.entry(producer.clone()).or_default();
        }
        if !self.streams_loaded.load(Ordering::Relaxed) {
            // Learn the streams the store published to before this process started, so a
            // loss is noticed even before its next event.
            for producer in self.known_producers().await? {
                books.entry(producer).or_default();
            }
            self.streams_loaded.store(true, Ordering::Relaxed);
        }
        let producers: Vec<String> = books.keys().cloned().collect();
        let states = streams.stream_states(self.store, &producers).await?;
        for (producer, (generation, resync_requested)) in producers.iter().zip(states) {
            let book = books.entry(producer.clone()).or_default();
            let lost = generation.is_none();
            let asked = resync_requested.is_some() && resync_requested != book.resync_answered;
            match (generation, lost || asked) {
                (Some(current), false) => book.generation = current,
                _ => {
                    let acknowledged = self.acknowledged(producer).await?;
                    let fresh = new_generation();
                    match acknowledged {
                        // Never published here before (or the store is new to this version):
                        // everything older counts as delivered, nothing to publish again.
                        None => {
                            self.save_acknowledged(
                                producer,
                                OutboxMark {
                                    published_micros: round_micros,
                                    position: 0,
                                    generation: fresh,
                                },
                                true,
                            )
                            .await?;
                        }
                        Some(from) => {
                            let count = self.republish(transaction, producer, from, fresh).await?;
                            self.save_acknowledged(
                                producer,
                                OutboxMark {
                                    generation: fresh,
                                    ..from
                                },
                                true,
                            )
                            .await?;
                            self.bus.pipeline().metrics().resynced(producer);
                            tracing::warn!(
                                store = self.store,
                                producer,
                                republished = count,
                                lost,
                                asked,
                                "the stream lost entries; published again from the outbox from the point every consumer had reached"
                            );
                        }
                    }
                    streams.set_generation(self.store, producer, fresh).await?;
                    book.generation = fresh;
                    book.resync_answered = resync_requested;
                }
            }
        }
        let generations = books
            .iter()
            .map(|(producer, book)| (producer.clone(), book.generation))
            .collect();
        if let Ok(mut kept) = self.streams.lock() {
            *kept = books;
        }
        Ok(generations)
    }

    fn streams_snapshot(&self) -> BTreeMap<String, StreamBook> {
        self.streams
            .lock()
            .map(|books| books.clone())
            .unwrap_or_default()
    }

    /// Publishes again, under `generation`, every event of `producer` in rows published from
    /// mark `from` on, in the order they were first published.
    async fn republish(
        &self,
        transaction: &mut PgConnection,
        producer: &str,
        from: OutboxMark,
        generation: i64,
    ) -> Result<usize, EventError> {
        let mut after_time = DateTime::<Utc>::from_timestamp_micros(from.published_micros)
            .unwrap_or(DateTime::<Utc>::MIN_UTC);
        // The row at the mark itself goes again: a packed row's events may be only partly
        // acknowledged.
        let mut after_position = from.position.saturating_sub(1);
        let mut republished = 0;
        loop {
            let rows = sqlx::query(
                "SELECT position, payload, packed, published_at FROM outbox \
                 WHERE published_at IS NOT NULL AND (published_at, position) > ($1, $2) \
                 ORDER BY published_at, position LIMIT $3",
            )
            .bind(after_time)
            .bind(after_position)
            .bind(RESYNC_BATCH)
            .fetch_all(&mut *transaction)
            .await?;
            let mut events = Vec::new();
            for row in &rows {
                let position: i64 = row.try_get(0)?;
                let published_at: DateTime<Utc> = row.try_get(3)?;
                after_time = published_at;
                after_position = position;
                let Ok(decoded) = outbox_row_events(row.try_get(1)?, row.try_get(2)?) else {
                    // Dead-lettered when it was first relayed.
                    continue;
                };
                let mark = OutboxMark {
                    published_micros: published_at.timestamp_micros(),
                    position,
                    generation,
                };
                events.extend(
                    decoded
                        .into_iter()
                        .filter(|(event, _)| event.producer == producer)
                        .map(|(event, encoded)| OutboxEvent {
                            event,
                            encoded,
                            mark,
                        }),
                );
            }
            self.bus.publish_all(&events).await?;
            republished += events.len();
            if rows.len() < RESYNC_BATCH as usize {
                return Ok(republished);
            }
        }
    }

    /// The producers this store has published to, as the events store remembers them.
    async fn known_producers(&self) -> Result<Vec<String>, EventError> {
        let events_store = self.bus.pipeline().dead_letters().database().clone();
        let producers = crate::on_database!(&events_store, |pool, sql| {
            sqlx::query_scalar(&sql(
                "SELECT producer FROM outbox_watermarks WHERE store = $1",
            ))
            .bind(self.store)
            .fetch_all(pool)
            .await?
        });
        Ok(producers)
    }

    /// The mark every consumer group of `producer`'s stream has acknowledged, as last saved.
    async fn acknowledged(&self, producer: &str) -> Result<Option<OutboxMark>, EventError> {
        let events_store = self.bus.pipeline().dead_letters().database().clone();
        let row: Option<(i64, i64, i64)> = crate::on_database!(&events_store, |pool, sql| {
            sqlx::query_as(&sql(
                "SELECT published_micros, position, generation FROM outbox_watermarks \
                 WHERE store = $1 AND producer = $2",
            ))
            .bind(self.store)
            .bind(producer)
            .fetch_optional(pool)
            .await?
        });
        Ok(
            row.map(|(published_micros, position, generation)| OutboxMark {
                published_micros,
                position,
                generation,
            }),
        )
    }

    /// Saves the mark consumers have acknowledged; only forward, unless `reset` (a new
    /// generation starts from where the old one was).
    async fn save_acknowledged(
        &self,
        producer: &str,
        mark: OutboxMark,
        reset: bool,
    ) -> Result<(), EventError> {
        let events_store = self.bus.pipeline().dead_letters().database().clone();
        let now = Utc::now();
        crate::on_database!(&events_store, |pool, sql| {
            sqlx::query(&sql(
                "INSERT INTO outbox_watermarks (store, producer, published_micros, position, generation, updated_at) \
                 VALUES ($1, $2, $3, $4, $5, $6) \
                 ON CONFLICT (store, producer) DO UPDATE SET \
                 published_micros = excluded.published_micros, position = excluded.position, \
                 generation = excluded.generation, updated_at = excluded.updated_at \
                 WHERE $7 OR (outbox_watermarks.generation = excluded.generation AND \
                 (excluded.published_micros > outbox_watermarks.published_micros OR \
                 (excluded.published_micros = outbox_watermarks.published_micros AND \
                 excluded.position > outbox_watermarks.position)))",
            ))
            .bind(self.store)
            .bind(producer)
            .bind(mark.published_micros)
            .bind(mark.position)
            .bind(mark.generation)
            .bind(now)
            .bind(reset)
            .execute(pool)
            .await?;
        });
        Ok(())
    }

    /// Reads how far every consumer group got on each stream (saved as the point to publish
    /// again from, should Redis lose the stream), and measures the outbox's backlog. `run`
    /// does this every few seconds.
    pub async fn record_progress(&self) {
        if let Some(streams) = self.bus.redis_streams() {
            for (producer, book) in self.streams_snapshot() {
                if book.generation == 0 {
                    continue;
                }
                match streams.acknowledged_mark(&producer, book.generation).await {
                    Ok(Some(mark)) => {
                        if let Err(error) = self.save_acknowledged(&producer, mark, false).await {
                            tracing::debug!(store = self.store, error = %error, "cannot save how far consumers got");
                        }
                    }
                    Ok(None) => {}
                    Err(error) => {
                        tracing::debug!(store = self.store, error = %error, "cannot read how far consumers got");
                    }
                }
            }
        }
        match self.backlog().await {
            Ok((rows, oldest_secs)) => {
                self.bus
                    .pipeline()
                    .metrics()
                    .set_outbox_backlog(self.store, rows, oldest_secs)
            }
            Err(error) => {
                tracing::debug!(store = self.store, error = %error, "cannot measure the outbox backlog");
            }
        }
    }

    /// Rows not yet published, and the age in seconds of the oldest.
    async fn backlog(&self) -> Result<(i64, f64), sqlx::Error> {
        let (rows, oldest): (i64, Option<f64>) =
            match &self.database {
                Database::Postgres(pool) => {
                    sqlx::query_as(
                        "SELECT COUNT(*), EXTRACT(EPOCH FROM now() - MIN(created_at))::float8 \
                     FROM outbox WHERE published_at IS NULL",
                    )
                    .fetch_one(pool)
                    .await?
                }
                Database::Sqlite(pool) => sqlx::query_as(
                    "SELECT COUNT(*), (julianday('now') - julianday(MIN(created_at))) * 86400.0 \
                     FROM outbox WHERE published_at IS NULL",
                )
                .fetch_one(pool)
                .await?,
            };
        Ok((rows, oldest.unwrap_or(0.0).max(0.0)))
    }

    /// Runs until `stop` turns true: publishes on every wake-up and at least every 250 ms,
    /// resting [`RELAY_REST`] between rounds. An event committed while the relay waits goes
    /// at once; one committed during the rest or a round, at most that much later.
    pub async fn run(self, mut stop: watch::Receiver<bool>) {
        let mut next_books = tokio::time::Instant::now();
        while !*stop.borrow() {
            if let Err(error) = self.publish_pending().await {
                tracing::warn!(store = self.store, error = %error, "outbox relay failed; retrying");
            }
            if tokio::time::Instant::now() >= next_books {
                self.record_progress().await;
                next_books = tokio::time::Instant::now() + BOOKKEEPING_INTERVAL;
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

/// A generation no earlier stream of this name had: random, positive, never 0 (unknown).
fn new_generation() -> i64 {
    rand::random::<i64>().saturating_abs().max(1)
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

    #[test]
    fn generations_are_never_unknown() {
        for _ in 0..1000 {
            assert!(new_generation() > 0);
        }
    }
}
