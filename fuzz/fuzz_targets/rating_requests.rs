//! RatingService requests from arbitrary bytes: models as PublishModel and
//! ImportScorecardTable check them, snapshot inputs scored against the shipped models as
//! ScoreSnapshot does, and RateCustomer's qualitative inputs.
#![no_main]

mod common;

use common::{assert_invalid_argument, split};
use credit_core::ServiceError;
use credit_proto::v1 as pb;
use credit_rating::api::convert::inputs_from_proto;
use credit_rating::api::convert::model::unchecked_table;
use credit_rating::domain::defaults::shipped_models;
use credit_rating::domain::inputs::QualitativeInputs;
use credit_rating::domain::table::import_table;
use credit_rating::domain::{ModelId, ScorecardModel, score};
use libfuzzer_sys::fuzz_target;
use prost::Message;

fuzz_target!(|data: &[u8]| {
    let Some((kind, bytes)) = split(data) else { return };
    match kind % 4 {
        0 => {
            let Ok(request) = pb::PublishModelRequest::decode(bytes) else { return };
            if let Some(model) = &request.model {
                assert_invalid_argument("PublishModel", ScorecardModel::try_from(model).map_err(ServiceError::from));
            }
        }
        1 => {
            let Ok(request) = pb::ImportScorecardTableRequest::decode(bytes) else { return };
            assert_invalid_argument(
                "ImportScorecardTable",
                import_table(&unchecked_table(&request)).map_err(ServiceError::from),
            );
        }
        2 => {
            let Ok(snapshot) = pb::RatingInputSnapshot::decode(bytes) else { return };
            let parsed = inputs_from_proto(&snapshot.inputs, "inputs.inputs");
            if let Ok(inputs) = &parsed {
                // Every shipped model scores any valid inputs without an internal error.
                for wire in shipped_models() {
                    let Ok(model) = ScorecardModel::try_from(&wire) else {
                        panic!("a shipped model does not check");
                    };
                    assert_invalid_argument("ScoreSnapshot", score(&model, inputs).map_err(ServiceError::from));
                }
            }
            assert_invalid_argument("ScoreSnapshot inputs", parsed.map_err(ServiceError::from));
        }
        _ => {
            let Ok(request) = pb::RateCustomerRequest::decode(bytes) else { return };
            assert_invalid_argument(
                "RateCustomer",
                QualitativeInputs::parse(&request.qualitative_inputs).map_err(ServiceError::from),
            );
            if !request.model_id.trim().is_empty() {
                // An id is refused with its own error type; it only must not panic.
                let _ = ModelId::parse(request.model_id.trim());
            }
        }
    }
});
