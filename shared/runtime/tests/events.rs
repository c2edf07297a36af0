//! One conformance suite for the event path — outbox, relay, bus, idempotent consumer — run on
//! both backends: PostgreSQL + Redis Streams, and SQLite + the in-process bus.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "tests"
)]

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use credit_proto::v1::event::Payload;
use credit_proto::v1::{CustomerRegistered, Event};
use credit_runtime::config::Backend;
use credit_runtime::events::{
    self, DeadLetterStatus, DeadLetterStore, DeliveryPolicy, EVENTS_STORE, EventBus, EventError,
    EventHandler, EventPipeline, InProcessBus, OutboxRelay, RedisStreamsBus,
};
use credit_runtime::metrics::Metrics;
use credit_runtime::sql::Page;
use credit_runtime::store::CommonMigration;
use credit_runtime::testing::TestDatabase;
use credit_runtime::{Database, StoreSpec};
use sqlx::migrate::Migrator;
use tokio::sync::watch;

static NO_MIGRATIONS: Migrator = Migrator::DEFAULT;
/// A store of its own for this test, with the outbox tables every service migrates.
static EVENTS_TEST_STORE: StoreSpec = StoreSpec {
    name: "events_test",
    postgres_migrations: &NO_MIGRATIONS,
    sqlite_migrations: &NO_MIGRATIONS,
    common_migrations: &[
        (1, CommonMigration::Outbox),
        (2, CommonMigration::OutboxPacked),
    ],
};
fn registered(event_id: &str, customer_id: &str) -> Event {
    Event {
        event_id: event_id.to_owned(),
        producer: "credit.v1.IntakeService".to_owned(),
        customer_id: customer_id.to_owned(),
        payload: Some(Payload::CustomerRegistered(CustomerRegistered::default())),
        ..Default::default()
    }
}

/// How a test handler fails on one event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fault {
    /// The event can never be applied.
    Invalid,
    /// Every attempt fails in a way that might pass.
    Always,
    /// The handler's database is down for this many attempts.
    Outage(usize),
    /// The handler panics.
    Panic,
}

/// Applies events into the consumer's own store, once per event id, and can be told to fail
/// the next N deliveries (a consumer whose database hiccups), or to fail particular events.
#[derive(Debug)]
struct RecordingHandler {
    database: Database,
    applied: Mutex<Vec<String>>,
    deliveries: Mutex<HashMap<String, usize>>,
    failures_left: Mutex<usize>,
    faults: Mutex<HashMap<String, Fault>>,
}

impl RecordingHandler {
    fn new(database: Database, failures: usize) -> Arc<Self> {
        Arc::new(Self {
            database,
            applied: Mutex::new(Vec::new()),
            deliveries: Mutex::new(HashMap::new()),
            failures_left: Mutex::new(failures),
            faults: Mutex::new(HashMap::new()),
        })
    }

    fn applied(&self) -> Vec<String> {
        self.applied.lock().unwrap().clone()
    }

    fn deliveries_of(&self, event_id: &str) -> usize {
        self.deliveries
            .lock()
            .unwrap()
            .get(event_id)
            .copied()
            .unwrap_or(0)
    }

    fn fail(&self, event_id: &str, fault: Fault) {
        self.faults
            .lock()
            .unwrap()
            .insert(event_id.to_owned(), fault);
    }

    fn heal(&self, event_id: &str) {
        self.faults.lock().unwrap().remove(event_id);
    }
}

