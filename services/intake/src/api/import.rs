//! The `ImportCustomers` stream: the call's caps, the rows it holds until they make a batch,
//! and the answer it builds row by row. Each batch is checked here and stored by the import
//! use case before more rows are read.

use credit_core::{Actor, ServiceError};
use credit_proto::v1 as pb;

use super::IntakeApi;
use super::convert::{check_import_row, invalid_row_result, row_result, valid_row_result};
use crate::app::{CheckedRow, RowOutcome, required_id};

/// Rows one `ImportCustomers` call may carry (the contract's limit). The call answers once,
/// with one result per row, so the server keeps every row's result (a number, an outcome, an
/// id: about 200 bytes) until the end: this cap bounds that at about 10 MB a call.
pub const MAX_IMPORT_ROWS: usize = 50_000;

/// Bytes of rows (as encoded on the wire) one `ImportCustomers` call may carry: 64 MiB, on
/// average 1.3 KiB a row at [`MAX_IMPORT_ROWS`], several times a full row with an address
/// and contacts. It keeps one caller from holding a writer for hours with huge rows.
pub const MAX_IMPORT_BYTES: usize = 64 * 1024 * 1024;

/// Rows checked and written together. Rows are read until a batch is full, written, and
/// dropped before more are read, so what a call holds of its rows is one batch plus one
/// message (which gRPC bounds at 4 MiB), whatever the size of the file.
pub const IMPORT_BATCH_ROWS: usize = 500;

/// Bytes of rows that also make a batch full: with rows near the message size limit, 500 of
/// them would be hundreds of megabytes.
pub const IMPORT_BATCH_BYTES: usize = 4 * 1024 * 1024;

/// One `ImportCustomers` call in progress: what it has received, the rows read but not yet
/// written, and the results of the rows before them, in the order they came.
pub(super) struct ImportCall {
    pub(super) import_id: String,
    validate_only: bool,
    rows_received: usize,
    bytes_received: usize,
    pending: Vec<pb::ImportCustomerRow>,
    /// Encoded size of the rows in `pending`.
    pending_bytes: usize,
    pub(super) results: Vec<pb::ImportCustomerRowResult>,
}

impl ImportCall {
    /// The call as its first message opens it: the import id and `validate_only` are read
    /// from that message only.
    pub(super) fn start(first: &pb::ImportCustomersRequest) -> Result<Self, ServiceError> {
        if first.import_id.trim().is_empty() {
            return Err(ServiceError::invalid(
                "import_id",
                "is required in the first message",
            ));
        }
        let import_id = required_id(&first.import_id, "import_id")?;
        Ok(Self {
            import_id,
            validate_only: first.validate_only,
            rows_received: 0,
            bytes_received: 0,
            pending: Vec::with_capacity(IMPORT_BATCH_ROWS),
            pending_bytes: 0,
            results: Vec::new(),
        })
    }

    /// Counts `message` against the call's caps, or says which cap it crosses and how many
    /// rows of the call were settled (stored, or answered invalid) before it.
    pub(super) fn admit(
        &mut self,
        message: &pb::ImportCustomersRequest,
    ) -> Result<(), ServiceError> {
        let rows = self.rows_received.saturating_add(message.rows.len());
        let bytes = self
            .bytes_received
            .saturating_add(prost::Message::encoded_len(message));
        let settled = self.results.len();
        let resume = format!(
            "the first {settled} rows of this call were settled and stay so; send the rest \
             (or all of them again) under the same import_id in smaller calls"
        );
        if rows > MAX_IMPORT_ROWS {
            return Err(ServiceError::invalid(
                "rows",
                format!("one call carries at most {MAX_IMPORT_ROWS} rows; {resume}"),
            ));
        }
        if bytes > MAX_IMPORT_BYTES {
            return Err(ServiceError::invalid(
                "rows",
                format!(
                    "one call carries at most {MAX_IMPORT_BYTES} bytes ({} MiB) of rows; {resume}",
                    MAX_IMPORT_BYTES / (1024 * 1024)
                ),
            ));
        }
        self.rows_received = rows;
        self.bytes_received = bytes;
        Ok(())
    }

    /// Keeps rows read from the stream until they make a batch.
    pub(super) fn hold(&mut self, rows: Vec<pb::ImportCustomerRow>) {
        for row in rows {
            self.pending_bytes = self
                .pending_bytes
                .saturating_add(prost::Message::encoded_len(&row));
            self.pending.push(row);
        }
    }

