//! Planning the calls of an import (ids derived from the file, parts of at most the server's
//! row cap) and the report of every row's outcome, from the server's answers.

use std::collections::HashMap;
use std::fmt;

use credit_proto::v1::{
    ImportCustomerRow, ImportCustomerRowResult, ImportCustomersRequest, ImportRowOutcome,
};
use credit_runtime::config::ConfigError;
use sha2::{Digest, Sha256};

use super::{LISTED_PROBLEM_ROWS, MAX_ROWS_PER_CALL, ParsedRow, Problem};

/// The default import id: the lowercase hex SHA-256 of the file's bytes. The same file gives
/// the same id, so importing it again creates nothing twice (each row's idempotency key is
/// `<import_id>:<row_number>`); any change to the file gives a new id.
pub fn derive_import_id(file_bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(file_bytes))
}

/// The import id of call `part` (1-based): the base id for the first, `<base>-part<N>` after.
pub fn part_import_id(base_import_id: &str, part: usize) -> String {
    if part <= 1 {
        base_import_id.to_owned()
    } else {
        format!("{base_import_id}-part{part}")
    }
}

/// Checks an `--import-id`: 1..=128 characters of letters, digits, `.`, `_`, `-`, `:`.
pub fn check_import_id(import_id: &str) -> Result<(), ConfigError> {
    let valid = !import_id.is_empty()
        && import_id.len() <= 128
        && import_id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | ':'));
    if valid {
        Ok(())
    } else {
        Err(ConfigError::new(
            "--import-id",
            "must be 1..128 characters of letters, digits, '.', '_', '-' or ':'",
        ))
    }
}

/// One `ImportCustomers` call: its import id and its stream messages.
#[derive(Debug, Clone, PartialEq)]
pub struct PlannedCall {
    pub import_id: String,
    pub messages: Vec<ImportCustomersRequest>,
}

impl PlannedCall {
    pub fn row_count(&self) -> usize {
        self.messages.iter().map(|message| message.rows.len()).sum()
    }
}

/// Splits the rows that can be sent into calls and messages. Call `k` carries the rows numbered
/// `(k-1)·50,000 + 1 ..= k·50,000` under [`part_import_id`]`(base, k)`, so which call a row
/// belongs to depends only on its number (a re-run puts it under the same key); a call whose
/// rows were all refused locally is not made. Within a call, messages carry `batch_size` rows
/// (the last one fewer); every message repeats the import id and `validate_only`. Row numbers
/// stay those of the file. `request_id` is left empty: the server uses
/// `<import_id>:<row_number>`.
pub fn plan_calls(
    base_import_id: &str,
    validate_only: bool,
    rows: &[ParsedRow],
    batch_size: usize,
) -> Vec<PlannedCall> {
    let batch_size = batch_size.max(1);
    let mut calls: Vec<(usize, Vec<ImportCustomerRow>)> = Vec::new();
    for row in rows {
        let Ok(customer) = &row.mapped else {
            continue;
        };
        let part = usize::try_from((row.row_number - 1).max(0) / MAX_ROWS_PER_CALL)
            .map_or(usize::MAX, |index| index.saturating_add(1));
        let import_row = ImportCustomerRow {
            row_number: row.row_number,
            request_id: String::new(),
            customer: Some(customer.clone()),
            data_points: row.data_points.clone(),
        };
        match calls.last_mut() {
            Some((last_part, call_rows)) if *last_part == part => call_rows.push(import_row),
            _ => calls.push((part, vec![import_row])),
        }
    }
    calls
        .into_iter()
        .map(|(part, call_rows)| {
            let import_id = part_import_id(base_import_id, part);
            let messages = call_rows
                .chunks(batch_size)
                .map(|chunk| ImportCustomersRequest {
                    import_id: import_id.clone(),
                    validate_only,
                    rows: chunk.to_vec(),
                })
                .collect();
            PlannedCall {
                import_id,
                messages,
            }
        })
        .collect()
}

// ---------------------------------------------------------------------------------------------
// The report
// ---------------------------------------------------------------------------------------------

/// What happened to one row.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RowOutcome {
    /// Created (or, with `--validate-only`, would be).
    Created,
    /// Imported before under the same idempotency key; nothing written.
    AlreadyImported,
    /// An enterprise with the same (country, registration number) exists; nothing written.
    Duplicate,
    /// Refused: by this client (not sent) or by the server's validation.
    Invalid,
    /// Not stored for another reason; may be retried.
    Failed,
}

