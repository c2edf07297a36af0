//! A tamper-evident audit trail: every service keeps its audit entries in `audit_chain`, each
//! hashed over the previous entry's hash and its own content (store kit migration
//! `audit_chain.sql`). Appending happens in the transaction of the change it records
//! ([`append_audit!`]); [`verify_chain`] recomputes the chain and names the first entry that
//! was edited, deleted or inserted out of turn.

use chrono::{DateTime, SecondsFormat, Utc};
use sha2::{Digest, Sha256};

use crate::on_database;
use crate::storage::Database;

/// One audit entry to append.
#[derive(Debug, Clone)]
pub struct AuditRecord<'a> {
    /// What happened, dotted: `customer.changed`, `limit_request.decided`.
    pub kind: &'a str,
    /// The record it happened to.
    pub record_id: &'a str,
    /// Who did it (the actor's name).
    pub actor: &'a str,
    /// The entry itself, as JSON: what a reader of the trail sees.
    pub entry: String,
}

/// The hash of an entry: over the previous hash and every field, each on its own line, so no
/// two different entries hash alike by moving text between fields.
pub fn entry_hash(
    prev_hash: &str,
    seq: i64,
    recorded_at: &str,
    kind: &str,
    record_id: &str,
    actor: &str,
    entry: &str,
) -> String {
    let mut hasher = Sha256::new();
    for part in [
        prev_hash,
        &seq.to_string(),
        recorded_at,
        kind,
        record_id,
        actor,
    ] {
        hasher.update(part.len().to_string().as_bytes());
        hasher.update(b":");
        hasher.update(part.as_bytes());
        hasher.update(b"\n");
    }
    hasher.update(entry.as_bytes());
    hex::encode(hasher.finalize())
}

/// The time of an entry as it is stored and hashed: RFC 3339 in UTC, to the microsecond.
pub fn recorded_at_text(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Micros, true)
}

/// Appends an [`AuditRecord`] to the chain inside the open transaction `$tx`. The head row's
/// update takes its lock, so concurrent appends line up; the entry commits or rolls back with
/// the change it records.
#[macro_export]
macro_rules! append_audit {
    ($tx:ident, $sql:ident, $record:expr) => {
        async {
            let record: &$crate::audit::AuditRecord<'_> = $record;
            let (seq, prev_hash): (i64, String) = sqlx::query_as(&$sql(
                "UPDATE audit_chain_head SET seq = seq + 1 WHERE id = 1 RETURNING seq, hash",
            ))
            .fetch_one(&mut *$tx)
            .await?;
            let recorded_at = $crate::audit::recorded_at_text(chrono::Utc::now());
            let hash = $crate::audit::entry_hash(
                &prev_hash,
                seq,
                &recorded_at,
                record.kind,
                record.record_id,
                record.actor,
                &record.entry,
            );
            sqlx::query(&$sql(
                "INSERT INTO audit_chain (seq, recorded_at, kind, record_id, actor, entry, prev_hash, hash) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
            ))
            .bind(seq)
            .bind(&recorded_at)
            .bind(record.kind)
            .bind(record.record_id)
            .bind(record.actor)
            .bind(&record.entry)
            .bind(&prev_hash)
            .bind(&hash)
            .execute(&mut *$tx)
            .await?;
            sqlx::query(&$sql("UPDATE audit_chain_head SET hash = $1 WHERE id = 1"))
                .bind(&hash)
                .execute(&mut *$tx)
                .await?;
            Ok::<(), sqlx::Error>(())
        }
    };
}

/// A stored entry, as verification reads it.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ChainEntry {
    pub seq: i64,
    pub recorded_at: String,
    pub kind: String,
    pub record_id: String,
    pub actor: String,
    pub entry: String,
    pub prev_hash: String,
    pub hash: String,
}

/// What verification found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChainReport {
    /// Entries read.
    pub entries: u64,
    /// The first problem, if any: where and what.
    pub problem: Option<String>,
}

/// Entries read at a time, so a long trail is verified in constant memory.
const VERIFY_BATCH: i64 = 5_000;

