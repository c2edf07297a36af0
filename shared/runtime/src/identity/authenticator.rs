//! Turning a presented token into a principal, on every call (including `Authorize`), without
//! a database round trip per call.

use std::num::NonZeroUsize;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use credit_core::Principal;
use lru::LruCache;
use secrecy::{ExposeSecret, SecretString};

use super::{IdentityError, TokenRecord, TokenStore, hash_token, is_well_formed, new_token};

/// How long a looked-up token is trusted before the store is asked again. A token revoked by
/// another process stops working within this time everywhere; an expired one stops at once.
const POSITIVE_TTL: Duration = Duration::from_secs(30);
/// Unknown tokens are remembered briefly so a client retrying a bad token does not load the
/// store; short, so a token just issued on another process works almost at once.
const NEGATIVE_TTL: Duration = Duration::from_secs(2);
/// Tokens remembered at most; beyond it the least recently used is forgotten, so a flood of
/// made-up tokens cannot push out the callers in use.
const MAX_CACHED: usize = 10_000;

/// A looked-up token hash: its principal and expiry (or `None` when unknown), and when it was
/// looked up.
#[derive(Debug, Clone)]
struct CachedLookup {
    found: Option<(Principal, Option<DateTime<Utc>>)>,
    looked_up_at: Instant,
}

/// Resolves presented tokens to principals, with a small in-process cache.
#[derive(Debug, Clone)]
pub struct Authenticator {
    store: Arc<dyn TokenStore>,
    cache: Arc<Mutex<LruCache<String, CachedLookup>>>,
    /// The hash of this process's own service token and its principal (see
    /// [`Authenticator::with_process_credential`]); never stored, gone with the process.
    process_credential: Option<Arc<(String, Principal)>>,
}

impl Authenticator {
    pub fn new(store: Arc<dyn TokenStore>) -> Self {
        Self {
            store,
            cache: Arc::new(Mutex::new(LruCache::new(
                NonZeroUsize::new(MAX_CACHED).unwrap_or(NonZeroUsize::MIN),
            ))),
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

    /// The principal holding `token`, `None` for a malformed, unknown, revoked or expired one.
    pub async fn authenticate(
        &self,
        token: &SecretString,
    ) -> Result<Option<Principal>, IdentityError> {
        let Some(token_hash) = hash_if_well_formed(token) else {
            return Ok(None);
        };
        if let Some(credential) = &self.process_credential
            && credential.0 == token_hash
        {
            return Ok(Some(credential.1.clone()));
        }
        let now = Utc::now();
        if let Some(found) = self.cached(&token_hash) {
            return Ok(found.and_then(|(principal, expires_at)| {
                expires_at
                    .is_none_or(|expires_at| expires_at > now)
                    .then_some(principal)
            }));
        }
        let found = self
            .store
            .find_active(&token_hash, now)
            .await?
            .map(|record| (record.expires_at, principal_of(record)));
        self.remember(
            token_hash,
            found
                .clone()
                .map(|(expires_at, principal)| (principal, expires_at)),
        );
        Ok(found.map(|(_, principal)| principal))
    }

    /// Forgets what is cached of `token_id`'s principal, so a revocation made through this
    /// process takes effect here at once.
    pub fn forget_token(&self, token_id: &str) {
        if let Ok(mut cache) = self.cache.lock() {
            let stale: Vec<String> = cache
                .iter()
                .filter(|(_, lookup)| {
                    lookup
                        .found
                        .as_ref()
                        .is_some_and(|(principal, _)| principal.id == token_id)
                })
                .map(|(hash, _)| hash.clone())
                .collect();
            for hash in stale {
                cache.pop(&hash);
            }
        }
    }

    fn cached(&self, token_hash: &str) -> Option<Option<(Principal, Option<DateTime<Utc>>)>> {
        let mut cache = self.cache.lock().ok()?;
        let lookup = cache.get(token_hash)?;
        let ttl = if lookup.found.is_some() {
            POSITIVE_TTL
        } else {
            NEGATIVE_TTL
        };
        (lookup.looked_up_at.elapsed() < ttl).then(|| lookup.found.clone())
    }

    fn remember(&self, token_hash: String, found: Option<(Principal, Option<DateTime<Utc>>)>) {
        if let Ok(mut cache) = self.cache.lock() {
            cache.put(
                token_hash,
                CachedLookup {
                    found,
                    looked_up_at: Instant::now(),
                },
            );
        }
    }
}

/// The stored hash of `token`, or `None` when it is not shaped as a token of ours: a made-up
/// string costs neither a hash nor a lookup.
fn hash_if_well_formed(token: &SecretString) -> Option<String> {
    let token = token.expose_secret();
    is_well_formed(token).then(|| hash_token(token))
}

fn principal_of(record: TokenRecord) -> Principal {
    Principal {
        id: record.id,
        person_id: record.person_id,
        name: record.name,
        roles: record.roles,
        approval_authority: record.approval_authority,
    }
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
        let Some(token_hash) = hash_if_well_formed(token) else {
            return Ok(None);
        };
        Ok(self
            .store
            .find_active(&token_hash, Utc::now())
            .await?
            .map(principal_of))
    }
}
