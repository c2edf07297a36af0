// Money and limits are decided here: an overflow must be an answer, never a panic, so every
// arithmetic operation that can overflow is a checked one (the lint refuses the others).
#![deny(clippy::arithmetic_side_effects)]

//! The limits service's rules, pure: limits and their approval, the credit policy, terms and
//! limit proposals. No I/O here, and no protobuf: `crate::api::convert` translates at the edge.

pub mod fx;
pub mod limits;
pub mod policy;
pub mod pricing;
pub mod profile;
pub mod proposal;
pub mod referral;
pub mod review;
pub mod security;
pub mod terms;
