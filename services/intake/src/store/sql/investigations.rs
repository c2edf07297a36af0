//! [`InvestigationStore`] in SQL, on either backend.

use async_trait::async_trait;
use credit_core::ServiceError;
use credit_proto::v1::Event;
use credit_runtime::on_database;
use credit_runtime::sql::{IdempotencyKey, Page, retry_once_on_race};
use credit_runtime::store::DocumentRow;
use credit_runtime::{insert_idempotency_key, insert_outbox_event, lookup_idempotency_key};
use sqlx::types::Json;

use super::{CUSTOMER_AUDIT_KIND, CustomerDocumentTable, SqlIntakeStore};
use crate::domain::investigations::{Checklist, CreditDocument, Investigation, MAX_CHECKLISTS};
use crate::domain::records::AuditEntry;
use crate::store::{
    InvestigationChanges, InvestigationStore, Outcome, StoreError, StoreResult, dated_cursor,
};

/// ErrorInfo reason when a customer has an open investigation already.
pub const INVESTIGATION_OPEN: &str = "INVESTIGATION_OPEN";

fn investigation_open(open_id: String) -> StoreError {
    StoreError::refused(ServiceError::FailedPrecondition {
        reason: INVESTIGATION_OPEN,
        message: format!(
            "the customer's investigation {open_id} is open: complete or cancel it first"
        ),
        metadata: vec![("investigation_id", open_id)],
    })
}

#[async_trait]
impl InvestigationStore for SqlIntakeStore {
    async fn add_document(
        &self,
        document: &CreditDocument,
        key: &IdempotencyKey,
        audit: &AuditEntry,
        event: &Event,
    ) -> StoreResult<Outcome<CreditDocument>> {
        let issued_on = document.issued_on.format("%Y-%m-%d").to_string();
        self.add_customer_document(
            CustomerDocumentTable::CREDIT_DOCUMENTS,
            (&document.id, &document.customer_id, document.recorded_at),
            Some(&issued_on),
            document,
            key,
            audit,
            Some(event),
        )
        .await
    }

    async fn get_document(&self, id: &str) -> StoreResult<Option<CreditDocument>> {
        self.document_by_id("SELECT document FROM credit_documents WHERE id = $1", id)
            .await
    }

    async fn list_documents(
        &self,
        customer_id: &str,
        document_type: &str,
        page: &Page,
    ) -> StoreResult<Vec<CreditDocument>> {
        let (after_issued_on, after_id) = dated_cursor(page.after.as_deref())?;
        on_database!(&self.database, |pool, sql| {
            let rows: Vec<DocumentRow<CreditDocument>> = sqlx::query_as(&sql(
                "SELECT document FROM credit_documents WHERE customer_id = $1 \
                 AND ($2 = '' OR (issued_on, id) < ($2, $3)) \
                 AND ($4 = '' OR document->>'document_type' = $4) \
                 ORDER BY issued_on DESC, id DESC LIMIT $5",
            ))
            .bind(customer_id)
            .bind(after_issued_on)
            .bind(after_id)
            .bind(document_type)
            .bind(page.fetch_limit())
            .fetch_all(pool)
            .await?;
            Ok(rows.into_iter().map(DocumentRow::into_record).collect())
        })
    }

    async fn add_checklist(
        &self,
        checklist: &Checklist,
        key: &IdempotencyKey,
    ) -> StoreResult<Outcome<Checklist>> {
        let resource = format!("{}@{}", checklist.checklist_id, checklist.version);
        on_database!(&self.database, |pool, sql, begin_write| {
            let mut tx = pool.begin_with(begin_write).await?;
            if let Some(existing) = lookup_idempotency_key!(tx, sql, key)?.into_replay()? {
                let (id, version) = existing
                    .rsplit_once('@')
                    .unwrap_or((existing.as_str(), "0"));
                let row: DocumentRow<Checklist> = sqlx::query_as(&sql(
                    "SELECT document FROM investigation_checklists WHERE checklist_id = $1 AND version = $2",
                ))
                .bind(id)
                .bind(version.parse::<i32>().unwrap_or(0))
                .fetch_one(&mut *tx)
                .await?;
                return Ok(Outcome::Replayed(row.into_record()));
            }
            let inserted = sqlx::query(&sql(
                "INSERT INTO investigation_checklists (checklist_id, version, document, published_at) \
                 VALUES ($1, $2, $3, $4) ON CONFLICT (checklist_id, version) DO NOTHING",
            ))
            .bind(&checklist.checklist_id)
            .bind(checklist.version)
            .bind(Json(checklist))
            .bind(checklist.published_at)
            .execute(&mut *tx)
            .await?;
            if inserted.rows_affected() != 1 {
                return Err(StoreError::VersionConflict);
            }
            insert_idempotency_key!(tx, sql, key, &resource, checklist.published_at)?;
            tx.commit().await?;
            Ok(Outcome::New(checklist.clone()))
        })
    }