impl RowOutcome {
    pub fn as_str(self) -> &'static str {
        match self {
            RowOutcome::Created => "CREATED",
            RowOutcome::AlreadyImported => "ALREADY_IMPORTED",
            RowOutcome::Duplicate => "DUPLICATE",
            RowOutcome::Invalid => "INVALID",
            RowOutcome::Failed => "FAILED",
        }
    }

    /// Whether the row is done: its customer exists (or would).
    pub fn is_success(self) -> bool {
        match self {
            RowOutcome::Created | RowOutcome::AlreadyImported | RowOutcome::Duplicate => true,
            RowOutcome::Invalid | RowOutcome::Failed => false,
        }
    }
}

impl fmt::Display for RowOutcome {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(self.as_str())
    }
}

/// The result of one data row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RowReport {
    /// 1-based data row (header not counted).
    pub row_number: i64,
    pub outcome: RowOutcome,
    /// The created, earlier or existing customer (CREATED, ALREADY_IMPORTED, DUPLICATE).
    pub customer_id: String,
    /// Field violations of an INVALID row, the error of a FAILED one.
    pub problems: Vec<Problem>,
    /// False for a row refused by this client and therefore never sent.
    pub sent: bool,
}

/// Totals of an import. `invalid_in_file + invalid_on_server` rows are INVALID.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ImportSummary {
    pub rows_read: u64,
    pub created: u64,
    pub already_imported: u64,
    pub duplicates: u64,
    /// Refused by this client (kind, date, column count, encoding) and not sent.
    pub invalid_in_file: u64,
    /// Refused by the server's validation.
    pub invalid_on_server: u64,
    pub failed: u64,
}

impl ImportSummary {
    pub fn invalid(&self) -> u64 {
        self.invalid_in_file + self.invalid_on_server
    }
}

/// Everything an import did, row by row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImportReport {
    /// The base import id (the file's SHA-256 unless `--import-id`).
    pub import_id: String,
    /// The import id of each call made, in order (empty when no row could be sent).
    pub call_import_ids: Vec<String>,
    pub validate_only: bool,
    /// One entry per data row, in file order.
    pub rows: Vec<RowReport>,
    pub summary: ImportSummary,
}

impl ImportReport {
    /// True when every row was created, already imported, or a duplicate.
    pub fn is_complete(&self) -> bool {
        self.summary.invalid() == 0 && self.summary.failed == 0
    }

    /// 0 when every row is CREATED, ALREADY_IMPORTED or DUPLICATE; 1 otherwise.
    pub fn exit_code(&self) -> u8 {
        if self.is_complete() { 0 } else { 1 }
    }

    /// INVALID and FAILED rows, in file order.
    pub fn problem_rows(&self) -> impl Iterator<Item = &RowReport> {
        self.rows.iter().filter(|row| !row.outcome.is_success())
    }

    /// The summary printed at the end of `credit-suite import`.
    pub fn render_summary(&self) -> String {
        let summary = &self.summary;
        let mut text = String::new();
        let calls = match self.call_import_ids.len() {
            1 => " in 1 call".to_owned(),
            0 => String::new(),
            count => format!(" in {count} calls"),
        };
        text.push_str(&format!("import {}{calls}\n", self.import_id));
        if self.validate_only {
            text.push_str(
                "validate only: nothing was written; \"created\" counts rows that would be created\n",
            );
        }
        let lines = [
            ("rows read", summary.rows_read, String::new()),
            ("created", summary.created, String::new()),
            ("already imported", summary.already_imported, String::new()),
            ("duplicates", summary.duplicates, String::new()),
            (
                "invalid",
                summary.invalid(),
                format!(
                    "  ({} refused in the file, not sent; {} refused by the server)",
                    summary.invalid_in_file, summary.invalid_on_server
                ),
            ),
            ("failed", summary.failed, String::new()),
        ];
        for (label, count, note) in lines {
            text.push_str(&format!("{label:<17}{count:>9}{note}\n"));
        }
        let problem_count = self.problem_rows().count();
        if problem_count > 0 {
            if problem_count > LISTED_PROBLEM_ROWS {
                text.push_str(&format!(
                    "problem rows (the first {LISTED_PROBLEM_ROWS} of {problem_count}; --results writes all):\n"
                ));
            } else {
                text.push_str("problem rows:\n");
            }
            for row in self.problem_rows().take(LISTED_PROBLEM_ROWS) {
                let not_sent = if row.sent { "" } else { ", not sent" };
                text.push_str(&format!(
                    "  row {}: {}{not_sent}: {}\n",
                    row.row_number,
                    row.outcome,
                    join_problems(&row.problems)
                ));
            }
        }
        text
    }

