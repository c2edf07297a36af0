//! Every conversion between intake's contract (`credit.v1`) and its domain: requests read and
//! checked into domain values, each problem named by its field path, and domain records shown
//! as the contract's messages. Handlers and use cases call these; the domain never sees a
//! protobuf type.

mod customer;
mod data_points;
pub mod events;
mod import;
mod investigations;
mod records;
mod statement;

use chrono::{DateTime, Datelike, NaiveDate, Utc};
use credit_proto::v1 as pb;

pub use customer::{
    apply_update, customer_filter, customer_to_proto, kind_from_proto, kind_to_proto,
    parse_customer, status_from_proto, status_to_proto,
};
pub use data_points::{
    data_point_to_proto, definition_to_proto, parse_definition, parse_entries, value_to_proto,
};
pub use import::{check_import_row, invalid_row_result, row_result, valid_row_result};
pub use investigations::{
    checklist_to_proto, document_to_proto, investigation_to_proto, parse_checklist, parse_document,
    parse_item_answer, parse_visit, visit_to_proto,
};
pub use records::{
    audit_entry_to_proto, bureau_report_to_proto, group_to_proto, group_with_members_to_proto,
    parse_bureau_report, parse_group, parse_trade_reference, statement_to_proto,
    trade_reference_to_proto,
};
pub use statement::{figures_to_proto, parse_statement, period_type_filter};

/// The civil date requests are checked against (no date in the future, and so on).
pub fn today() -> NaiveDate {
    Utc::now().date_naive()
}

pub fn timestamp(time: DateTime<Utc>) -> prost_types::Timestamp {
    prost_types::Timestamp {
        seconds: time.timestamp(),
        nanos: i32::try_from(time.timestamp_subsec_nanos()).unwrap_or(0),
    }
}

pub fn date_to_proto(date: NaiveDate) -> pb::Date {
    pb::Date {
        year: date.year(),
        month: i32::try_from(date.month()).unwrap_or(0),
        day: i32::try_from(date.day()).unwrap_or(0),
    }
}

/// A real calendar date, or why not.
pub fn date_from_proto(date: &pb::Date) -> Result<NaiveDate, &'static str> {
    let month = u32::try_from(date.month).map_err(|_| "month must be 1 to 12")?;
    let day = u32::try_from(date.day).map_err(|_| "day must be 1 to 31")?;
    NaiveDate::from_ymd_opt(date.year, month, day).ok_or("is not a calendar date")
}
