//! IntakeService requests from arbitrary bytes: decoded as the protobuf request, then checked
//! as the handler checks them.
#![no_main]

mod common;

use common::{assert_invalid_argument, split, today};
use credit_intake::api::convert::{
    parse_bureau_report, parse_customer, parse_group, parse_statement, parse_trade_reference,
};
use credit_proto::v1 as pb;
use libfuzzer_sys::fuzz_target;
use prost::Message;

fuzz_target!(|data: &[u8]| {
    let Some((kind, bytes)) = split(data) else { return };
    match kind % 6 {
        0 => {
            let Ok(request) = pb::CreateCustomerRequest::decode(bytes) else { return };
            if let Some(customer) = &request.customer {
                assert_invalid_argument("CreateCustomer", parse_customer(customer, today(), "customer"));
            }
        }
        1 => {
            let Ok(request) = pb::ImportCustomersRequest::decode(bytes) else { return };
            for (index, row) in request.rows.iter().enumerate() {
                if let Some(customer) = &row.customer {
                    let prefix = format!("rows[{index}].customer");
                    assert_invalid_argument("ImportCustomers", parse_customer(customer, today(), &prefix));
                }
            }
        }
        2 => {
            let Ok(request) = pb::SubmitFinancialStatementRequest::decode(bytes) else { return };
            if let Some(statement) = &request.statement {
                assert_invalid_argument("SubmitFinancialStatement", parse_statement(statement, today()));
            }
        }
        3 => {
            let Ok(request) = pb::RecordBureauReportRequest::decode(bytes) else { return };
            if let Some(report) = &request.report {
                assert_invalid_argument("RecordBureauReport", parse_bureau_report(report, today()));
            }
        }
        4 => {
            let Ok(request) = pb::AddTradeReferenceRequest::decode(bytes) else { return };
            if let Some(reference) = &request.reference {
                assert_invalid_argument("AddTradeReference", parse_trade_reference(reference, today()));
            }
        }
        _ => {
            let Ok(request) = pb::CreateGroupRequest::decode(bytes) else { return };
            if let Some(group) = &request.group {
                assert_invalid_argument("CreateGroup", parse_group(group));
            }
        }
    }
});
