//! Property test through the generated clients: requests of the money-moving RPCs of limits
//! and collections, with arbitrary values in every field (empty, negative, enormous, not a
//! number, unknown currencies, impossible dates, ids of any length), never make the suite
//! fail with INTERNAL or UNKNOWN (a panic or a bug), and those refused as INVALID_ARGUMENT
//! write nothing: neither service's outbox gains an event.
//!
//! One embedded suite with one ACTIVE customer that has a limit, an approved order and an open
//! invoice, so requests that name them get past the lookups and into the checks of figures.

use std::str::FromStr;

use credit_core::Role;
use credit_e2e_tests::TestSuite;
use credit_proto::v1 as pb;
use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};
use tonic::Code;

use crate::authorize::{customer, grant, scope_of_customer, wait_until_approvable};
use crate::collections::post_invoice;

/// Amounts as a caller might send them, good and bad.
fn amount_text() -> impl Strategy<Value = String> {
    prop_oneof![
        Just(String::new()),
        Just("0".to_owned()),
        Just("-1.00".to_owned()),
        Just("1e5".to_owned()),
        Just("0.001".to_owned()),
        Just("100000000000000000.00".to_owned()),
        Just("999999999999999.99".to_owned()),
        Just("1000000000000000".to_owned()),
        Just("79228162514264337593543950335".to_owned()),
        Just("99.99".to_owned()),
        "[0-9]{1,22}(\\.[0-9]{0,4})?",
        text(24),
    ]
}

fn currency() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("CNY".to_owned()),
        Just("USD".to_owned()),
        Just("JPY".to_owned()),
        Just("KWD".to_owned()),
        Just(String::new()),
        Just("cny".to_owned()),
        Just("XAU".to_owned()),
        "[A-Z]{3}",
    ]
}

fn money() -> impl Strategy<Value = Option<pb::Money>> {
    prop::option::weighted(
        0.9,
        (amount_text(), currency()).prop_map(|(amount, currency)| pb::Money { amount, currency }),
    )
}

fn date() -> impl Strategy<Value = Option<pb::Date>> {
    prop::option::weighted(
        0.9,
        (
            prop_oneof![Just(2026), Just(0), Just(-1), Just(10_000), any::<i32>()],
            -2..15_i32,
            -2..33_i32,
        )
            .prop_map(|(year, month, day)| pb::Date { year, month, day }),
    )
}

/// An id: the real one, none, or anything.
fn id(real: String) -> BoxedStrategy<String> {
    prop_oneof![Just(real), Just(String::new()), text(130)].boxed()
}

/// Any printable text of up to `max` characters.
fn text(max: usize) -> BoxedStrategy<String> {
    proptest::string::string_regex(&format!("\\PC{{0,{max}}}"))
        .unwrap()
        .boxed()
}

#[derive(Debug, Clone)]
enum Call {
    Authorize(pb::AuthorizeRequest),
    CheckCredit(pb::CheckCreditRequest),
    Capture(pb::CaptureRequest),
    RequestLimitChange(pb::RequestLimitChangeRequest),
    SetFxRate(pb::SetFxRateRequest),
    PostInvoice(pb::PostInvoiceRequest),
    PostCreditNote(pb::PostCreditNoteRequest),
    RecordPayment(pb::RecordPaymentRequest),
    OpenDispute(pb::OpenDisputeRequest),
    RequestWriteOff(pb::RequestWriteOffRequest),
    GetAging(pb::GetAgingRequest),
    GetKpis(pb::GetKpisRequest),
    GetProvisions(pb::GetProvisionsRequest),
}

/// The ids of the prepared world.
#[derive(Debug, Clone)]
struct World {
    customer_id: String,
    hold_id: String,
    invoice_id: String,
}

