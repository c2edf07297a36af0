//! Dead letters: events a consumer could not apply, kept in the events store (schema `events`
//! on PostgreSQL, `events.db` on SQLite) until an operator replays or drops them.
//!
//! They are kept in the database, not in a Redis stream, because they are the one copy of an
//! event its consumer has let go of: Redis is a cache the suite may lose, and a dead letter
//! lost with it would be an event lost for good. One row per consumer group and event, so a
//! redelivery of an event that fails again (a crash before the stream entry was acknowledged)
//! updates its row rather than adding a second one; every step is in `dead_letter_actions`,
//! with who took it (a consumer group, or a person's principal id) and why.

use chrono::{DateTime, SubsecRound, Utc};
use sqlx::Row;
use sqlx::migrate::Migrator;

use crate::on_database;
use crate::sql::Page;
use crate::storage::{Database, StoreSpec};

/// The consumer name under which the outbox relay dead-letters rows it cannot decode; their
/// replay publishes the row again instead of handing it to a consumer.
pub const RELAY_CONSUMER: &str = "outbox-relay";

static POSTGRES_MIGRATIONS: Migrator = sqlx::migrate!("migrations/events/postgres");
static SQLITE_MIGRATIONS: Migrator = sqlx::migrate!("migrations/events/sqlite");

/// The event pipeline's own tables: schema `events` on PostgreSQL, `events.db` on SQLite.
pub static EVENTS_STORE: StoreSpec = StoreSpec {
    name: "events",
    postgres_migrations: &POSTGRES_MIGRATIONS,
    sqlite_migrations: &SQLITE_MIGRATIONS,
    common_migrations: &[],
};

/// A replay taken by a consumer this long ago and never finished (its process died) may be
/// taken by another.
const STALE_REPLAY_SECS: i64 = 60;

/// Appends one step to a dead letter's history inside `$transaction`.
macro_rules! insert_action {
    ($transaction:ident, $sql:ident, $id:expr, $action:expr, $actor:expr, $detail:expr, $at:expr) => {
        sqlx::query(&$sql(
            "INSERT INTO dead_letter_actions (dead_letter_id, action, actor, detail, at) \
             VALUES ($1, $2, $3, $4, $5)",
        ))
        .bind($id)
        .bind($action)
        .bind($actor)
        .bind($detail)
        .bind($at)
        .execute(&mut *$transaction)
        .await
    };
}

/// Where a dead letter stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeadLetterStatus {
    /// Waiting for an operator.
    Dead,
    /// An operator asked for a replay; no consumer has taken it yet.
    ReplayRequested,
    /// A consumer is applying it again.
    Replaying,
    /// Applied by a replay.
    Replayed,
    /// Closed by an operator without being applied.
    Dropped,
}

impl DeadLetterStatus {
    fn as_str(self) -> &'static str {
        match self {
            Self::Dead => "DEAD",
            Self::ReplayRequested => "REPLAY_REQUESTED",
            Self::Replaying => "REPLAYING",
            Self::Replayed => "REPLAYED",
            Self::Dropped => "DROPPED",
        }
    }

    fn parse(text: &str) -> Self {
        match text {
            "REPLAY_REQUESTED" => Self::ReplayRequested,
            "REPLAYING" => Self::Replaying,
            "REPLAYED" => Self::Replayed,
            "DROPPED" => Self::Dropped,
            _ => Self::Dead,
        }
    }

    /// Replayed or dropped: nothing more will happen to it.
    pub fn is_closed(self) -> bool {
        matches!(self, Self::Replayed | Self::Dropped)
    }
}

/// An event to dead-letter.
#[derive(Debug, Clone)]
pub struct NewDeadLetter<'a> {
    pub consumer: &'a str,
    pub producer: &'a str,
    /// Empty when the entry could not be decoded.
    pub event_id: &'a str,
    pub event_type: &'a str,
    pub payload: &'a [u8],
    /// The stream entry id, or the outbox row, it came from.
    pub source: &'a str,
    pub error: &'a str,
    pub attempts: u32,
}