#[async_trait]
impl EventHandler for RecordingHandler {
    fn consumer(&self) -> &'static str {
        "limits"
    }

    fn producers(&self) -> &'static [&'static str] {
        &[
            credit_proto::service_names::INTAKE,
            credit_proto::service_names::LIMITS,
        ]
    }

    fn handles(&self, event_type: &str) -> bool {
        event_type == "CustomerRegistered"
    }

    async fn handle(&self, event: &Event) -> Result<(), EventError> {
        *self
            .deliveries
            .lock()
            .unwrap()
            .entry(event.event_id.clone())
            .or_default() += 1;
        {
            let mut failures = self.failures_left.lock().unwrap();
            if *failures > 0 {
                *failures -= 1;
                return Err(EventError::Handler("simulated outage".into()));
            }
        }
        let fault = self.faults.lock().unwrap().get(&event.event_id).copied();
        match fault {
            None => {}
            Some(Fault::Invalid) => {
                return Err(EventError::Invalid("amount: is too large".into()));
            }
            Some(Fault::Always) => return Err(EventError::Handler("conflict".into())),
            Some(Fault::Panic) => panic!("a bug in the handler"),
            Some(Fault::Outage(left)) => {
                let mut faults = self.faults.lock().unwrap();
                if left <= 1 {
                    faults.remove(&event.event_id);
                } else {
                    faults.insert(event.event_id.clone(), Fault::Outage(left - 1));
                }
                return Err(EventError::Unavailable(
                    "database: connection refused".into(),
                ));
            }
        }
        let first_time = match &self.database {
            Database::Postgres(pool) => {
                let mut transaction = pool.begin().await?;
                let first = events::mark_processed_postgres(
                    &mut transaction,
                    self.consumer(),
                    &event.event_id,
                )
                .await?;
                transaction.commit().await?;
                first
            }
            Database::Sqlite(pool) => {
                let mut transaction = pool.begin().await?;
                let first = events::mark_processed_sqlite(
                    &mut transaction,
                    self.consumer(),
                    &event.event_id,
                )
                .await?;
                transaction.commit().await?;
                first
            }
        };
        if first_time {
            self.applied.lock().unwrap().push(event.event_id.clone());
        }
        Ok(())
    }
}

async fn append(database: &Database, event: &Event) {
    match database {
        Database::Postgres(pool) => {
            let mut transaction = pool.begin().await.unwrap();
            events::append_postgres(&mut transaction, event)
                .await
                .unwrap();
            transaction.commit().await.unwrap();
        }
        Database::Sqlite(pool) => {
            let mut transaction = pool.begin().await.unwrap();
            events::append_sqlite(&mut transaction, event)
                .await
                .unwrap();
            transaction.commit().await.unwrap();
        }
    }
}

/// Several events in one packed row, as limits' group commit writes them.
async fn append_packed(database: &Database, events: &[Event]) {
    let payload: Vec<u8> = events.iter().flat_map(events::packed_part).collect();
    let first = &events[0];
    credit_runtime::on_database!(database, |pool, sql| {
        sqlx::query(&sql(
            "INSERT INTO outbox (event_id, event_type, payload, packed) VALUES ($1, $2, $3, true)",
        ))
        .bind(&first.event_id)
        .bind(events::event_type(first))
        .bind(&payload)
        .execute(pool)
        .await
        .unwrap();
    });
}

/// An event appended in a rolled-back transaction is never published.
async fn append_and_roll_back(database: &Database, event: &Event) {
    match database {
        Database::Postgres(pool) => {
            let mut transaction = pool.begin().await.unwrap();
            events::append_postgres(&mut transaction, event)
                .await
                .unwrap();
            transaction.rollback().await.unwrap();
        }
        Database::Sqlite(pool) => {
            let mut transaction = pool.begin().await.unwrap();
            events::append_sqlite(&mut transaction, event)
                .await
                .unwrap();
            transaction.rollback().await.unwrap();
        }
    }
}

