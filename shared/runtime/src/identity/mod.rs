//! Bearer tokens: issuing, rotating and revoking them, storing their hashes, and turning a
//! presented token into a [`Principal`].
//!
//! A token belongs to a person (or a system). The person is what four-eyes checks compare:
//! a second token of the same person, or the token that replaced a rotated one, is still the
//! same pair of eyes. A token works until it expires or is revoked; only its hash is kept.

mod authenticator;
pub mod service;
mod store;

use std::collections::BTreeSet;

use base64::Engine;
use chrono::{DateTime, Duration, Utc};
use credit_core::{Money, Role};
use rand::RngCore;
use secrecy::{ExposeSecret, SecretString};
use sha2::{Digest, Sha256};
use sqlx::migrate::Migrator;

use crate::storage::StoreSpec;

pub use authenticator::{Authenticator, UncachedAuthenticator};
pub use store::{TokenStore, token_store};

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
/// 32 random bytes in unpadded base64url.
const TOKEN_SECRET_CHARS: usize = 43;

/// How long a token works when its issuer does not say: a quarter. People and systems rotate
/// before then (`credit-suite token rotate`).
pub const DEFAULT_TOKEN_LIFETIME_DAYS: i64 = 90;
/// The longest lifetime a token may be given: ten years, for a system that cannot rotate.
pub const MAX_TOKEN_LIFETIME_DAYS: i64 = 3650;

/// A token to be issued: who holds it (by name: the person is created on first use, and a
/// later token under the same name belongs to the same person), what it may do, until when.
#[derive(Debug, Clone)]
pub struct NewPrincipal {
    pub name: String,
    pub roles: BTreeSet<Role>,
    pub approval_authority: Option<Money>,
    /// When the token stops working; `None` for a token that does not expire (kept only for
    /// tokens issued before expiry existed; every issuing path in the suite sets one).
    pub expires_at: Option<DateTime<Utc>>,
}

impl NewPrincipal {
    /// A token for `name` with `roles`, no approval authority, expiring after the default
    /// lifetime.
    pub fn new(name: impl Into<String>, roles: impl IntoIterator<Item = Role>) -> Self {
        Self {
            name: name.into(),
            roles: roles.into_iter().collect(),
            approval_authority: None,
            expires_at: Some(Utc::now() + Duration::days(DEFAULT_TOKEN_LIFETIME_DAYS)),
        }
    }

    pub fn with_authority(mut self, authority: Option<Money>) -> Self {
        self.approval_authority = authority;
        self
    }

    pub fn expiring_at(mut self, expires_at: Option<DateTime<Utc>>) -> Self {
        self.expires_at = expires_at;
        self
    }
}

/// A freshly issued token: shown once, never stored in clear.
#[derive(Debug)]
pub struct IssuedToken {
    /// The token's own id (`prn_…`): what `token revoke` and `token rotate` take.
    pub principal_id: String,
    /// The person the token belongs to (`psn_…`).
    pub person_id: String,
    pub expires_at: Option<DateTime<Utc>>,
    pub token: SecretString,
}

#[derive(Debug, thiserror::Error)]
pub enum IdentityError {
    #[error("the identity store failed: {0}")]
    Store(#[from] sqlx::Error),
    #[error("a stored token record is malformed: {0}")]
    Corrupt(String),
    #[error("no token has id '{0}'")]
    UnknownToken(String),
    #[error("token '{0}' is revoked or expired; issue a new one with `token create`")]
    TokenNotActive(String),
}

/// A stored token record, as the store returns it.
#[derive(Debug, Clone, PartialEq)]
pub struct TokenRecord {
    pub id: String,
    pub person_id: String,
    pub name: String,
    pub roles: BTreeSet<Role>,
    pub approval_authority: Option<Money>,
    pub created_at: DateTime<Utc>,
    pub expires_at: Option<DateTime<Utc>>,
    pub last_used_at: Option<DateTime<Utc>>,
    pub revoked_at: Option<DateTime<Utc>>,
}

impl TokenRecord {
    /// Whether the token works at `now`: not revoked and not expired.
    pub fn is_active(&self, now: DateTime<Utc>) -> bool {
        self.revoked_at.is_none() && self.expires_at.is_none_or(|expires_at| expires_at > now)
    }