fn calls(world: &World) -> impl Strategy<Value = Call> {
    let customer = id(world.customer_id.clone());
    let hold = id(world.hold_id.clone());
    let invoice = id(world.invoice_id.clone());
    prop_oneof![
        (customer.clone(), text(120), money(), text(120)).prop_map(
            |(customer_id, order_id, amount, idempotency_key)| Call::Authorize(
                pb::AuthorizeRequest {
                    customer_id,
                    order_id,
                    amount,
                    idempotency_key,
                    hold_ttl: None,
                }
            )
        ),
        (customer.clone(), money()).prop_map(|(customer_id, amount)| Call::CheckCredit(
            pb::CheckCreditRequest {
                customer_id,
                amount,
                order_id: "what-if".into(),
            }
        )),
        (hold, money(), text(40)).prop_map(|(hold_id, amount, invoice_id)| Call::Capture(
            pb::CaptureRequest {
                hold_id,
                amount,
                invoice_id,
            }
        )),
        (customer.clone(), money(), text(40)).prop_map(|(customer_id, amount, request_id)| {
            Call::RequestLimitChange(pb::RequestLimitChangeRequest {
                request_id,
                scope: scope_of_customer(&customer_id),
                amount,
                reason: "property".into(),
                ..Default::default()
            })
        }),
        (currency(), currency(), amount_text(), text(40)).prop_map(
            |(base_currency, quote_currency, rate, request_id)| Call::SetFxRate(
                pb::SetFxRateRequest {
                    request_id,
                    fx_rate: Some(pb::FxRate {
                        base_currency,
                        quote_currency,
                        rate,
                        ..Default::default()
                    }),
                }
            )
        ),
        (customer.clone(), text(60), money(), date(), date()).prop_map(
            |(customer_id, invoice_number, amount, issue_date, due)| Call::PostInvoice(
                pb::PostInvoiceRequest {
                    customer_id,
                    invoice_number,
                    amount,
                    issue_date,
                    due: due.map(pb::post_invoice_request::Due::DueDate),
                    ..Default::default()
                }
            )
        ),
        (customer.clone(), invoice.clone(), text(60), money(), date()).prop_map(
            |(customer_id, invoice_id, credit_note_number, amount, issue_date)| {
                Call::PostCreditNote(pb::PostCreditNoteRequest {
                    customer_id,
                    invoice_id,
                    credit_note_number,
                    amount,
                    issue_date,
                    reason: "property".into(),
                })
            }
        ),
        (
            customer.clone(),
            money(),
            date(),
            text(60),
            prop::collection::vec((invoice.clone(), money()), 0..4)
        )
            .prop_map(
                |(customer_id, amount, value_date, reference, allocations)| {
                    Call::RecordPayment(pb::RecordPaymentRequest {
                        customer_id,
                        amount,
                        value_date,
                        reference,
                        allocations: allocations
                            .into_iter()
                            .map(|(invoice_id, amount)| pb::AllocationInstruction {
                                invoice_id,
                                amount,
                            })
                            .collect(),
                    })
                }
            ),
        (invoice.clone(), money(), text(40)).prop_map(|(invoice_id, amount, request_id)| {
            Call::OpenDispute(pb::OpenDisputeRequest {
                request_id,
                invoice_id,
                amount,
                reason: "property".into(),
            })
        }),
        (invoice, money(), text(40)).prop_map(|(invoice_id, amount, request_id)| {
            Call::RequestWriteOff(pb::RequestWriteOffRequest {
                request_id,
                invoice_id,
                amount,
                reason: "property".into(),
            })
        }),
        (customer.clone(), date(), currency(), any::<i32>()).prop_map(
            |(customer_id, as_of_date, currency, page_size)| Call::GetAging(pb::GetAgingRequest {
                scope: Some(pb::get_aging_request::Scope::CustomerId(customer_id)),
                as_of_date,
                currency,
                page_size,
                page_token: String::new(),
            })
        ),
        (date(), date(), currency()).prop_map(|(start_date, end_date, currency)| {
            Call::GetKpis(pb::GetKpisRequest {
                period: Some(pb::DateRange {
                    start_date,
                    end_date,
                }),
                currency,
            })
        }),
        (date(), any::<i32>(), customer, any::<i32>()).prop_map(
            |(as_of_date, method, customer_id, page_size)| Call::GetProvisions(
                pb::GetProvisionsRequest {
                    as_of_date,
                    method,
                    customer_id,
                    page_size,
                    page_token: String::new(),
                }
            )
        ),
    ]
}

/// Events announced so far by limits and collections: a refused request must not add any.
async fn announced(suite: &TestSuite) -> usize {
    suite.outbox_event_types(&credit_limits::STORE).await.len()
        + suite
            .outbox_event_types(&credit_collections::STORE)
            .await
            .len()
}

/// The count of announced events once the consumers have caught up: an accepted call's events
/// make limits write events of its own a moment later (a captured hold, a block), and those
/// must not be taken for what a later, refused call wrote. Stable for three reads 50 ms apart,
/// or whatever it is after five seconds.
async fn settled_announcements(suite: &TestSuite) -> usize {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    let mut last = announced(suite).await;
    let mut stable_reads = 0;
    while stable_reads < 3 && std::time::Instant::now() < deadline {
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        let now = announced(suite).await;
        stable_reads = if now == last { stable_reads + 1 } else { 0 };
        last = now;
    }
    last
}

