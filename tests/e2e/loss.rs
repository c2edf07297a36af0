//! Collections' loss side, on both backends: provisions by five-level classification of a
//! hand-built portfolio, write-offs under four eyes (self-approval and too little authority
//! refused, a manager with enough approves; limits' receivable exposure drops), recoveries as
//! memo lines in the ledger, and collection KPIs for a period — every figure computed by hand.

use std::time::Duration;

use chrono::{Days, NaiveDate, Utc};
use credit_core::Role;
use credit_e2e_tests::TestSuite;
use credit_proto::v1 as pb;
use rust_decimal::Decimal;
use tonic::Code;

use crate::authorize::{Limits, amount, cny, customer, scope_of_customer};
use crate::rating::reason;

type Collections =
    pb::collections_service_client::CollectionsServiceClient<credit_e2e_tests::Authed>;

fn to_date(date: NaiveDate) -> pb::Date {
    use chrono::Datelike;
    pb::Date {
        year: date.year(),
        month: date.month() as i32,
        day: date.day() as i32,
    }
}

fn today() -> NaiveDate {
    Utc::now().date_naive()
}

fn days_ago(days: u64) -> pb::Date {
    to_date(today() - Days::new(days))
}

fn days_ahead(days: u64) -> pb::Date {
    to_date(today() + Days::new(days))
}

fn shown(money: &Option<pb::Money>) -> String {
    let money = money.as_ref().unwrap();
    format!("{} {}", money.amount, money.currency)
}

fn money(amount: &str, currency: &str) -> Option<pb::Money> {
    Some(pb::Money {
        amount: amount.into(),
        currency: currency.into(),
    })
}

async fn billing(suite: &TestSuite) -> Collections {
    suite.collections(
        &suite
            .issue_token("billing", &[Role::OrderEntry, Role::Collector])
            .await,
    )
}

/// Posts an invoice issued `issued` days ago and due `due` (a date); returns its id.
async fn post(
    collections: &mut Collections,
    customer_id: &str,
    number: &str,
    amount: Option<pb::Money>,
    issued_days_ago: u64,
    due: pb::Date,
) -> String {
    collections
        .post_invoice(pb::PostInvoiceRequest {
            customer_id: customer_id.into(),
            invoice_number: number.into(),
            order_id: String::new(),
            hold_id: String::new(),
            amount,
            issue_date: Some(days_ago(issued_days_ago)),
            due: Some(pb::post_invoice_request::Due::DueDate(due)),
        })
        .await
        .unwrap()
        .into_inner()
        .invoice
        .unwrap()
        .invoice_id
}

async fn pay(
    collections: &mut Collections,
    customer_id: &str,
    reference: &str,
    invoice_id: &str,
    paid: &str,
    value_days_ago: u64,
) {
    collections
        .record_payment(pb::RecordPaymentRequest {
            customer_id: customer_id.into(),
            amount: cny(paid),
            value_date: Some(days_ago(value_days_ago)),
            reference: reference.into(),
            allocations: vec![pb::AllocationInstruction {
                invoice_id: invoice_id.into(),
                amount: cny(paid),
            }],
        })
        .await
        .unwrap();
}

async fn request_write_off(
    collections: &mut Collections,
    request_id: &str,
    invoice_id: &str,
    amount: Option<pb::Money>,
    why: &str,
) -> Result<pb::WriteOff, tonic::Status> {
    Ok(collections
        .request_write_off(pb::RequestWriteOffRequest {
            request_id: request_id.into(),
            invoice_id: invoice_id.into(),
            amount,
            reason: why.into(),
        })
        .await?
        .into_inner()
        .write_off
        .unwrap())
}

async fn decide(
    collections: &mut Collections,
    request_id: &str,
    write_off_id: &str,
    decision: pb::ApprovalDecision,
) -> Result<pb::DecideWriteOffResponse, tonic::Status> {
    Ok(collections
        .decide_write_off(pb::DecideWriteOffRequest {
            request_id: request_id.into(),
            write_off_id: write_off_id.into(),
            decision: decision as i32,
            reason: "checked the file".into(),
        })
        .await?
        .into_inner())
}

