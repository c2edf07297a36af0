//! Intake's side of `credit-suite audit verify`: the customer audit rows compared with what the
//! audit chain recorded of them when they were written.

use std::collections::BTreeMap;

use credit_runtime::audit::entries_of_kind;
use credit_runtime::{Database, on_database};

use super::sql::CUSTOMER_AUDIT_KIND;

/// What the comparison found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuditComparison {
    /// Rows checked against the chain.
    pub checked: u64,
    /// Rows written before the chain existed: nothing to compare them with.
    pub unchained: u64,
    /// Each row edited or deleted since it was written, with what happened to it.
    pub problems: Vec<String>,
}

/// Compares every customer audit row with its chain entry: a row whose document differs was
/// edited, a chained row that is gone was deleted. (An offline check: it reads the whole trail.)
pub async fn compare_customer_audit(database: &Database) -> Result<AuditComparison, sqlx::Error> {
    let chained: BTreeMap<String, String> = entries_of_kind(database, CUSTOMER_AUDIT_KIND)
        .await?
        .into_iter()
        .collect();
    let rows: Vec<(String, String)> = on_database!(database, |pool, sql| {
        sqlx::query_as(&sql(
            "SELECT id, CAST(document AS TEXT) FROM customer_audit ORDER BY id",
        ))
        .fetch_all(pool)
        .await?
    });
    let mut comparison = AuditComparison::default();
    let mut seen = std::collections::BTreeSet::new();
    for (id, document) in rows {
        let Some(entry) = chained.get(&id) else {
            comparison.unchained += 1;
            continue;
        };
        seen.insert(id.clone());
        comparison.checked += 1;
        // Compared as JSON values: PostgreSQL's jsonb keeps its own key order.
        let stored = serde_json::from_str::<serde_json::Value>(&document).ok();
        let recorded = serde_json::from_str::<serde_json::Value>(entry).ok();
        if stored.is_none() || stored != recorded {
            comparison.problems.push(format!(
                "customer audit entry {id} was edited after it was written"
            ));
        }
    }
    for id in chained.keys().filter(|id| !seen.contains(*id)) {
        comparison
            .problems
            .push(format!("customer audit entry {id} was deleted"));
    }
    Ok(comparison)
}
