//! Property tests of rating's request decoders (issue #19): models as PublishModel and
//! ImportScorecardTable receive them, snapshot inputs as ScoreSnapshot receives them, and the
//! qualitative inputs and filters of RateCustomer and ListModels. Whatever is sent, checking it
//! never panics and a refusal is INVALID_ARGUMENT with field violations; what passes scores
//! without a panic and without an internal error.

use std::collections::BTreeMap;

use credit_core::ServiceError;
use credit_proto::v1 as pb;
use proptest::option;
use proptest::prelude::*;

use crate::api::convert::inputs_from_proto;
use crate::api::convert::model::{
    unchecked_model_to_proto, unchecked_scale_to_proto, unchecked_table,
};
use crate::api::{model_filter, parse_version};
use crate::domain::defaults::{enterprise_default, individual_default};
use crate::domain::inputs::QualitativeInputs;
use crate::domain::table::import_table;
use crate::domain::{ScorecardModel, score};

/// Text as callers send it: mostly plausible, sometimes any unicode, control characters, or
/// hundreds of kilobytes.
fn text() -> BoxedStrategy<String> {
    prop_oneof![
        4 => "[ -~]{0,24}",
        2 => "\\PC{0,40}",
        1 => any::<String>(),
        1 => (0usize..200_000).prop_map(|length| "7".repeat(length)),
        1 => (1usize..3_000).prop_map(|length| "級".repeat(length)),
    ]
    .boxed()
}

/// Numbers as text: small and huge decimals of either sign, Decimal's extremes, exponents.
fn number() -> BoxedStrategy<String> {
    prop_oneof![
        4 => "-?[0-9]{1,4}(\\.[0-9]{1,4})?",
        2 => "-?[0-9]{1,40}(\\.[0-9]{0,40})?",
        1 => Just("79228162514264337593543950335".to_owned()),
        1 => Just("-79228162514264337593543950335".to_owned()),
        1 => Just("0.0000000000000000000000000001".to_owned()),
        1 => "[0-9]{1,20}[eE][+-]?[0-9]{1,4}",
        1 => text(),
    ]
    .boxed()
}

fn enum_value() -> BoxedStrategy<i32> {
    prop_oneof![4 => 0..8i32, 1 => any::<i32>()].boxed()
}

/// One change to a valid model: a field replaced by arbitrary text or number, or a part
/// removed or repeated. `selector` picks the change, `index` the characteristic, bin or grade.
#[derive(Debug, Clone)]
struct Mutation {
    selector: u8,
    index: usize,
    text: String,
    number: i32,
}

fn mutation() -> BoxedStrategy<Mutation> {
    (
        0u8..24,
        any::<usize>(),
        prop_oneof![text(), number()],
        any::<i32>(),
    )
        .prop_map(|(selector, index, text, number)| Mutation {
            selector,
            index,
            text,
            number,
        })
        .boxed()
}

fn apply(model: &mut pb::ScorecardModel, mutation: &Mutation) {
    let Mutation {
        selector,
        index,
        text,
        number,
    } = mutation.clone();
    let characteristics = model.characteristics.len().max(1);
    // Changes to the list of characteristics first, while nothing in it is borrowed.
    match selector {
        13 if !model.characteristics.is_empty() => {
            model.characteristics.remove(index % characteristics);
            return;
        }
        23 => {
            if let Some(copy) = model.characteristics.get(index % characteristics).cloned() {
                model.characteristics.push(copy);
            }
            return;
        }
        _ => {}
    }
    let characteristic = model.characteristics.get_mut(index % characteristics);
    match (selector, characteristic) {
        (0, _) => model.model_id = text,
        (1, _) => model.display_name = text,
        (2, _) => model.base_points = text,
        (3, _) => model.customer_kind = number,
        (4, _) => model.industry_codes.push(text),
        (5, _) => model.max_reasons = number,
        (6, _) => model.min_score = text,
        (7, _) => model.max_score = text,
        (8, Some(characteristic)) => characteristic.code = text,
        (9, Some(characteristic)) => characteristic.input_key = text,
        (10, Some(characteristic)) => characteristic.value_type = number,
        (11, Some(characteristic)) => {
            let bins = characteristic.bins.len().max(1);
            if let Some(bin) = characteristic.bins.get_mut(index % bins) {
                bin.points = text;
            }
        }
        (12, Some(characteristic)) => {
            let bins = characteristic.bins.len().max(1);
            if let Some(bin) = characteristic.bins.get_mut(index % bins) {
                bin.condition = Some(pb::scorecard_bin::Condition::Range(pb::NumericRange {
                    lower_bound: Some(text),
                    upper_bound: None,
                    lower_exclusive: number % 2 == 0,
                    upper_inclusive: false,
                }));
            }
        }
        (14, Some(characteristic)) if !characteristic.bins.is_empty() => {
            let bins = characteristic.bins.len();
            characteristic.bins.remove(index % bins);
        }
        (15, _) => model.master_scale = None,
        (16 | 17 | 18 | 22, _) => {
            let Some(scale) = model.master_scale.as_mut() else {
                return;
            };
            let grades = scale.grades.len().max(1);
            let Some(grade) = scale.grades.get_mut(index % grades) else {
                return;
            };
            match selector {
                16 => grade.min_score = Some(text),
                17 => grade.pd = text,
                18 => grade.rank = number,
                _ => grade.review_interval_months = number,
            }
        }
        (19, Some(characteristic)) => characteristic.missing_points = text,
        (20, Some(characteristic)) => {
            characteristic.bins.push(pb::ScorecardBin {
                label: String::new(),
                condition: Some(pb::scorecard_bin::Condition::Categories(pb::CategorySet {
                    values: vec![text],
                })),
                points: "1".into(),
            });
        }
        (21, Some(characteristic)) => characteristic.source = number,
        _ => {}
    }
}

