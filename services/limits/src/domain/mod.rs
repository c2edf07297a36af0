//! The limits service's rules, pure: limits and their approval. No I/O here.

pub mod fx;
pub mod limits;
pub mod policy;
pub mod terms;