/// A dead letter as stored.
#[derive(Debug, Clone)]
pub struct DeadLetter {
    pub dead_letter_id: String,
    pub consumer: String,
    pub producer: String,
    pub event_id: String,
    pub event_type: String,
    pub payload: Vec<u8>,
    pub source: String,
    pub error: String,
    pub attempts: i64,
    pub status: DeadLetterStatus,
    pub dead_lettered_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// Oldest first; filled by [`DeadLetterStore::get`] only.
    pub history: Vec<DeadLetterAction>,
}

/// One step of a dead letter's history.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeadLetterAction {
    pub action: String,
    pub actor: String,
    pub detail: String,
    pub at: DateTime<Utc>,
}

/// One page of the operator's list.
#[derive(Debug, Clone)]
pub struct DeadLetterPage {
    pub dead_letters: Vec<DeadLetter>,
    pub next_page_token: String,
    /// Open (dead or waiting for a replay) over every page.
    pub open_count: i64,
}

#[derive(Debug, thiserror::Error)]
pub enum DeadLetterError {
    #[error("dead letter '{0}' was not found")]
    NotFound(String),
    #[error("dead letter '{0}' is closed already (replayed or dropped)")]
    Closed(String),
    /// A row the relay could not decode: there is no event to apply again.
    #[error("dead letter '{0}' is an outbox row that cannot be decoded; it can only be dropped")]
    NotReplayable(String),
    #[error("the events store failed: {0}")]
    Store(#[from] sqlx::Error),
}

/// The dead letters of every consumer group, on one of the two backends.
#[derive(Debug, Clone)]
pub struct DeadLetterStore {
    database: Database,
}

fn stored_now() -> DateTime<Utc> {
    Utc::now().trunc_subsecs(6)
}

/// The columns of [`DeadLetterRow`], in order.
macro_rules! dead_letter_columns {
    () => {
        "dead_letter_id, consumer, producer, event_id, event_type, payload, source, error, \
         attempts, status, dead_lettered_at, updated_at"
    };
}

/// `SELECT <the columns of DeadLetterRow> FROM dead_letters WHERE <condition>`.
macro_rules! dead_letters_where {
    ($condition:literal) => {
        concat!(
            "SELECT ",
            dead_letter_columns!(),
            " FROM dead_letters WHERE ",
            $condition
        )
    };
}

/// A row of `dead_letters`, read the same way on both backends.
#[derive(sqlx::FromRow)]
struct DeadLetterRow {
    dead_letter_id: String,
    consumer: String,
    producer: String,
    event_id: String,
    event_type: String,
    payload: Vec<u8>,
    source: String,
    error: String,
    attempts: i64,
    status: String,
    dead_lettered_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
}

impl From<DeadLetterRow> for DeadLetter {
    fn from(row: DeadLetterRow) -> Self {
        Self {
            dead_letter_id: row.dead_letter_id,
            consumer: row.consumer,
            producer: row.producer,
            event_id: row.event_id,
            event_type: row.event_type,
            payload: row.payload,
            source: row.source,
            error: row.error,
            attempts: row.attempts,
            status: DeadLetterStatus::parse(&row.status),
            dead_lettered_at: row.dead_lettered_at,
            updated_at: row.updated_at,
            history: Vec::new(),
        }
    }
}

/// An action row of `dead_letter_actions`.
#[derive(sqlx::FromRow)]
struct ActionRow {
    action: String,
    actor: String,
    detail: String,
    at: DateTime<Utc>,
}

/// One dead letter with its history, read through `$executor` (a pool, or a transaction
/// that must see its own writes); `None` when there is none.
macro_rules! read_letter {
    ($executor:expr, $sql:ident, $dead_letter_id:expr) => {
        async {
            let Some(row) = sqlx::query_as::<_, DeadLetterRow>(&$sql(dead_letters_where!(
                "dead_letter_id = $1"
            )))
            .bind($dead_letter_id)
            .fetch_optional($executor)
            .await?
            else {
                return Ok::<_, sqlx::Error>(None);
            };
            let mut letter = DeadLetter::from(row);
            letter.history = sqlx::query_as::<_, ActionRow>(&$sql(
                "SELECT action, actor, detail, at FROM dead_letter_actions \
                 WHERE dead_letter_id = $1 ORDER BY seq",
            ))
            .bind($dead_letter_id)
            .fetch_all($executor)
            .await?
            .into_iter()
            .map(|row| DeadLetterAction {
                action: row.action,
                actor: row.actor,
                detail: row.detail,
                at: row.at,
            })
            .collect();
            Ok(Some(letter))
        }
        .await
    };
}

impl DeadLetterStore {
    pub fn new(database: Database) -> Self {
        Self { database }
    }