    /// The oldest rows held, when they make a full batch by count or by size.
    pub(super) fn full_batch(&mut self) -> Option<Vec<pb::ImportCustomerRow>> {
        let full = self.pending.len() >= IMPORT_BATCH_ROWS
            || (self.pending_bytes >= IMPORT_BATCH_BYTES && !self.pending.is_empty());
        if !full {
            return None;
        }
        let take = self.pending.len().min(IMPORT_BATCH_ROWS);
        let batch: Vec<_> = self.pending.drain(..take).collect();
        let batch_bytes: usize = batch.iter().map(prost::Message::encoded_len).sum();
        self.pending_bytes = self.pending_bytes.saturating_sub(batch_bytes);
        Some(batch)
    }

    /// The rows still held when the stream ends: the last, partial batch.
    pub(super) fn rest(&mut self) -> Vec<pb::ImportCustomerRow> {
        self.pending_bytes = 0;
        std::mem::take(&mut self.pending)
    }

    pub(super) fn summary(&self) -> pb::ImportCustomersSummary {
        let mut summary = pb::ImportCustomersSummary {
            rows_received: i64::try_from(self.results.len()).unwrap_or(i64::MAX),
            ..Default::default()
        };
        for result in &self.results {
            match pb::ImportRowOutcome::try_from(result.outcome) {
                Ok(pb::ImportRowOutcome::Created) => summary.created += 1,
                Ok(pb::ImportRowOutcome::AlreadyImported) => summary.already_imported += 1,
                Ok(pb::ImportRowOutcome::Duplicate) => summary.duplicates += 1,
                Ok(pb::ImportRowOutcome::Invalid) => summary.invalid += 1,
                Ok(pb::ImportRowOutcome::Failed) => summary.failed += 1,
                _ => {}
            }
        }
        summary
    }
}

impl IntakeApi {
    /// Checks one batch of an import, stores the good rows (unless the call only
    /// validates), and adds the batch's results to the call's, in the order the rows came.
    pub(super) async fn import_batch(
        &self,
        call: &mut ImportCall,
        batch: Vec<pb::ImportCustomerRow>,
        actor: &Actor,
    ) {
        if batch.is_empty() {
            return;
        }
        let mut results: Vec<Option<pb::ImportCustomerRowResult>> = Vec::with_capacity(batch.len());
        let mut to_store = Vec::new();
        for (place, row) in batch.iter().enumerate() {
            match check_import_row(row, &call.import_id, &actor.name) {
                Err(invalid) => results.push(Some(*invalid)),
                Ok(checked) => {
                    results.push(None);
                    to_store.push((place, checked));
                }
            }
        }
        if call.validate_only {
            self.validate_batch(to_store, &mut results, actor).await;
        } else {
            let stored = self
                .intake
                .import_rows(to_store, &call.import_id, actor)
                .await;
            for (place, row_number, outcome) in stored {
                results[place] = Some(row_result(row_number, outcome));
            }
        }
        call.results.extend(results.into_iter().flatten());
    }

    /// Answers the checked rows of a `validate_only` call: valid, or INVALID for the data
    /// points their definitions refuse. Nothing is written.
    async fn validate_batch(
        &self,
        rows: Vec<(usize, CheckedRow)>,
        results: &mut [Option<pb::ImportCustomerRowResult>],
        actor: &Actor,
    ) {
        let (places, rows): (Vec<usize>, Vec<CheckedRow>) = rows.into_iter().unzip();
        match self.intake.validate_row_data_points(&rows, actor).await {
            Ok(problems) => {
                for ((place, row), violations) in places.into_iter().zip(&rows).zip(problems) {
                    results[place] = Some(if violations.is_empty() {
                        valid_row_result(row.row_number)
                    } else {
                        invalid_row_result(row.row_number, violations)
                    });
                }
            }
            Err(error) => {
                let cause = error.to_string();
                for (place, row) in places.into_iter().zip(&rows) {
                    let failed = ServiceError::unavailable(
                        "the data point definitions could not be read; retry the import",
                        cause.clone(),
                    );
                    results[place] = Some(row_result(row.row_number, RowOutcome::Failed(failed)));
                }
            }
        }
    }
}
