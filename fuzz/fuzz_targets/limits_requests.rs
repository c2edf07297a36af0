//! LimitService requests from arbitrary bytes: the money of Authorize and CheckCredit as the
//! hot path reads it (a positive amount, then minor units), limit change requests, FX rates.
#![no_main]

mod common;

use common::{assert_invalid_argument, split};
use credit_core::Money;
use credit_limits::api::convert::{parse_fx_rate, parse_limit_request};
use credit_limits::domain::limits::Actor;
use credit_proto::v1 as pb;
use libfuzzer_sys::fuzz_target;
use prost::Message;

fn now() -> chrono::DateTime<chrono::Utc> {
    chrono::DateTime::from_timestamp(1_795_000_000, 0).unwrap_or_default()
}

/// As `HotPath::order` reads an amount: parsed, positive, then in minor units; any of the
/// three may refuse it, none may panic.
fn order_amount(what: &str, amount: Option<&pb::Money>) {
    let Some(amount) = amount else { return };
    let parsed = Money::try_from(amount).and_then(Money::positive);
    if let Ok(money) = &parsed {
        let _ = money.to_minor_units();
    }
    assert_invalid_argument(what, parsed.map_err(|error| credit_core::ServiceError::invalid("amount", error.to_string())));
}

fuzz_target!(|data: &[u8]| {
    let Some((kind, bytes)) = split(data) else { return };
    match kind % 4 {
        0 => {
            let Ok(request) = pb::AuthorizeRequest::decode(bytes) else { return };
            order_amount("Authorize", request.amount.as_ref());
        }
        1 => {
            let Ok(request) = pb::CheckCreditRequest::decode(bytes) else { return };
            order_amount("CheckCredit", request.amount.as_ref());
        }
        2 => {
            let Ok(request) = pb::RequestLimitChangeRequest::decode(bytes) else { return };
            assert_invalid_argument("RequestLimitChange", parse_limit_request(&request, now()));
        }
        _ => {
            let Ok(request) = pb::SetFxRateRequest::decode(bytes) else { return };
            let actor = Actor {
                principal_id: "fuzz".into(),
                name: "fuzz".into(),
                roles: vec!["ADMIN".into()],
            };
            assert_invalid_argument("SetFxRate", parse_fx_rate(request.fx_rate.as_ref(), actor, now()));
        }
    }
});