async fn prepare(suite: &TestSuite) -> World {
    let customer_id = customer(suite, 880_001, true).await;
    grant(
        suite,
        scope_of_customer(&customer_id),
        "1000000",
        "arbitrary-limit",
    )
    .await;
    let erp = suite.issue_token("erp", &[Role::OrderEntry]).await;
    let mut limits = suite.limits(&erp);
    wait_until_approvable(&mut limits, &customer_id, "100").await;
    let hold_id = limits
        .authorize(pb::AuthorizeRequest {
            customer_id: customer_id.clone(),
            order_id: "SO-1".into(),
            amount: crate::authorize::cny("5000.00"),
            idempotency_key: "arbitrary-order-1".into(),
            hold_ttl: None,
        })
        .await
        .unwrap()
        .into_inner()
        .hold_id;
    let mut collections = suite.collections(&suite.admin_token);
    let invoice = post_invoice(
        &mut collections,
        &customer_id,
        "INV-ARB-1",
        "3000.00",
        pb::Date {
            year: 2026,
            month: 11,
            day: 1,
        },
        // Not yet due: nothing is announced later on its own (InvoiceOverdue).
        pb::Date {
            year: 2099,
            month: 12,
            day: 1,
        },
        "",
    )
    .await
    .unwrap();
    World {
        customer_id,
        hold_id,
        invoice_id: invoice.invoice.unwrap().invoice_id,
    }
}

async fn send(suite: &TestSuite, call: Call) -> Result<(), tonic::Status> {
    let mut limits = suite.limits(&suite.admin_token);
    let mut collections = suite.collections(&suite.admin_token);
    match call {
        Call::Authorize(request) => limits.authorize(request).await.map(drop),
        Call::CheckCredit(request) => limits.check_credit(request).await.map(drop),
        Call::Capture(request) => limits.capture(request).await.map(drop),
        Call::RequestLimitChange(request) => limits.request_limit_change(request).await.map(drop),
        Call::SetFxRate(request) => limits.set_fx_rate(request).await.map(drop),
        Call::PostInvoice(request) => collections.post_invoice(request).await.map(drop),
        Call::PostCreditNote(request) => collections.post_credit_note(request).await.map(drop),
        Call::RecordPayment(request) => collections.record_payment(request).await.map(drop),
        Call::OpenDispute(request) => collections.open_dispute(request).await.map(drop),
        Call::RequestWriteOff(request) => collections.request_write_off(request).await.map(drop),
        Call::GetAging(request) => collections.get_aging(request).await.map(drop),
        Call::GetKpis(request) => collections.get_kpis(request).await.map(drop),
        Call::GetProvisions(request) => collections.get_provisions(request).await.map(drop),
    }
}

/// Sends `PROPTEST_CASES` (default 160) arbitrary calls to the suite `start` makes.
fn arbitrary_calls_on(start: impl std::future::Future<Output = TestSuite>) {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let suite = runtime.block_on(start);
    let world = runtime.block_on(prepare(&suite));
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|cases| u32::from_str(&cases).ok())
        .unwrap_or(160);
    let mut runner = TestRunner::new(Config {
        cases,
        failure_persistence: None,
        ..Config::default()
    });
    // Only an accepted call leaves events behind it for the consumers to act on.
    let previous_accepted = std::cell::Cell::new(true);
    let outcome = runner.run(&calls(&world), |call| {
        runtime.block_on(async {
            let before = if previous_accepted.get() {
                settled_announcements(&suite).await
            } else {
                announced(&suite).await
            };
            let answer = send(&suite, call.clone()).await;
            previous_accepted.set(answer.is_ok());
            if let Err(status) = &answer {
                prop_assert!(
                    !matches!(status.code(), Code::Internal | Code::Unknown),
                    "{call:?} failed inside: {status:?}"
                );
                if status.code() == Code::InvalidArgument {
                    prop_assert_eq!(
                        announced(&suite).await,
                        before,
                        "{:?} was refused yet announced an event",
                        call
                    );
                }
            }
            Ok(())
        })
    });
    runtime.block_on(suite.stop());
    if let Err(failure) = outcome {
        panic!("{failure}");
    }
}

#[test]
fn arbitrary_money_requests_on_the_embedded_default() {
    arbitrary_calls_on(TestSuite::embedded());
}

#[test]
fn arbitrary_money_requests_on_postgres_and_redis() {
    arbitrary_calls_on(TestSuite::production(credit_suite::ServiceSelection::all()));
}
