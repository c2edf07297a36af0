//! The production bus: one Redis Stream per producing service, a consumer group per consuming
//! service on each stream it reads.
//!
//! A consumer reads its own pending entries first (what it was given and had not
//! acknowledged when its process stopped), then new ones. Every so often it also takes over
//! entries another consumer of its group left unacknowledged for longer than
//! [`DeliveryPolicy::claim_idle`](super::DeliveryPolicy) (`XAUTOCLAIM`): the consumer of a
//! crashed, evicted or rolled pod, whose name is never seen again. On shutdown it finishes the
//! entry in hand and hands the rest of its batch back (marked idle, so any live replica
//! claims them at once) rather than dropping it.
//!
//! Each entry carries its outbox mark (see [`OutboxMark`]); the relays read the marks the
//! consumer groups have reached to know what to publish again when Redis loses a stream.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use redis::AsyncCommands;
use redis::streams::{
    StreamAutoClaimOptions, StreamClaimOptions, StreamId, StreamInfoGroupsReply,
    StreamPendingReply, StreamRangeReply, StreamReadOptions, StreamReadReply,
};
use tokio::sync::watch;

use super::delivery::{Entry, EventPipeline};
use super::{EventBus, EventError, EventHandler, OutboxEvent, OutboxMark, event_type};
use crate::storage::RedisHandle;

/// Trim a stream to about this many entries: far above a day of a large seller's traffic. A
/// consumer so far behind that entries it had not read were trimmed asks the producer to
/// publish again from the mark every group has reached (see [`RedisStreamsBus::request_resync`]).
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
/// How often a consumer's lag and oldest pending entry are measured.
const MONITOR_INTERVAL: Duration = Duration::from_secs(5);
/// A consumer of a group with nothing pending, idle this long, is a process that is gone: its
/// name is removed from the group so the group's list stays readable.
const GONE_CONSUMER_IDLE: Duration = Duration::from_secs(3600);
/// Wait after a failed read before reading again.
const FAILURE_BACKOFF: Duration = Duration::from_millis(500);

/// The production bus.
#[derive(Debug, Clone)]
pub struct RedisStreamsBus {
    redis: RedisHandle,
    pipeline: EventPipeline,
    /// This process's consumer name within each group: the host (the pod's name) and the
    /// process id, so a process that restarts in the same pod first re-reads what it had
    /// been given; entries of a name never seen again are claimed by the others.
    consumer_name: String,
    /// The relay's connection, opened on first publish. Redis answers a connection's commands
    /// in order: on the shared connection, every `Authorize` script call sent during a relay
    /// round would wait behind the round's XADDs.
    publisher: Arc<tokio::sync::OnceCell<redis::aio::ConnectionManager>>,
}

/// Which entries a consumer reads next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Reading {
    /// Its own pending entries, from the start of its pending list.
    OwnPending,
    /// Entries never delivered to its group.
    New,
}

/// Entries of one read, each with the index of the stream it came from.
type Batch = Vec<(usize, StreamId)>;

impl RedisStreamsBus {
    pub fn new(redis: RedisHandle, pipeline: EventPipeline) -> Self {
        let host = std::env::var("HOSTNAME").unwrap_or_else(|_| "local".to_owned());
        Self {
            redis,
            pipeline,
            consumer_name: format!("{host}-{}", std::process::id()),
            publisher: Arc::new(tokio::sync::OnceCell::new()),
        }
    }

    /// The same bus under another consumer name (a second replica, in tests).
    pub fn with_consumer_name(mut self, name: impl Into<String>) -> Self {
        self.consumer_name = name.into();
        self
    }

