//! Where tokens and people live: one implementation for PostgreSQL and SQLite (see
//! [`crate::on_database!`]); both pass `tests/token_store.rs`.

use std::collections::BTreeSet;
use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use credit_core::{Currency, Money, Role};
use rust_decimal::Decimal;

use super::{IdentityError, NewPrincipal, Rotation, TokenRecord};
use crate::on_database;
use crate::storage::Database;

/// Where token hashes live.
#[async_trait]
pub trait TokenStore: Send + Sync + std::fmt::Debug {
    /// Stores a new token for the person named `principal.name`, creating the person on first
    /// use; returns the person's id.
    async fn insert(
        &self,
        id: &str,
        token_hash: &str,
        principal: &NewPrincipal,
        now: DateTime<Utc>,
    ) -> Result<String, IdentityError>;
    /// The record of the token with this hash if it works at `now` (not revoked, not
    /// expired), noting `now` as its last use.
    async fn find_active(
        &self,
        token_hash: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<TokenRecord>, IdentityError>;
    /// Any token by id, whatever its state.
    async fn get(&self, id: &str) -> Result<Option<TokenRecord>, IdentityError>;
    /// Every token, by name and then age.
    async fn list(&self) -> Result<Vec<TokenRecord>, IdentityError>;
    /// Marks the token revoked; `false` when no unrevoked token has this id.
    async fn revoke(&self, id: &str, now: DateTime<Utc>) -> Result<bool, IdentityError>;
    /// Issues the rotation's new token and ends the old one, in one transaction; `false` (and
    /// nothing written) when the old token no longer works.
    async fn rotate(&self, rotation: &Rotation<'_>) -> Result<bool, IdentityError>;
    async fn count(&self) -> Result<u64, IdentityError>;
}

/// The store of an opened identity database.
pub fn token_store(database: &Database) -> Arc<dyn TokenStore> {
    Arc::new(SqlTokenStore {
        database: database.clone(),
    })
}

#[derive(Debug)]
struct SqlTokenStore {
    database: Database,
}

/// The columns every read returns, in [`TokenRow`]'s order.
macro_rules! token_columns {
    () => {
        "id, person_id, name, roles, authority_amount, authority_currency, created_at, \
         expires_at, last_used_at, revoked_at"
    };
}

#[derive(sqlx::FromRow)]
struct TokenRow {
    id: String,
    person_id: Option<String>,
    name: String,
    roles: String,
    authority_amount: Option<String>,
    authority_currency: Option<String>,
    created_at: DateTime<Utc>,
    expires_at: Option<DateTime<Utc>>,
    last_used_at: Option<DateTime<Utc>>,
    revoked_at: Option<DateTime<Utc>>,
}

impl TokenRow {
    fn into_record(self) -> Result<TokenRecord, IdentityError> {
        Ok(TokenRecord {
            person_id: self.person_id.ok_or_else(|| {
                IdentityError::Corrupt(format!("token {} has no person", self.id))
            })?,
            roles: parse_roles(&self.roles)?,
            approval_authority: parse_authority(self.authority_amount, self.authority_currency)?,
            id: self.id,
            name: self.name,
            created_at: self.created_at,
            expires_at: self.expires_at,
            last_used_at: self.last_used_at,
            revoked_at: self.revoked_at,
        })
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
    amount: Option<String>,
    currency: Option<String>,
) -> Result<Option<Money>, IdentityError> {
    match (amount, currency) {
        (Some(amount), Some(currency)) => {
            let amount = amount
                .trim()
                .parse::<Decimal>()
                .map_err(|_| IdentityError::Corrupt(format!("authority '{amount}'")))?;
            let currency = Currency::parse(currency.trim())
                .map_err(|error| IdentityError::Corrupt(error.to_string()))?;
            Ok(Some(Money::new(amount, currency)))
        }
        _ => Ok(None),
    }
}

fn records(rows: Vec<TokenRow>) -> Result<Vec<TokenRecord>, IdentityError> {
    rows.into_iter().map(TokenRow::into_record).collect()
}

#[async_trait]
impl TokenStore for SqlTokenStore {
    async fn insert(
        &self,
        id: &str,
        token_hash: &str,
        principal: &NewPrincipal,
        now: DateTime<Utc>,
    ) -> Result<String, IdentityError> {
        let new_person_id = format!("psn_{}", uuid::Uuid::now_v7().simple());
        let person_id = on_database!(&self.database, |pool, sql, begin_write| {
            let mut tx = pool.begin_with(begin_write).await?;
            sqlx::query(&sql(
                "INSERT INTO people (person_id, name, created_at) VALUES ($1, $2, $3) \
                 ON CONFLICT (name) DO NOTHING",
            ))
            .bind(&new_person_id)
            .bind(&principal.name)
            .bind(now)
            .execute(&mut *tx)
            .await?;
            let person_id: String =
                sqlx::query_scalar(&sql("SELECT person_id FROM people WHERE name = $1"))
                    .bind(&principal.name)
                    .fetch_one(&mut *tx)
                    .await?;
            sqlx::query(&sql(
                "INSERT INTO api_tokens (id, person_id, name, roles, authority_amount, \
                 authority_currency, token_hash, created_at, expires_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
            ))
            .bind(id)
            .bind(&person_id)
            .bind(&principal.name)
            .bind(roles_column(&principal.roles))
            .bind(
                principal
                    .approval_authority
                    .map(|money| money.amount().to_string()),
            )
            .bind(
                principal
                    .approval_authority
                    .map(|money| money.currency().code()),
            )
            .bind(token_hash)
            .bind(now)
            .bind(principal.expires_at)
            .execute(&mut *tx)
            .await?;
            tx.commit().await?;
            person_id
        });
        Ok(person_id)
    }

    async fn find_active(
        &self,
        token_hash: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<TokenRecord>, IdentityError> {
        // One round trip finds the token and notes its use; the authenticator's cache keeps
        // this to one statement per token per process every half minute, not one per call.
        let row = on_database!(&self.database, |pool, sql| {
            sqlx::query_as::<_, TokenRow>(&sql(concat!(
                "UPDATE api_tokens SET last_used_at = $2 \
                 WHERE token_hash = $1 AND revoked_at IS NULL \
                 AND (expires_at IS NULL OR expires_at > $2) RETURNING ",
                token_columns!()
            )))
            .bind(token_hash)
            .bind(now)
            .fetch_optional(pool)
            .await?
        });
        row.map(TokenRow::into_record).transpose()
    }

    async fn get(&self, id: &str) -> Result<Option<TokenRecord>, IdentityError> {
        let row = on_database!(&self.database, |pool, sql| {
            sqlx::query_as::<_, TokenRow>(&sql(concat!(
                "SELECT ",
                token_columns!(),
                " FROM api_tokens WHERE id = $1"
            )))
            .bind(id)
            .fetch_optional(pool)
            .await?
        });
        row.map(TokenRow::into_record).transpose()
    }

    async fn list(&self) -> Result<Vec<TokenRecord>, IdentityError> {
        let rows = on_database!(&self.database, |pool, sql| {
            sqlx::query_as::<_, TokenRow>(&sql(concat!(
                "SELECT ",
                token_columns!(),
                " FROM api_tokens ORDER BY name, created_at, id"
            )))
            .fetch_all(pool)
            .await?
        });
        records(rows)
    }

    async fn revoke(&self, id: &str, now: DateTime<Utc>) -> Result<bool, IdentityError> {
        let revoked = on_database!(&self.database, |pool, sql| {
            sqlx::query(&sql(
                "UPDATE api_tokens SET revoked_at = $2 WHERE id = $1 AND revoked_at IS NULL",
            ))
            .bind(id)
            .bind(now)
            .execute(pool)
            .await?
            .rows_affected()
        });
        Ok(revoked == 1)
    }

    async fn rotate(&self, rotation: &Rotation<'_>) -> Result<bool, IdentityError> {
        let rotated = on_database!(&self.database, |pool, sql, begin_write| {
            let mut tx = pool.begin_with(begin_write).await?;
            let issued = sqlx::query(&sql(
                "INSERT INTO api_tokens (id, person_id, name, roles, authority_amount, \
                 authority_currency, token_hash, created_at, expires_at) \
                 SELECT $2, person_id, name, roles, authority_amount, authority_currency, $3, $4, $5 \
                 FROM api_tokens WHERE id = $1 AND revoked_at IS NULL \
                 AND (expires_at IS NULL OR expires_at > $4)",
            ))
            .bind(rotation.old_id)
            .bind(&rotation.new_id)
            .bind(&rotation.new_hash)
            .bind(rotation.now)
            .bind(rotation.new_expires_at)
            .execute(&mut *tx)
            .await?
            .rows_affected();
            if issued == 1 {
                let end_old = if rotation.old_ends_at <= rotation.now {
                    "UPDATE api_tokens SET revoked_at = $2 WHERE id = $1"
                } else {
                    "UPDATE api_tokens SET expires_at = $2 \
                     WHERE id = $1 AND (expires_at IS NULL OR expires_at > $2)"
                };
                sqlx::query(&sql(end_old))
                    .bind(rotation.old_id)
                    .bind(rotation.old_ends_at)
                    .execute(&mut *tx)
                    .await?;
                tx.commit().await?;
            }
            issued == 1
        });
        Ok(rotated)
    }

    async fn count(&self) -> Result<u64, IdentityError> {
        let count: i64 = on_database!(&self.database, |pool, sql| {
            sqlx::query_scalar(&sql("SELECT count(*) FROM api_tokens"))
                .fetch_one(pool)
                .await?
        });
        Ok(u64::try_from(count).unwrap_or(0))
    }
}
