//! Bearer tokens: issuing them, storing their hashes, and turning a presented token into a
//! [`Principal`].

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use base64::Engine;
use chrono::{DateTime, Utc};
use credit_core::{Currency, Money, Principal, Role};
use rand::RngCore;
use rust_decimal::Decimal;
use secrecy::{ExposeSecret, SecretString};
use sha2::{Digest, Sha256};
use sqlx::migrate::Migrator;
use sqlx::{PgPool, Row, SqlitePool};

use crate::storage::{Database, StoreSpec};

static POSTGRES_MIGRATIONS: Migrator = sqlx::migrate!("migrations/identity/postgres");
static SQLITE_MIGRATIONS: Migrator = sqlx::migrate!("migrations/identity/sqlite");

/// The identity tables: schema `identity` on PostgreSQL, `identity.db` on SQLite.
pub static IDENTITY_STORE: StoreSpec = StoreSpec {
    name: "identity",
    postgres_migrations: &POSTGRES_MIGRATIONS,
    sqlite_migrations: &SQLITE_MIGRATIONS,
    common_migrations: &[],
};

/// Every token starts with this, so a leaked one is recognisable by secret scanners.
const TOKEN_PREFIX: &str = "cst_";

/// A principal to be issued a token.
#[derive(Debug, Clone)]
pub struct NewPrincipal {
    pub name: String,
    pub roles: BTreeSet<Role>,
    pub approval_authority: Option<Money>,
}

/// A freshly issued token: shown once, never stored in clear.
#[derive(Debug)]
pub struct IssuedToken {
    pub principal_id: String,
    pub token: SecretString,
}

