//! The baseline: exposure kept in one PostgreSQL row per customer and updated under
//! `SELECT … FOR UPDATE`, with the same rules as Authorize (status ACTIVE, exposure + amount
//! within the limit → approve; within a 10 % band over it → refer; beyond → decline), and the
//! same durable writes (the decision with its idempotency key, the hold when approved).
//!
//! Deliberately a fair baseline, not a straw man: the writes after the lock are one statement,
//! so the row lock is held for three round trips (lock, write, commit) and one WAL flush.

use anyhow::{Context, Result};
use sqlx::PgPool;
use sqlx::postgres::PgPoolOptions;

use crate::load::{Outcome, Target};

/// How far over the limit an order is referred rather than declined (1000 = 10 %), as the
/// suite's default policy.
const TOLERANCE_BPS: i64 = 1_000;

pub async fn connect(database_url: &str, connections: u32) -> Result<PgPool> {
    PgPoolOptions::new()
        .max_connections(connections)
        .min_connections(connections)
        .connect(database_url)
        .await
        .context("connecting the baseline pool")
}

pub async fn create_schema(pool: &PgPool) -> Result<()> {
    for statement in [
        "CREATE TABLE IF NOT EXISTS bench_exposure (
            customer_id TEXT PRIMARY KEY,
            limit_minor BIGINT NOT NULL,
            exposure_minor BIGINT NOT NULL,
            status TEXT NOT NULL)",
        "CREATE TABLE IF NOT EXISTS bench_holds (
            id UUID PRIMARY KEY,
            customer_id TEXT NOT NULL REFERENCES bench_exposure (customer_id),
            amount_minor BIGINT NOT NULL,
            created_at TIMESTAMPTZ NOT NULL DEFAULT now())",
        "CREATE TABLE IF NOT EXISTS bench_decisions (
            customer_id TEXT NOT NULL,
            idempotency_key TEXT NOT NULL,
            decision TEXT NOT NULL,
            amount_minor BIGINT NOT NULL,
            hold_id UUID,
            created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
            PRIMARY KEY (customer_id, idempotency_key))",
    ] {
        sqlx::query(statement)
            .execute(pool)
            .await
            .context("creating the baseline tables")?;
    }
    Ok(())
}

pub async fn add_customer(pool: &PgPool, customer_id: &str, limit_minor: i64) -> Result<()> {
    sqlx::query(
        "INSERT INTO bench_exposure (customer_id, limit_minor, exposure_minor, status) \
         VALUES ($1, $2, 0, 'ACTIVE')",
    )
    .bind(customer_id)
    .bind(limit_minor)
    .execute(pool)
    .await
    .context("adding a baseline customer")?;
    Ok(())
}

/// What the baseline's ledger says of a customer afterwards.
#[derive(Debug)]
pub struct Position {
    pub limit_minor: i64,
    pub exposure_minor: i64,
    pub holds_minor: i64,
}

pub async fn position(pool: &PgPool, customer_id: &str) -> Result<Position> {
    let (limit_minor, exposure_minor, holds_minor): (i64, i64, i64) = sqlx::query_as(
        "SELECT e.limit_minor, e.exposure_minor, \
                COALESCE((SELECT SUM(h.amount_minor) FROM bench_holds h \
                          WHERE h.customer_id = e.customer_id), 0)::BIGINT \
         FROM bench_exposure e WHERE e.customer_id = $1",
    )
    .bind(customer_id)
    .fetch_one(pool)
    .await
    .context("reading the baseline position")?;
    Ok(Position {
        limit_minor,
        exposure_minor,
        holds_minor,
    })
}

/// Authorize, the baseline way.
#[derive(Debug, Clone)]
pub struct Baseline {
    pub pool: PgPool,
    pub customer_id: String,
    /// Tells runs apart in the idempotency keys.
    pub run: String,
}

impl Target for Baseline {
    async fn call(&mut self, index: u64) -> Result<Outcome> {
        let amount_minor = crate::amount_minor(index);
        let key = format!("{}-{index}", self.run);
        let mut transaction = self.pool.begin().await.context("begin")?;
        let (status, limit_minor, exposure_minor): (String, i64, i64) = sqlx::query_as(
            "SELECT status, limit_minor, exposure_minor FROM bench_exposure \
             WHERE customer_id = $1 FOR UPDATE",
        )
        .bind(&self.customer_id)
        .fetch_one(&mut *transaction)
        .await
        .context("select for update")?;
        let after = exposure_minor + amount_minor;
        let outcome = if status != "ACTIVE" {
            Outcome::Declined
        } else if after <= limit_minor {
            Outcome::Approved { amount_minor }
        } else if after <= limit_minor + limit_minor * TOLERANCE_BPS / 10_000 {
            Outcome::Referred
        } else {
            Outcome::Declined
        };
        match outcome {
            Outcome::Approved { .. } => {
                sqlx::query(
                    "WITH reserved AS ( \
                         UPDATE bench_exposure SET exposure_minor = exposure_minor + $3 \
                         WHERE customer_id = $1), \
                     hold AS ( \
                         INSERT INTO bench_holds (id, customer_id, amount_minor) \
                         VALUES ($4, $1, $3)) \
                     INSERT INTO bench_decisions (customer_id, idempotency_key, decision, amount_minor, hold_id) \
                     VALUES ($1, $2, 'APPROVED', $3, $4)",
                )
                .bind(&self.customer_id)
                .bind(&key)
                .bind(amount_minor)
                .bind(uuid::Uuid::now_v7())
                .execute(&mut *transaction)
                .await
                .context("approve")?;
            }
            Outcome::Referred | Outcome::Declined => {
                let decision = if outcome == Outcome::Referred {
                    "REFERRED"
                } else {
                    "DECLINED"
                };
                sqlx::query(
                    "INSERT INTO bench_decisions (customer_id, idempotency_key, decision, amount_minor) \
                     VALUES ($1, $2, $3, $4)",
                )
                .bind(&self.customer_id)
                .bind(&key)
                .bind(decision)
                .bind(amount_minor)
                .execute(&mut *transaction)
                .await
                .context("record decision")?;
            }
        }
        transaction.commit().await.context("commit")?;
        Ok(outcome)
    }
}
