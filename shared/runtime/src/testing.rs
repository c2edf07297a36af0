//! Support for tests that talk to the real PostgreSQL and Redis: each test gets a database of
//! its own and a Redis key prefix of its own. Under CI a missing server fails the test loudly;
//! nothing here skips.

use secrecy::SecretString;
use sqlx::Connection;
use sqlx::postgres::PgConnection;

use crate::config::Backend;

/// Server-level URL (any database) used to create and drop test databases.
pub fn postgres_admin_url() -> String {
    std::env::var("CREDIT_TEST_DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_owned())
}

pub fn redis_url() -> String {
    std::env::var("CREDIT_TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379/0".to_owned())
}

/// A PostgreSQL database created for one test, named `credit_test_<random>`.
#[derive(Debug)]
pub struct TestDatabase {
    pub name: String,
    pub url: String,
}

impl TestDatabase {
    pub async fn create() -> Self {
        let name = format!("credit_test_{}", uuid::Uuid::new_v4().simple());
        let admin_url = postgres_admin_url();
        let mut connection = PgConnection::connect(&admin_url)
            .await
            .unwrap_or_else(|error| {
                unreachable!("PostgreSQL must run at {admin_url} for this test: {error}")
            });
        sqlx::query(&format!("CREATE DATABASE \"{name}\""))
            .execute(&mut connection)
            .await
            .unwrap_or_else(|error| unreachable!("cannot create test database {name}: {error}"));
        let _ = connection.close().await;
        let url = match admin_url.rsplit_once('/') {
            Some((server, _)) => format!("{server}/{name}"),
            None => unreachable!("CREDIT_TEST_DATABASE_URL has no database part"),
        };
        Self { name, url }
    }

    /// A production backend on this database and a fresh Redis key prefix.
    pub fn backend(&self) -> Backend {
        Backend::Production {
            database_url: SecretString::from(self.url.clone()),
            redis_url: SecretString::from(redis_url()),
            redis_key_prefix: self.redis_key_prefix(),
        }
    }

    /// A Redis connection under the key prefix of [`TestDatabase::backend`].
    pub async fn redis(&self) -> crate::RedisHandle {
        crate::RedisHandle::connect(&SecretString::from(redis_url()), &self.redis_key_prefix())
            .await
            .unwrap_or_else(|error| unreachable!("Redis must run for this test: {error}"))
    }

    fn redis_key_prefix(&self) -> String {
        format!("test:{}:", self.name)
    }

    /// Drops the database, closing any connection still open to it.
    pub async fn drop_database(&self) {
        if let Ok(mut connection) = PgConnection::connect(&postgres_admin_url()).await {
            let _ = sqlx::query(&format!(
                "DROP DATABASE IF EXISTS \"{}\" WITH (FORCE)",
                self.name
            ))
            .execute(&mut connection)
            .await;
            let _ = connection.close().await;
        }
    }
}

/// Builds the schema `store` had before its migration `version` in `database` (opened, not
/// migrated): the starting point of a test of an upgrade. `Database::migrate` then runs the
/// rest, as it would on a deployed store.
pub async fn migrate_before(
    database: &crate::Database,
    store: &crate::storage::StoreSpec,
    version: i64,
) -> Result<(), sqlx::Error> {
    use crate::store::{Engine, compose};
    let (own, engine) = match database {
        crate::Database::Postgres(_) => (store.postgres_migrations, Engine::Postgres),
        crate::Database::Sqlite(_) => (store.sqlite_migrations, Engine::Sqlite),
    };
    let older = sqlx::migrate::Migrator {
        migrations: std::borrow::Cow::Owned(
            own.iter()
                .filter(|migration| migration.version < version)
                .cloned()
                .collect(),
        ),
        ..sqlx::migrate::Migrator::DEFAULT
    };
    let common: Vec<_> = store
        .common_migrations
        .iter()
        .copied()
        .filter(|(common_version, _)| *common_version < version)
        .collect();
    let old = compose(&older, &common, engine);
    match database {
        crate::Database::Postgres(pool) => {
            // Opening the store creates its schema only when it migrates.
            sqlx::query(&format!("CREATE SCHEMA IF NOT EXISTS {}", store.name))
                .execute(pool)
                .await?;
            old.run(pool).await.map_err(sqlx::Error::from)
        }
        crate::Database::Sqlite(pool) => old.run(pool).await.map_err(sqlx::Error::from),
    }
}
