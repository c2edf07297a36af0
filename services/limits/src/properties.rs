//! Property tests of limits' request decoders (issue #19): limit change requests, FX rates and
//! limit scopes, whatever a caller sends (any text, unicode or huge, any numbers and
//! timestamps, missing fields), are checked without a panic, and a refusal is INVALID_ARGUMENT
//! with field violations, never another error.

use credit_core::ServiceError;
use credit_proto::v1 as pb;
use proptest::option;
use proptest::prelude::*;

use crate::api::convert::{parse_fx_rate, parse_limit_request, parse_scope};
use crate::domain::limits::Actor;

fn now() -> chrono::DateTime<chrono::Utc> {
    chrono::DateTime::from_timestamp(1_795_000_000, 0).unwrap_or_default()
}

fn text() -> BoxedStrategy<String> {
    prop_oneof![
        4 => "[ -~]{0,24}",
        2 => "\\PC{0,40}",
        1 => any::<String>(),
        1 => (0usize..200_000).prop_map(|length| "5".repeat(length)),
    ]
    .boxed()
}

fn number() -> BoxedStrategy<String> {
    prop_oneof![
        4 => "-?[0-9]{1,8}(\\.[0-9]{1,6})?",
        2 => "-?[0-9]{1,40}(\\.[0-9]{0,40})?",
        1 => Just("79228162514264337593543950335".to_owned()),
        1 => "[0-9]{1,20}[eE][+-]?[0-9]{1,4}",
        1 => text(),
    ]
    .boxed()
}

fn currency() -> BoxedStrategy<String> {
    prop_oneof!["CNY", "USD", "EUR", "[A-Z]{3}", text()].boxed()
}

fn timestamp() -> BoxedStrategy<Option<prost_types::Timestamp>> {
    let seconds = prop_oneof![1_700_000_000..1_900_000_000i64, any::<i64>()];
    let nanos = prop_oneof![0..1_000_000_000i32, any::<i32>()];
    option::of(
        (seconds, nanos).prop_map(|(seconds, nanos)| prost_types::Timestamp { seconds, nanos }),
    )
    .boxed()
}

fn scope() -> BoxedStrategy<Option<pb::LimitScope>> {
    use pb::limit_scope::Scope as Wire;
    option::of(
        option::of(prop_oneof![
            text().prop_map(Wire::CustomerId),
            text().prop_map(Wire::GroupId),
            Just(Wire::Portfolio(pb::Portfolio::default())),
        ])
        .prop_map(|scope| pb::LimitScope { scope }),
    )
    .boxed()
}

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
            .all(|violation| !violation.field.is_empty())
    );
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn any_limit_change_request_is_checked_without_a_panic(
        (request_id, scope, amount, currency) in (text(), scope(), number(), currency()),
        (valid_from, valid_until, temporary, reason) in (timestamp(), timestamp(), any::<bool>(), text()),
        amount_missing in any::<bool>(),
    ) {
        let request = pb::RequestLimitChangeRequest {
            request_id,
            scope,
            amount: (!amount_missing).then_some(pb::Money { amount, currency }),
            valid_from,
            valid_until,
            temporary,
            reason,
        };
        if let Err(error) = parse_limit_request(&request, now()) {
            assert_invalid(&error)?;
        }
        if let Err(error) = parse_scope(request.scope.as_ref(), "scope") {
            assert_invalid(&error)?;
        }
    }

    #[test]
    fn any_fx_rate_is_checked_without_a_panic(
        (base_currency, quote_currency, rate, effective_at) in (currency(), currency(), number(), timestamp()),
        missing in any::<bool>(),
    ) {
        let wire = pb::FxRate {
            base_currency,
            quote_currency,
            rate,
            effective_at,
            ..Default::default()
        };
        let person = Actor {
            principal_id: "ana".into(),
            person_id: String::new(),
            name: "ana".into(),
            roles: vec!["ADMIN".into()],
        };
        let checked = parse_fx_rate((!missing).then_some(&wire), person, now());
        if let Err(error) = checked {
            assert_invalid(&error)?;
        }
    }
}