/// Recomputes the whole chain of `database`: sequence numbers without gaps from 1, each entry's
/// link to the one before, each hash, and the head naming the last entry.
pub async fn verify_chain(database: &Database) -> Result<ChainReport, sqlx::Error> {
    let mut expected_seq = 1_i64;
    let mut prev_hash = String::new();
    let mut entries = 0_u64;
    loop {
        let batch: Vec<ChainEntry> = on_database!(database, |pool, sql| {
            sqlx::query_as(&sql(
                "SELECT seq, recorded_at, kind, record_id, actor, entry, prev_hash, hash \
                 FROM audit_chain WHERE seq >= $1 ORDER BY seq LIMIT $2",
            ))
            .bind(expected_seq)
            .bind(VERIFY_BATCH)
            .fetch_all(pool)
            .await?
        });
        let done = i64::try_from(batch.len()).unwrap_or(0) < VERIFY_BATCH;
        for entry in batch {
            if let Some(problem) = check_entry(&entry, expected_seq, &prev_hash) {
                return Ok(ChainReport {
                    entries,
                    problem: Some(problem),
                });
            }
            entries += 1;
            expected_seq += 1;
            prev_hash = entry.hash;
        }
        if done {
            break;
        }
    }
    let (head_seq, head_hash): (i64, String) = on_database!(database, |pool, sql| {
        sqlx::query_as(&sql("SELECT seq, hash FROM audit_chain_head WHERE id = 1"))
            .fetch_one(pool)
            .await?
    });
    let problem = (head_seq != expected_seq - 1 || head_hash != prev_hash).then(|| {
        format!(
            "the chain ends at entry {} but its head names entry {head_seq}: the newest entries were deleted or the head edited",
            expected_seq - 1
        )
    });
    Ok(ChainReport { entries, problem })
}

fn check_entry(entry: &ChainEntry, expected_seq: i64, prev_hash: &str) -> Option<String> {
    let at = format!("entry {} ({} {})", entry.seq, entry.kind, entry.record_id);
    if entry.seq != expected_seq {
        return Some(format!(
            "entry {expected_seq} is missing (the next is {}): deleted",
            entry.seq
        ));
    }
    if entry.prev_hash != prev_hash {
        return Some(format!(
            "{at} does not follow the entry before it: edited or replaced"
        ));
    }
    let recomputed = entry_hash(
        &entry.prev_hash,
        entry.seq,
        &entry.recorded_at,
        &entry.kind,
        &entry.record_id,
        &entry.actor,
        &entry.entry,
    );
    (recomputed != entry.hash)
        .then(|| format!("{at} was edited: its content no longer matches its hash"))
}

/// The entries of one kind, by record id: for a service to compare its own audit rows with
/// what the chain recorded of them.
pub async fn entries_of_kind(
    database: &Database,
    kind: &str,
) -> Result<Vec<(String, String)>, sqlx::Error> {
    let rows = on_database!(database, |pool, sql| {
        sqlx::query_as(&sql(
            "SELECT record_id, entry FROM audit_chain WHERE kind = $1 ORDER BY seq",
        ))
        .bind(kind)
        .fetch_all(pool)
        .await?
    });
    Ok(rows)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_field_and_the_link_change_the_hash() {
        let base = entry_hash(
            "prev",
            7,
            "2026-12-07T12:00:00.000000Z",
            "k",
            "r",
            "a",
            "{}",
        );
        assert_ne!(
            base,
            entry_hash(
                "other",
                7,
                "2026-12-07T12:00:00.000000Z",
                "k",
                "r",
                "a",
                "{}"
            )
        );
        assert_ne!(
            base,
            entry_hash(
                "prev",
                8,
                "2026-12-07T12:00:00.000000Z",
                "k",
                "r",
                "a",
                "{}"
            )
        );
        assert_ne!(
            base,
            entry_hash(
                "prev",
                7,
                "2026-12-07T12:00:00.000000Z",
                "k",
                "r",
                "b",
                "{}"
            )
        );
        // Text moved from one field to the next is another entry.
        assert_ne!(
            entry_hash("prev", 7, "t", "ab", "c", "a", "{}"),
            entry_hash("prev", 7, "t", "a", "bc", "a", "{}")
        );
        assert_eq!(
            base,
            entry_hash(
                "prev",
                7,
                "2026-12-07T12:00:00.000000Z",
                "k",
                "r",
                "a",
                "{}"
            )
        );
    }
}