#[derive(Debug, thiserror::Error)]
pub enum IdentityError {
    #[error("the identity store failed: {0}")]
    Store(#[from] sqlx::Error),
    #[error("a stored token record is malformed: {0}")]
    Corrupt(String),
}

/// A stored token record, as the store returns it.
#[derive(Debug, Clone)]
pub struct TokenRecord {
    pub id: String,
    pub name: String,
    pub roles: BTreeSet<Role>,
    pub approval_authority: Option<Money>,
    pub created_at: DateTime<Utc>,
    pub revoked_at: Option<DateTime<Utc>>,
}

/// Where token hashes live. Both backends pass the same conformance suite.
#[async_trait]
pub trait TokenStore: Send + Sync + std::fmt::Debug {
    async fn insert(
        &self,
        id: &str,
        token_hash: &str,
        principal: &NewPrincipal,
        now: DateTime<Utc>,
    ) -> Result<(), IdentityError>;
    /// The record of an unrevoked token with this hash.
    async fn find_active(&self, token_hash: &str) -> Result<Option<TokenRecord>, IdentityError>;
    /// Marks the token revoked; `false` when no unrevoked token has this id.
    async fn revoke(&self, id: &str, now: DateTime<Utc>) -> Result<bool, IdentityError>;
    async fn count(&self) -> Result<u64, IdentityError>;
}

/// Picks the backend of an opened identity database.
pub fn token_store(database: &Database) -> Arc<dyn TokenStore> {
    match database {
        Database::Postgres(pool) => Arc::new(PostgresTokenStore { pool: pool.clone() }),
        Database::Sqlite(pool) => Arc::new(SqliteTokenStore { pool: pool.clone() }),
    }
}

fn roles_column(roles: &BTreeSet<Role>) -> String {
    roles.iter().map(Role::as_str).collect::<Vec<_>>().join(",")
}

fn parse_roles(column: &str) -> Result<BTreeSet<Role>, IdentityError> {
    column
        .split(',')
        .filter(|name| !name.is_empty())
        .map(|name| {
            name.parse()
                .map_err(|_| IdentityError::Corrupt(format!("role '{name}'")))
        })
        .collect()
}

fn parse_authority(
    amount: Option<Decimal>,
    currency: Option<String>,
) -> Result<Option<Money>, IdentityError> {
    match (amount, currency) {
        (Some(amount), Some(currency)) => {
            let currency = Currency::parse(currency.trim())
                .map_err(|error| IdentityError::Corrupt(error.to_string()))?;
            Ok(Some(Money::new(amount, currency)))
        }
        _ => Ok(None),
    }
}

#[derive(Debug)]
struct PostgresTokenStore {
    pool: PgPool,
}

#[async_trait]
impl TokenStore for PostgresTokenStore {
    async fn insert(
        &self,
        id: &str,
        token_hash: &str,
        principal: &NewPrincipal,
        now: DateTime<Utc>,
    ) -> Result<(), IdentityError> {
        sqlx::query(
            "INSERT INTO api_tokens (id, name, roles, authority_amount, authority_currency, token_hash, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(id)
        .bind(&principal.name)
        .bind(roles_column(&principal.roles))
        .bind(principal.approval_authority.map(|money| money.amount()))
        .bind(principal.approval_authority.map(|money| money.currency().code()))
        .bind(token_hash)
        .bind(now)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn find_active(&self, token_hash: &str) -> Result<Option<TokenRecord>, IdentityError> {
        let row = sqlx::query(
            "SELECT id, name, roles, authority_amount, authority_currency, created_at, revoked_at \
             FROM api_tokens WHERE token_hash = $1 AND revoked_at IS NULL",
        )
        .bind(token_hash)
        .fetch_optional(&self.pool)
        .await?;
        row.map(|row| {
            Ok(TokenRecord {
                id: row.try_get("id")?,
                name: row.try_get("name")?,
                roles: parse_roles(row.try_get("roles")?)?,
                approval_authority: parse_authority(
                    row.try_get("authority_amount")?,
                    row.try_get("authority_currency")?,
                )?,
                created_at: row.try_get("created_at")?,
                revoked_at: row.try_get("revoked_at")?,
            })
        })
        .transpose()
    }

    async fn revoke(&self, id: &str, now: DateTime<Utc>) -> Result<bool, IdentityError> {
        let result = sqlx::query(
            "UPDATE api_tokens SET revoked_at = $2 WHERE id = $1 AND revoked_at IS NULL",
        )
        .bind(id)
        .bind(now)
        .execute(&self.pool)
        .await?;
        Ok(result.rows_affected() == 1)
    }

    async fn count(&self) -> Result<u64, IdentityError> {
        let count: i64 = sqlx::query_scalar("SELECT count(*) FROM api_tokens")
            .fetch_one(&self.pool)
            .await?;
        Ok(u64::try_from(count).unwrap_or(0))
    }
}

#[derive(Debug)]
struct SqliteTokenStore {
    pool: SqlitePool,
}

#[async_trait]
impl TokenStore for SqliteTokenStore {
    async fn insert(
        &self,
        id: &str,
        token_hash: &str,
        principal: &NewPrincipal,
        now: DateTime<Utc>,
    ) -> Result<(), IdentityError> {
        sqlx::query(
            "INSERT INTO api_tokens (id, name, roles, authority_amount, authority_currency, token_hash, created_at) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        )
        .bind(id)
        .bind(&principal.name)
        .bind(roles_column(&principal.roles))
        .bind(principal.approval_authority.map(|money| money.amount().to_string()))
        .bind(principal.approval_authority.map(|money| money.currency().code()))
        .bind(token_hash)
        .bind(now)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn find_active(&self, token_hash: &str) -> Result<Option<TokenRecord>, IdentityError> {
        let row = sqlx::query(
            "SELECT id, name, roles, authority_amount, authority_currency, created_at, revoked_at \
             FROM api_tokens WHERE token_hash = ?1 AND revoked_at IS NULL",
        )
        .bind(token_hash)
        .fetch_optional(&self.pool)
        .await?;
        row.map(|row| {
            let amount: Option<String> = row.try_get("authority_amount")?;
            let amount = amount
                .map(|text| {
                    text.parse::<Decimal>()
                        .map_err(|_| IdentityError::Corrupt(format!("authority '{text}'")))
                })
                .transpose()?;
            Ok(TokenRecord {
                id: row.try_get("id")?,
                name: row.try_get("name")?,
                roles: parse_roles(row.try_get("roles")?)?,
                approval_authority: parse_authority(amount, row.try_get("authority_currency")?)?,
                created_at: row.try_get("created_at")?,
                revoked_at: row.try_get("revoked_at")?,
            })
        })
        .transpose()
    }

    async fn revoke(&self, id: &str, now: DateTime<Utc>) -> Result<bool, IdentityError> {
        let result = sqlx::query(
            "UPDATE api_tokens SET revoked_at = ?2 WHERE id = ?1 AND revoked_at IS NULL",
        )
        .bind(id)
        .bind(now)
        .execute(&self.pool)
        .await?;
        Ok(result.rows_affected() == 1)
    }

    async fn count(&self) -> Result<u64, IdentityError> {
        let count: i64 = sqlx::query_scalar("SELECT count(*) FROM api_tokens")
            .fetch_one(&self.pool)
            .await?;
        Ok(u64::try_from(count).unwrap_or(0))
    }
}

/// The stored form of a token: hex SHA-256.
pub fn hash_token(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// Issues a new token for `principal` and stores its hash.
pub async fn issue_token(
    store: &dyn TokenStore,
    principal: &NewPrincipal,
) -> Result<IssuedToken, IdentityError> {
    let token = new_token();
    let principal_id = format!("prn_{}", uuid::Uuid::now_v7().simple());
    store
        .insert(
            &principal_id,
            &hash_token(token.expose_secret()),
            principal,
            Utc::now(),
        )
        .await?;
    Ok(IssuedToken {
        principal_id,
        token,
    })
}

/// 256 random bits behind the recognisable prefix.
fn new_token() -> SecretString {
    let mut secret = [0u8; 32];
    rand::rng().fill_bytes(&mut secret);
    SecretString::from(format!(
        "{TOKEN_PREFIX}{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(secret)
    ))
}

/// How long a looked-up token is trusted before the store is asked again. A revoked token
/// stops working within this time on every process.
const POSITIVE_TTL: Duration = Duration::from_secs(30);
/// Unknown tokens are remembered briefly so a client retrying a bad token does not load the
/// store; short, so a token just issued on another process works almost at once.
const NEGATIVE_TTL: Duration = Duration::from_secs(2);
const MAX_CACHED: usize = 10_000;

/// Resolves presented tokens to principals, with a small in-process cache: the auth check
/// runs before every call, including `Authorize`, and must not cost a database round trip.
#[derive(Debug, Clone)]
pub struct Authenticator {
    store: Arc<dyn TokenStore>,
    cache: Arc<Mutex<HashMap<String, CachedLookup>>>,
    /// The hash of this process's own service token and its principal (see
    /// [`Authenticator::with_process_credential`]); never stored, gone with the process.
    process_credential: Option<Arc<(String, Principal)>>,
}

/// A looked-up token hash: its principal (or `None` when unknown) and when it was looked up.
type CachedLookup = (Option<Principal>, Instant);

impl Authenticator {
    pub fn new(store: Arc<dyn TokenStore>) -> Self {
        Self {
            store,
            cache: Arc::new(Mutex::new(HashMap::new())),
            process_credential: None,
        }
    }

    /// Mints a token for `principal` that only this process knows and accepts: the services
    /// of one process call each other through the same authenticated gRPC path as outside
    /// callers, without a token in the identity store that could leak or outlive the process.
    pub fn with_process_credential(mut self, principal: Principal) -> (Self, SecretString) {
        let token = new_token();
        self.process_credential = Some(Arc::new((hash_token(token.expose_secret()), principal)));
        (self, token)
    }

    /// An authenticator over a borrowed store whose answers are never cached, so a test sees
    /// revocation at once.
    pub fn new_uncached_for_tests(store: &dyn TokenStore) -> UncachedAuthenticator<'_> {
        UncachedAuthenticator { store }
    }

    /// The principal holding `token`, `None` for an unknown or revoked token.
    pub async fn authenticate(
        &self,
        token: &SecretString,
    ) -> Result<Option<Principal>, IdentityError> {
        let token = token.expose_secret();
        if !token.starts_with(TOKEN_PREFIX) || token.len() > 128 {
            return Ok(None);
        }
        let token_hash = hash_token(token);
        if let Some(credential) = &self.process_credential
            && credential.0 == token_hash
        {
            return Ok(Some(credential.1.clone()));
        }
        if let Some(cached) = self.cached(&token_hash) {
            return Ok(cached);
        }
        let principal = lookup(self.store.as_ref(), &token_hash).await?;
        self.remember(token_hash, principal.clone());
        Ok(principal)
    }

    fn cached(&self, token_hash: &str) -> Option<Option<Principal>> {
        let cache = self.cache.lock().ok()?;
        let (principal, stored_at) = cache.get(token_hash)?;
        let ttl = if principal.is_some() {
            POSITIVE_TTL
        } else {
            NEGATIVE_TTL
        };
        (stored_at.elapsed() < ttl).then(|| principal.clone())
    }

    fn remember(&self, token_hash: String, principal: Option<Principal>) {
        if let Ok(mut cache) = self.cache.lock() {
            if cache.len() >= MAX_CACHED {
                cache.clear();
            }
            cache.insert(token_hash, (principal, Instant::now()));
        }
    }
}

async fn lookup(
    store: &dyn TokenStore,
    token_hash: &str,
) -> Result<Option<Principal>, IdentityError> {
    Ok(store
        .find_active(token_hash)
        .await?
        .map(|record| Principal {
            id: record.id,
            name: record.name,
            roles: record.roles,
            approval_authority: record.approval_authority,
        }))
}

/// See [`Authenticator::new_uncached_for_tests`].
#[derive(Debug)]
pub struct UncachedAuthenticator<'a> {
    store: &'a dyn TokenStore,
}

impl UncachedAuthenticator<'_> {
    pub async fn authenticate(
        &self,
        token: &SecretString,
    ) -> Result<Option<Principal>, IdentityError> {
        lookup(self.store, &hash_token(token.expose_secret())).await
    }
}
