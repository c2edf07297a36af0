//! [`DataPointStore`] in SQL, on either backend.

use async_trait::async_trait;
use credit_core::ServiceError;
use credit_proto::v1::Event;
use credit_runtime::on_database;
use credit_runtime::sql::{IdempotencyKey, Page, retry_once_on_race};
use credit_runtime::store::DocumentRow;
use credit_runtime::{insert_idempotency_key, insert_outbox_event, lookup_idempotency_key};
use sqlx::types::Json;

use super::{CUSTOMER_AUDIT_KIND, SqlIntakeStore};
use crate::domain::data_points::{DataPointRecord, Definition};
use crate::domain::records::AuditEntry;
use crate::store::{DataPointStore, MAX_DEFINITIONS, Outcome, StoreError, StoreResult};

#[async_trait]
impl DataPointStore for SqlIntakeStore {
    async fn define_data_point(
        &self,
        definition: &Definition,
        expected_version: i64,
    ) -> StoreResult<()> {
        on_database!(&self.database, |pool, sql, begin_write| {
            let mut tx = pool.begin_with(begin_write).await?;
            if expected_version == 0 {
                let defined: i64 =
                    sqlx::query_scalar(&sql("SELECT COUNT(*) FROM data_point_definitions"))
                        .fetch_one(&mut *tx)
                        .await?;
                if usize::try_from(defined).unwrap_or(usize::MAX) >= MAX_DEFINITIONS {
                    return Err(StoreError::refused(ServiceError::failed_precondition(
                        "TOO_MANY_DATA_POINTS",
                        format!("at most {MAX_DEFINITIONS} data points may be defined"),
                    )));
                }
                let inserted = sqlx::query(&sql(
                    "INSERT INTO data_point_definitions (code, version, document, updated_at) \
                     VALUES ($1, $2, $3, $4) ON CONFLICT (code) DO NOTHING",
                ))
                .bind(&definition.code)
                .bind(definition.version)
                .bind(Json(definition))
                .bind(definition.updated_at)
                .execute(&mut *tx)
                .await?;
                if inserted.rows_affected() != 1 {
                    return Err(StoreError::VersionConflict);
                }
            } else {
                let updated = sqlx::query(&sql(
                    "UPDATE data_point_definitions SET version = $1, document = $2, updated_at = $3 \
                     WHERE code = $4 AND version = $5",
                ))
                .bind(definition.version)
                .bind(Json(definition))
                .bind(definition.updated_at)
                .bind(&definition.code)
                .bind(expected_version)
                .execute(&mut *tx)
                .await?;
                if updated.rows_affected() != 1 {
                    return Err(StoreError::VersionConflict);
                }
            }
            tx.commit().await?;
            Ok(())
        })
    }

    async fn data_point_definitions(&self) -> StoreResult<Vec<Definition>> {
        on_database!(&self.database, |pool, sql| {
            let rows: Vec<DocumentRow<Definition>> = sqlx::query_as(&sql(
                "SELECT document FROM data_point_definitions ORDER BY code LIMIT $1",
            ))
            .bind(i64::try_from(MAX_DEFINITIONS).unwrap_or(i64::MAX))
            .fetch_all(pool)
            .await?;
            Ok(rows.into_iter().map(DocumentRow::into_record).collect())
        })
    }

    async fn set_data_points(
        &self,
        records: &[DataPointRecord],
        key: &IdempotencyKey,
        audit: &AuditEntry,
        event: &Event,
    ) -> StoreResult<Outcome<Vec<DataPointRecord>>> {
        let change_id = records
            .first()
            .map(|record| record.change_id.clone())
            .unwrap_or_default();
        retry_once_on_race(|| async {
            on_database!(&self.database, |pool, sql, begin_write| {
                let mut tx = pool.begin_with(begin_write).await?;
                if let Some(first_change) = lookup_idempotency_key!(tx, sql, key)?.into_replay()? {
                    let rows: Vec<DocumentRow<DataPointRecord>> = sqlx::query_as(&sql(
                        "SELECT document FROM data_point_history WHERE change_id = $1 ORDER BY id",
                    ))
                    .bind(&first_change)
                    .fetch_all(&mut *tx)
                    .await?;
                    return Ok(Outcome::Replayed(
                        rows.into_iter().map(DocumentRow::into_record).collect(),
                    ));
                }
                write_data_points!(tx, sql, records);
                insert_idempotency_key!(tx, sql, key, &change_id, audit.changed_at)?;
                insert_audit!(tx, sql, audit);
                insert_outbox_event!(tx, sql, event)?;
                tx.commit().await?;
                Ok(Outcome::New(records.to_vec()))
            })
        })
        .await
    }

    async fn current_data_points(&self, customer_id: &str) -> StoreResult<Vec<DataPointRecord>> {
        on_database!(&self.database, |pool, sql| {
            let rows: Vec<DocumentRow<DataPointRecord>> = sqlx::query_as(&sql(
                "SELECT document FROM data_point_values WHERE customer_id = $1 ORDER BY code LIMIT $2",
            ))
            .bind(customer_id)
            .bind(i64::try_from(MAX_DEFINITIONS).unwrap_or(i64::MAX))
            .fetch_all(pool)
            .await?;
            Ok(rows.into_iter().map(DocumentRow::into_record).collect())
        })
    }

    async fn data_point_history(
        &self,
        customer_id: &str,
        code: &str,
        page: &Page,
    ) -> StoreResult<Vec<DataPointRecord>> {
        on_database!(&self.database, |pool, sql| {
            let rows: Vec<DocumentRow<DataPointRecord>> = sqlx::query_as(&sql(
                "SELECT document FROM data_point_history WHERE customer_id = $1 AND code = $2 \
                 AND ($3 = '' OR id < $3) ORDER BY id DESC LIMIT $4",
            ))
            .bind(customer_id)
            .bind(code)
            .bind(page.after.as_deref().unwrap_or(""))
            .bind(page.fetch_limit())
            .fetch_all(pool)
            .await?;
            Ok(rows.into_iter().map(DocumentRow::into_record).collect())
        })
    }
}