    pub fn consumer_name(&self) -> &str {
        &self.consumer_name
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

    /// Where the relay of `store` keeps the generation of `producer`'s stream: a key that
    /// exists exactly as long as the stream's contents (both go when Redis loses its data).
    fn generation_key(&self, store: &str, producer: &str) -> String {
        self.redis
            .key(&format!("events:generation:{store}:{producer}"))
    }

    /// Where consumers ask `producer`'s relays to publish again from the mark every group
    /// has reached (entries they had not read were trimmed).
    fn resync_key(&self, producer: &str) -> String {
        self.redis.key(&format!("events:resync:{producer}"))
    }

    /// The generation of each of `producers`' streams as the relay of `store` left it, and
    /// each stream's latest resync request: `None` where the key is gone.
    pub(crate) async fn stream_states(
        &self,
        store: &str,
        producers: &[String],
    ) -> Result<Vec<(Option<i64>, Option<i64>)>, EventError> {
        if producers.is_empty() {
            return Ok(Vec::new());
        }
        let mut keys = Vec::with_capacity(producers.len() * 2);
        for producer in producers {
            keys.push(self.generation_key(store, producer));
            keys.push(self.resync_key(producer));
        }
        let mut connection = self.publisher().await?;
        let values: Vec<Option<i64>> = connection.mget(&keys).await?;
        Ok(values
            .chunks(2)
            .map(|pair| {
                (
                    pair.first().copied().flatten(),
                    pair.get(1).copied().flatten(),
                )
            })
            .collect())
    }

    pub(crate) async fn set_generation(
        &self,
        store: &str,
        producer: &str,
        generation: i64,
    ) -> Result<(), EventError> {
        let mut connection = self.publisher().await?;
        let _: () = connection
            .set(self.generation_key(store, producer), generation)
            .await?;
        Ok(())
    }

    /// Asks `producer`'s relays to publish again from the mark every group has reached.
    async fn request_resync(&self, producer: &str) {
        let now = chrono::Utc::now().timestamp_millis();
        let mut connection = self.redis.connection();
        let requested: Result<(), redis::RedisError> = connection
            .set_ex(self.resync_key(producer), now, 86_400)
            .await;
        if let Err(error) = requested {
            tracing::warn!(producer, error = %error, "cannot ask for the stream to be published again");
        }
    }

    /// The outbox mark up to which every consumer group of `producer`'s stream has
    /// acknowledged everything, among entries of `generation`: `None` when it cannot be told
    /// (a group has read nothing yet of this generation). With no group at all, the mark of
    /// the stream's last entry: nobody waits for anything.
    pub(crate) async fn acknowledged_mark(
        &self,
        producer: &str,
        generation: i64,
    ) -> Result<Option<OutboxMark>, EventError> {
        let stream = self.stream_key(producer);
        let mut connection = self.publisher().await?;
        let exists: bool = connection.exists(&stream).await?;
        if !exists {
            return Ok(None);
        }
        let groups: StreamInfoGroupsReply = connection.xinfo_groups(&stream).await?;
        if groups.groups.is_empty() {
            let last: StreamRangeReply = connection.xrevrange_count(&stream, "+", "-", 1).await?;
            return Ok(last
                .ids
                .first()
                .and_then(|entry| mark_of(entry, generation)));
        }
        let mut lowest: Option<OutboxMark> = None;
        for group in &groups.groups {
            // Everything before the group's oldest pending entry was acknowledged (delivery
            // is in stream order); with nothing pending, everything it was given.
            let end = if group.pending > 0 {
                let pending: StreamPendingReply = connection.xpending(&stream, &group.name).await?;
                match pending {
                    StreamPendingReply::Data(data) => format!("({}", data.start_id),
                    _ => group.last_delivered_id.clone(),
                }
            } else {
                group.last_delivered_id.clone()
            };
            let reached: StreamRangeReply =
                connection.xrevrange_count(&stream, end, "-", 1).await?;
            let Some(mark) = reached
                .ids
                .first()
                .and_then(|entry| mark_of(entry, generation))
            else {
                return Ok(None);
            };
            lowest = Some(lowest.map_or(mark, |lowest| lowest.min(mark)));
        }
        Ok(lowest)
    }

    async fn ensure_groups(&self, group: &str, streams: &[String]) -> Result<(), EventError> {
        let mut connection = self.redis.connection();
        for stream in streams {
            // From the start of the stream: a service deployed later still sees every event
            // kept, and a stream Redis lost and a relay refilled is read whole.
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

    /// The next entries for `group`: those other consumers left idle too long when a claim
    /// is due, else this consumer's own pending ones or new ones.
    async fn fetch(
        &self,
        connection: &mut redis::aio::ConnectionManager,
        group: &str,
        streams: &[String],
        producers: &[&str],
        reading: Reading,
        claim: bool,
    ) -> Result<Batch, EventError> {
        if claim {
            let claimed = self
                .claim_idle(connection, group, streams, producers)
                .await?;
            if !claimed.is_empty() {
                return Ok(claimed);
            }
        }
        let mut options = StreamReadOptions::default()
            .group(group, &self.consumer_name)
            .count(READ_BATCH);
        if reading == Reading::New {
            options = options.block(READ_BLOCK_MILLIS);
        }
        let start = if reading == Reading::OwnPending {
            "0"
        } else {
            ">"
        };
        let starts = vec![start; streams.len()];
        let reply: Option<StreamReadReply> =
            connection.xread_options(streams, &starts, &options).await?;
        let mut batch = Batch::new();
        for key in reply.into_iter().flat_map(|reply| reply.keys) {
            let Some(index) = streams.iter().position(|stream| *stream == key.key) else {
                continue;
            };
            batch.extend(key.ids.into_iter().map(|entry| (index, entry)));
        }
        Ok(batch)
    }

    /// Takes over entries of `group` left unacknowledged longer than the claim idle time.
    async fn claim_idle(
        &self,
        connection: &mut redis::aio::ConnectionManager,
        group: &str,
        streams: &[String],
        producers: &[&str],
    ) -> Result<Batch, EventError> {
        let idle = millis(self.pipeline.policy().claim_idle);
        let mut batch = Batch::new();
        for (index, stream) in streams.iter().enumerate() {
            let options = StreamAutoClaimOptions::default().count(READ_BATCH);
            let reply: redis::streams::StreamAutoClaimReply = connection
                .xautoclaim_options(stream, group, &self.consumer_name, idle, "0-0", options)
                .await?;
            let producer = producers.get(index).copied().unwrap_or_default();
            if !reply.deleted_ids.is_empty() {
                // Pending entries that were trimmed before anyone acknowledged them: their
                // events are published again from the outbox.
                tracing::warn!(
                    consumer = group,
                    producer,
                    lost = reply.deleted_ids.len(),
                    "pending entries were trimmed from the stream; asking for it to be published again"
                );
                self.request_resync(producer).await;
            }
            if !reply.claimed.is_empty() {
                tracing::info!(
                    consumer = group,
                    producer,
                    claimed = reply.claimed.len(),
                    "took over entries another consumer left unacknowledged"
                );
                self.pipeline.metrics().claimed(
                    group,
                    producer,
                    u64::try_from(reply.claimed.len()).unwrap_or(u64::MAX),
                );
            }
            batch.extend(reply.claimed.into_iter().map(|entry| (index, entry)));
        }
        Ok(batch)
    }

    /// Handles a batch in order and acknowledges what was done with, one XACK per stream.
    /// Stops at an entry that must be held (an outage): that one and those after it stay
    /// pending. On `stop`, the entries not yet begun are handed back.
    async fn process(
        &self,
        connection: &mut redis::aio::ConnectionManager,
        handler: &dyn EventHandler,
        streams: &[String],
        producers: &[&str],
        batch: &Batch,
        stop: &watch::Receiver<bool>,
    ) -> Result<(), EventError> {
        let group = handler.consumer();
        let mut done: Vec<Vec<&str>> = vec![Vec::new(); streams.len()];
        let mut outcome = Ok(());
        let mut handed_back: Vec<Vec<&str>> = vec![Vec::new(); streams.len()];
        for (position, (index, entry)) in batch.iter().enumerate() {
            let producer = producers.get(*index).copied().unwrap_or_default();
            if *stop.borrow() {
                for (index, entry) in batch.iter().skip(position) {
                    if let Some(ids) = handed_back.get_mut(*index) {
                        ids.push(entry.id.as_str());
                    }
                }
                break;
            }
            let handled = self.handle_entry(handler, producer, entry, stop).await;
            match handled {
                Ok(()) => {
                    if let Some(ids) = done.get_mut(*index) {
                        ids.push(entry.id.as_str());
                    }
                }
                Err(error) => {
                    outcome = Err(error);
                    break;
                }
            }
        }
        for (stream, ids) in streams.iter().zip(&done) {
            if !ids.is_empty() {
                let _: usize = connection.xack(stream, group, ids).await?;
            }
        }
        for (stream, ids) in streams.iter().zip(&handed_back) {
            if !ids.is_empty() {
                self.hand_back(connection, stream, group, ids).await;
            }
        }
        outcome
    }

    async fn handle_entry(
        &self,
        handler: &dyn EventHandler,
        producer: &str,
        entry: &StreamId,
        stop: &watch::Receiver<bool>,
    ) -> Result<(), EventError> {
        if entry.map.is_empty() {
            // A pending entry whose contents were trimmed: nothing to apply here, and the
            // producer is asked to publish it again from its outbox.
            tracing::warn!(consumer = handler.consumer(), producer, entry_id = %entry.id, "a pending entry was trimmed before it was applied; asking for the stream to be published again");
            self.request_resync(producer).await;
            return Ok(());
        }
        let kind: Option<String> = entry.get("type");
        let payload: Option<Vec<u8>> = entry.get("payload");
        let payload = payload.unwrap_or_default();
        self.pipeline
            .deliver(
                handler,
                Entry {
                    producer,
                    source: &entry.id,
                    event_type: kind.as_deref(),
                    payload: &payload,
                },
                stop,
            )
            .await
            .map(drop)
    }

    /// Gives entries this consumer will not handle back to its group: marked idle for the
    /// claim time, so the next claim of any live consumer takes them at once.
    async fn hand_back(
        &self,
        connection: &mut redis::aio::ConnectionManager,
        stream: &str,
        group: &str,
        ids: &[&str],
    ) {
        let idle = millis(self.pipeline.policy().claim_idle);
        let options = StreamClaimOptions::default().idle(idle).with_justid();
        let handed: Result<redis::Value, redis::RedisError> = connection
            .xclaim_options(stream, group, &self.consumer_name, 0, ids, options)
            .await;
        match handed {
            Ok(_) => tracing::info!(
                consumer = group,
                entries = ids.len(),
                "stopping: handed unhandled entries back to the group"
            ),
            Err(error) => {
                tracing::warn!(consumer = group, error = %error, "stopping: entries stay pending until claimed")
            }
        }
    }

    /// Reads, handles and acknowledges until `stop`.
    async fn consume(&self, handler: Arc<dyn EventHandler>, mut stop: watch::Receiver<bool>) {
        let group = handler.consumer();
        let producers: Vec<&str> = handler.producers().to_vec();
        let streams: Vec<String> = producers
            .iter()
            .map(|producer| self.stream_key(producer))
            .collect();
        let claim_every = (self.pipeline.policy().claim_idle / 2)
            .clamp(Duration::from_millis(100), Duration::from_secs(10));
        let mut next_claim = tokio::time::Instant::now();
        let mut reading = Reading::OwnPending;
        let mut groups_ready = false;
        let mut reader: Option<redis::aio::ConnectionManager> = None;
        while !*stop.borrow() {
            let claim = tokio::time::Instant::now() >= next_claim;
            let fetched = async {
                if !groups_ready {
                    self.ensure_groups(group, &streams).await?;
                    groups_ready = true;
                }
                // The blocking read gets a connection of its own (see
                // RedisHandle::dedicated_connection), opened on first use.
                let connection = match &mut reader {
                    Some(connection) => connection,
                    None => reader.insert(
                        self.redis
                            .dedicated_connection(READ_RESPONSE_TIMEOUT)
                            .await?,
                    ),
                };
                let batch = self
                    .fetch(connection, group, &streams, &producers, reading, claim)
                    .await?;
                Ok::<_, EventError>((batch, connection.clone()))
            };
            let fetched = tokio::select! {
                fetched = fetched => fetched,
                _ = stop.changed() => return,
            };
            if claim {
                next_claim = tokio::time::Instant::now() + claim_every;
            }
            let outcome = match fetched {
                Ok((batch, _)) if batch.is_empty() => {
                    // Own pending entries exhausted: switch to new ones.
                    reading = Reading::New;
                    Ok(())
                }
                Ok((batch, mut connection)) => {
                    self.process(
                        &mut connection,
                        handler.as_ref(),
                        &streams,
                        &producers,
                        &batch,
                        &stop,
                    )
                    .await
                }
                Err(error) => {
                    // A group Redis lost (restart, FLUSHALL) is created again.
                    groups_ready = false;
                    Err(error)
                }
            };
            if let Err(error) = outcome {
                tracing::warn!(consumer = group, error = %error, "event consumer held back; retrying");
                // What was read but not acknowledged is re-read from the pending list.
                reading = Reading::OwnPending;
                tokio::select! {
                    () = tokio::time::sleep(FAILURE_BACKOFF) => {}
                    _ = stop.changed() => return,
                }
            }
        }
    }

    /// Measures the group's lag and oldest pending entry on each stream until `stop`, and
    /// removes consumers of the group that are long gone.
    async fn monitor(&self, handler: Arc<dyn EventHandler>, mut stop: watch::Receiver<bool>) {
        let group = handler.consumer();
        let mut rounds = 0_u64;
        while !*stop.borrow() {
            for producer in handler.producers() {
                let stream = self.stream_key(producer);
                match self.measure(&stream, group).await {
                    Ok((lag, oldest_secs)) => {
                        self.pipeline
                            .metrics()
                            .set_lag(group, producer, lag, oldest_secs);
                    }
                    Err(error) => {
                        tracing::debug!(consumer = group, producer, error = %error, "cannot measure the consumer's lag");
                    }
                }
                if rounds % 60 == 59 {
                    self.forget_gone_consumers(&stream, group).await;
                }
            }
            rounds = rounds.wrapping_add(1);
            tokio::select! {
                () = tokio::time::sleep(MONITOR_INTERVAL) => {}
                _ = stop.changed() => return,
            }
        }
    }

    /// The group's lag (entries not yet delivered) and the age in seconds of the oldest
    /// entry it has not acknowledged, delivered or not.
    async fn measure(&self, stream: &str, group: &str) -> Result<(i64, f64), EventError> {
        let mut connection = self.redis.connection();
        let groups: StreamInfoGroupsReply = connection.xinfo_groups(stream).await?;
        let Some(info) = groups.groups.iter().find(|info| info.name == group) else {
            return Ok((0, 0.0));
        };
        let mut oldest_millis: Option<i64> = None;
        if info.pending > 0 {
            let pending: StreamPendingReply = connection.xpending(stream, group).await?;
            if let StreamPendingReply::Data(data) = pending {
                oldest_millis = entry_millis(&data.start_id);
            }
        }
        let undelivered: StreamRangeReply = connection
            .xrange_count(stream, format!("({}", info.last_delivered_id), "+", 1)
            .await?;
        if let Some(first) = undelivered
            .ids
            .first()
            .and_then(|entry| entry_millis(&entry.id))
        {
            oldest_millis = Some(oldest_millis.map_or(first, |oldest| oldest.min(first)));
        }
        let lag = match info.lag {
            Some(lag) => i64::try_from(lag).unwrap_or(i64::MAX),
            None => i64::from(!undelivered.ids.is_empty()),
        };
        let now = chrono::Utc::now().timestamp_millis();
        let age = oldest_millis.map_or(0.0, |oldest| {
            Duration::from_millis(u64::try_from(now.saturating_sub(oldest)).unwrap_or(0))
                .as_secs_f64()
        });
        Ok((lag, age))
    }

    async fn forget_gone_consumers(&self, stream: &str, group: &str) {
        let mut connection = self.redis.connection();
        let consumers: Result<redis::streams::StreamInfoConsumersReply, _> =
            connection.xinfo_consumers(stream, group).await;
        let Ok(consumers) = consumers else {
            return;
        };
        for consumer in consumers.consumers {
            let idle = Duration::from_millis(u64::try_from(consumer.idle).unwrap_or(0));
            if consumer.pending == 0
                && idle > GONE_CONSUMER_IDLE
                && consumer.name != self.consumer_name
            {
                let removed: Result<i64, _> = redis::cmd("XGROUP")
                    .arg("DELCONSUMER")
                    .arg(stream)
                    .arg(group)
                    .arg(&consumer.name)
                    .query_async(&mut connection)
                    .await;
                if removed.is_ok() {
                    tracing::info!(consumer = group, gone = %consumer.name, "removed a consumer long gone from the group");
                }
            }
        }
    }
}

/// An entry's outbox mark, when it carries one of `generation`.
fn mark_of(entry: &StreamId, generation: i64) -> Option<OutboxMark> {
    let text: String = entry.get("mark")?;
    let mut parts = text.split(':').map(str::parse::<i64>);
    let mark = OutboxMark {
        published_micros: parts.next()?.ok()?,
        position: parts.next()?.ok()?,
        generation: parts.next()?.ok()?,
    };
    (mark.generation == generation && mark.published_micros > 0).then_some(mark)
}

/// The milliseconds part of a stream entry id (`1733560000000-0`): when Redis added it.
fn entry_millis(id: &str) -> Option<i64> {
    id.split('-').next()?.parse().ok()
}

fn millis(duration: Duration) -> usize {
    usize::try_from(duration.as_millis()).unwrap_or(usize::MAX)
}

#[async_trait]
impl EventBus for RedisStreamsBus {
    async fn publish_all(&self, events: &[OutboxEvent]) -> Result<(), EventError> {
        let mut connection = None;
        let mut stream_keys: HashMap<&str, String> = HashMap::new();
        for chunk in events.chunks(PUBLISH_PIPELINE) {
            // One pipeline per chunk: Redis applies its XADDs in order, in one round trip, and
            // the chunks go one after another, so the stream keeps the order of `events`.
            let mut pipeline = redis::pipe();
            for OutboxEvent {
                event,
                encoded,
                mark,
            } in chunk
            {
                let stream = stream_keys
                    .entry(event.producer.as_str())
                    .or_insert_with(|| self.stream_key(&event.producer));
                pipeline
                    .cmd("XADD")
                    .arg(stream.as_str())
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
                    .arg("mark")
                    .arg(format!(
                        "{}:{}:{}",
                        mark.published_micros, mark.position, mark.generation
                    ))
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

    fn subscribe(
        &self,
        handler: Arc<dyn EventHandler>,
        stop: watch::Receiver<bool>,
    ) -> tokio::task::JoinHandle<()> {
        let bus = self.clone();
        tokio::spawn(async move {
            tokio::join!(
                bus.consume(handler.clone(), stop.clone()),
                bus.pipeline.run_replays(handler.as_ref(), stop.clone()),
                bus.monitor(handler.clone(), stop.clone()),
            );
        })
    }

    fn pipeline(&self) -> &EventPipeline {
        &self.pipeline
    }

    fn redis_streams(&self) -> Option<&RedisStreamsBus> {
        Some(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(mark: &str) -> StreamId {
        StreamId {
            id: "1-0".to_owned(),
            map: HashMap::from([(
                "mark".to_owned(),
                redis::Value::BulkString(mark.as_bytes().to_vec()),
            )]),
            ..Default::default()
        }
    }

    #[test]
    fn a_mark_counts_only_in_its_own_generation() {
        assert_eq!(
            mark_of(&entry("1700000000000000:42:7"), 7),
            Some(OutboxMark {
                published_micros: 1_700_000_000_000_000,
                position: 42,
                generation: 7
            })
        );
        assert_eq!(mark_of(&entry("1700000000000000:42:7"), 8), None);
        assert_eq!(
            mark_of(&entry("0:0:0"), 0),
            None,
            "published outside a relay"
        );
        assert_eq!(mark_of(&entry("garbage"), 7), None);
        assert_eq!(mark_of(&StreamId::default(), 7), None);
    }

    #[test]
    fn entry_ids_tell_when_redis_added_them() {
        assert_eq!(entry_millis("1733560000123-4"), Some(1_733_560_000_123));
        assert_eq!(entry_millis("x-1"), None);
    }
}
