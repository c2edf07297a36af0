//! The rating service's business rules, pure: scorecard models and their validation, master
//! scales, scoring with reasons, model selection, the shipped models and the scorecard-table
//! import, the input snapshot gathered from a credit file, review dates and overrides. No I/O
//! here: the gRPC handlers gather inputs and the store persists, both around these functions,
//! so every rule is unit-tested without a database or a network.

pub mod defaults;
pub mod inputs;
pub mod model;
pub mod overrides;
pub mod scale;
pub mod scoring;
pub mod selection;
pub mod table;

pub use model::{CustomerKind, ModelId, ScorecardModel};
pub use scale::{Grade, MasterScale};
pub use scoring::{RatingInputs, ScoreResult, score};
