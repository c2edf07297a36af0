//! CollectionsService requests from arbitrary bytes: the fields of PostInvoice and
//! RecordPayment through the conversions the handlers use (`api::convert`).
#![no_main]

mod common;

use common::{assert_invalid_argument, split, today};
use credit_collections::api::convert::{optional_id, past_date, positive_money, required_id};
use credit_proto::v1 as pb;
use libfuzzer_sys::fuzz_target;
use prost::Message;

fuzz_target!(|data: &[u8]| {
    let Some((kind, bytes)) = split(data) else { return };
    match kind % 2 {
        0 => {
            let Ok(request) = pb::PostInvoiceRequest::decode(bytes) else { return };
            assert_invalid_argument("PostInvoice", required_id("customer_id", &request.customer_id));
            assert_invalid_argument("PostInvoice", required_id("invoice_number", &request.invoice_number));
            assert_invalid_argument("PostInvoice", positive_money("amount", request.amount.as_ref()));
            assert_invalid_argument("PostInvoice", past_date("issue_date", request.issue_date.as_ref(), today()));
            assert_invalid_argument("PostInvoice", optional_id("order_id", &request.order_id));
            assert_invalid_argument("PostInvoice", optional_id("hold_id", &request.hold_id));
        }
        _ => {
            let Ok(request) = pb::RecordPaymentRequest::decode(bytes) else { return };
            assert_invalid_argument("RecordPayment", required_id("customer_id", &request.customer_id));
            assert_invalid_argument("RecordPayment", positive_money("amount", request.amount.as_ref()));
            assert_invalid_argument("RecordPayment", past_date("value_date", request.value_date.as_ref(), today()));
            for allocation in &request.allocations {
                assert_invalid_argument("RecordPayment", positive_money("allocations.amount", allocation.amount.as_ref()));
            }
        }
    }
});
