//! Connections to the stores behind every service.
//!
//! A service owns one [`Database`]: on PostgreSQL a pool whose `search_path` is the service's
//! own schema (so its migrations and tables stay apart from the others'), on the embedded
//! default a SQLite file of its own in the data folder. Redis holds caches only, under a key
//! prefix.

use std::str::FromStr;
use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};
use sqlx::migrate::Migrator;
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions, PgSslMode};
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};

use crate::config::{Backend, redact_url};
use crate::store::{CommonMigration, Engine, compose};

/// How long a health probe waits for a store before calling it down.
const PROBE_TIMEOUT: Duration = Duration::from_secs(2);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// The store of one service (or of the identity tables).
#[derive(Debug, Clone)]
pub struct StoreSpec {
    /// Schema name on PostgreSQL, file stem on SQLite: `intake`, `limits`, `identity` ...
    pub name: &'static str,
    pub postgres_migrations: &'static Migrator,
    pub sqlite_migrations: &'static Migrator,
    /// The migrations every service shares (the store kit's), at their versions in this
    /// store's history; empty for stores without an outbox.
    pub common_migrations: &'static [(i64, CommonMigration)],
}

/// A connection pool to one service's store.
#[derive(Debug, Clone)]
pub enum Database {
    Postgres(PgPool),
    Sqlite(SqlitePool),
}

/// Why a store could not be opened. One line, naming the setting to fix; no password.
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    #[error("cannot connect to the PostgreSQL database at CREDIT_DATABASE_URL ({url}): {source}")]
    PostgresConnect { url: String, source: sqlx::Error },
    #[error("cannot open the SQLite database {path} in CREDIT_DATA_DIR: {source}")]
    SqliteOpen { path: String, source: sqlx::Error },
    #[error("cannot create the data folder CREDIT_DATA_DIR ({path}): {source}")]
    DataDir {
        path: String,
        source: std::io::Error,
    },
    #[error("migrating the {store} store failed: {source}")]
    Migrate {
        store: &'static str,
        source: sqlx::migrate::MigrateError,
    },
    #[error("preparing the {store} schema failed: {source}")]
    Schema {
        store: &'static str,
        source: sqlx::Error,
    },
    #[error("cannot read CREDIT_REDIS_CA_FILE {path}: {source}")]
    RedisCa {
        path: String,
        source: std::io::Error,
    },
    #[error("cannot connect to Redis at CREDIT_REDIS_URL ({url}): {source}")]
    RedisConnect {
        url: String,
        source: redis::RedisError,
    },
}

impl Database {
    /// Opens the store of `spec` on `backend`, creating the schema (PostgreSQL) or file
    /// (SQLite) when absent, and applies pending migrations when `migrate` is set.
    pub async fn open(
        backend: &Backend,
        spec: &StoreSpec,
        max_connections: u32,
        migrate: bool,
    ) -> Result<Self, StorageError> {
        let database = match backend {
            Backend::Production { database_url, .. } => Self::Postgres(
                connect_postgres(database_url, spec.name, max_connections, migrate).await?,
            ),
            Backend::Embedded { data_dir } => {
                std::fs::create_dir_all(data_dir).map_err(|source| StorageError::DataDir {
                    path: data_dir.display().to_string(),
                    source,
                })?;
                let path = data_dir.join(format!("{}.db", spec.name));
                let options = SqliteConnectOptions::new()
                    .filename(&path)
                    .create_if_missing(true)
                    .journal_mode(SqliteJournalMode::Wal)
                    // WAL + NORMAL is durable across process crashes; a power loss may drop the
                    // last commits, which is acceptable for the laptop/demo mode this serves.
                    .synchronous(SqliteSynchronous::Normal)
                    .busy_timeout(Duration::from_secs(5))
                    .foreign_keys(true);
                let pool = SqlitePoolOptions::new()
                    .max_connections(max_connections.clamp(1, 4))
                    .acquire_timeout(CONNECT_TIMEOUT)
                    .connect_with(options)
                    .await
                    .map_err(|source| StorageError::SqliteOpen {
                        path: path.display().to_string(),
                        source,
                    })?;
                Self::Sqlite(pool)
            }
        };
        if migrate {
            database.migrate(spec).await?;
        }
        Ok(database)
    }

