//! The rating service's business rules, pure: scorecard models and their validation, master
//! scales, scoring with reasons, model selection, the shipped models and the scorecard-table
//! import, the input snapshot gathered from a credit file, review dates and overrides. No I/O
//! here: the gRPC handlers gather inputs and the store persists, both around these functions,
//! so every rule is unit-tested without a database or a network.

pub mod data_points;
pub mod defaults;
pub mod fields;
pub mod freshness;
pub mod inputs;
pub mod kinds;
pub mod model;
pub mod overrides;
pub mod rating;
pub mod scale;
pub mod scoring;
pub mod selection;
pub mod table;
pub mod unchecked;

pub use fields::InvalidFields;
pub use model::{CustomerKind, ModelError, ModelId, ScorecardModel};
pub use scale::{Grade, MasterScale};
pub use scoring::{RatingInputs, ScoreError, ScoreResult, score};
pub use unchecked::{UncheckedModel, UncheckedScale, UncheckedTable};
