//! The faults suite: each scenario breaks something while orders, invoices and payments flow —
//! the suite killed with SIGKILL, Redis flushed and restarted, PostgreSQL crashed, a consumer
//! killed with entries pending, two replicas at once, poison events — and ends with the
//! bank-style check of [`world::bank_check`]: every approval a caller saw is durable, no
//! customer's exposure is beyond its limit, every posted invoice and payment reached limits'
//! exposure once, and the cached exposure equals the ledger.
//!
//! The suite runs as the real `credit-suite` binary (build it first: `cargo build -p
//! credit-suite`; `scripts/test.sh` builds everything). Servers a scenario kills or restarts
//! are its own (a redis-server on a port of its own, a PostgreSQL cluster in a temporary
//! folder), so other tests never notice. Scenarios run one at a time.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "tests: a failure is a failed test"
)]

mod harness;
mod world;

use std::str::FromStr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use credit_proto::v1 as pb;
use credit_runtime::testing::TestDatabase;
use prost::Message;
use rust_decimal::Decimal;
use tonic::Code;
use tonic_types::StatusExt;

use harness::{ONE_AT_A_TIME, OwnPostgres, OwnRedis, Storage, SuiteProcess, run_command};
use world::{
    Endpoints, Seen, Tokens, bank_check, billing_load, cny, collections, decimal, limits,
    order_load, prepare_customers, stop_load,
};

/// Concurrent order-entry callers, as the issue asks.
const CALLERS: usize = 32;
const CUSTOMERS: u64 = 6;

fn key_prefix() -> String {
    format!("faults:{}:", uuid::Uuid::new_v4().simple())
}

fn shared_redis_url() -> String {
    credit_runtime::testing::redis_url()
}