async fn conformance(producer: Database, consumer: Database, bus: Arc<dyn EventBus>) {
    let (stop_sender, stop) = watch::channel(false);
    // The consumer fails its first delivery: the event must come again, and be applied once.
    let handler = RecordingHandler::new(consumer, 1);
    let subscription = bus.subscribe(handler.clone(), stop.clone());
    let relay = OutboxRelay::new("events_test", producer.clone(), bus.clone());

    append(&producer, &registered("evt-1", "c-1")).await;
    append_and_roll_back(&producer, &registered("evt-rolled-back", "c-1")).await;
    append(&producer, &registered("evt-2", "c-2")).await;

    // Embedded: the failed delivery fails the publish, the relay keeps the row and retries.
    let relay_task = tokio::spawn(relay.clone().run(stop.clone()));
    wait_for(&handler, &["evt-1", "evt-2"]).await;

    // Delivering the same event again (a relay that crashed before marking it) changes nothing.
    bus.publish(
        &registered("evt-1", "c-1"),
        &prost::Message::encode_to_vec(&registered("evt-1", "c-1")),
    )
    .await
    .unwrap();
    append(&producer, &registered("evt-3", "c-3")).await;
    relay.waker().notify_one();
    wait_for(&handler, &["evt-1", "evt-2", "evt-3"]).await;
    assert!(handler.deliveries.lock().unwrap()["evt-1"] >= 2);
    assert!(
        !handler
            .deliveries
            .lock()
            .unwrap()
            .contains_key("evt-rolled-back")
    );
    // An event of a type the handler does not handle is passed over (and acknowledged), and
    // the events of a producer it does not read never reach it.
    append(
        &producer,
        &Event {
            event_id: "evt-referral".to_owned(),
            producer: credit_proto::service_names::LIMITS.to_owned(),
            payload: Some(Payload::ReferralCreated(Default::default())),
            ..Default::default()
        },
    )
    .await;
    append(
        &producer,
        &Event {
            producer: credit_proto::service_names::RATING.to_owned(),
            ..registered("evt-other-producer", "c-9")
        },
    )
    .await;
    // A burst leaves in one batch and arrives in commit order.
    let mut wanted: Vec<String> = ["evt-1", "evt-2", "evt-3"].map(str::to_owned).to_vec();
    for index in 4..60 {
        let event_id = format!("evt-{index}");
        append(&producer, &registered(&event_id, "c-4")).await;
        wanted.push(event_id);
    }
    // A packed row is published as its events, one by one, in order; this one holds more
    // events than one Redis pipeline takes, so its events leave in several.
    let packed: Vec<Event> = (60..230)
        .map(|index| registered(&format!("evt-{index}"), "c-5"))
        .collect();
    append_packed(&producer, &packed).await;
    wanted.extend(packed.iter().map(|event| event.event_id.clone()));
    append(&producer, &registered("evt-230", "c-5")).await;
    wanted.push("evt-230".to_owned());
    relay.waker().notify_one();
    let wanted: Vec<&str> = wanted.iter().map(String::as_str).collect();
    wait_for(&handler, &wanted).await;
    assert_eq!(
        relay.publish_pending().await.unwrap(),
        0,
        "everything was marked published"
    );
    assert!(
        !handler
            .deliveries
            .lock()
            .unwrap()
            .contains_key("evt-referral"),
        "an event the handler does not handle is never delivered to it"
    );
    assert!(
        !handler
            .deliveries
            .lock()
            .unwrap()
            .contains_key("evt-other-producer"),
        "an event of a producer the handler does not read is never delivered to it"
    );

    stop_sender.send(true).unwrap();
    relay_task.await.unwrap();
    subscription.await.unwrap();
}

