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

fn next_page_token(last_key: &str) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(format!("k1:{last_key}"))
}

#[cfg(test)]
mod tests {
    use super::*;

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
