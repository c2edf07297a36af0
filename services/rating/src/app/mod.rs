//! The rating service's use cases: rating a customer from its credit file ([`rater`]), gathering
//! that file from intake and collections ([`credit_file`]), and the committee report
//! ([`report`]), publishing models ([`models`]), overrides with four eyes ([`overrides`]) and
//! the scheduled reviews ([`reviews`]). They sit between the gRPC handlers in `api` and the rules in `domain`, and
//! reach the store and the peers through traits.

pub mod chains;
pub mod credit_file;
pub mod models;
pub mod overrides;
pub mod rater;
pub mod report;
pub mod reviews;
