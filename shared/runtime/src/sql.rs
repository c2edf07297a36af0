//! Helpers for stores that keep one implementation for both backends.
//!
//! A store method is written once inside [`on_database!`]: the body is compiled for the
//! PostgreSQL pool and for the SQLite pool, and `sql("… $1 …")` hands each backend its own
//! placeholder syntax. Column types are chosen so the same bindings work on both (TEXT,
//! BIGINT/INTEGER, BOOLEAN, TIMESTAMPTZ/TEXT through chrono, JSONB/TEXT through `Json<T>`).

use std::borrow::Cow;

use base64::Engine;
use credit_core::ServiceError;
use sha2::{Digest, Sha256};

/// Runs `$body` against whichever backend `$database` is, with `$pool` bound to its pool and
/// `$sql` a function that adapts PostgreSQL-style SQL (`$1`) to the backend. The optional
/// third name is bound to the statement that opens a write transaction: plain `BEGIN` on
/// PostgreSQL, `BEGIN IMMEDIATE` on SQLite so that a transaction which reads before it writes
/// takes the write lock first instead of failing with "database is locked" when it upgrades.
#[macro_export]
macro_rules! on_database {
    ($database:expr, |$pool:ident, $sql:ident| $body:block) => {
        $crate::on_database!($database, |$pool, $sql, _begin_write| $body)
    };
    ($database:expr, |$pool:ident, $sql:ident, $begin_write:ident| $body:block) => {
        match $database {
            $crate::storage::Database::Postgres($pool) => {
                #[allow(dead_code)]
                fn $sql(text: &'static str) -> ::std::borrow::Cow<'static, str> {
                    ::std::borrow::Cow::Borrowed(text)
                }
                #[allow(unused_variables)]
                let $begin_write = "BEGIN";
                $body
            }
            $crate::storage::Database::Sqlite($pool) => {
                #[allow(dead_code)]
                fn $sql(text: &'static str) -> ::std::borrow::Cow<'static, str> {
                    $crate::sql::to_sqlite(text)
                }
                #[allow(unused_variables)]
                let $begin_write = "BEGIN IMMEDIATE";
                $body
            }
        }
    };
}

/// `$1` → `?1`: SQLite's numbered parameters mean the same as PostgreSQL's. The suite's SQL
/// has no `$` anywhere else (no dollar-quoted strings).
pub fn to_sqlite(text: &'static str) -> Cow<'static, str> {
    Cow::Owned(text.replace('$', "?"))
}

/// How a store failure reaches a caller: a busy or unreachable database is UNAVAILABLE (the
/// caller may retry), anything else INTERNAL; the SQL and driver text stay in the log.
pub fn storage_error(error: sqlx::Error) -> ServiceError {
    match error {
        sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::Io(_)
        | sqlx::Error::Tls(_) => {
            ServiceError::unavailable("the store is not available; retry", error)
        }
        other => ServiceError::internal(other),
    }
}

/// Whether `error` is a violated unique constraint (on either backend).
pub fn is_unique_violation(error: &sqlx::Error) -> bool {
    error
        .as_database_error()
        .is_some_and(|database_error| database_error.is_unique_violation())
}

/// A stable digest of a request's content, stored with its idempotency key: a retry with the
/// same key and content returns the first result; the same key with other content is refused.
pub fn fingerprint(message: &impl prost::Message) -> String {
    hex::encode(Sha256::digest(message.encode_to_vec()))
}

pub const DEFAULT_PAGE_SIZE: usize = 50;
pub const MAX_PAGE_SIZE: usize = 500;

/// A validated page request: how many rows, and the key of the last row already seen.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Page {
    pub size: usize,
    pub after: Option<String>,
}

impl Page {
    /// `page_size` 0 means the default; above the maximum it is lowered to it (AIP-158).
    pub fn parse(page_size: i32, page_token: &str) -> Result<Self, ServiceError> {
        let size = match usize::try_from(page_size) {
            Ok(0) => DEFAULT_PAGE_SIZE,
            Ok(size) => size.min(MAX_PAGE_SIZE),
            Err(_) => return Err(ServiceError::invalid("page_size", "must not be negative")),
        };
        let after = if page_token.is_empty() {
            None
        } else {
            let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode(page_token)
                .map_err(|_| {
                    ServiceError::invalid("page_token", "is not a token this service issued")
                })?;
            let key = String::from_utf8(bytes)
                .ok()
                .and_then(|text| text.strip_prefix("k1:").map(str::to_owned))
                .ok_or_else(|| {
                    ServiceError::invalid("page_token", "is not a token this service issued")
                })?;
            Some(key)
        };
        Ok(Self { size, after })
    }

    /// The SQL `LIMIT`: one more row than the page, to know whether another page follows.
    pub fn fetch_limit(&self) -> i64 {
        i64::try_from(self.size + 1).unwrap_or(i64::MAX)
    }

    /// Cuts the extra row off `rows` and returns the token of the next page ("" when none).
    pub fn finish<T>(&self, rows: &mut Vec<T>, key: impl Fn(&T) -> &str) -> String {
        if rows.len() <= self.size {
            return String::new();
        }
        rows.truncate(self.size);
        rows.last()
            .map(|last| next_page_token(key(last)))
            .unwrap_or_default()
    }
}

/// The token of the page after the row whose key is `last_key`, for a list that pages its
/// own way (several sources, rows filtered after reading).
pub fn page_token_after(last_key: &str) -> String {
    next_page_token(last_key)
}

fn next_page_token(last_key: &str) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(format!("k1:{last_key}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A retry builds its request anew, so its map entries may be inserted in another order:
    /// the fingerprint must not see the difference (a map's wire order follows its keys).
    #[test]
    fn a_fingerprint_does_not_depend_on_the_order_map_entries_were_inserted() {
        let request = |inputs: &[(&str, i32)]| credit_proto::v1::RateCustomerRequest {
            request_id: "r-1".to_owned(),
            customer_id: "c-1".to_owned(),
            qualitative_inputs: inputs
                .iter()
                .map(|(key, value)| ((*key).to_owned(), *value))
                .collect(),
            ..Default::default()
        };
        let pairs = [
            ("management_quality", 4),
            ("market_position", 3),
            ("industry_outlook", 2),
            ("payment_history", 5),
        ];
        let mut reversed = pairs;
        reversed.reverse();
        assert_eq!(
            fingerprint(&request(&pairs)),
            fingerprint(&request(&reversed))
        );
        assert_ne!(
            fingerprint(&request(&pairs)),
            fingerprint(&request(&pairs[..3])),
            "other content, another fingerprint"
        );
    }

    #[test]
    fn placeholders_become_sqlite_numbered_parameters() {
        assert_eq!(
            to_sqlite("SELECT a FROM t WHERE b = $1 AND ($2 = '' OR c = $2)"),
            "SELECT a FROM t WHERE b = ?1 AND (?2 = '' OR c = ?2)"
        );
    }

    #[test]
    fn pages_round_trip_and_refuse_foreign_tokens() {
        let first = Page::parse(0, "").unwrap();
        assert_eq!(first.size, DEFAULT_PAGE_SIZE);
        assert_eq!(Page::parse(10_000, "").unwrap().size, MAX_PAGE_SIZE);
        assert!(Page::parse(-1, "").is_err());
        let page = Page::parse(2, "").unwrap();
        let mut rows = vec!["a", "b", "c"];
        let token = page.finish(&mut rows, |row| row);
        assert_eq!(rows, ["a", "b"]);
        assert_eq!(Page::parse(2, &token).unwrap().after.as_deref(), Some("b"));
        let mut last_rows = vec!["d"];
        assert_eq!(page.finish(&mut last_rows, |row| row), "");
        assert!(Page::parse(2, "bm90LW91cnM").is_err());
        assert!(Page::parse(2, "%%%").is_err());
    }
}

/// The idempotency key of a state change: who sent it, the caller's `request_id`, the
/// operation, and a digest of the request's content. Kept in each service's `idempotency_keys`
/// table for the retention period (see `store::sweep_idempotency_keys`). Keys are the caller's
/// own: another principal with the same request_id does its own work.
#[derive(Debug, Clone)]
pub struct IdempotencyKey {
    /// Whose key it is: the principal's name — the person or system as the suite knows it today,
    /// shared by all the tokens issued to it — or `system:<service>` for a consumer or a
    /// background job.
    pub caller: String,
    pub request_id: String,
    pub operation: &'static str,
    pub fingerprint: String,
}

impl IdempotencyKey {
    /// The longest request_id a caller may send.
    pub const MAX_REQUEST_ID_LEN: usize = 100;

    /// The key of a caller's request: the caller's name (`Principal::name`, `Actor::name`: one
    /// per person or system, whichever of its tokens it calls with), its `request_id`
    /// (required, at most [`Self::MAX_REQUEST_ID_LEN`] characters), the operation, and the
    /// digest of `content`.
    pub fn of_request(
        caller: &str,
        request_id: &str,
        operation: &'static str,
        content: &impl prost::Message,
    ) -> Result<Self, ServiceError> {
        let request_id =
            credit_core::required_text("request_id", request_id, Self::MAX_REQUEST_ID_LEN)?;
        Ok(Self::new(caller, request_id, operation, content))
    }

    /// The key of a caller's request whose `request_id` was checked already (with the request's
    /// other fields, so every problem is reported at once).
    pub fn new(
        caller: &str,
        request_id: String,
        operation: &'static str,
        content: &impl prost::Message,
    ) -> Self {
        Self {
            caller: caller.to_owned(),
            request_id,
            operation,
            fingerprint: fingerprint(content),
        }
    }

    /// The key of work `service` does by itself (an event it applies, a scheduled run).
    pub fn of_system(
        service: &str,
        request_id: String,
        operation: &'static str,
        fingerprint: String,
    ) -> Self {
        Self {
            caller: format!("system:{service}"),
            request_id,
            operation,
            fingerprint,
        }
    }

    /// A key derived from this one for a step of the same request (one customer of a batch,
    /// the automatic approval of a request): same caller, its own request_id.
    pub fn derived(
        &self,
        request_id: String,
        operation: &'static str,
        fingerprint: String,
    ) -> Self {
        Self {
            caller: self.caller.clone(),
            request_id,
            operation,
            fingerprint,
        }
    }
}

/// What a service's idempotency table says about a key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyLookup {
    /// Never seen: do the work.
    Fresh,
    /// The same request was done before; this is the id of what it made.
    Replay(String),
    /// The key was used for another request.
    Reused,
}

/// Looks `$key` ([`IdempotencyKey`]) up inside transaction `$tx` (use inside `on_database!`);
/// evaluates to `Result<KeyLookup, sqlx::Error>`.
#[macro_export]
macro_rules! lookup_idempotency_key {
    ($tx:expr, $sql:ident, $key:expr) => {
        async {
            use ::sqlx::Row as _;
            let row = ::sqlx::query(&$sql(
                "SELECT operation, fingerprint, resource_id FROM idempotency_keys \
                 WHERE caller = $1 AND request_id = $2",
            ))
            .bind(&$key.caller)
            .bind(&$key.request_id)
            .fetch_optional(&mut *$tx)
            .await?;
            let Some(row) = row else {
                return Ok::<_, ::sqlx::Error>($crate::sql::KeyLookup::Fresh);
            };
            let operation: String = row.try_get(0)?;
            let fingerprint: String = row.try_get(1)?;
            if operation != $key.operation || fingerprint != $key.fingerprint {
                return Ok($crate::sql::KeyLookup::Reused);
            }
            Ok($crate::sql::KeyLookup::Replay(row.try_get::<String, _>(2)?))
        }
        .await
    };
}

/// Records `$key` as having made `$resource_id`, inside transaction `$tx`.
#[macro_export]
macro_rules! insert_idempotency_key {
    ($tx:expr, $sql:ident, $key:expr, $resource_id:expr, $now:expr) => {
        ::sqlx::query(&$sql(
            "INSERT INTO idempotency_keys \
             (caller, request_id, operation, fingerprint, resource_id, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6)",
        ))
        .bind(&$key.caller)
        .bind(&$key.request_id)
        .bind($key.operation)
        .bind(&$key.fingerprint)
        .bind($resource_id)
        .bind($now)
        .execute(&mut *$tx)
        .await
    };
}

/// Appends `$event` (a `credit.v1.Event`) to the outbox inside transaction `$tx`.
#[macro_export]
macro_rules! insert_outbox_event {
    ($tx:expr, $sql:ident, $event:expr) => {
        ::sqlx::query(&$sql(
            "INSERT INTO outbox (event_id, event_type, payload) VALUES ($1, $2, $3)",
        ))
        .bind(&$event.event_id)
        .bind($crate::events::event_type($event))
        .bind(::prost::Message::encode_to_vec($event))
        .execute(&mut *$tx)
        .await
    };
}

/// The idempotency key came with other content than the first time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("request_id was used before for a different request")]
pub struct KeyReused;

impl KeyLookup {
    /// The id a replayed request made, `None` for a fresh key, `KeyReused` otherwise.
    pub fn into_replay(self) -> Result<Option<String>, KeyReused> {
        match self {
            KeyLookup::Fresh => Ok(None),
            KeyLookup::Replay(resource_id) => Ok(Some(resource_id)),
            KeyLookup::Reused => Err(KeyReused),
        }
    }
}

/// A store error that may be a lost race on a unique index.
pub trait MaybeRace {
    fn is_race(&self) -> bool;
}

/// Runs `attempt` once more when it lost a race on a unique index (two callers creating the
/// same thing at once): the second run sees the winner's row and answers as a replay or a
/// duplicate instead of failing.
pub async fn retry_once_on_race<T, E, F, Fut>(mut attempt: F) -> Result<T, E>
where
    E: MaybeRace,
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, E>>,
{
    match attempt().await {
        Err(error) if error.is_race() => attempt().await,
        other => other,
    }
}