    /// The token's state at `now`, as `token list` shows it.
    pub fn state(&self, now: DateTime<Utc>) -> &'static str {
        if self.revoked_at.is_some() {
            "revoked"
        } else if self.is_active(now) {
            "active"
        } else {
            "expired"
        }
    }
}

/// The stored form of a token: hex SHA-256. A token is 256 random bits, so a fast hash is
/// enough and a stolen table yields none.
pub fn hash_token(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// Whether `token` has the shape of a token this suite issues (the prefix and 43 base64url
/// characters). Anything else is refused before it costs a hash or a lookup.
pub fn is_well_formed(token: &str) -> bool {
    token.strip_prefix(TOKEN_PREFIX).is_some_and(|secret| {
        secret.len() == TOKEN_SECRET_CHARS
            && secret
                .bytes()
                .all(|byte| byte.is_ascii_alphanumeric() || byte == b'-' || byte == b'_')
    })
}

/// Issues a new token for `principal` and stores its hash.
pub async fn issue_token(
    store: &dyn TokenStore,
    principal: &NewPrincipal,
) -> Result<IssuedToken, IdentityError> {
    let token = new_token();
    let principal_id = new_token_id();
    let person_id = store
        .insert(
            &principal_id,
            &hash_token(token.expose_secret()),
            principal,
            Utc::now(),
        )
        .await?;
    Ok(IssuedToken {
        principal_id,
        person_id,
        expires_at: principal.expires_at,
        token,
    })
}

/// Replaces token `old_id` with a new one for the same person, roles and authority, valid as
/// long as the old one was given (the default lifetime for a token that had none). The old
/// token keeps working for `grace` so a system can redeploy with the new one; zero revokes it
/// at once.
pub async fn rotate_token(
    store: &dyn TokenStore,
    old_id: &str,
    grace: Duration,
) -> Result<IssuedToken, IdentityError> {
    let now = Utc::now();
    let old = store
        .get(old_id)
        .await?
        .ok_or_else(|| IdentityError::UnknownToken(old_id.to_owned()))?;
    if !old.is_active(now) {
        return Err(IdentityError::TokenNotActive(old_id.to_owned()));
    }
    let lifetime = old
        .expires_at
        .map(|expires_at| expires_at - old.created_at)
        .unwrap_or_else(|| Duration::days(DEFAULT_TOKEN_LIFETIME_DAYS));
    let token = new_token();
    let rotation = Rotation {
        old_id,
        new_id: new_token_id(),
        new_hash: hash_token(token.expose_secret()),
        new_expires_at: now + lifetime,
        old_ends_at: now + grace.max(Duration::zero()),
        now,
    };
    if !store.rotate(&rotation).await? {
        // Revoked or expired between the read and the rotation.
        return Err(IdentityError::TokenNotActive(old_id.to_owned()));
    }
    Ok(IssuedToken {
        principal_id: rotation.new_id,
        person_id: old.person_id,
        expires_at: Some(rotation.new_expires_at),
        token,
    })
}

/// One rotation, done by the store in one transaction.
#[derive(Debug)]
pub struct Rotation<'a> {
    pub old_id: &'a str,
    pub new_id: String,
    pub new_hash: String,
    pub new_expires_at: DateTime<Utc>,
    /// When the old token stops working (now, for no grace).
    pub old_ends_at: DateTime<Utc>,
    pub now: DateTime<Utc>,
}

fn new_token_id() -> String {
    format!("prn_{}", uuid::Uuid::now_v7().simple())
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_tokens_of_the_issued_shape_are_well_formed() {
        let token = new_token();
        assert!(is_well_formed(token.expose_secret()));
        assert!(!is_well_formed("cst_short"));
        assert!(!is_well_formed(&format!("cst_{}", "a".repeat(44))));
        assert!(!is_well_formed(&format!("xyz_{}", "a".repeat(43))));
        assert!(!is_well_formed(&format!("cst_{}", "é".repeat(21))));
        assert!(!is_well_formed(&format!("cst_{}!", "a".repeat(42))));
    }
}