    pub fn database(&self) -> &Database {
        &self.database
    }

    /// Dead-letters an event, or, when this consumer has dead-lettered it before, records the
    /// new failure on the same row: attempts add up, the error is the latest, and a letter
    /// waiting for a replay is dead again. A dropped one stays dropped: the operator decided
    /// that this event is not to be applied. Returns the dead letter's id.
    pub async fn record(&self, letter: &NewDeadLetter<'_>) -> Result<String, sqlx::Error> {
        let now = stored_now();
        let new_id = uuid::Uuid::now_v7().to_string();
        let dedupe_key = if letter.event_id.is_empty() {
            format!("source:{}", letter.source)
        } else {
            letter.event_id.to_owned()
        };
        let attempts = i64::from(letter.attempts);
        on_database!(&self.database, |pool, sql, begin_write| {
            let mut transaction = pool.begin_with(begin_write).await?;
            let dead_letter_id: String = sqlx::query_scalar(&sql(
                "INSERT INTO dead_letters (dead_letter_id, consumer, producer, dedupe_key, event_id, \
                 event_type, payload, source, error, attempts, status, dead_lettered_at, updated_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, 'DEAD', $11, $11) \
                 ON CONFLICT (consumer, dedupe_key) DO UPDATE SET \
                 error = excluded.error, source = excluded.source, \
                 attempts = dead_letters.attempts + excluded.attempts, \
                 status = CASE WHEN dead_letters.status = 'DROPPED' THEN 'DROPPED' ELSE 'DEAD' END, \
                 updated_at = excluded.updated_at \
                 RETURNING dead_letter_id",
            ))
            .bind(&new_id)
            .bind(letter.consumer)
            .bind(letter.producer)
            .bind(&dedupe_key)
            .bind(letter.event_id)
            .bind(letter.event_type)
            .bind(letter.payload)
            .bind(letter.source)
            .bind(letter.error)
            .bind(attempts)
            .bind(now)
            .fetch_one(&mut *transaction)
            .await?;
            insert_action!(
                transaction,
                sql,
                &dead_letter_id,
                "DEAD_LETTERED",
                letter.consumer,
                letter.error,
                now
            )?;
            transaction.commit().await?;
            Ok(dead_letter_id)
        })
    }

    /// The operator's list, newest first: open ones only unless `include_closed`.
    pub async fn list(
        &self,
        consumer: Option<&str>,
        include_closed: bool,
        page: &Page,
    ) -> Result<DeadLetterPage, sqlx::Error> {
        // An id far above every uuid v7 stands for "from the newest".
        let after = page.after.clone().unwrap_or_else(|| "~".to_owned());
        let consumer = consumer.unwrap_or_default();
        let (mut dead_letters, open_count) = on_database!(&self.database, |pool, sql| {
            let dead_letters: Vec<DeadLetter> =
                sqlx::query_as::<_, DeadLetterRow>(&sql(dead_letters_where!(
                    "dead_letter_id < $1 AND ($2 = '' OR consumer = $2) \
                     AND ($3 OR status IN ('DEAD', 'REPLAY_REQUESTED', 'REPLAYING')) \
                     ORDER BY dead_letter_id DESC LIMIT $4"
                )))
                .bind(&after)
                .bind(consumer)
                .bind(include_closed)
                .bind(page.fetch_limit())
                .fetch_all(pool)
                .await?
                .into_iter()
                .map(DeadLetter::from)
                .collect();
            let open_count: i64 = sqlx::query_scalar(&sql(
                "SELECT COUNT(*) FROM dead_letters WHERE ($1 = '' OR consumer = $1) \
                 AND status IN ('DEAD', 'REPLAY_REQUESTED', 'REPLAYING')",
            ))
            .bind(consumer)
            .fetch_one(pool)
            .await?;
            Ok::<_, sqlx::Error>((dead_letters, open_count))
        })?;
        let next_page_token = page.finish(&mut dead_letters, |letter| &letter.dead_letter_id);
        Ok(DeadLetterPage {
            dead_letters,
            next_page_token,
            open_count,
        })
    }

