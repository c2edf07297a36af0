//! The store kit every service's persistence is built from: the outcome of an idempotent
//! change, the errors a store reports and their one mapping to what a caller sees, the
//! migrations every service's schema shares, and the sweeper that ages idempotency keys out.
//!
//! Each service keeps its own trait and SQL; what is the same in all of them lives here once.

use std::borrow::Cow;
use std::time::Duration;

use chrono::{DateTime, Utc};
use credit_core::ServiceError;
use serde::de::DeserializeOwned;
use sqlx::migrate::{Migration, MigrationType, Migrator};
use sqlx::types::Json;

use crate::Database;
use crate::sql::{KeyReused, MaybeRace, is_unique_violation, storage_error};

/// A change's outcome: done now, or done by an earlier call with the same key (a retry gets
/// the first answer, and nothing is written twice).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome<T> {
    New(T),
    Replayed(T),
}

impl<T> Outcome<T> {
    pub fn into_inner(self) -> T {
        match self {
            Outcome::New(value) | Outcome::Replayed(value) => value,
        }
    }

    pub fn is_replay(&self) -> bool {
        matches!(self, Outcome::Replayed(_))
    }
}

/// `SELECT document ...`: a record kept whole as one JSON column named `document`, the way
/// every service keeps most of its records (other columns exist to filter and order by).
#[derive(Debug, sqlx::FromRow)]
pub struct DocumentRow<T: DeserializeOwned> {
    document: Json<T>,
}

impl<T: DeserializeOwned> DocumentRow<T> {
    pub fn into_record(self) -> T {
        self.document.0
    }
}

/// What a store can fail with. The variants a caller can act on carry what to tell it; the
/// rest are a dependency down (`Database`) or a bug (`Corrupt`).
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The idempotency key (a request_id, or a document number) came before with other content.
    #[error(transparent)]
    KeyReused(#[from] KeyReused),
    /// The record changed since it was read (optimistic concurrency lost).
    #[error("the record changed since it was read")]
    VersionConflict,
    #[error("{0} not found")]
    NotFound(&'static str),
    /// The page token's key is not one this list makes.
    #[error("the page token does not belong to this list")]
    InvalidPageToken,
    /// A rule checked inside the transaction refused the change, against the rows as they are
    /// (a duplicate registration, a portfolio cap, a request decided meanwhile): the answer to
    /// give the caller.
    #[error("the change was refused: {0}")]
    Refused(Box<ServiceError>),
    #[error("a stored record is unreadable: {0}")]
    Corrupt(String),
    #[error(transparent)]
    Database(#[from] sqlx::Error),
}

impl StoreError {
    pub fn refused(answer: ServiceError) -> Self {
        Self::Refused(Box::new(answer))
    }
}

pub type StoreResult<T> = Result<T, StoreError>;

impl MaybeRace for StoreError {
    fn is_race(&self) -> bool {
        matches!(self, StoreError::Database(error) if is_unique_violation(error))
    }
}

/// How every service's callers see a store failure.
impl From<StoreError> for ServiceError {
    fn from(error: StoreError) -> Self {
        match error {
            StoreError::KeyReused(_) => ServiceError::AlreadyExists {
                reason: "IDEMPOTENCY_KEY_REUSED",
                message: "this request_id (or document number) was used before with different \
                          content"
                    .to_owned(),
                metadata: Vec::new(),
            },
            StoreError::VersionConflict => ServiceError::Aborted {
                reason: "CONCURRENT_CHANGE",
                message: "the record changed while this call ran; read it again and retry"
                    .to_owned(),
            },
            StoreError::NotFound(resource) => ServiceError::not_found(resource, ""),
            StoreError::InvalidPageToken => {
                ServiceError::invalid("page_token", "is not a token this service issued")
            }
            StoreError::Refused(answer) => *answer,
            StoreError::Database(error) => storage_error(error),
            corrupt @ StoreError::Corrupt(_) => ServiceError::internal(corrupt),
        }
    }
}

/// A migration every service's schema has, written once per backend. A service places each at
/// a version of its own history (where it first had it), so schemas migrated before the kit
/// existed keep their recorded versions and checksums.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CommonMigration {
    /// The transactional outbox and the processed-events table of consumers.
    Outbox,
    /// Outbox rows that pack several events of one commit.
    OutboxPacked,
    /// Idempotency keys scoped per caller, with an index to sweep them by age.
    IdempotencyKeysPerCaller,
    /// The audit trail chained by hash (see [`crate::audit`]).
    AuditChain,
}

impl CommonMigration {
    fn description(self) -> &'static str {
        match self {
            CommonMigration::Outbox => "outbox",
            CommonMigration::OutboxPacked => "outbox packed",
            CommonMigration::IdempotencyKeysPerCaller => "idempotency keys per caller",
            CommonMigration::AuditChain => "audit chain",
        }
    }

    fn sql(self, engine: Engine) -> &'static str {
        match (self, engine) {
            (CommonMigration::Outbox, Engine::Postgres) => {
                include_str!("../migrations/common/postgres/outbox.sql")
            }
            (CommonMigration::Outbox, Engine::Sqlite) => {
                include_str!("../migrations/common/sqlite/outbox.sql")
            }
            (CommonMigration::OutboxPacked, Engine::Postgres) => {
                include_str!("../migrations/common/postgres/outbox_packed.sql")
            }
            (CommonMigration::OutboxPacked, Engine::Sqlite) => {
                include_str!("../migrations/common/sqlite/outbox_packed.sql")
            }
            (CommonMigration::IdempotencyKeysPerCaller, Engine::Postgres) => {
                include_str!("../migrations/common/postgres/idempotency_keys_per_caller.sql")
            }
            (CommonMigration::IdempotencyKeysPerCaller, Engine::Sqlite) => {
                include_str!("../migrations/common/sqlite/idempotency_keys_per_caller.sql")
            }
            (CommonMigration::AuditChain, Engine::Postgres) => {
                include_str!("../migrations/common/postgres/audit_chain.sql")
            }
            (CommonMigration::AuditChain, Engine::Sqlite) => {
                include_str!("../migrations/common/sqlite/audit_chain.sql")
            }
        }
    }
}