fn shipped_model() -> BoxedStrategy<pb::ScorecardModel> {
    prop_oneof![
        Just(unchecked_model_to_proto(&enterprise_default())),
        Just(unchecked_model_to_proto(&individual_default()))
    ]
    .boxed()
}

/// Refused as INVALID_ARGUMENT, with at least one violation, none of them blank.
fn assert_invalid(error: &ServiceError) -> Result<(), TestCaseError> {
    let ServiceError::InvalidArgument(violations) = error else {
        return Err(TestCaseError::fail(format!(
            "refused as {error:?}, not INVALID_ARGUMENT"
        )));
    };
    prop_assert!(!violations.is_empty());
    prop_assert!(
        violations
            .iter()
            .all(|violation| !violation.field.is_empty() && !violation.description.is_empty())
    );
    Ok(())
}

/// Inputs for a model: mostly its own keys and sources, with any values.
fn rating_inputs(model: &pb::ScorecardModel) -> BoxedStrategy<Vec<pb::RatingInput>> {
    let keys: Vec<(i32, String)> = model
        .characteristics
        .iter()
        .map(|characteristic| (characteristic.source, characteristic.input_key.clone()))
        .collect();
    let known = proptest::sample::select(keys);
    let any_key = (enum_value(), text());
    let input = (
        prop_oneof![3 => known, 1 => any_key],
        option::of(prop_oneof![
            number().prop_map(pb::rating_input::Value::Number),
            text().prop_map(pb::rating_input::Value::Category),
        ]),
        text(),
    )
        .prop_map(|((source, key), value, origin)| pb::RatingInput {
            source,
            key,
            value,
            origin,
        });
    proptest::collection::vec(input, 0..40).boxed()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn any_change_to_a_model_is_checked_without_a_panic(
        base in shipped_model(),
        mutations in proptest::collection::vec(mutation(), 0..4),
    ) {
        let mut model = base;
        for mutation in &mutations {
            apply(&mut model, mutation);
        }
        match ScorecardModel::try_from(&model) {
            Ok(_) => {}
            Err(error) => assert_invalid(&error)?,
        }
    }

    #[test]
    fn any_inputs_score_without_a_panic_or_an_internal_error(
        (base, inputs) in shipped_model().prop_flat_map(|model| {
            let inputs = rating_inputs(&model);
            (Just(model), inputs)
        }),
    ) {
        let model = ScorecardModel::try_from(&base);
        prop_assert!(model.is_ok(), "a shipped model is valid: {model:?}");
        let Ok(model) = model else { return Ok(()) };
        match inputs_from_proto(&inputs, "inputs.inputs").map_err(ServiceError::from) {
            Err(error) => assert_invalid(&error)?,
            Ok(inputs) => {
                if let Err(error) = score(&model, &inputs).map_err(ServiceError::from) {
                    assert_invalid(&error)?;
                }
            }
        }
    }

    #[test]
    fn any_scorecard_table_is_checked_without_a_panic(
        model_id in prop_oneof!["[a-z][a-z0-9-]{0,20}", text()],
        (display_name, customer_kind, max_reasons) in (text(), enum_value(), any::<i32>()),
        rows in proptest::collection::vec(
            (prop_oneof!["[A-Z_]{1,12}", text()], prop_oneof!["\\[[0-9]{1,3}, ?[0-9]{1,3}\\)", "[a-z,]{1,12}", text()], number())
                .prop_map(|(characteristic, bin, points)| pb::ScorecardTableRow { characteristic, bin, points }),
            0..30,
        ),
        mappings in proptest::collection::vec(
            (prop_oneof!["[A-Z_]{1,12}", text()], text(), enum_value(), text(), enum_value())
                .prop_map(|(characteristic, code, source, input_key, family)| pb::CharacteristicMapping {
                    characteristic,
                    code,
                    source,
                    input_key,
                    family,
                    ..Default::default()
                }),
            0..6,
        ),
        scale in prop_oneof![
            Just(None),
            Just(enterprise_default().master_scale.as_ref().map(unchecked_scale_to_proto))
        ],
    ) {
        let request = pb::ImportScorecardTableRequest {
            model_id,
            display_name,
            customer_kind,
            max_reasons,
            rows,
            mappings,
            master_scale: scale,
            ..Default::default()
        };
        if let Err(error) = import_table(&unchecked_table(&request), &crate::domain::data_points::DataPointCatalog::default()).map_err(ServiceError::from) {
            assert_invalid(&error)?;
        }
    }

    #[test]
    fn any_qualitative_inputs_and_filters_are_checked_without_a_panic(
        qualitative in proptest::collection::btree_map(
            prop_oneof!["[a-z_]{1,20}", text()],
            prop_oneof![1..6i32, any::<i32>()],
            0..40,
        ),
        (customer_kind, model_id, version) in (enum_value(), text(), any::<i32>()),
    ) {
        let qualitative: BTreeMap<String, i32> = qualitative;
        if let Err(error) = QualitativeInputs::parse(&qualitative).map_err(ServiceError::from) {
            assert_invalid(&error)?;
        }
        let filter = pb::ListModelsRequest { customer_kind, model_id, ..Default::default() };
        if let Err(error) = model_filter(&filter) {
            assert_invalid(&error)?;
        }
        prop_assert_eq!(parse_version(version).is_err(), version < 0);
    }
}