    /// Applies pending migrations of `spec`. On PostgreSQL the migration history lives in the
    /// service's own schema, so services migrate independently.
    pub async fn migrate(&self, spec: &StoreSpec) -> Result<(), StorageError> {
        let result = match self {
            Self::Postgres(pool) => {
                compose(
                    spec.postgres_migrations,
                    spec.common_migrations,
                    Engine::Postgres,
                )
                .run(pool)
                .await
            }
            Self::Sqlite(pool) => {
                compose(
                    spec.sqlite_migrations,
                    spec.common_migrations,
                    Engine::Sqlite,
                )
                .run(pool)
                .await
            }
        };
        result.map_err(|source| StorageError::Migrate {
            store: spec.name,
            source,
        })
    }

    /// Whether the store answers a trivial query in time.
    pub async fn probe(&self) -> Result<(), String> {
        let query = async {
            match self {
                Self::Postgres(pool) => sqlx::query("SELECT 1").execute(pool).await.map(drop),
                Self::Sqlite(pool) => sqlx::query("SELECT 1").execute(pool).await.map(drop),
            }
        };
        match tokio::time::timeout(PROBE_TIMEOUT, query).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(error)) => Err(format!("database: {error}")),
            Err(_) => Err("database: no answer in time".to_owned()),
        }
    }

    pub async fn close(&self) {
        match self {
            Self::Postgres(pool) => pool.close().await,
            Self::Sqlite(pool) => pool.close().await,
        }
    }
}

async fn connect_postgres(
    url: &SecretString,
    schema: &'static str,
    max_connections: u32,
    create_schema: bool,
) -> Result<PgPool, StorageError> {
    let connect_error = |source| StorageError::PostgresConnect {
        url: redact_url(url),
        source,
    };
    let options = PgConnectOptions::from_str(url.expose_secret()).map_err(connect_error)?;
    if create_schema {
        ensure_schema(&options, schema)
            .await
            .map_err(|error| match error {
                SchemaError::Connect(source) => connect_error(source),
                SchemaError::Create(source) => StorageError::Schema {
                    store: schema,
                    source,
                },
            })?;
    }
    PgPoolOptions::new()
        .max_connections(max_connections)
        .acquire_timeout(CONNECT_TIMEOUT)
        // No ping before handing out a connection: it is a round trip on every query of the
        // hot path. A connection the server dropped fails its next query instead, which is
        // then closed by the pool, and the caller's retry gets a fresh one.
        .test_before_acquire(false)
        .connect_with(options.options([("search_path", schema)]))
        .await
        .map_err(connect_error)
}

/// Warns when `CREDIT_DATABASE_URL` reaches a PostgreSQL server on another machine without
/// verifying its certificate: `sslmode=prefer` (the default) silently falls back to plain text
/// when the server offers no TLS, and `require` encrypts without checking who answers.
pub fn warn_unless_postgres_verified(url: &SecretString) {
    let Ok(options) = PgConnectOptions::from_str(url.expose_secret()) else {
        return;
    };
    let host = options.get_host();
    let on_this_machine = host.starts_with('/')
        || host == "localhost"
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback());
    let verified = matches!(
        options.get_ssl_mode(),
        PgSslMode::VerifyCa | PgSslMode::VerifyFull
    );
    if !on_this_machine && !verified {
        tracing::warn!(
            sslmode = ?options.get_ssl_mode(),
            "CREDIT_DATABASE_URL does not verify the PostgreSQL server: set sslmode=verify-full \
             (and sslrootcert=<CA file>) in production"
        );
    }
}

enum SchemaError {
    Connect(sqlx::Error),
    Create(sqlx::Error),
}

/// Creates the service's schema if absent. Skipped when migrations are off, so the runtime
/// role of a production deployment needs no CREATE right on the database.
async fn ensure_schema(
    options: &PgConnectOptions,
    schema: &'static str,
) -> Result<(), SchemaError> {
    let bootstrap = PgPoolOptions::new()
        .max_connections(1)
        .acquire_timeout(CONNECT_TIMEOUT)
        .connect_with(options.clone())
        .await
        .map_err(SchemaError::Connect)?;
    // `schema` is one of the suite's fixed store names, never caller input.
    let create = format!("CREATE SCHEMA IF NOT EXISTS \"{schema}\"");
    let created = sqlx::query(&create).execute(&bootstrap).await;
    bootstrap.close().await;
    if let Err(error) = created {
        // Two replicas starting together may race on CREATE SCHEMA; the loser sees a unique
        // violation although the schema now exists.
        let raced = error
            .as_database_error()
            .is_some_and(|database_error| database_error.code().as_deref() == Some("23505"));
        if !raced {
            return Err(SchemaError::Create(error));
        }
    }
    Ok(())
}