    /// Open dead letters per consumer group, for the metrics.
    pub async fn open_counts(&self) -> Result<Vec<(String, i64)>, sqlx::Error> {
        on_database!(&self.database, |pool, sql| {
            let rows = sqlx::query(&sql("SELECT consumer, COUNT(*) FROM dead_letters \
                 WHERE status IN ('DEAD', 'REPLAY_REQUESTED', 'REPLAYING') GROUP BY consumer"))
            .fetch_all(pool)
            .await?;
            rows.iter()
                .map(|row| Ok((row.try_get(0)?, row.try_get(1)?)))
                .collect()
        })
    }

    /// One dead letter with its history.
    pub async fn get(&self, dead_letter_id: &str) -> Result<Option<DeadLetter>, sqlx::Error> {
        on_database!(&self.database, |pool, sql| {
            read_letter!(pool, sql, dead_letter_id)
        })
    }

    /// An operator asks for a replay: the letter's consumer takes it within seconds.
    pub async fn request_replay(
        &self,
        dead_letter_id: &str,
        actor: &str,
        reason: &str,
    ) -> Result<DeadLetter, DeadLetterError> {
        let letter = self
            .get(dead_letter_id)
            .await?
            .ok_or_else(|| DeadLetterError::NotFound(dead_letter_id.to_owned()))?;
        if letter.consumer == RELAY_CONSUMER {
            return Err(DeadLetterError::NotReplayable(dead_letter_id.to_owned()));
        }
        self.operator_step(
            dead_letter_id,
            DeadLetterStatus::ReplayRequested,
            "REPLAY_REQUESTED",
            actor,
            reason,
        )
        .await
    }

    /// An operator closes a letter without applying it.
    pub async fn drop_letter(
        &self,
        dead_letter_id: &str,
        actor: &str,
        reason: &str,
    ) -> Result<DeadLetter, DeadLetterError> {
        self.operator_step(
            dead_letter_id,
            DeadLetterStatus::Dropped,
            "DROPPED",
            actor,
            reason,
        )
        .await
    }

    async fn operator_step(
        &self,
        dead_letter_id: &str,
        status: DeadLetterStatus,
        action: &str,
        actor: &str,
        detail: &str,
    ) -> Result<DeadLetter, DeadLetterError> {
        let now = stored_now();
        let outcome = on_database!(&self.database, |pool, sql, begin_write| {
            async {
                let mut transaction = pool.begin_with(begin_write).await?;
                let current: Option<String> = sqlx::query_scalar(&sql(
                    "SELECT status FROM dead_letters WHERE dead_letter_id = $1",
                ))
                .bind(dead_letter_id)
                .fetch_optional(&mut *transaction)
                .await?;
                let Some(current) = current else {
                    return Ok(Err(DeadLetterError::NotFound(dead_letter_id.to_owned())));
                };
                if DeadLetterStatus::parse(&current).is_closed() {
                    return Ok(Err(DeadLetterError::Closed(dead_letter_id.to_owned())));
                }
                sqlx::query(&sql(
                "UPDATE dead_letters SET status = $2, updated_at = $3 WHERE dead_letter_id = $1",
            ))
            .bind(dead_letter_id)
            .bind(status.as_str())
            .bind(now)
            .execute(&mut *transaction)
            .await?;
                insert_action!(transaction, sql, dead_letter_id, action, actor, detail, now)?;
                // Read inside the step: a consumer taking the replay a moment after the commit
                // must not change what the operator is answered.
                let letter = read_letter!(&mut *transaction, sql, dead_letter_id)?
                    .ok_or(sqlx::Error::RowNotFound)?;
                transaction.commit().await?;
                Ok::<_, sqlx::Error>(Ok(letter))
            }
            .await
        });
        outcome?
    }

