//! The audit trail is tamper-evident: `audit verify` finds an edited or deleted row.

use credit_core::Role;
use credit_e2e_tests::{TestSuite, uscc};
use credit_runtime::{Database, on_database};

use crate::intake::{create, enterprise};

async fn intake_store(suite: &TestSuite) -> Database {
    Database::open(&suite.settings.backend, &credit_intake::STORE, 1, false)
        .await
        .unwrap()
}

async fn execute(database: &Database, statement: &'static str) {
    on_database!(database, |pool, sql| {
        sqlx::query(&sql(statement)).execute(pool).await.unwrap();
    });
}

pub async fn audit_verify_finds_an_edited_or_deleted_row(suite: &TestSuite) {
    let mut intake = suite.intake(&suite.issue_token("ana", &[Role::Analyst]).await);
    for number in 0..3 {
        create(
            &mut intake,
            &format!("audit-{number}"),
            enterprise(&format!("Audited Trading {number}"), &uscc(7100 + number)),
        )
        .await
        .unwrap();
    }
    let intact = credit_suite::audit_cli::verify(&suite.settings)
        .await
        .unwrap();
    assert!(!intact.tampered, "{:?}", intact.lines);
    assert!(
        intact
            .lines
            .contains(&"intake: 3 entries, chain intact".to_owned()),
        "{:?}",
        intact.lines
    );

    // An audit row edited in place (its reason rewritten) is found.
    let database = intake_store(suite).await;
    let rewrite = if suite.settings.backend.is_embedded() {
        "UPDATE customer_audit SET document = REPLACE(document, 'ana', 'eve') \
         WHERE id = (SELECT MIN(id) FROM customer_audit)"
    } else {
        "UPDATE customer_audit SET document = CAST(REPLACE(CAST(document AS TEXT), 'ana', 'eve') AS JSONB) \
         WHERE id = (SELECT MIN(id) FROM customer_audit)"
    };
    execute(&database, rewrite).await;
    let edited = credit_suite::audit_cli::verify(&suite.settings)
        .await
        .unwrap();
    assert!(edited.tampered);
    assert!(
        edited
            .lines
            .iter()
            .any(|line| line.contains("TAMPERED") && line.contains("was edited")),
        "{:?}",
        edited.lines
    );

    // So is a chain entry edited, and one deleted.
    execute(
        &database,
        "UPDATE audit_chain SET actor = 'eve' WHERE seq = 2",
    )
    .await;
    let chain_edited = credit_suite::audit_cli::verify(&suite.settings)
        .await
        .unwrap();
    assert!(
        chain_edited
            .lines
            .iter()
            .any(|line| line.starts_with("intake: TAMPERED: entry 2")),
        "{:?}",
        chain_edited.lines
    );
    execute(&database, "DELETE FROM audit_chain WHERE seq = 2").await;
    let deleted = credit_suite::audit_cli::verify(&suite.settings)
        .await
        .unwrap();
    assert!(
        deleted
            .lines
            .iter()
            .any(|line| line.contains("entry 2 is missing")),
        "{:?}",
        deleted.lines
    );
    database.close().await;
}