    async fn latest_checklists(&self) -> StoreResult<Vec<Checklist>> {
        on_database!(&self.database, |pool, sql| {
            let rows: Vec<DocumentRow<Checklist>> = sqlx::query_as(&sql(
                "SELECT document FROM investigation_checklists AS checklist \
                 WHERE version = (SELECT MAX(version) FROM investigation_checklists AS later \
                                  WHERE later.checklist_id = checklist.checklist_id) \
                 ORDER BY checklist_id LIMIT $1",
            ))
            .bind(i64::try_from(MAX_CHECKLISTS).unwrap_or(i64::MAX))
            .fetch_all(pool)
            .await?;
            Ok(rows.into_iter().map(DocumentRow::into_record).collect())
        })
    }

    async fn checklist_versions(&self, checklist_id: &str) -> StoreResult<Vec<Checklist>> {
        on_database!(&self.database, |pool, sql| {
            let rows: Vec<DocumentRow<Checklist>> = sqlx::query_as(&sql(
                "SELECT document FROM investigation_checklists WHERE checklist_id = $1 \
                 ORDER BY version DESC LIMIT 1000",
            ))
            .bind(checklist_id)
            .fetch_all(pool)
            .await?;
            Ok(rows.into_iter().map(DocumentRow::into_record).collect())
        })
    }

    async fn create_investigation(
        &self,
        investigation: &Investigation,
        key: &IdempotencyKey,
        audit: &AuditEntry,
    ) -> StoreResult<Outcome<Investigation>> {
        retry_once_on_race(|| async {
            on_database!(&self.database, |pool, sql, begin_write| {
                let mut tx = pool.begin_with(begin_write).await?;
                if let Some(existing) = lookup_idempotency_key!(tx, sql, key)?.into_replay()? {
                    let row: DocumentRow<Investigation> =
                        sqlx::query_as(&sql("SELECT document FROM investigations WHERE id = $1"))
                            .bind(&existing)
                            .fetch_one(&mut *tx)
                            .await?;
                    return Ok(Outcome::Replayed(row.into_record()));
                }
                let open: Option<String> = sqlx::query_scalar(&sql(
                    "SELECT id FROM investigations WHERE customer_id = $1 AND status = 'OPEN'",
                ))
                .bind(&investigation.customer_id)
                .fetch_optional(&mut *tx)
                .await?;
                if let Some(open_id) = open {
                    return Err(investigation_open(open_id));
                }
                sqlx::query(&sql(
                    "INSERT INTO investigations (id, customer_id, status, version, document, opened_at) \
                     VALUES ($1, $2, $3, $4, $5, $6)",
                ))
                .bind(&investigation.id)
                .bind(&investigation.customer_id)
                .bind(investigation.status.as_str())
                .bind(investigation.version)
                .bind(Json(investigation))
                .bind(investigation.opened_at)
                .execute(&mut *tx)
                .await?;
                insert_idempotency_key!(tx, sql, key, &investigation.id, investigation.opened_at)?;
                insert_audit!(tx, sql, audit);
                tx.commit().await?;
                Ok(Outcome::New(investigation.clone()))
            })
        })
        .await
    }

    async fn get_investigation(&self, id: &str) -> StoreResult<Option<Investigation>> {
        self.document_by_id("SELECT document FROM investigations WHERE id = $1", id)
            .await
    }

    async fn save_investigation(
        &self,
        investigation: &Investigation,
        expected_version: i64,
        changes: &InvestigationChanges<'_>,
    ) -> StoreResult<()> {
        on_database!(&self.database, |pool, sql, begin_write| {
            let mut tx = pool.begin_with(begin_write).await?;
            let updated = sqlx::query(&sql(
                "UPDATE investigations SET status = $1, version = $2, document = $3 \
                 WHERE id = $4 AND version = $5",
            ))
            .bind(investigation.status.as_str())
            .bind(investigation.version)
            .bind(Json(investigation))
            .bind(&investigation.id)
            .bind(expected_version)
            .execute(&mut *tx)
            .await?;
            if updated.rows_affected() != 1 {
                return Err(StoreError::VersionConflict);
            }
            write_data_points!(tx, sql, changes.data_points);
            if let Some(audit) = changes.audit {
                insert_audit!(tx, sql, audit);
            }
            if let Some(event) = changes.event {
                insert_outbox_event!(tx, sql, event)?;
            }
            tx.commit().await?;
            Ok(())
        })
    }

    async fn list_investigations(
        &self,
        customer_id: &str,
        page: &Page,
    ) -> StoreResult<Vec<Investigation>> {
        on_database!(&self.database, |pool, sql| {
            let rows: Vec<DocumentRow<Investigation>> = sqlx::query_as(&sql(
                "SELECT document FROM investigations WHERE customer_id = $1 \
                 AND ($2 = '' OR id < $2) ORDER BY id DESC LIMIT $3",
            ))
            .bind(customer_id)
            .bind(page.after.as_deref().unwrap_or(""))
            .bind(page.fetch_limit())
            .fetch_all(pool)
            .await?;
            Ok(rows.into_iter().map(DocumentRow::into_record).collect())
        })
    }
}
