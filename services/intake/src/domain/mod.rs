//! Intake's business rules, pure: parsing and validating what callers send, lifecycle
//! transitions, and the figures derived from financial statements. No I/O here.

pub mod customer;
pub mod data_points;
pub mod investigations;
pub mod records;
pub mod statement;
pub mod uscc;