async fn wait_until(what: &str, mut done: impl FnMut() -> bool) {
    for _ in 0..400 {
        if done() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("timed out waiting until {what}");
}

async fn wait_for(handler: &RecordingHandler, wanted: &[&str]) {
    for _ in 0..400 {
        if handler.applied() == wanted {
            return;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("applied {:?}, wanted {wanted:?}", handler.applied());
}

/// A policy that tries three times with short waits, and claims entries idle 300 ms.
fn test_policy() -> DeliveryPolicy {
    DeliveryPolicy {
        max_attempts: 3,
        first_backoff: Duration::from_millis(10),
        max_backoff: Duration::from_millis(50),
        attempt_timeout: Duration::from_secs(5),
        claim_idle: Duration::from_millis(300),
        replay_poll: Duration::from_millis(50),
    }
}

/// The events store of a test, and the pipeline every bus of the test delivers through.
async fn pipeline(backend: &Backend) -> (Database, EventPipeline) {
    let events_store = Database::open(backend, &EVENTS_STORE, 2, true)
        .await
        .unwrap();
    let pipeline = EventPipeline::new(
        DeadLetterStore::new(events_store.clone()),
        Metrics::new().events(),
        test_policy(),
    );
    (events_store, pipeline)
}

async fn producer_store(backend: &Backend) -> Database {
    Database::open(backend, &EVENTS_TEST_STORE, 2, true)
        .await
        .unwrap()
}

/// A test's own PostgreSQL database and Redis key prefix, with an outbox, an events store
/// and a Redis Streams bus on them.
struct RedisFixture {
    database: TestDatabase,
    producer: Database,
    events_store: Database,
    redis: credit_runtime::RedisHandle,
    bus: Arc<RedisStreamsBus>,
}

impl RedisFixture {
    async fn new() -> Self {
        let database = TestDatabase::create().await;
        let backend = database.backend();
        let producer = producer_store(&backend).await;
        let (events_store, pipeline) = pipeline(&backend).await;
        let redis = database.redis().await;
        let bus = Arc::new(RedisStreamsBus::new(redis.clone(), pipeline));
        Self {
            database,
            producer,
            events_store,
            redis,
            bus,
        }
    }

    /// Removes what the test left in Redis and drops its database.
    async fn finish(self) {
        let mut connection = self.redis.connection();
        let keys: Vec<String> =
            redis::AsyncCommands::keys(&mut connection, format!("test:{}:*", self.database.name))
                .await
                .unwrap();
        if !keys.is_empty() {
            let _: () = redis::AsyncCommands::del(&mut connection, &keys)
                .await
                .unwrap();
        }
        self.producer.close().await;
        self.events_store.close().await;
        self.database.drop_database().await;
    }
}

/// A row whose payload is not an event at all.
async fn append_garbage(database: &Database, event_id: &str) {
    credit_runtime::on_database!(database, |pool, sql| {
        sqlx::query(&sql(
            "INSERT INTO outbox (event_id, event_type, payload, packed) VALUES ($1, 'InvoicePosted', $2, true)",
        ))
        .bind(event_id)
        .bind(vec![0xff_u8, 0xff, 0xff, 0x01])
        .execute(pool)
        .await
        .unwrap();
    });
}

async fn open_letters(dead_letters: &DeadLetterStore) -> Vec<events::DeadLetter> {
    dead_letters
        .list(None, false, &Page::parse(0, "").unwrap())
        .await
        .unwrap()
        .dead_letters
}

async fn letter_for(dead_letters: &DeadLetterStore, event_id: &str) -> events::DeadLetter {
    dead_letters
        .list(None, true, &Page::parse(0, "").unwrap())
        .await
        .unwrap()
        .dead_letters
        .into_iter()
        .find(|letter| letter.event_id == event_id)
        .unwrap_or_else(|| panic!("no dead letter for {event_id}"))
}

/// Events that cannot be applied never hold up the ones behind them: the hopeless one and
/// the one that panics are dead-lettered at once, the one that keeps failing after the
/// policy's tries, a malformed outbox row by the relay; an outage is waited out, never
/// dead-lettered. An operator replays one after the cause is fixed, and drops another, and
/// the history says who did what and why.
async fn dead_letter_conformance(producer: Database, bus: Arc<dyn EventBus>) {
    let dead_letters = bus.pipeline().dead_letters().clone();
    let (stop_sender, stop) = watch::channel(false);
    let handler = RecordingHandler::new(producer.clone(), 0);
    handler.fail("evt-invalid", Fault::Invalid);
    handler.fail("evt-always", Fault::Always);
    handler.fail("evt-outage", Fault::Outage(3));
    handler.fail("evt-panic", Fault::Panic);
    let subscription = bus.subscribe(handler.clone(), stop.clone());
    let relay = OutboxRelay::new("events_test", producer.clone(), bus.clone());
    for event_id in ["evt-a", "evt-invalid", "evt-always"] {
        append(&producer, &registered(event_id, "c-1")).await;
    }
    append_garbage(&producer, "evt-garbage").await;
    for event_id in ["evt-outage", "evt-panic", "evt-b"] {
        append(&producer, &registered(event_id, "c-1")).await;
    }
    let relay_task = tokio::spawn(relay.clone().run(stop.clone()));

    wait_for(&handler, &["evt-a", "evt-outage", "evt-b"]).await;
    assert!(
        handler.deliveries_of("evt-outage") >= 4,
        "held through the outage, then applied"
    );
    let open = open_letters(&dead_letters).await;
    let mut kinds: Vec<(String, String)> = open
        .iter()
        .map(|letter| (letter.consumer.clone(), letter.event_id.clone()))
        .collect();
    kinds.sort();
    assert_eq!(
        kinds,
        [
            ("limits".to_owned(), "evt-always".to_owned()),
            ("limits".to_owned(), "evt-invalid".to_owned()),
            ("limits".to_owned(), "evt-panic".to_owned()),
            ("outbox-relay".to_owned(), String::new()),
        ]
    );
    let invalid = letter_for(&dead_letters, "evt-invalid").await;
    assert_eq!(invalid.attempts, 1, "dead-lettered at once");
    assert!(
        invalid.error.contains("amount: is too large"),
        "{}",
        invalid.error
    );
    assert_eq!(handler.deliveries_of("evt-invalid"), 1);
    let always = letter_for(&dead_letters, "evt-always").await;
    assert_eq!(always.attempts, 3, "tried as often as the policy says");
    assert_eq!(always.producer, credit_proto::service_names::INTAKE);
    let panicked = letter_for(&dead_letters, "evt-panic").await;
    assert!(panicked.error.contains("panicked"), "{}", panicked.error);
    assert_eq!(
        prost::Message::decode(panicked.payload.as_slice()).ok(),
        Some(registered("evt-panic", "c-1")),
        "the dead letter keeps the event as it came"
    );
    let garbage = open
        .iter()
        .find(|letter| letter.consumer == "outbox-relay")
        .unwrap();
    assert!(
        garbage.source.starts_with("outbox:events_test:"),
        "{}",
        garbage.source
    );
    assert!(
        matches!(
            dead_letters
                .request_replay(&garbage.dead_letter_id, "alice", "")
                .await,
            Err(events::DeadLetterError::NotReplayable(_))
        ),
        "an undecodable row has nothing to replay"
    );

    // The cause fixed, an operator replays: the consumer applies it and closes the letter.
    handler.heal("evt-always");
    let requested = dead_letters
        .request_replay(&always.dead_letter_id, "alice", "conflict resolved")
        .await
        .unwrap();
    assert_eq!(requested.status, DeadLetterStatus::ReplayRequested);
    wait_for(&handler, &["evt-a", "evt-outage", "evt-b", "evt-always"]).await;
    let mut replayed = letter_for(&dead_letters, "evt-always").await;
    for _ in 0..100 {
        if replayed.status == DeadLetterStatus::Replayed {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
        replayed = letter_for(&dead_letters, "evt-always").await;
    }
    assert_eq!(replayed.status, DeadLetterStatus::Replayed);

    // A replay that fails again is dead again, with the new error.
    let failed = dead_letters
        .request_replay(&panicked.dead_letter_id, "alice", "")
        .await
        .unwrap();
    assert_eq!(failed.status, DeadLetterStatus::ReplayRequested);
    let mut again = letter_for(&dead_letters, "evt-panic").await;
    for _ in 0..100 {
        if again.status == DeadLetterStatus::Dead {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
        again = letter_for(&dead_letters, "evt-panic").await;
    }
    assert_eq!(again.status, DeadLetterStatus::Dead);
    assert_eq!(again.attempts, 2);

    // Dropping is kept with who and why, and a closed letter cannot be replayed.
    let dropped = dead_letters
        .drop_letter(
            &invalid.dead_letter_id,
            "bob",
            "amount entered wrongly; reissued",
        )
        .await
        .unwrap();
    assert_eq!(dropped.status, DeadLetterStatus::Dropped);
    let last = dropped.history.last().unwrap();
    assert_eq!(
        (
            last.action.as_str(),
            last.actor.as_str(),
            last.detail.as_str()
        ),
        ("DROPPED", "bob", "amount entered wrongly; reissued")
    );
    assert!(matches!(
        dead_letters
            .request_replay(&invalid.dead_letter_id, "alice", "")
            .await,
        Err(events::DeadLetterError::Closed(_))
    ));
    // The same event failing again later (a redelivery) stays dropped.
    bus.publish(
        &registered("evt-invalid", "c-1"),
        &prost::Message::encode_to_vec(&registered("evt-invalid", "c-1")),
    )
    .await
    .unwrap();
    wait_until("the redelivered event was tried", || {
        handler.deliveries_of("evt-invalid") >= 2
    })
    .await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(
        letter_for(&dead_letters, "evt-invalid").await.status,
        DeadLetterStatus::Dropped
    );
    let page = dead_letters
        .list(None, false, &Page::parse(0, "").unwrap())
        .await
        .unwrap();
    assert_eq!(page.open_count, 2, "the panic and the garbage row remain");

    stop_sender.send(true).unwrap();
    relay_task.await.unwrap();
    subscription.await.unwrap();
}

#[tokio::test]
async fn events_conformance_on_postgres_and_redis_streams() {
    let fixture = RedisFixture::new().await;
    let bus = fixture.bus.clone();
    conformance(
        fixture.producer.clone(),
        fixture.producer.clone(),
        bus.clone(),
    )
    .await;

    // Nothing is left pending in the consumer group.
    let mut connection = fixture.redis.connection();
    for producer in [
        credit_proto::service_names::INTAKE,
        credit_proto::service_names::LIMITS,
    ] {
        let pending: redis::streams::StreamPendingReply =
            redis::AsyncCommands::xpending(&mut connection, bus.stream_key(producer), "limits")
                .await
                .unwrap();
        assert_eq!(pending.count(), 0, "{producer}");
    }
    fixture.finish().await;
}

#[tokio::test]
async fn events_conformance_on_sqlite_and_in_process_bus() {
    let folder = tempfile::tempdir().unwrap();
    let backend = Backend::Embedded {
        data_dir: folder.path().to_owned(),
    };
    let producer = producer_store(&backend).await;
    let (events_store, pipeline) = pipeline(&backend).await;
    conformance(
        producer.clone(),
        producer.clone(),
        Arc::new(InProcessBus::new(pipeline)),
    )
    .await;
    producer.close().await;
    events_store.close().await;
}

#[tokio::test]
async fn dead_letters_on_postgres_and_redis_streams() {
    let fixture = RedisFixture::new().await;
    dead_letter_conformance(fixture.producer.clone(), fixture.bus.clone()).await;
    fixture.finish().await;
}

#[tokio::test]
async fn dead_letters_on_sqlite_and_in_process_bus() {
    let folder = tempfile::tempdir().unwrap();
    let backend = Backend::Embedded {
        data_dir: folder.path().to_owned(),
    };
    let producer = producer_store(&backend).await;
    let (events_store, pipeline) = pipeline(&backend).await;
    dead_letter_conformance(producer.clone(), Arc::new(InProcessBus::new(pipeline))).await;
    producer.close().await;
    events_store.close().await;
}

/// Entries a consumer read and never acknowledged (its pod was killed, and its name is never
/// seen again) are taken over by a consumer under another name, and applied once.
#[tokio::test]
async fn a_dead_consumers_entries_are_claimed_by_another() {
    let fixture = RedisFixture::new().await;
    let producer = fixture.producer.clone();
    let redis = fixture.redis.clone();
    let bus = Arc::new((*fixture.bus).clone().with_consumer_name("pod-b"));
    let stream = bus.stream_key(credit_proto::service_names::INTAKE);
    let mut connection = redis.connection();
    let _: () =
        redis::AsyncCommands::xgroup_create_mkstream(&mut connection, &stream, "limits", "0")
            .await
            .unwrap();
    let wanted: Vec<String> = (0..5).map(|index| format!("evt-{index}")).collect();
    for event_id in &wanted {
        let event = registered(event_id, "c-1");
        bus.publish(&event, &prost::Message::encode_to_vec(&event))
            .await
            .unwrap();
    }
    // Pod A reads them all, then dies before acknowledging any.
    let read: redis::streams::StreamReadReply = redis::AsyncCommands::xread_options(
        &mut connection,
        &[&stream],
        &[">"],
        &redis::streams::StreamReadOptions::default()
            .group("limits", "pod-a")
            .count(100),
    )
    .await
    .unwrap();
    assert_eq!(read.keys[0].ids.len(), 5);

    let (stop_sender, stop) = watch::channel(false);
    let handler = RecordingHandler::new(producer.clone(), 0);
    let subscription = bus.subscribe(handler.clone(), stop.clone());
    let wanted_refs: Vec<&str> = wanted.iter().map(String::as_str).collect();
    wait_for(&handler, &wanted_refs).await;
    for event_id in &wanted {
        assert_eq!(
            handler.deliveries_of(event_id),
            1,
            "{event_id} applied once"
        );
    }
    let mut pending = usize::MAX;
    for _ in 0..100 {
        let reply: redis::streams::StreamPendingReply =
            redis::AsyncCommands::xpending(&mut connection, &stream, "limits")
                .await
                .unwrap();
        pending = reply.count();
        if pending == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert_eq!(pending, 0, "every claimed entry was acknowledged");
    stop_sender.send(true).unwrap();
    subscription.await.unwrap();
    fixture.finish().await;
}

/// Redis loses a stream with events no consumer had read yet (a restart without persistence,
/// a FLUSHALL): the relay notices the stream's generation is gone and publishes again, from
/// the outbox, everything from the point every consumer group had acknowledged. Nothing is
/// lost, and nothing is applied twice.
#[tokio::test]
async fn a_stream_redis_lost_is_published_again_from_the_outbox() {
    let fixture = RedisFixture::new().await;
    let producer = fixture.producer.clone();
    let bus = fixture.bus.clone();
    let relay = OutboxRelay::new("events_test", producer.clone(), bus.clone());
    let handler = RecordingHandler::new(producer.clone(), 0);

    // Three events published and applied; the relay records how far the group got.
    let (stop_sender, stop) = watch::channel(false);
    let subscription = bus.subscribe(handler.clone(), stop.clone());
    for event_id in ["evt-1", "evt-2", "evt-3"] {
        append(&producer, &registered(event_id, "c-1")).await;
    }
    relay.publish_pending().await.unwrap();
    wait_for(&handler, &["evt-1", "evt-2", "evt-3"]).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    relay.record_progress().await;
    stop_sender.send(true).unwrap();
    subscription.await.unwrap();

    // Three more published while the consumer is stopped; then Redis loses everything.
    for event_id in ["evt-4", "evt-5", "evt-6"] {
        append(&producer, &registered(event_id, "c-1")).await;
    }
    relay.publish_pending().await.unwrap();
    let mut connection = fixture.redis.connection();
    let keys: Vec<String> =
        redis::AsyncCommands::keys(&mut connection, format!("test:{}:*", fixture.database.name))
            .await
            .unwrap();
    assert!(!keys.is_empty());
    let _: () = redis::AsyncCommands::del(&mut connection, &keys)
        .await
        .unwrap();

    // The next relay round publishes the lost events again; the consumer applies each once.
    relay.publish_pending().await.unwrap();
    let (stop_sender, stop) = watch::channel(false);
    let subscription = bus.subscribe(handler.clone(), stop.clone());
    wait_for(
        &handler,
        &["evt-1", "evt-2", "evt-3", "evt-4", "evt-5", "evt-6"],
    )
    .await;
    for event_id in ["evt-4", "evt-5", "evt-6"] {
        assert_eq!(handler.deliveries_of(event_id), 1, "{event_id}");
    }
    // Nothing older than the acknowledged point was sent again.
    assert_eq!(handler.deliveries_of("evt-1"), 1);
    assert_eq!(handler.deliveries_of("evt-2"), 1);
    stop_sender.send(true).unwrap();
    subscription.await.unwrap();
    fixture.finish().await;
}