async fn recover(
    collections: &mut Collections,
    request_id: &str,
    write_off_id: &str,
    recovered: &str,
) -> Result<pb::RecordRecoveryResponse, tonic::Status> {
    Ok(collections
        .record_recovery(pb::RecordRecoveryRequest {
            request_id: request_id.into(),
            write_off_id: write_off_id.into(),
            amount: cny(recovered),
            value_date: Some(days_ago(0)),
            reference: "BANK-77".into(),
        })
        .await?
        .into_inner())
}

fn refused(result: Result<impl std::fmt::Debug, tonic::Status>) -> (Code, String) {
    let status = result.unwrap_err();
    (status.code(), reason(&status))
}

pub async fn provisions_of_a_portfolio_match_hand_computed_figures(suite: &TestSuite) {
    let mut billing = billing(suite).await;
    let as_of = today();
    // CNY invoices due so many days before today, so each sits in its class:
    let portfolio = [
        ("prov-c1", "A", "10000.00", 0),  // NORMAL (0 days), 1 %: 100.00
        ("prov-c1", "B", "2500.50", 45),  // SPECIAL_MENTION, 2 %: 50.01
        ("prov-c2", "C", "333.33", 100),  // SUBSTANDARD, 25 %: 83.3325 -> 83.33
        ("prov-c2", "D", "1234.57", 200), // DOUBTFUL, 50 %: 617.285 -> 617.28 (half-even)
        ("prov-c3", "E", "99.99", 400),   // LOSS, 100 %: 99.99
        ("prov-c3", "F", "800.00", 30),   // SPECIAL_MENTION; 300 paid, 500 open, 2 %: 10.00
        ("prov-c1", "H", "700.00", 10),   // paid in full: no provision
    ];
    let mut ids = std::collections::BTreeMap::new();
    for (customer_id, number, invoice_amount, days_past_due) in portfolio {
        let id = post(
            &mut billing,
            customer_id,
            number,
            cny(invoice_amount),
            days_past_due + 30,
            days_ago(days_past_due),
        )
        .await;
        ids.insert(number, id);
    }
    pay(&mut billing, "prov-c3", "P-F", &ids["F"], "300.00", 1).await;
    pay(&mut billing, "prov-c1", "P-H", &ids["H"], "700.00", 2).await;
    // And a USD invoice 91 days past due: SUBSTANDARD, 25 % of 1000.00 = 250.00.
    post(
        &mut billing,
        "prov-c3",
        "G",
        money("1000.00", "USD"),
        121,
        days_ago(91),
    )
    .await;

    let mut analyst = suite.collections(&suite.issue_token("ann", &[Role::Analyst]).await);
    let response = analyst
        .get_provisions(pb::GetProvisionsRequest {
            as_of_date: Some(to_date(as_of)),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(response.method(), pb::ProvisionMethod::Classification);
    assert_eq!(response.summaries.len(), 2, "{:?}", response.summaries);
    let cny_summary = &response.summaries[0];
    assert_eq!(cny_summary.currency, "CNY");
    let by_class: Vec<(pb::AssetClassification, String, String, i32)> = cny_summary
        .by_class
        .iter()
        .map(|class| {
            (
                class.classification(),
                shown(&class.exposure),
                shown(&class.provision),
                class.invoice_count,
            )
        })
        .collect();
    use pb::AssetClassification as Class;
    assert_eq!(
        by_class,
        [
            (Class::Normal, "10000.00 CNY".into(), "100.00 CNY".into(), 1),
            // 2500.50 + 500.00 = 3000.50; 50.01 + 10.00 = 60.01.
            (
                Class::SpecialMention,
                "3000.50 CNY".into(),
                "60.01 CNY".into(),
                2
            ),
            (
                Class::Substandard,
                "333.33 CNY".into(),
                "83.33 CNY".into(),
                1
            ),
            (
                Class::Doubtful,
                "1234.57 CNY".into(),
                "617.28 CNY".into(),
                1
            ),
            (Class::Loss, "99.99 CNY".into(), "99.99 CNY".into(), 1),
        ]
    );
    // 10000 + 3000.50 + 333.33 + 1234.57 + 99.99 = 14668.39;
    // 100.00 + 60.01 + 83.33 + 617.28 + 99.99 = 960.61.
    assert_eq!(shown(&cny_summary.total_exposure), "14668.39 CNY");
    assert_eq!(shown(&cny_summary.total_provision), "960.61 CNY");
    let usd_summary = &response.summaries[1];
    assert_eq!(shown(&usd_summary.total_provision), "250.00 USD");
    assert_eq!(usd_summary.by_class[2].classification(), Class::Substandard);

    // By customer and currency, largest provision first: c2 83.33 + 617.28 = 700.61
    // (worst DOUBTFUL); c3 in USD 250.00; c1 100.00 + 50.01 = 150.01; c3 in CNY
    // 99.99 + 10.00 = 109.99 (worst LOSS).
    let customers: Vec<(String, pb::AssetClassification, String, String)> = response
        .customers
        .iter()
        .map(|line| {
            (
                line.customer_id.clone(),
                line.classification(),
                shown(&line.exposure),
                shown(&line.provision),
            )
        })
        .collect();
    assert_eq!(
        customers,
        [
            (
                "prov-c2".into(),
                Class::Doubtful,
                "1567.90 CNY".into(),
                "700.61 CNY".into()
            ),
            (
                "prov-c3".into(),
                Class::Substandard,
                "1000.00 USD".into(),
                "250.00 USD".into()
            ),
            (
                "prov-c1".into(),
                Class::SpecialMention,
                "12500.50 CNY".into(),
                "150.01 CNY".into()
            ),
            (
                "prov-c3".into(),
                Class::Loss,
                "599.99 CNY".into(),
                "109.99 CNY".into()
            ),
        ]
    );
    // The rules applied are the default thresholds and rates.
    let rules: Vec<(i32, Option<i32>, String)> = response
        .rules
        .iter()
        .map(|rule| {
            (
                rule.min_days_past_due,
                rule.max_days_past_due,
                rule.provision_rate_percent.clone(),
            )
        })
        .collect();
    assert_eq!(
        rules,
        [
            (0, Some(0), "1".into()),
            (1, Some(90), "2".into()),
            (91, Some(180), "25".into()),
            (181, Some(360), "50".into()),
            (361, None, "100".into()),
        ]
    );

    // Customer lines page; the totals come on every page.
    let first = analyst
        .get_provisions(pb::GetProvisionsRequest {
            as_of_date: Some(to_date(as_of)),
            page_size: 3,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(first.customers.len(), 3);
    let second = analyst
        .get_provisions(pb::GetProvisionsRequest {
            as_of_date: Some(to_date(as_of)),
            page_size: 3,
            page_token: first.next_page_token.clone(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(second.customers.len(), 1);
    assert_eq!(second.customers[0].customer_id, "prov-c3");
    assert_eq!(second.next_page_token, "");
    assert_eq!(shown(&second.summaries[0].total_provision), "960.61 CNY");

    // One customer only: c2.
    let one = analyst
        .get_provisions(pb::GetProvisionsRequest {
            as_of_date: Some(to_date(as_of)),
            customer_id: "prov-c2".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(shown(&one.summaries[0].total_provision), "700.61 CNY");

    // Expected credit loss = open amount x PD x LGD 0.45, rounded per invoice. c2 is rated
    // with a PD of 2 % (rating's event); c1 is not, and takes the default PD of 5 %.
    suite
        .publish(
            credit_proto::service_names::RATING,
            pb::event::Payload::RatingChanged(pb::RatingChanged {
                customer_id: "prov-c2".into(),
                grade: "BB".into(),
                pd: "0.0200".into(),
                ..Default::default()
            }),
        )
        .await;
    let ecl_of = |customer_id: &'static str| pb::GetProvisionsRequest {
        as_of_date: Some(to_date(as_of)),
        method: pb::ProvisionMethod::ExpectedCreditLoss as i32,
        customer_id: customer_id.into(),
        ..Default::default()
    };
    // c2: 333.33 x 0.009 = 2.99997 -> 3.00; 1234.57 x 0.009 = 11.11113 -> 11.11; 14.11.
    let mut c2 = String::new();
    for _ in 0..credit_e2e_tests::POLLS {
        let answer = analyst
            .get_provisions(ecl_of("prov-c2"))
            .await
            .unwrap()
            .into_inner();
        c2 = shown(&answer.summaries[0].total_provision);
        if c2 == "14.11 CNY" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert_eq!(c2, "14.11 CNY");
    // c1: 10000.00 x 0.0225 = 225.00; 2500.50 x 0.0225 = 56.26125 -> 56.26; 281.26.
    let c1 = analyst
        .get_provisions(ecl_of("prov-c1"))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(c1.method(), pb::ProvisionMethod::ExpectedCreditLoss);
    assert_eq!(shown(&c1.summaries[0].total_provision), "281.26 CNY");
}

async fn receivables_of(limits: &mut Limits, customer_id: &str) -> Option<Decimal> {
    let exposure = limits
        .get_exposure(pb::GetExposureRequest {
            scope: scope_of_customer(customer_id),
        })
        .await
        .ok()?
        .into_inner()
        .exposure?;
    Some(amount(&exposure.open_receivables))
}

async fn wait_for_receivables(limits: &mut Limits, customer_id: &str, wanted: &str) {
    let wanted: Decimal = wanted.parse().unwrap();
    let mut seen = None;
    for _ in 0..credit_e2e_tests::POLLS {
        seen = receivables_of(limits, customer_id).await;
        if seen == Some(wanted) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("{customer_id}: receivables {seen:?}, expected {wanted}");
}

pub async fn a_write_off_needs_a_second_person_with_enough_authority(suite: &TestSuite) {
    let customer_id = customer(suite, 61_001, true).await;
    let mut limits = suite.limits(&suite.issue_token("viewer", &[Role::Analyst]).await);
    // Limits knows the customer before its receivables arrive.
    wait_for_receivables(&mut limits, &customer_id, "0.00").await;

    let mut billing = billing(suite).await;
    let bad = post(
        &mut billing,
        &customer_id,
        "W-1",
        cny("5000.00"),
        100,
        days_ago(70),
    )
    .await;
    let disputed = post(
        &mut billing,
        &customer_id,
        "W-2",
        cny("1000.00"),
        40,
        days_ago(10),
    )
    .await;
    wait_for_receivables(&mut limits, &customer_id, "6000.00").await;

    // The maker is a manager too, with authority: still not their own checker.
    let mut maker = suite.collections(
        &suite
            .issue_token_with_authority("mia", &[Role::CreditManager], Some("100000"))
            .await,
    );
    let pending = request_write_off(&mut maker, "wo-1", &bad, None, "insolvent, no assets")
        .await
        .unwrap();
    assert_eq!(pending.status(), pb::ApprovalStatus::Pending);
    // Unset amount = the whole open amount.
    assert_eq!(shown(&pending.amount), "5000.00 CNY");
    // A retry returns the same write-off; the same key for another request is refused.
    let again = request_write_off(&mut maker, "wo-1", &bad, None, "insolvent, no assets")
        .await
        .unwrap();
    assert_eq!(again.write_off_id, pending.write_off_id);
    assert_eq!(
        refused(request_write_off(&mut maker, "wo-1", &bad, None, "other reason").await),
        (Code::AlreadyExists, "IDEMPOTENCY_KEY_REUSED".into())
    );
    // More than is open is refused.
    assert_eq!(
        refused(request_write_off(&mut maker, "wo-2", &disputed, cny("1000.01"), "too much").await),
        (
            Code::FailedPrecondition,
            "AMOUNT_EXCEEDS_OPEN_AMOUNT".into()
        )
    );
    let partial = request_write_off(&mut maker, "wo-3", &disputed, cny("400.00"), "haircut")
        .await
        .unwrap();

    let listed = maker
        .list_write_offs(pb::ListWriteOffsRequest {
            status: pb::ApprovalStatus::Pending as i32,
            customer_id: customer_id.clone(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    let listed: Vec<&str> = listed
        .write_offs
        .iter()
        .map(|write_off| write_off.write_off_id.as_str())
        .collect();
    // Newest first.
    assert_eq!(
        listed,
        [partial.write_off_id.as_str(), pending.write_off_id.as_str()]
    );

    assert_eq!(
        refused(
            decide(
                &mut maker,
                "d-self",
                &pending.write_off_id,
                pb::ApprovalDecision::Approve
            )
            .await
        ),
        (Code::PermissionDenied, "SELF_APPROVAL".into())
    );
    // The maker's second token, with ADMIN, is still the maker.
    let mut maker_again = suite.collections(&suite.issue_token("mia", &[Role::Admin]).await);
    assert_eq!(
        refused(
            decide(
                &mut maker_again,
                "d-self-2",
                &pending.write_off_id,
                pb::ApprovalDecision::Approve
            )
            .await
        ),
        (Code::PermissionDenied, "SELF_APPROVAL".into())
    );
    let mut small = suite.collections(
        &suite
            .issue_token_with_authority("sam", &[Role::CreditManager], Some("1000"))
            .await,
    );
    assert_eq!(
        refused(
            decide(
                &mut small,
                "d-small",
                &pending.write_off_id,
                pb::ApprovalDecision::Approve
            )
            .await
        ),
        (Code::PermissionDenied, "AUTHORITY_INSUFFICIENT".into())
    );
    // Nothing was written by the refusals: the invoice is still open, the exposure unchanged.
    assert_eq!(
        receivables_of(&mut limits, &customer_id).await,
        Some(Decimal::from(6000))
    );

    let mut boss = suite.collections(
        &suite
            .issue_token_with_authority("bo", &[Role::CreditManager], Some("100000"))
            .await,
    );
    let approved = decide(
        &mut boss,
        "d-boss",
        &pending.write_off_id,
        pb::ApprovalDecision::Approve,
    )
    .await
    .unwrap();
    let write_off = approved.write_off.unwrap();
    let invoice = approved.invoice.unwrap();
    assert_eq!(write_off.status(), pb::ApprovalStatus::Approved);
    assert_eq!(write_off.decided_by.unwrap().principal, "bo");
    assert_eq!(invoice.status(), pb::InvoiceStatus::WrittenOff);
    assert_eq!(shown(&invoice.open_amount), "0.00 CNY");
    assert_eq!(shown(&invoice.written_off_amount), "5000.00 CNY");
    // A replay answers the same; a second decision is refused.
    let replayed = decide(
        &mut boss,
        "d-boss",
        &pending.write_off_id,
        pb::ApprovalDecision::Approve,
    )
    .await
    .unwrap();
    assert_eq!(
        replayed.write_off.unwrap().status(),
        pb::ApprovalStatus::Approved
    );
    assert_eq!(
        refused(
            decide(
                &mut boss,
                "d-boss-2",
                &pending.write_off_id,
                pb::ApprovalDecision::Reject
            )
            .await
        ),
        (Code::FailedPrecondition, "REQUEST_NOT_PENDING".into())
    );
    // Limits consumes ReceivableWrittenOff: 6000 - 5000 = 1000 left.
    wait_for_receivables(&mut limits, &customer_id, "1000.00").await;

    // A pending write-off takes no recovery; the partial one is rejected, its invoice stays.
    assert_eq!(
        refused(recover(&mut boss, "r-0", &partial.write_off_id, "10.00").await),
        (Code::FailedPrecondition, "WRITE_OFF_NOT_APPROVED".into())
    );
    let rejected = decide(
        &mut small,
        "d-reject",
        &partial.write_off_id,
        pb::ApprovalDecision::Reject,
    )
    .await
    .unwrap();
    assert_eq!(
        rejected.write_off.unwrap().status(),
        pb::ApprovalStatus::Rejected
    );
    assert_eq!(shown(&rejected.invoice.unwrap().open_amount), "1000.00 CNY");

    // Recoveries: at most what was written off in total.
    let mut collector = suite.collections(&suite.issue_token("col", &[Role::Collector]).await);
    let recovered = recover(&mut collector, "r-1", &pending.write_off_id, "1200.00")
        .await
        .unwrap();
    assert_eq!(
        shown(&recovered.write_off.unwrap().recovered_amount),
        "1200.00 CNY"
    );
    // 5000.00 - 1200.00 = 3800.00 left; a cent more is refused.
    assert_eq!(
        refused(recover(&mut collector, "r-2", &pending.write_off_id, "3800.01").await),
        (
            Code::FailedPrecondition,
            "AMOUNT_EXCEEDS_OPEN_AMOUNT".into()
        )
    );
    // A recovery does not change exposure.
    assert_eq!(
        receivables_of(&mut limits, &customer_id).await,
        Some(Decimal::from(1000))
    );

    // The ledger: two invoices, the write-off as a credit, the recovery as a memo line.
    let ledger = collector
        .get_customer_ledger(pb::GetCustomerLedgerRequest {
            customer_id: customer_id.clone(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    let lines: Vec<(pb::LedgerEntryType, String, String, String)> = ledger
        .entries
        .iter()
        .map(|entry| {
            (
                entry.entry_type(),
                shown(&entry.debit),
                shown(&entry.credit),
                shown(&entry.balance),
            )
        })
        .collect();
    use pb::LedgerEntryType as Entry;
    assert_eq!(
        lines,
        [
            (
                Entry::Invoice,
                "5000.00 CNY".into(),
                "0.00 CNY".into(),
                "5000.00 CNY".into()
            ),
            (
                Entry::Invoice,
                "1000.00 CNY".into(),
                "0.00 CNY".into(),
                "6000.00 CNY".into()
            ),
            (
                Entry::WriteOff,
                "0.00 CNY".into(),
                "5000.00 CNY".into(),
                "1000.00 CNY".into()
            ),
            (
                Entry::Recovery,
                "0.00 CNY".into(),
                "0.00 CNY".into(),
                "1000.00 CNY".into()
            ),
        ]
    );
    assert!(
        ledger.entries[3].description.contains("1200.00 CNY"),
        "{}",
        ledger.entries[3].description
    );
    assert_eq!(ledger.entries[3].invoice_id, bad);
    assert_eq!(shown(&ledger.balances[0].balance), "1000.00 CNY");
}

pub async fn kpis_of_a_period_match_hand_computed_figures(suite: &TestSuite) {
    let mut billing = billing(suite).await;
    let customer_id = "kpi-c1";
    // The period: the 30 days ending today (T-29 .. T); opening balances at the end of T-30.
    // K1 4000 issued T-60, 1000 paid T-50, the other 3000 paid T-10: opening 3000, closing 0.
    let k1 = post(
        &mut billing,
        customer_id,
        "K1",
        cny("4000.00"),
        60,
        days_ago(40),
    )
    .await;
    pay(&mut billing, customer_id, "P-K1a", &k1, "1000.00", 50).await;
    pay(&mut billing, customer_id, "P-K1b", &k1, "3000.00", 10).await;
    // K2 2000 issued T-45 due T-15, unpaid: opening 2000, closing 2000 overdue.
    post(
        &mut billing,
        customer_id,
        "K2",
        cny("2000.00"),
        45,
        days_ago(15),
    )
    .await;
    // K3 6000 issued T-20 (a credit sale) due T+10, 1500 paid T-5: closing 4500 current.
    let k3 = post(
        &mut billing,
        customer_id,
        "K3",
        cny("6000.00"),
        20,
        days_ahead(10),
    )
    .await;
    pay(&mut billing, customer_id, "P-K3", &k3, "1500.00", 5).await;
    // K4 3000 issued T-25 (a credit sale) due T-5, written off today: closing 0.
    let k4 = post(
        &mut billing,
        customer_id,
        "K4",
        cny("3000.00"),
        25,
        days_ago(5),
    )
    .await;
    let mut maker = suite.collections(&suite.issue_token("col", &[Role::Collector]).await);
    let write_off = request_write_off(&mut maker, "wo-k4", &k4, None, "fraud")
        .await
        .unwrap();
    let mut boss = suite.collections(
        &suite
            .issue_token_with_authority("bo", &[Role::CreditManager], Some("100000"))
            .await,
    );
    decide(
        &mut boss,
        "d-k4",
        &write_off.write_off_id,
        pb::ApprovalDecision::Approve,
    )
    .await
    .unwrap();

    let mut analyst = suite.collections(&suite.issue_token("ann", &[Role::Analyst]).await);
    let response = analyst
        .get_kpis(pb::GetKpisRequest {
            period: Some(pb::DateRange {
                start_date: Some(days_ago(29)),
                end_date: Some(days_ago(0)),
            }),
            currency: String::new(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(response.kpis.len(), 1, "{:?}", response.kpis);
    let kpis = &response.kpis[0];
    // Credit sales K3 + K4 = 9000; opening K1 3000 + K2 2000 = 5000; closing K2 2000 + K3
    // 4500 = 6500, of which current (K3) 4500 and overdue (K2) 2000; write-offs 3000.
    assert_eq!(shown(&kpis.credit_sales), "9000.00 CNY");
    assert_eq!(shown(&kpis.opening_receivables), "5000.00 CNY");
    assert_eq!(shown(&kpis.closing_receivables), "6500.00 CNY");
    assert_eq!(shown(&kpis.closing_current_receivables), "4500.00 CNY");
    assert_eq!(shown(&kpis.closing_overdue_receivables), "2000.00 CNY");
    assert_eq!(shown(&kpis.write_offs), "3000.00 CNY");
    assert_eq!(kpis.days_in_period, 30);
    // DSO = 6500 / 9000 x 30 = 21.666.. -> 21.6667 days.
    assert_eq!(kpis.dso.as_deref(), Some("21.6667"));
    // Overdue ratio = 2000 / 6500 = 0.307692.. -> 0.3077.
    assert_eq!(kpis.overdue_ratio.as_deref(), Some("0.3077"));
    // Bad-debt ratio = 3000 / 9000 = 0.3333.
    assert_eq!(kpis.bad_debt_ratio.as_deref(), Some("0.3333"));
    // CEI = (5000 + 9000 - 6500) / (5000 + 9000 - 4500) x 100 = 7500 / 9500 x 100
    // = 78.947368.. -> 78.9474 %.
    assert_eq!(
        kpis.collection_effectiveness_percent.as_deref(),
        Some("78.9474")
    );
    // Promises are not fed to KPIs yet.
    assert_eq!(kpis.promise_kept_rate, None);
    assert_eq!(kpis.promises_due, 0);

    // Another currency filter gives nothing; a period ending before it starts is refused.
    let usd = analyst
        .get_kpis(pb::GetKpisRequest {
            period: Some(pb::DateRange {
                start_date: Some(days_ago(29)),
                end_date: Some(days_ago(0)),
            }),
            currency: "USD".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert!(usd.kpis.is_empty());
    let backwards = analyst
        .get_kpis(pb::GetKpisRequest {
            period: Some(pb::DateRange {
                start_date: Some(days_ago(0)),
                end_date: Some(days_ago(1)),
            }),
            currency: String::new(),
        })
        .await;
    assert_eq!(backwards.unwrap_err().code(), Code::InvalidArgument);
}

pub async fn a_large_write_off_is_verified_by_finance_approved_by_the_general_manager_and_filed_with_the_board(
    suite: &TestSuite,
) {
    let customer_id = customer(suite, 61_002, true).await;
    let mut limits = suite.limits(&suite.issue_token("viewer", &[Role::Analyst]).await);
    wait_for_receivables(&mut limits, &customer_id, "0.00").await;
    let mut billing = billing(suite).await;
    let lost = post(
        &mut billing,
        &customer_id,
        "WL-1",
        cny("2500000.00"),
        200,
        days_ago(150),
    )
    .await;
    wait_for_receivables(&mut limits, &customer_id, "2500000.00").await;

    let mut collector = suite.collections(&suite.issue_token("cole", &[Role::Collector]).await);
    let pending = request_write_off(&mut collector, "wl-1", &lost, None, "bankrupt, no assets")
        .await
        .unwrap();
    let chain = pending.approval_chain.clone().unwrap();
    assert_eq!(chain.rule_id, "write-off-large");
    let roles: Vec<Vec<i32>> = chain.steps.iter().map(|step| step.roles.clone()).collect();
    assert_eq!(
        roles,
        [
            vec![pb::Role::Finance as i32],
            vec![pb::Role::GeneralManager as i32],
            vec![pb::Role::Board as i32]
        ]
    );
    assert_eq!(shown(&chain.authority_amount), "2500000.00 CNY");

    // A credit manager with authority is not finance's step.
    let mut manager = suite.collections(
        &suite
            .issue_token_with_authority("cam", &[Role::CreditManager], Some("10000000"))
            .await,
    );
    assert_eq!(
        refused(
            decide(
                &mut manager,
                "wl-cm",
                &pending.write_off_id,
                pb::ApprovalDecision::Approve
            )
            .await
        ),
        (Code::PermissionDenied, "STEP_ROLE_REQUIRED".into())
    );
    // Finance verifies: still pending, nothing written off.
    let mut finance = suite.collections(
        &suite
            .issue_token("fay-finance", &[Role::Finance, Role::GeneralManager])
            .await,
    );
    let verified = decide(
        &mut finance,
        "wl-fin",
        &pending.write_off_id,
        pb::ApprovalDecision::Approve,
    )
    .await
    .unwrap()
    .write_off
    .unwrap();
    assert_eq!(verified.status(), pb::ApprovalStatus::Pending);
    assert!(verified.decided_by.is_none());
    let chain = verified.approval_chain.unwrap();
    assert_eq!(chain.current_step_index, Some(1));
    assert_eq!(
        receivables_of(&mut limits, &customer_id).await,
        Some(Decimal::from(2_500_000))
    );
    // The same person, holding the general manager's role too, does not decide a second step.
    assert_eq!(
        refused(
            decide(
                &mut finance,
                "wl-fin-2",
                &pending.write_off_id,
                pb::ApprovalDecision::Approve
            )
            .await
        ),
        (Code::PermissionDenied, "SELF_APPROVAL".into())
    );
    // A general manager without enough authority may not approve it.
    let mut small_gm = suite.collections(
        &suite
            .issue_token_with_authority("gil-gm", &[Role::GeneralManager], Some("1000000"))
            .await,
    );
    assert_eq!(
        refused(
            decide(
                &mut small_gm,
                "wl-gm-small",
                &pending.write_off_id,
                pb::ApprovalDecision::Approve
            )
            .await
        ),
        (Code::PermissionDenied, "AUTHORITY_INSUFFICIENT".into())
    );
    let mut gm = suite.collections(
        &suite
            .issue_token_with_authority("gene-gm", &[Role::GeneralManager], Some("10000000"))
            .await,
    );
    let approved = decide(
        &mut gm,
        "wl-gm",
        &pending.write_off_id,
        pb::ApprovalDecision::Approve,
    )
    .await
    .unwrap();
    let write_off = approved.write_off.unwrap();
    assert_eq!(write_off.status(), pb::ApprovalStatus::Approved);
    assert_eq!(write_off.decided_by.unwrap().principal, "gene-gm");
    let chain = write_off.approval_chain.unwrap();
    assert_eq!(chain.status(), pb::ApprovalChainStatus::Approved);
    assert_eq!(
        chain.steps[2].status(),
        pb::ApprovalStepStatus::Informed,
        "the board is informed"
    );
    let deciders: Vec<String> = chain
        .trail
        .iter()
        .map(|entry| entry.actor.as_ref().unwrap().principal.clone())
        .collect();
    assert_eq!(deciders, ["fay-finance", "gene-gm"]);
    assert_eq!(
        shown(&approved.invoice.unwrap().written_off_amount),
        "2500000.00 CNY"
    );
    wait_for_receivables(&mut limits, &customer_id, "0.00").await;
}