    /// Writes one CSV line per data row: `row_number,outcome,customer_id,problems`.
    pub fn write_results_csv<W: std::io::Write>(&self, writer: W) -> Result<(), csv::Error> {
        let mut writer = csv::Writer::from_writer(writer);
        writer.write_record(["row_number", "outcome", "customer_id", "problems"])?;
        for row in &self.rows {
            writer.write_record([
                row.row_number.to_string(),
                row.outcome.as_str().to_owned(),
                row.customer_id.clone(),
                join_problems(&row.problems),
            ])?;
        }
        writer.flush()?;
        Ok(())
    }
}

fn join_problems(problems: &[Problem]) -> String {
    problems
        .iter()
        .map(Problem::to_string)
        .collect::<Vec<_>>()
        .join("; ")
}

/// Merges the rows refused locally with the server's results (from every call, matched by row
/// number). A sent row the server returned no result for is FAILED with `NO_RESULT`.
pub fn build_report(
    import_id: &str,
    call_import_ids: Vec<String>,
    validate_only: bool,
    rows: &[ParsedRow],
    server_results: Vec<ImportCustomerRowResult>,
) -> ImportReport {
    let mut results_by_row: HashMap<i64, ImportCustomerRowResult> = server_results
        .into_iter()
        .map(|result| (result.row_number, result))
        .collect();
    let rows: Vec<RowReport> = rows
        .iter()
        .map(|row| match &row.mapped {
            Err(problems) => RowReport {
                row_number: row.row_number,
                outcome: RowOutcome::Invalid,
                customer_id: String::new(),
                problems: problems.clone(),
                sent: false,
            },
            Ok(_) => match results_by_row.remove(&row.row_number) {
                Some(result) => row_report_from_server(result),
                None => RowReport {
                    row_number: row.row_number,
                    outcome: RowOutcome::Failed,
                    customer_id: String::new(),
                    problems: vec![Problem::new(
                        "",
                        "NO_RESULT",
                        "the server returned no result for this row; run the import again",
                    )],
                    sent: true,
                },
            },
        })
        .collect();
    let mut summary = ImportSummary {
        rows_read: rows.len() as u64,
        ..ImportSummary::default()
    };
    for row in &rows {
        match row.outcome {
            RowOutcome::Created => summary.created += 1,
            RowOutcome::AlreadyImported => summary.already_imported += 1,
            RowOutcome::Duplicate => summary.duplicates += 1,
            RowOutcome::Invalid if row.sent => summary.invalid_on_server += 1,
            RowOutcome::Invalid => summary.invalid_in_file += 1,
            RowOutcome::Failed => summary.failed += 1,
        }
    }
    ImportReport {
        import_id: import_id.to_owned(),
        call_import_ids,
        validate_only,
        rows,
        summary,
    }
}

pub(super) fn row_report_from_server(result: ImportCustomerRowResult) -> RowReport {
    let mut problems: Vec<Problem> = result
        .violations
        .into_iter()
        .map(|violation| Problem::new(violation.field, violation.reason, violation.description))
        .collect();
    if let Some(error) = result.error {
        problems.push(Problem::new("", error.code, error.message));
    }
    let outcome = match ImportRowOutcome::try_from(result.outcome) {
        Ok(ImportRowOutcome::Created) => RowOutcome::Created,
        Ok(ImportRowOutcome::AlreadyImported) => RowOutcome::AlreadyImported,
        Ok(ImportRowOutcome::Duplicate) => RowOutcome::Duplicate,
        Ok(ImportRowOutcome::Invalid) => RowOutcome::Invalid,
        Ok(ImportRowOutcome::Failed) => RowOutcome::Failed,
        Ok(ImportRowOutcome::Unspecified) | Err(_) => {
            problems.push(Problem::new(
                "",
                "UNKNOWN_OUTCOME",
                format!("the server answered outcome {}", result.outcome),
            ));
            RowOutcome::Failed
        }
    };
    if outcome == RowOutcome::Failed && problems.is_empty() {
        problems.push(Problem::new("", "FAILED", "the server gave no reason"));
    }
    RowReport {
        row_number: result.row_number,
        outcome,
        customer_id: result.customer_id,
        problems,
        sent: true,
    }
}

// ---------------------------------------------------------------------------------------------
// Running an import against a suite
// ---------------------------------------------------------------------------------------------
