//! End-to-end tests: the suite served on free ports, called through the generated clients.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "tests"
)]

mod auth;
mod health;
mod readiness;
