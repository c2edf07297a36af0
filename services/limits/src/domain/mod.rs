//! The limits service's rules, pure: limits and their approval, the credit policy, terms and
//! limit proposals. No I/O here.

pub mod fx;
pub mod limits;
pub mod policy;
pub mod proposal;
pub mod terms;
