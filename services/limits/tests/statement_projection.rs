//! The limits store's projection of intake's FinancialStatementSubmitted events
//! (`LimitStore::latest_statement`), on both backends: the embedded SQLite file and a
//! PostgreSQL database of the test's own. Events may arrive late and out of order; the
//! projection keeps the newest period, and of one period the newest version.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "tests"
)]

use credit_limits::store::{LimitStore, SqlLimitStore};
use credit_proto::v1 as pb;
use credit_proto::v1::event::Payload;
use credit_runtime::config::Backend;
use credit_runtime::events::new_event;
use credit_runtime::{Database, testing::TestDatabase};

/// One statement of a period: fiscal year and quarter (0 = annual), its version and end.
struct Period {
    fiscal_year: i32,
    fiscal_quarter: i32,
    version: i32,
    end: (i32, i32, i32),
}

fn cny(amount: &str) -> Option<pb::Money> {
    Some(pb::Money {
        amount: amount.into(),
        currency: "CNY".into(),
    })
}

fn submitted(customer_id: &str, statement_id: &str, period: &Period, equity: &str) -> pb::Event {
    let (year, month, day) = period.end;
    new_event(
        "intake",
        Payload::FinancialStatementSubmitted(pb::FinancialStatementSubmitted {
            customer_id: customer_id.into(),
            statement_id: statement_id.into(),
            version: period.version,
            fiscal_year: period.fiscal_year,
            fiscal_quarter: period.fiscal_quarter,
            period_end_date: Some(pb::Date { year, month, day }),
            altman_z_score: None,
            currency: "CNY".into(),
            equity: cny(equity),
            revenue: cny("1200000.00"),
            period_months: if period.fiscal_quarter == 0 { 12 } else { 3 },
        }),
    )
}

async fn apply(store: &SqlLimitStore, event: &pb::Event) {
    store.apply_customer_event("limits", event).await.unwrap();
}

async fn latest_id(store: &SqlLimitStore, customer_id: &str) -> Option<String> {
    store
        .latest_statement(customer_id)
        .await
        .unwrap()
        .map(|statement| statement.statement_id)
}

async fn keeps_the_newest_period_and_version(backend: &Backend) {
    let database = Database::open(backend, &credit_limits::STORE, 2, true)
        .await
        .unwrap();
    let store = SqlLimitStore::new(database.clone());
    let q3 = |version| Period {
        fiscal_year: 2026,
        fiscal_quarter: 3,
        version,
        end: (2026, 9, 30),
    };
    let q4 = |version| Period {
        fiscal_year: 2026,
        fiscal_quarter: 4,
        version,
        end: (2026, 12, 31),
    };
    let year = |fiscal_year, version| Period {
        fiscal_year,
        fiscal_quarter: 0,
        version,
        end: (fiscal_year, 12, 31),
    };
    assert_eq!(latest_id(&store, "cus_a").await, None);

    apply(&store, &submitted("cus_a", "fst_q3v1", &q3(1), "500000.00")).await;
    let first = store.latest_statement("cus_a").await.unwrap().unwrap();
    assert_eq!(first.period_months, 3);
    assert_eq!(first.equity.amount().to_string(), "500000.00");
    assert_eq!(first.revenue.currency().code(), "CNY");
    assert_eq!(first.period_end.to_string(), "2026-09-30");

    // An older period submitted later does not replace a newer one.
    apply(
        &store,
        &submitted("cus_a", "fst_fy25", &year(2025, 1), "1.00"),
    )
    .await;
    assert_eq!(
        latest_id(&store, "cus_a").await.as_deref(),
        Some("fst_q3v1")
    );

    // A new version of the same period replaces it; a late older version does not return.
    let second_version = submitted("cus_a", "fst_q3v2", &q3(2), "-250000.00");
    apply(&store, &second_version).await;
    apply(&store, &submitted("cus_a", "fst_q3v1", &q3(1), "500000.00")).await;
    let corrected = store.latest_statement("cus_a").await.unwrap().unwrap();
    assert_eq!(corrected.statement_id, "fst_q3v2");
    assert_eq!(corrected.equity.amount().to_string(), "-250000.00");

    // Ending on the same day, the whole year wins over its last quarter, in either order.
    apply(&store, &submitted("cus_a", "fst_q4v1", &q4(1), "1.00")).await;
    assert_eq!(
        latest_id(&store, "cus_a").await.as_deref(),
        Some("fst_q4v1")
    );
    apply(
        &store,
        &submitted("cus_a", "fst_fy26", &year(2026, 1), "1.00"),
    )
    .await;
    apply(&store, &submitted("cus_a", "fst_q4v2", &q4(2), "1.00")).await;
    assert_eq!(
        latest_id(&store, "cus_a").await.as_deref(),
        Some("fst_fy26")
    );

    // An event whose figures limits cannot read (published before intake sent them) is
    // recorded as processed, so neither it nor its redelivery fails or touches the row.
    let mut without_figures = submitted("cus_a", "fst_old", &year(2027, 1), "1.00");
    if let Some(Payload::FinancialStatementSubmitted(statement)) = &mut without_figures.payload {
        statement.currency.clear();
        statement.equity = None;
        statement.revenue = None;
        statement.period_months = 0;
    }
    apply(&store, &without_figures).await;
    apply(&store, &without_figures).await;
    assert_eq!(
        latest_id(&store, "cus_a").await.as_deref(),
        Some("fst_fy26")
    );

    // Each customer has its own latest statement.
    apply(&store, &submitted("cus_b", "fst_b", &year(2024, 1), "1.00")).await;
    assert_eq!(latest_id(&store, "cus_b").await.as_deref(), Some("fst_b"));
    assert_eq!(
        latest_id(&store, "cus_a").await.as_deref(),
        Some("fst_fy26")
    );
    database.close().await;
}

#[tokio::test]
async fn on_sqlite() {
    let data_dir = tempfile::tempdir().unwrap();
    keeps_the_newest_period_and_version(&Backend::Embedded {
        data_dir: data_dir.path().to_owned(),
    })
    .await;
}

#[tokio::test]
async fn on_postgres() {
    let database = TestDatabase::create().await;
    keeps_the_newest_period_and_version(&database.backend()).await;
    database.drop_database().await;
}