    /// Takes up to `limit` replays requested for `consumer` (and any a dead process took and
    /// never finished): the caller applies each and reports with [`Self::finish_replay`].
    /// Replicas of one consumer never take the same replay.
    pub async fn take_replays(
        &self,
        consumer: &str,
        limit: i64,
    ) -> Result<Vec<DeadLetter>, sqlx::Error> {
        let now = stored_now();
        let stale = now - chrono::Duration::seconds(STALE_REPLAY_SECS);
        on_database!(&self.database, |pool, sql, begin_write| {
            let mut transaction = pool.begin_with(begin_write).await?;
            let rows = sqlx::query_as::<_, DeadLetterRow>(&sql(concat!(
                "UPDATE dead_letters SET status = 'REPLAYING', updated_at = $2 \
                 WHERE dead_letter_id IN (SELECT dead_letter_id FROM dead_letters \
                 WHERE consumer = $1 AND (status = 'REPLAY_REQUESTED' \
                 OR (status = 'REPLAYING' AND updated_at < $3)) ORDER BY updated_at LIMIT $4) \
                 AND (status = 'REPLAY_REQUESTED' OR (status = 'REPLAYING' AND updated_at < $3)) \
                 RETURNING ",
                dead_letter_columns!()
            )))
            .bind(consumer)
            .bind(now)
            .bind(stale)
            .bind(limit)
            .fetch_all(&mut *transaction)
            .await?;
            transaction.commit().await?;
            Ok(rows.into_iter().map(DeadLetter::from).collect())
        })
    }

    /// Ends a replay: applied (closed as REPLAYED) or failed again (DEAD, with the error).
    pub async fn finish_replay(
        &self,
        dead_letter_id: &str,
        consumer: &str,
        outcome: Result<(), &str>,
    ) -> Result<(), sqlx::Error> {
        let now = stored_now();
        let (status, action, detail) = match outcome {
            Ok(()) => (DeadLetterStatus::Replayed, "REPLAYED", ""),
            Err(error) => (DeadLetterStatus::Dead, "REPLAY_FAILED", error),
        };
        on_database!(&self.database, |pool, sql, begin_write| {
            let mut transaction = pool.begin_with(begin_write).await?;
            sqlx::query(&sql(
                "UPDATE dead_letters SET status = $2, updated_at = $3, attempts = attempts + 1, \
                 error = CASE WHEN $4 = '' THEN error ELSE $4 END \
                 WHERE dead_letter_id = $1 AND status = 'REPLAYING'",
            ))
            .bind(dead_letter_id)
            .bind(status.as_str())
            .bind(now)
            .bind(detail)
            .execute(&mut *transaction)
            .await?;
            insert_action!(
                transaction,
                sql,
                dead_letter_id,
                action,
                consumer,
                detail,
                now
            )?;
            transaction.commit().await?;
            Ok(())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_round_trip_and_only_replayed_or_dropped_are_closed() {
        for status in [
            DeadLetterStatus::Dead,
            DeadLetterStatus::ReplayRequested,
            DeadLetterStatus::Replaying,
            DeadLetterStatus::Replayed,
            DeadLetterStatus::Dropped,
        ] {
            assert_eq!(DeadLetterStatus::parse(status.as_str()), status);
            assert_eq!(
                status.is_closed(),
                matches!(
                    status,
                    DeadLetterStatus::Replayed | DeadLetterStatus::Dropped
                )
            );
        }
    }
}