/// Orders from [`CALLERS`] callers spread over `channels`, with billing through the first.
struct Load {
    seen: Arc<Mutex<Seen>>,
    stop: tokio::sync::watch::Sender<bool>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Load {
    fn start(
        channels: Vec<tonic::transport::Channel>,
        tokens: &Tokens,
        customers: &[String],
    ) -> Self {
        let seen = Arc::new(Mutex::new(Seen::default()));
        let (stop, stopped) = tokio::sync::watch::channel(false);
        let mut tasks = order_load(
            channels.clone(),
            tokens,
            customers.to_vec(),
            CALLERS,
            seen.clone(),
            stopped.clone(),
        );
        tasks.push(billing_load(
            channels[0].clone(),
            tokens,
            seen.clone(),
            stopped,
        ));
        Self { seen, stop, tasks }
    }

    fn approvals(&self) -> usize {
        self.seen.lock().unwrap().approvals()
    }

    async fn finish(self) -> Seen {
        stop_load(self.stop, self.tasks).await;
        Arc::try_unwrap(self.seen)
            .map(|seen| seen.into_inner().unwrap())
            .unwrap_or_else(|_| panic!("a load task outlived the load"))
    }
}

async fn settle(duration_ms: u64) {
    tokio::time::sleep(Duration::from_millis(duration_ms)).await;
}

/// kill -9 of the suite under 32 concurrent Authorize callers (invoices and payments
/// flowing too), then a restart on the same stores.
async fn killed_under_load(storage: Storage) {
    let mut suite = SuiteProcess::start(&storage, "pod-a", "all").await;
    let tokens = Tokens::issue(&storage);
    let endpoints = Endpoints::one(&suite.channel);
    let customers = prepare_customers(&endpoints, &tokens, "kill", CUSTOMERS).await;
    let load = Load::start(vec![suite.channel.clone()], &tokens, &customers);
    settle(2_500).await;
    assert!(load.approvals() > 0, "orders were approved before the kill");
    suite.kill9();
    settle(500).await;
    suite.restart().await;
    settle(2_500).await;
    let seen = load.finish().await;
    assert!(
        seen.approvals() > 0 && seen.failures.values().sum::<u64>() > 0,
        "the load saw both approvals and the outage: {seen:?}"
    );
    bank_check(&endpoints, &tokens, &customers, &seen).await;
}

#[tokio::test]
async fn suite_killed_under_load_restarts_on_the_same_postgres_and_redis() {
    let _serial = ONE_AT_A_TIME.lock().await;
    let database = TestDatabase::create().await;
    killed_under_load(Storage::Production {
        database_url: database.url.clone(),
        redis_url: shared_redis_url(),
        key_prefix: key_prefix(),
    })
    .await;
    database.drop_database().await;
}

#[tokio::test]
async fn suite_killed_under_load_restarts_on_the_same_embedded_files() {
    let _serial = ONE_AT_A_TIME.lock().await;
    let folder = tempfile::tempdir().unwrap();
    killed_under_load(Storage::Embedded {
        data_dir: folder.path().to_owned(),
    })
    .await;
}

/// Redis flushed mid-load, then killed and started again empty: orders are refused
/// (UNAVAILABLE) while it is down, never approved wrongly; exposure is rebuilt from the
/// ledger and the events Redis lost are published again from the outboxes.
#[tokio::test]
async fn redis_flushed_and_restarted_mid_load() {
    let _serial = ONE_AT_A_TIME.lock().await;
    let database = TestDatabase::create().await;
    let mut redis = OwnRedis::start().await;
    let storage = Storage::Production {
        database_url: database.url.clone(),
        redis_url: redis.url(),
        key_prefix: key_prefix(),
    };
    let suite = SuiteProcess::start(&storage, "pod-a", "all").await;
    let tokens = Tokens::issue(&storage);
    let endpoints = Endpoints::one(&suite.channel);
    let customers = prepare_customers(&endpoints, &tokens, "redis", CUSTOMERS).await;
    let load = Load::start(vec![suite.channel.clone()], &tokens, &customers);
    settle(2_000).await;
    redis.flushall().await;
    settle(2_000).await;
    redis.kill();
    settle(1_500).await;
    redis.start_server().await;
    suite.wait_serving().await;
    settle(3_000).await;
    let seen = load.finish().await;
    assert!(
        seen.failures.contains_key("Unavailable"),
        "orders were refused while Redis was down: {seen:?}"
    );
    bank_check(&endpoints, &tokens, &customers, &seen).await;
    drop(suite);
    database.drop_database().await;
}

/// PostgreSQL crashes mid-load and comes back: while it is down every order is refused with
/// UNAVAILABLE — none approved, since an approval must be durable before it is answered.
#[tokio::test]
async fn postgres_crashed_mid_load_answers_unavailable_never_a_wrong_approval() {
    let _serial = ONE_AT_A_TIME.lock().await;
    let postgres = OwnPostgres::start();
    let storage = Storage::Production {
        database_url: postgres.admin_url(),
        redis_url: shared_redis_url(),
        key_prefix: key_prefix(),
    };
    let suite = SuiteProcess::start(&storage, "pod-a", "all").await;
    let tokens = Tokens::issue(&storage);
    let endpoints = Endpoints::one(&suite.channel);
    let customers = prepare_customers(&endpoints, &tokens, "postgres", CUSTOMERS).await;
    let load = Load::start(vec![suite.channel.clone()], &tokens, &customers);
    settle(2_000).await;
    postgres.crash();
    // Calls already past their durable write may still be answered: wait them out.
    settle(1_000).await;
    let approvals_before = load.approvals();
    settle(2_000).await;
    let approvals_during = load.approvals() - approvals_before;
    postgres.start_server();
    suite.wait_serving().await;
    settle(3_000).await;
    let seen = load.finish().await;
    assert_eq!(
        approvals_during, 0,
        "no order is approved while PostgreSQL is down"
    );
    assert!(
        seen.failures.contains_key("Unavailable"),
        "orders were refused with UNAVAILABLE while PostgreSQL was down: {seen:?}"
    );
    bank_check(&endpoints, &tokens, &customers, &seen).await;
    drop(suite);
}

/// Limits runs in a process of its own; it is killed (SIGKILL) while applying a burst of
/// invoices, and a replacement starts under a new name (a rolled pod): it takes over the
/// entries the dead one had read but not acknowledged, and every invoice counts exactly once.
#[tokio::test]
async fn a_killed_consumers_pending_entries_are_taken_over_and_applied_once() {
    let _serial = ONE_AT_A_TIME.lock().await;
    let database = TestDatabase::create().await;
    let storage = Storage::Production {
        database_url: database.url.clone(),
        redis_url: shared_redis_url(),
        key_prefix: key_prefix(),
    };
    let front = SuiteProcess::start(&storage, "pod-front", "intake,rating,collections").await;
    let mut limits_pod = SuiteProcess::start(&storage, "pod-limits-1", "limits").await;
    let tokens = Tokens::issue(&storage);
    let endpoints = Endpoints {
        front: front.channel.clone(),
        limits: limits_pod.channel.clone(),
    };
    let customers = prepare_customers(&endpoints, &tokens, "consumer", 2).await;

    // A burst of small invoices (no holds) from 8 callers; the limits pod dies in the middle.
    let burst: Vec<_> = (0..8)
        .map(|caller| {
            let mut client = collections(&front.channel, &tokens.clerk);
            let customers = customers.clone();
            tokio::spawn(async move {
                for number in 0..40 {
                    client
                        .post_invoice(pb::PostInvoiceRequest {
                            customer_id: customers[number % customers.len()].clone(),
                            invoice_number: format!("BURST-{caller}-{number}"),
                            amount: cny(Decimal::from(100 + number)),
                            issue_date: Some(pb::Date {
                                year: 2026,
                                month: 12,
                                day: 1,
                            }),
                            due: Some(pb::post_invoice_request::Due::DueDate(pb::Date {
                                year: 2027,
                                month: 1,
                                day: 30,
                            })),
                            ..Default::default()
                        })
                        .await
                        .unwrap();
                }
            })
        })
        .collect();
    settle(700).await;
    limits_pod.kill9();
    for task in burst {
        task.await.unwrap();
    }
    let replacement = SuiteProcess::start(&storage, "pod-limits-2", "limits").await;
    let endpoints = Endpoints {
        front: front.channel.clone(),
        limits: replacement.channel.clone(),
    };
    bank_check(&endpoints, &tokens, &customers, &Seen::default()).await;

    // Nothing is left pending in the consumer group on collections' stream.
    let Storage::Production {
        redis_url,
        key_prefix,
        ..
    } = &storage
    else {
        unreachable!()
    };
    let client = redis::Client::open(redis_url.as_str()).unwrap();
    let mut connection = client.get_multiplexed_async_connection().await.unwrap();
    let stream = format!(
        "{key_prefix}events:{}",
        credit_proto::service_names::COLLECTIONS
    );
    let mut pending = usize::MAX;
    for _ in 0..100 {
        let reply: redis::streams::StreamPendingReply =
            redis::AsyncCommands::xpending(&mut connection, &stream, "limits-receivables")
                .await
                .unwrap();
        pending = reply.count();
        if pending == 0 {
            break;
        }
        settle(100).await;
    }
    assert_eq!(pending, 0, "the dead pod's entries were all taken over");
    drop((front, replacement));
    database.drop_database().await;
}

/// Two replicas of the whole suite on one PostgreSQL and one Redis, orders through both.
#[tokio::test]
async fn two_replicas_on_one_postgres_and_redis() {
    let _serial = ONE_AT_A_TIME.lock().await;
    let database = TestDatabase::create().await;
    let storage = Storage::Production {
        database_url: database.url.clone(),
        redis_url: shared_redis_url(),
        key_prefix: key_prefix(),
    };
    let first = SuiteProcess::start(&storage, "pod-a", "all").await;
    let second = SuiteProcess::start(&storage, "pod-b", "all").await;
    let tokens = Tokens::issue(&storage);
    let endpoints = Endpoints::one(&first.channel);
    let customers = prepare_customers(&endpoints, &tokens, "replicas", CUSTOMERS).await;
    let load = Load::start(
        vec![first.channel.clone(), second.channel.clone()],
        &tokens,
        &customers,
    );
    settle(4_000).await;
    let seen = load.finish().await;
    assert!(seen.approvals() > 0);
    bank_check(&endpoints, &tokens, &customers, &seen).await;
    bank_check(&Endpoints::one(&second.channel), &tokens, &customers, &seen).await;
    drop((first, second));
    database.drop_database().await;
}

/// An InvoicePosted for `customer_id` far beyond the amount bound: collections would refuse
/// it at posting, so only a bug or a hand-written entry can carry it.
fn poison_invoice(customer_id: &str) -> pb::Event {
    pb::Event {
        event_id: uuid::Uuid::now_v7().to_string(),
        producer: credit_proto::service_names::COLLECTIONS.into(),
        customer_id: customer_id.into(),
        payload: Some(pb::event::Payload::InvoicePosted(pb::InvoicePosted {
            invoice_id: "inv-poison".into(),
            customer_id: customer_id.into(),
            amount: cny(Decimal::from_str("100000000000000000.00").unwrap()),
            open_amount: cny(Decimal::from_str("100000000000000000.00").unwrap()),
            ..Default::default()
        })),
        ..Default::default()
    }
}

/// Poison events (undecodable bytes, an amount far beyond the bound) are set aside as dead
/// letters and never hold up the normal invoices behind them; an invoice beyond the amount
/// bound is refused at posting.
async fn poison_then_normal(storage: Storage, write_poison: impl AsyncFnOnce(&str)) {
    let suite = SuiteProcess::start(&storage, "pod-a", "all").await;
    let tokens = Tokens::issue(&storage);
    let endpoints = Endpoints::one(&suite.channel);
    let customers = prepare_customers(&endpoints, &tokens, "poison", 1).await;
    let customer_id = &customers[0];

    write_poison(customer_id).await;
    let mut billing = collections(&suite.channel, &tokens.clerk);
    for number in 0..3 {
        billing
            .post_invoice(pb::PostInvoiceRequest {
                customer_id: customer_id.clone(),
                invoice_number: format!("NORMAL-{number}"),
                amount: cny(Decimal::from(1_000)),
                issue_date: Some(pb::Date {
                    year: 2026,
                    month: 12,
                    day: 1,
                }),
                due: Some(pb::post_invoice_request::Due::DueDate(pb::Date {
                    year: 2027,
                    month: 1,
                    day: 30,
                })),
                ..Default::default()
            })
            .await
            .unwrap();
    }
    // The normal invoices reach limits within seconds.
    let mut reader = limits(&suite.channel, &tokens.admin);
    let mut receivables = Decimal::ZERO;
    for _ in 0..100 {
        receivables = decimal(
            reader
                .get_exposure(pb::GetExposureRequest {
                    scope: Some(pb::LimitScope {
                        scope: Some(pb::limit_scope::Scope::CustomerId(customer_id.clone())),
                    }),
                })
                .await
                .unwrap()
                .into_inner()
                .exposure
                .unwrap()
                .open_receivables
                .as_ref(),
        );
        if receivables == Decimal::from(3_000) {
            break;
        }
        settle(100).await;
    }
    assert_eq!(
        receivables,
        Decimal::from(3_000),
        "the normal invoices reached limits"
    );

    // The poison ones wait as dead letters, as an operator sees them.
    let listed = run_command(
        &storage,
        &[
            "events",
            "list-dead",
            "--addr",
            &format!("http://{}", suite.addr),
        ],
        &[("CREDIT_TOKEN", tokens.admin.clone())],
    );
    let listing = String::from_utf8_lossy(&listed.stdout);
    assert!(listed.status.success(), "{listing}");
    assert!(listing.contains("2 open dead letters"), "{listing}");
    assert!(listing.contains("InvoicePosted"), "{listing}");

    // An invoice beyond the bound is refused at posting, naming the field.
    let refused = billing
        .post_invoice(pb::PostInvoiceRequest {
            customer_id: customer_id.clone(),
            invoice_number: "HUGE-1".into(),
            amount: cny(Decimal::from_str("100000000000000000.00").unwrap()),
            issue_date: Some(pb::Date {
                year: 2026,
                month: 12,
                day: 1,
            }),
            due: Some(pb::post_invoice_request::Due::DueDate(pb::Date {
                year: 2027,
                month: 1,
                day: 30,
            })),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::InvalidArgument, "{refused:?}");
    let fields: Vec<String> = refused
        .get_error_details()
        .bad_request()
        .map(|bad| {
            bad.field_violations
                .iter()
                .map(|v| v.field.clone())
                .collect()
        })
        .unwrap_or_default();
    assert!(
        fields.iter().any(|field| field.contains("amount")),
        "{fields:?}"
    );
    bank_check(&endpoints, &tokens, &customers, &Seen::default()).await;
    drop(suite);
}

#[tokio::test]
async fn poison_events_on_redis_streams_never_block_the_ones_behind() {
    let _serial = ONE_AT_A_TIME.lock().await;
    let database = TestDatabase::create().await;
    let prefix = key_prefix();
    let storage = Storage::Production {
        database_url: database.url.clone(),
        redis_url: shared_redis_url(),
        key_prefix: prefix.clone(),
    };
    poison_then_normal(storage, async |customer_id: &str| {
        let client = redis::Client::open(shared_redis_url()).unwrap();
        let mut connection = client.get_multiplexed_async_connection().await.unwrap();
        let stream = format!(
            "{prefix}events:{}",
            credit_proto::service_names::COLLECTIONS
        );
        let poison = poison_invoice(customer_id);
        for (event_id, payload) in [
            ("garbage".to_owned(), vec![0xff, 0xff, 0xff, 0x01]),
            (poison.event_id.clone(), poison.encode_to_vec()),
        ] {
            let _: String = redis::cmd("XADD")
                .arg(&stream)
                .arg("*")
                .arg("event_id")
                .arg(event_id)
                .arg("type")
                .arg("InvoicePosted")
                .arg("payload")
                .arg(payload)
                .query_async(&mut connection)
                .await
                .unwrap();
        }
    })
    .await;
    database.drop_database().await;
}

#[tokio::test]
async fn poison_events_in_the_embedded_outbox_never_block_the_ones_behind() {
    let _serial = ONE_AT_A_TIME.lock().await;
    let folder = tempfile::tempdir().unwrap();
    let data_dir = folder.path().to_owned();
    let outbox = data_dir.join("collections.db");
    poison_then_normal(
        Storage::Embedded { data_dir },
        async |customer_id: &str| {
            use sqlx::Connection;
            let mut connection =
                sqlx::SqliteConnection::connect(&format!("sqlite://{}", outbox.display()))
                    .await
                    .unwrap();
            let poison = poison_invoice(customer_id);
            for (event_id, payload) in [
                ("garbage".to_owned(), vec![0xff, 0xff, 0xff, 0x01]),
                (poison.event_id.clone(), poison.encode_to_vec()),
            ] {
                sqlx::query(
                    "INSERT INTO outbox (event_id, event_type, payload) VALUES (?1, 'InvoicePosted', ?2)",
                )
                .bind(event_id)
                .bind(payload)
                .execute(&mut connection)
                .await
                .unwrap();
            }
        },
    )
    .await;
}