/// A service's store: schema `$name` on PostgreSQL and `$name.db` on SQLite, migrated by the
/// crate's own `migrations/postgres` and `migrations/sqlite` folders plus the store kit's
/// migrations at the versions this service first had them.
///
/// ```text
/// pub static STORE: StoreSpec = credit_runtime::service_store!("intake", outbox: 1, outbox_packed: 4, keys_per_caller: 5, audit_chain: 6);
/// ```
#[macro_export]
macro_rules! service_store {
    ($name:literal, outbox: $outbox:literal, outbox_packed: $packed:literal, keys_per_caller: $keys:literal, audit_chain: $audit:literal) => {
        $crate::storage::StoreSpec {
            name: $name,
            postgres_migrations: {
                static MIGRATIONS: ::sqlx::migrate::Migrator =
                    ::sqlx::migrate!("migrations/postgres");
                &MIGRATIONS
            },
            sqlite_migrations: {
                static MIGRATIONS: ::sqlx::migrate::Migrator =
                    ::sqlx::migrate!("migrations/sqlite");
                &MIGRATIONS
            },
            common_migrations: &[
                ($outbox, $crate::store::CommonMigration::Outbox),
                ($packed, $crate::store::CommonMigration::OutboxPacked),
                (
                    $keys,
                    $crate::store::CommonMigration::IdempotencyKeysPerCaller,
                ),
                ($audit, $crate::store::CommonMigration::AuditChain),
            ],
        }
    };
}

/// Which SQL dialect a migration is written for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Engine {
    Postgres,
    Sqlite,
}

/// A service's own migrations with the common ones placed at their versions, in order: what
/// `Database::migrate` runs (public for tests that build an older schema on purpose).
pub fn compose(own: &Migrator, common: &[(i64, CommonMigration)], engine: Engine) -> Migrator {
    let mut migrations: Vec<Migration> = own.iter().cloned().collect();
    migrations.extend(common.iter().map(|&(version, migration)| {
        Migration::new(
            version,
            Cow::Borrowed(migration.description()),
            MigrationType::Simple,
            Cow::Borrowed(migration.sql(engine)),
            false,
        )
    }));
    migrations.sort_by_key(|migration| migration.version);
    Migrator {
        migrations: Cow::Owned(migrations),
        ..Migrator::DEFAULT
    }
}

/// Deletes the idempotency keys of `database` made before `before`, a batch at a time so a
/// large backlog never holds a long lock; returns how many went.
pub async fn sweep_idempotency_keys(
    database: &Database,
    before: DateTime<Utc>,
) -> Result<u64, sqlx::Error> {
    const BATCH: i64 = 5_000;
    let mut swept = 0;
    loop {
        let deleted = match database {
            Database::Postgres(pool) => sqlx::query(
                "DELETE FROM idempotency_keys WHERE ctid IN \
                 (SELECT ctid FROM idempotency_keys WHERE created_at < $1 LIMIT $2)",
            )
            .bind(before)
            .bind(BATCH)
            .execute(pool)
            .await?
            .rows_affected(),
            Database::Sqlite(pool) => sqlx::query(
                "DELETE FROM idempotency_keys WHERE rowid IN \
                 (SELECT rowid FROM idempotency_keys WHERE created_at < ?1 LIMIT ?2)",
            )
            .bind(before)
            .bind(BATCH)
            .execute(pool)
            .await?
            .rows_affected(),
        };
        swept += deleted;
        if deleted < BATCH as u64 {
            return Ok(swept);
        }
    }
}

/// Sweeps the idempotency keys of every service store in this process, every `every`, keeping
/// `retention`; a failed sweep is logged and tried again next time.
pub async fn run_idempotency_sweeper(
    stores: Vec<(&'static str, Database)>,
    retention: Duration,
    every: Duration,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    let retention = chrono::Duration::from_std(retention).unwrap_or(chrono::Duration::MAX);
    loop {
        for (store, database) in &stores {
            let before = Utc::now()
                .checked_sub_signed(retention)
                .unwrap_or(DateTime::<Utc>::MIN_UTC);
            match sweep_idempotency_keys(database, before).await {
                Ok(0) => {}
                Ok(swept) => tracing::debug!(store, swept, "idempotency keys past retention swept"),
                Err(error) => tracing::warn!(store, %error, "sweeping idempotency keys failed"),
            }
        }
        tokio::select! {
            _ = tokio::time::sleep(every) => {}
            _ = stop.wait_for(|stopped| *stopped) => return,
        }
    }
}
