//! Domain primitives shared by every credit service. Pure: no I/O, no runtime.

pub mod actor;
pub mod approval;
pub mod error;
pub mod freshness;
pub mod governance;
pub mod identity;
pub mod money;
pub mod names;

pub use actor::Actor;
pub use error::{FieldViolation, ServiceError, Violations, both, optional_text, required_text};
pub use identity::{AccessPolicy, Principal, Role};
pub use money::{Currency, Money, MoneyError};