/// A Redis connection shared by a process, with the key prefix every key starts with.
#[derive(Clone)]
pub struct RedisHandle {
    /// Shared: with TLS parameters a client is a few hundred bytes, and handles are cloned
    /// into every task and health probe.
    client: std::sync::Arc<redis::Client>,
    connection: redis::aio::ConnectionManager,
    key_prefix: String,
}

impl std::fmt::Debug for RedisHandle {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("RedisHandle")
            .field("key_prefix", &self.key_prefix)
            .finish_non_exhaustive()
    }
}

impl RedisHandle {
    /// Connects, failing at once when Redis does not answer: a process that starts without
    /// its cache would only refuse every authorization later. A `rediss://` URL is TLS,
    /// verified against the system's roots.
    pub async fn connect(url: &SecretString, key_prefix: &str) -> Result<Self, StorageError> {
        Self::connect_with_ca(url, key_prefix, None).await
    }

    /// As [`RedisHandle::connect`]; a `rediss://` URL is verified against the CA certificates
    /// (PEM) in `ca_file` when given (`CREDIT_REDIS_CA_FILE`), else the system's roots.
    pub async fn connect_with_ca(
        url: &SecretString,
        key_prefix: &str,
        ca_file: Option<&std::path::Path>,
    ) -> Result<Self, StorageError> {
        let connect_error = |source| StorageError::RedisConnect {
            url: redact_url(url),
            source,
        };
        // redis-rs builds its TLS configuration with rustls's process-wide provider.
        crate::tls::install_crypto_provider();
        // TCP_NODELAY: redis-rs leaves Nagle's algorithm on by default, which holds small
        // writes back for delayed ACKs (tens of milliseconds) — on the Authorize path.
        let info = redis::IntoConnectionInfo::into_connection_info(url.expose_secret())
            .map_err(connect_error)?;
        let tcp_settings = info.tcp_settings().clone().set_nodelay(true);
        let info = info.set_tcp_settings(tcp_settings);
        let client = match ca_file {
            None => redis::Client::open(info),
            Some(path) => {
                let root_cert = std::fs::read(path).map_err(|error| StorageError::RedisCa {
                    path: path.display().to_string(),
                    source: error,
                })?;
                redis::Client::build_with_tls(
                    info,
                    redis::TlsCertificates {
                        client_tls: None,
                        root_cert: Some(root_cert),
                    },
                )
            }
        }
        .map_err(connect_error)?;
        let config = redis::aio::ConnectionManagerConfig::new()
            .set_connection_timeout(Some(CONNECT_TIMEOUT))
            .set_response_timeout(Some(PROBE_TIMEOUT))
            .set_number_of_retries(1);
        let connection = tokio::time::timeout(
            CONNECT_TIMEOUT,
            redis::aio::ConnectionManager::new_with_config(client.clone(), config),
        )
        .await
        .map_err(|_| {
            connect_error(redis::RedisError::from((
                redis::ErrorKind::Io,
                "connection timed out",
            )))
        })?
        .map_err(connect_error)?;
        Ok(Self {
            client: std::sync::Arc::new(client),
            connection,
            key_prefix: key_prefix.to_owned(),
        })
    }

    /// A connection of its own, for commands that block (`XREADGROUP … BLOCK`). Redis
    /// answers one connection's commands in order, so a blocking read on the shared
    /// connection would hold every `Authorize` behind it.
    pub async fn dedicated_connection(
        &self,
        response_timeout: Duration,
    ) -> Result<redis::aio::ConnectionManager, redis::RedisError> {
        let config = redis::aio::ConnectionManagerConfig::new()
            .set_connection_timeout(Some(CONNECT_TIMEOUT))
            .set_response_timeout(Some(response_timeout))
            .set_number_of_retries(1);
        redis::aio::ConnectionManager::new_with_config((*self.client).clone(), config).await
    }

    /// A clone of the multiplexed connection; cheap, and safe to use from many tasks.
    pub fn connection(&self) -> redis::aio::ConnectionManager {
        self.connection.clone()
    }

    /// `prefix` + `suffix`: every key the suite writes goes through here.
    pub fn key(&self, suffix: &str) -> String {
        format!("{}{suffix}", self.key_prefix)
    }

    pub async fn probe(&self) -> Result<(), String> {
        let mut connection = self.connection();
        let ping = redis::cmd("PING");
        match tokio::time::timeout(PROBE_TIMEOUT, ping.query_async::<String>(&mut connection)).await
        {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(error)) => Err(format!("redis: {error}")),
            Err(_) => Err("redis: no answer in time".to_owned()),
        }
    }
}
