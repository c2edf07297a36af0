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
    self, EventBus, EventError, EventHandler, InProcessBus, OutboxRelay, RedisStreamsBus,
};
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
};
const POSTGRES_OUTBOX: &str =
    include_str!("../../../services/limits/migrations/postgres/0001_outbox.sql");
const SQLITE_OUTBOX: &str =
    include_str!("../../../services/limits/migrations/sqlite/0001_outbox.sql");
const POSTGRES_OUTBOX_PACKED: &str =
    include_str!("../../../services/limits/migrations/postgres/0010_outbox_packed.sql");
const SQLITE_OUTBOX_PACKED: &str =
    include_str!("../../../services/limits/migrations/sqlite/0010_outbox_packed.sql");

fn registered(event_id: &str, customer_id: &str) -> Event {
    Event {
        event_id: event_id.to_owned(),
        producer: "credit.v1.IntakeService".to_owned(),
        customer_id: customer_id.to_owned(),
        payload: Some(Payload::CustomerRegistered(CustomerRegistered::default())),
        ..Default::default()
    }
}

/// Applies events into the consumer's own store, once per event id, and can be told to fail
/// the next N deliveries (a consumer whose database hiccups).
#[derive(Debug)]
struct RecordingHandler {
    database: Database,
    applied: Mutex<Vec<String>>,
    deliveries: Mutex<HashMap<String, usize>>,
    failures_left: Mutex<usize>,
}

impl RecordingHandler {
    fn new(database: Database, failures: usize) -> Arc<Self> {
        Arc::new(Self {
            database,
            applied: Mutex::new(Vec::new()),
            deliveries: Mutex::new(HashMap::new()),
            failures_left: Mutex::new(failures),
        })
    }

    fn applied(&self) -> Vec<String> {
        self.applied.lock().unwrap().clone()
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

async fn wait_for(handler: &RecordingHandler, wanted: &[&str]) {
    for _ in 0..200 {
        if handler.applied() == wanted {
            return;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("applied {:?}, wanted {wanted:?}", handler.applied());
}

async fn conformance(producer: Database, consumer: Database, bus: Arc<dyn EventBus>) {
    let (stop_sender, stop) = watch::channel(false);
    // The consumer fails its first delivery: the event must come again, and be applied once.
    let handler = RecordingHandler::new(consumer, 1);
    let subscription = bus.subscribe(handler.clone(), stop.clone());
    let relay = OutboxRelay::new(producer.clone(), bus.clone());

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

#[tokio::test]
async fn events_conformance_on_postgres_and_redis_streams() {
    let database = TestDatabase::create().await;
    let backend = database.backend();
    let producer = Database::open(&backend, &EVENTS_TEST_STORE, 2, true)
        .await
        .unwrap();
    let Database::Postgres(pool) = &producer else {
        unreachable!()
    };
    sqlx::raw_sql(POSTGRES_OUTBOX).execute(pool).await.unwrap();
    sqlx::raw_sql(POSTGRES_OUTBOX_PACKED)
        .execute(pool)
        .await
        .unwrap();
    let redis = database.redis().await;
    let bus = Arc::new(RedisStreamsBus::new(redis.clone()));

    conformance(producer.clone(), producer.clone(), bus.clone()).await;

    // Nothing is left pending in the consumer group.
    let mut connection = redis.connection();
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
    for producer in credit_runtime::events::ALL_PRODUCERS {
        let _: () = redis::AsyncCommands::del(&mut connection, bus.stream_key(producer))
            .await
            .unwrap();
    }
    producer.close().await;
    database.drop_database().await;
}

#[tokio::test]
async fn events_conformance_on_sqlite_and_in_process_bus() {
    let folder = tempfile::tempdir().unwrap();
    let backend = Backend::Embedded {
        data_dir: folder.path().to_owned(),
    };
    let producer = Database::open(&backend, &EVENTS_TEST_STORE, 2, true)
        .await
        .unwrap();
    let Database::Sqlite(pool) = &producer else {
        unreachable!()
    };
    sqlx::raw_sql(SQLITE_OUTBOX).execute(pool).await.unwrap();
    sqlx::raw_sql(SQLITE_OUTBOX_PACKED)
        .execute(pool)
        .await
        .unwrap();
    conformance(
        producer.clone(),
        producer.clone(),
        Arc::new(InProcessBus::default()),
    )
    .await;
    producer.close().await;
}
