//! The rows intake's queries read, one `FromRow` type per shape. Records are kept whole as
//! JSON documents; the other columns of the tables exist for filtering and ordering, and are
//! read back only where the document does not hold them (a statement's `superseded`).

use sqlx::types::Json;

use crate::domain::records::StatementRecord;

/// `SELECT document, superseded FROM financial_statements ...`: `superseded` is its own
/// column, changed when a later version of the period arrives, so it is not in the document.
#[derive(Debug, sqlx::FromRow)]
pub(super) struct StatementRow {
    document: Json<StatementRecord>,
    superseded: bool,
}

impl StatementRow {
    pub(super) fn into_record(self) -> StatementRecord {
        let mut statement = self.document.0;
        statement.superseded = self.superseded;
        statement
    }
}
