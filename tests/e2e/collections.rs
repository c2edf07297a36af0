//! Collections' receivables, on both backends: invoices, credit notes and payments on a
//! customer's account, aging as of past dates, unapplied credit, overdue detection — and the
//! order-to-cash loop through all four services: an order's hold becomes a receivable, the
//! receivable going overdue past tolerance refers new orders, paying it frees them again.

use std::time::Duration;

use chrono::{Days, Utc};
use credit_core::Role;
use credit_e2e_tests::TestSuite;
use credit_proto::v1 as pb;
use rust_decimal::Decimal;
use tonic::Code;

use crate::authorize::{
    Limits, amount, authorize, cny, codes, customer, grant, scope_of_customer,
    wait_until_approvable,
};
use crate::intake::violated_fields;
use crate::rating::reason;

pub(crate) type Collections =
    pb::collections_service_client::CollectionsServiceClient<credit_e2e_tests::Authed>;

pub(crate) fn date(text: &str) -> pb::Date {
    let parsed: chrono::NaiveDate = text.parse().unwrap();
    to_date(parsed)
}

pub(crate) fn to_date(date: chrono::NaiveDate) -> pb::Date {
    use chrono::Datelike;
    pb::Date {
        year: date.year(),
        month: date.month() as i32,
        day: date.day() as i32,
    }
}

pub(crate) fn days_ago(days: u64) -> pb::Date {
    to_date(Utc::now().date_naive() - Days::new(days))
}

pub(crate) fn shown(money: &Option<pb::Money>) -> String {
    let money = money.as_ref().unwrap();
    format!("{} {}", money.amount, money.currency)
}

/// A billing system whose credit notes up to 10,000 CNY (the four-eyes threshold) post alone.
pub(crate) async fn billing(suite: &TestSuite) -> Collections {
    suite.collections(
        &suite
            .issue_token_with_authority(
                "billing",
                &[Role::OrderEntry, Role::Collector],
                Some("10000"),
            )
            .await,
    )
}

pub(crate) async fn post_invoice(
    collections: &mut Collections,
    customer_id: &str,
    number: &str,
    amount: &str,
    issued: pb::Date,
    due: pb::Date,
    hold_id: &str,
) -> Result<pb::PostInvoiceResponse, tonic::Status> {
    Ok(collections
        .post_invoice(pb::PostInvoiceRequest {
            customer_id: customer_id.into(),
            invoice_number: number.into(),
            order_id: String::new(),
            hold_id: hold_id.into(),
            amount: cny(amount),
            issue_date: Some(issued),
            due: Some(pb::post_invoice_request::Due::DueDate(due)),
        })
        .await?
        .into_inner())
}

pub(crate) async fn pay(
    collections: &mut Collections,
    customer_id: &str,
    reference: &str,
    amount: &str,
    value_date: pb::Date,
    allocations: &[(&str, &str)],
) -> Result<pb::RecordPaymentResponse, tonic::Status> {
    Ok(collections
        .record_payment(pb::RecordPaymentRequest {
            customer_id: customer_id.into(),
            amount: cny(amount),
            value_date: Some(value_date),
            reference: reference.into(),
            allocations: allocations
                .iter()
                .map(|(invoice_id, amount)| pb::AllocationInstruction {
                    invoice_id: (*invoice_id).into(),
                    amount: cny(amount),
                })
                .collect(),
        })
        .await?
        .into_inner())
}

/// The customer's whole ledger (one page).
pub(crate) async fn ledger_of(
    collections: &mut Collections,
    customer_id: &str,
) -> pb::GetCustomerLedgerResponse {
    collections
        .get_customer_ledger(pb::GetCustomerLedgerRequest {
            customer_id: customer_id.into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
}

/// (bucket, amount, invoice count) of every bucket of the only summary.
fn buckets(summaries: &[pb::AgingSummary]) -> Vec<(pb::AgingBucket, String, i32)> {
    assert_eq!(summaries.len(), 1, "{summaries:?}");
    summaries[0]
        .buckets
        .iter()
        .map(|bucket| (bucket.bucket(), shown(&bucket.amount), bucket.invoice_count))
        .collect()
}

async fn aging_of(
    collections: &mut Collections,
    customer_id: &str,
    as_of: &str,
) -> pb::GetAgingResponse {
    collections
        .get_aging(pb::GetAgingRequest {
            scope: Some(pb::get_aging_request::Scope::CustomerId(customer_id.into())),
            as_of_date: Some(date(as_of)),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
}

pub async fn aging_as_of_a_past_date_matches_a_hand_computed_table(suite: &TestSuite) {
    let mut collections = billing(suite).await;
    let customer_id = "cus_aging_1";
    let a = post_invoice(
        &mut collections,
        customer_id,
        "A-1",
        "1000.00",
        date("2026-01-05"),
        date("2026-02-04"),
        "",
    )
    .await
    .unwrap()
    .invoice
    .unwrap();
    let b = post_invoice(
        &mut collections,
        customer_id,
        "B-1",
        "2500.00",
        date("2026-02-01"),
        date("2026-03-03"),
        "",
    )
    .await
    .unwrap()
    .invoice
    .unwrap();
    post_invoice(
        &mut collections,
        customer_id,
        "C-1",
        "800.00",
        date("2026-04-20"),
        date("2026-05-20"),
        "",
    )
    .await
    .unwrap();
    post_invoice(
        &mut collections,
        customer_id,
        "D-1",
        "1200.00",
        date("2025-10-01"),
        date("2025-10-31"),
        "",
    )
    .await
    .unwrap();
    pay(
        &mut collections,
        customer_id,
        "BANK-A1",
        "400.00",
        date("2026-03-10"),
        &[(&a.invoice_id, "400.00")],
    )
    .await
    .unwrap();
    pay(
        &mut collections,
        customer_id,
        "BANK-A2",
        "600.00",
        date("2026-06-01"),
        &[(&a.invoice_id, "600.00")],
    )
    .await
    .unwrap();
    collections
        .post_credit_note(pb::PostCreditNoteRequest {
            customer_id: customer_id.into(),
            invoice_id: b.invoice_id.clone(),
            credit_note_number: "CN-B1".into(),
            amount: cny("500.00"),
            issue_date: Some(date("2026-04-15")),
            reason: "damaged goods".into(),
        })
        .await
        .unwrap();

    // As of 2026-04-30, by hand:
    // A 1,000 - 400 (paid 03-10) = 600, due 02-04: 85 days -> 61-90
    // B 2,500 - 500 (credited 04-15) = 2,000, due 03-03: 58 days -> 31-60
    // C 800, due 05-20: not yet due -> current
    // D 1,200, due 2025-10-31: 181 days -> 181-360
    // Total 4,600; overdue 3,800.
    use pb::AgingBucket::*;
    let april = aging_of(&mut collections, customer_id, "2026-04-30").await;
    assert_eq!(
        buckets(&april.totals),
        [
            (Current, "800.00 CNY".into(), 1),
            (Days1To30, "0.00 CNY".into(), 0),
            (Days31To60, "2000.00 CNY".into(), 1),
            (Days61To90, "600.00 CNY".into(), 1),
            (Days91To180, "0.00 CNY".into(), 0),
            (Days181To360, "1200.00 CNY".into(), 1),
            (Over360Days, "0.00 CNY".into(), 0),
        ]
    );
    assert_eq!(shown(&april.totals[0].total), "4600.00 CNY");
    assert_eq!(shown(&april.totals[0].overdue_total), "3800.00 CNY");
    let days: Vec<(String, i32)> = april
        .invoices
        .iter()
        .map(|line| (line.invoice_number.clone(), line.days_past_due))
        .collect();
    assert_eq!(
        days,
        [
            ("D-1".into(), 181),
            ("A-1".into(), 85),
            ("B-1".into(), 58),
            ("C-1".into(), 0)
        ]
    );

    // As of 2026-06-30: A was paid off on 06-01; B 119 days -> 91-180; C 41 days -> 31-60;
    // D 242 days -> 181-360.
    let june = aging_of(&mut collections, customer_id, "2026-06-30").await;
    assert_eq!(
        buckets(&june.totals),
        [
            (Current, "0.00 CNY".into(), 0),
            (Days1To30, "0.00 CNY".into(), 0),
            (Days31To60, "800.00 CNY".into(), 1),
            (Days61To90, "0.00 CNY".into(), 0),
            (Days91To180, "2000.00 CNY".into(), 1),
            (Days181To360, "1200.00 CNY".into(), 1),
            (Over360Days, "0.00 CNY".into(), 0),
        ]
    );
    // Before anything was issued there is nothing to age.
    let before = aging_of(&mut collections, customer_id, "2025-09-30").await;
    assert!(before.totals.is_empty() && before.invoices.is_empty());

    // The invoice says what happened to it.
    let settled = collections
        .get_invoice(pb::GetInvoiceRequest {
            invoice_id: a.invoice_id.clone(),
        })
        .await
        .unwrap()
        .into_inner()
        .invoice
        .unwrap();
    assert_eq!(settled.status(), pb::InvoiceStatus::Settled);
    assert_eq!(shown(&settled.paid_amount), "1000.00 CNY");
    assert_eq!(settled.closed_date, Some(date("2026-06-01")));

    // The portfolio view lists the customer with its overdue total.
    let portfolio = collections
        .get_aging(pb::GetAgingRequest {
            scope: Some(pb::get_aging_request::Scope::Portfolio(pb::Portfolio {})),
            as_of_date: Some(date("2026-04-30")),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(portfolio.customers.len(), 1);
    assert_eq!(portfolio.customers[0].customer_id, customer_id);
    assert_eq!(
        shown(&portfolio.customers[0].summaries[0].overdue_total),
        "3800.00 CNY"
    );
}

pub async fn an_overpayment_is_kept_and_applied_to_the_next_invoice(suite: &TestSuite) {
    let mut collections = billing(suite).await;
    let customer_id = "cus_overpay_1";
    let first = post_invoice(
        &mut collections,
        customer_id,
        "OP-1",
        "1000.00",
        days_ago(20),
        days_ago(0),
        "",
    )
    .await
    .unwrap()
    .invoice
    .unwrap();
    // 1,500 received against 1,000 owed: 1,000 applied, 500 kept as unapplied credit.
    let paid = pay(
        &mut collections,
        customer_id,
        "BANK-OP",
        "1500.00",
        days_ago(1),
        &[],
    )
    .await
    .unwrap();
    let payment = paid.payment.unwrap();
    assert_eq!(payment.allocations.len(), 1);
    assert_eq!(payment.allocations[0].invoice_id, first.invoice_id);
    assert_eq!(shown(&payment.allocations[0].amount), "1000.00 CNY");
    assert_eq!(
        shown(&payment.allocations[0].invoice_open_amount),
        "0.00 CNY"
    );
    assert_eq!(shown(&payment.unapplied_amount), "500.00 CNY");
    assert_eq!(paid.invoices[0].status(), pb::InvoiceStatus::Settled);

    let ledger = ledger_of(&mut collections, customer_id).await;
    assert_eq!(ledger.balances.len(), 1);
    assert_eq!(shown(&ledger.balances[0].open_receivables), "0.00 CNY");
    assert_eq!(shown(&ledger.balances[0].unapplied_credit), "500.00 CNY");
    assert_eq!(shown(&ledger.balances[0].balance), "-500.00 CNY");

    // The next invoice, 800, is paid 500 by the credit at once: 300 stays open.
    let second = post_invoice(
        &mut collections,
        customer_id,
        "OP-2",
        "800.00",
        days_ago(0),
        days_ago(0),
        "",
    )
    .await
    .unwrap();
    assert_eq!(shown(&second.credit_applied), "500.00 CNY");
    let invoice = second.invoice.unwrap();
    assert_eq!(shown(&invoice.open_amount), "300.00 CNY");
    assert_eq!(shown(&invoice.paid_amount), "500.00 CNY");
    // A retry answers the same, and says it is one.
    let again = post_invoice(
        &mut collections,
        customer_id,
        "OP-2",
        "800.00",
        days_ago(0),
        days_ago(0),
        "",
    )
    .await
    .unwrap();
    assert!(again.replayed);
    assert_eq!(again.invoice.unwrap().invoice_id, invoice.invoice_id);
    assert_eq!(shown(&again.credit_applied), "500.00 CNY");

    // Ledger: invoice 1,000, payment 1,500, invoice 800; running balance 1,000, -500, 300.
    let ledger = ledger_of(&mut collections, customer_id).await;
    let lines: Vec<(pb::LedgerEntryType, String)> = ledger
        .entries
        .iter()
        .map(|entry| (entry.entry_type(), shown(&entry.balance)))
        .collect();
    assert_eq!(
        lines,
        [
            (pb::LedgerEntryType::Invoice, "1000.00 CNY".into()),
            (pb::LedgerEntryType::Payment, "-500.00 CNY".into()),
            (pb::LedgerEntryType::Invoice, "300.00 CNY".into()),
        ]
    );
    assert_eq!(shown(&ledger.balances[0].unapplied_credit), "0.00 CNY");
    assert_eq!(shown(&ledger.balances[0].balance), "300.00 CNY");
}

pub async fn bad_or_repeated_postings_are_refused_and_write_nothing(suite: &TestSuite) {
    let mut collections = billing(suite).await;
    let customer_id = "cus_bad_1";
    let refused = collections
        .post_invoice(pb::PostInvoiceRequest {
            customer_id: customer_id.into(),
            invoice_number: String::new(),
            amount: cny("-5.00"),
            issue_date: Some(days_ago(0)),
            due: Some(pb::post_invoice_request::Due::DueDate(days_ago(3))),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(violated_fields(&refused), ["invoice_number", "amount"]);
    let backwards = post_invoice(
        &mut collections,
        customer_id,
        "X-1",
        "10.00",
        days_ago(0),
        days_ago(3),
        "",
    )
    .await
    .unwrap_err();
    assert_eq!(violated_fields(&backwards), ["due_date"]);
    let invoice = post_invoice(
        &mut collections,
        customer_id,
        "X-1",
        "10.00",
        days_ago(5),
        days_ago(0),
        "",
    )
    .await
    .unwrap()
    .invoice
    .unwrap();
    let other = post_invoice(
        &mut collections,
        customer_id,
        "X-1",
        "11.00",
        days_ago(5),
        days_ago(0),
        "",
    )
    .await
    .unwrap_err();
    assert_eq!(other.code(), Code::AlreadyExists);
    assert_eq!(reason(&other), "IDEMPOTENCY_KEY_REUSED");
    let too_much = pay(
        &mut collections,
        customer_id,
        "BANK-X",
        "50.00",
        days_ago(0),
        &[(&invoice.invoice_id, "20.00")],
    )
    .await
    .unwrap_err();
    assert_eq!(too_much.code(), Code::FailedPrecondition);
    assert_eq!(reason(&too_much), "AMOUNT_EXCEEDS_OPEN_AMOUNT");
    let credit_too_big = collections
        .post_credit_note(pb::PostCreditNoteRequest {
            customer_id: customer_id.into(),
            invoice_id: invoice.invoice_id.clone(),
            credit_note_number: "CN-X".into(),
            amount: cny("10.01"),
            issue_date: Some(days_ago(0)),
            reason: "goodwill".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(reason(&credit_too_big), "AMOUNT_EXCEEDS_OPEN_AMOUNT");
    // Nothing of the refused calls was written: one invoice, still fully open.
    let listed = collections
        .list_invoices(pb::ListInvoicesRequest {
            customer_id: customer_id.into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .invoices;
    assert_eq!(listed.len(), 1);
    assert_eq!(shown(&listed[0].open_amount), "10.00 CNY");
    let ledger = ledger_of(&mut collections, customer_id).await;
    assert_eq!(ledger.entries.len(), 1);
}

async fn exposure_of(limits: &mut Limits, customer_id: &str) -> (Decimal, Decimal, Decimal) {
    let exposure = limits
        .get_exposure(pb::GetExposureRequest {
            scope: scope_of_customer(customer_id),
        })
        .await
        .unwrap()
        .into_inner()
        .exposure
        .unwrap();
    (
        amount(&exposure.open_holds),
        amount(&exposure.open_receivables),
        amount(&exposure.exposure),
    )
}

/// Waits until limits shows `holds` and `receivables`, and checks exposure is their sum.
async fn wait_for_exposure(limits: &mut Limits, customer_id: &str, holds: &str, receivables: &str) {
    let wanted = (
        holds.parse::<Decimal>().unwrap(),
        receivables.parse::<Decimal>().unwrap(),
    );
    let mut seen = None;
    for _ in 0..credit_e2e_tests::POLLS {
        let (open_holds, open_receivables, exposure) = exposure_of(limits, customer_id).await;
        assert_eq!(
            exposure,
            open_holds + open_receivables,
            "exposure is holds + receivables"
        );
        if (open_holds, open_receivables) == wanted {
            return;
        }
        seen = Some((open_holds, open_receivables));
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("{customer_id}: holds and receivables {seen:?}, expected {wanted:?}");
}

async fn decision_reasons_once(
    limits: &mut Limits,
    customer_id: &str,
    ready: impl Fn(&[String]) -> bool,
) -> Vec<String> {
    let mut reasons = Vec::new();
    for _ in 0..credit_e2e_tests::POLLS {
        reasons = codes(
            &crate::authorize::check(limits, customer_id, "100.00")
                .await
                .reasons,
        );
        if ready(&reasons) {
            return reasons;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("{customer_id}: reasons stayed {reasons:?}");
}

pub async fn overdue_past_tolerance_refers_orders_until_paid(suite: &TestSuite) {
    let mut orders = suite.limits(&suite.issue_token("erp", &[Role::OrderEntry]).await);
    let mut collections = billing(suite).await;
    let customer_id = customer(suite, 61_001, true).await;
    grant(
        suite,
        scope_of_customer(&customer_id),
        "10000.00",
        "o2c-lim",
    )
    .await;
    wait_until_approvable(&mut orders, &customer_id, "1.00").await;

    // An order reserves 3,000.
    let order = authorize(&mut orders, &customer_id, "o2c-1", "3000.00")
        .await
        .unwrap();
    assert_eq!(order.decision(), pb::AuthorizationDecision::Approved);
    wait_for_exposure(&mut orders, &customer_id, "3000.00", "0").await;

    // Invoiced (issued 60 days ago, due 45 days ago): the hold becomes a receivable.
    let invoice = post_invoice(
        &mut collections,
        &customer_id,
        "O2C-1",
        "3000.00",
        days_ago(60),
        days_ago(45),
        &order.hold_id,
    )
    .await
    .unwrap()
    .invoice
    .unwrap();
    wait_for_exposure(&mut orders, &customer_id, "0", "3000.00").await;
    assert!(
        codes(
            &crate::authorize::check(&mut orders, &customer_id, "100.00")
                .await
                .reasons
        )
        .is_empty()
    );

    // Overdue detection finds it 45 days overdue, past the 30 days unrated customers are
    // allowed: new orders are referred.
    let detected = collections
        .detect_overdue(pb::DetectOverdueRequest {
            as_of_date: None,
            customer_ids: vec![customer_id.clone()],
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(detected.changed.len(), 1);
    assert_eq!(detected.changed[0].oldest_overdue_days, 45);
    assert_eq!(
        shown(&detected.changed[0].overdue_amounts.first().cloned()),
        "3000.00 CNY"
    );
    // Twice for the same date announces nothing new.
    let again = collections
        .detect_overdue(pb::DetectOverdueRequest {
            as_of_date: None,
            customer_ids: vec![customer_id.clone()],
        })
        .await
        .unwrap()
        .into_inner();
    assert!(again.changed.is_empty());
    let reasons =
        decision_reasons_once(&mut orders, &customer_id, |reasons| !reasons.is_empty()).await;
    assert_eq!(reasons, ["CREDIT_BLOCK", "OVERDUE"]);
    let referred = authorize(&mut orders, &customer_id, "o2c-2", "100.00")
        .await
        .unwrap();
    assert_eq!(referred.decision(), pb::AuthorizationDecision::Referred);
    wait_for_exposure(&mut orders, &customer_id, "0", "3000.00").await;

    // Paid in full: the receivable is gone, the block cleared, orders approved again; the
    // order referred for the overdue invoice is released by the system once its cause has
    // cleared (the shipped policy's auto_release_cleared_referrals).
    pay(
        &mut collections,
        &customer_id,
        "BANK-O2C",
        "3000.00",
        days_ago(0),
        &[(&invoice.invoice_id, "3000.00")],
    )
    .await
    .unwrap();
    wait_for_exposure(&mut orders, &customer_id, "100.00", "0").await;
    let released = suite
        .limits(&suite.admin_token)
        .list_referrals(pb::ListReferralsRequest {
            customer_id: customer_id.clone(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .referrals;
    assert_eq!(released[0].referral_id, referred.referral_id);
    assert_eq!(released[0].status(), pb::ReferralStatus::Released);
    assert_eq!(
        released[0].decided_by.as_ref().unwrap().principal,
        "system:limits"
    );
    decision_reasons_once(&mut orders, &customer_id, <[String]>::is_empty).await;
    let approved = authorize(&mut orders, &customer_id, "o2c-3", "100.00")
        .await
        .unwrap();
    assert_eq!(approved.decision(), pb::AuthorizationDecision::Approved);
    wait_for_exposure(&mut orders, &customer_id, "200.00", "0").await;

    // The payment record feeds rating: the invoice was paid 45 days late.
    let behaviour = collections
        .get_payment_behaviour(pb::GetPaymentBehaviourRequest {
            customer_id: customer_id.clone(),
            as_of_date: None,
        })
        .await
        .unwrap()
        .into_inner()
        .behaviour
        .unwrap();
    assert_eq!(behaviour.max_days_overdue_12m, 45);
    assert_eq!(behaviour.invoices_settled_12m, 1);
    assert_eq!(behaviour.on_time_payment_ratio.as_deref(), Some("0"));
    let unknown = collections
        .get_payment_behaviour(pb::GetPaymentBehaviourRequest {
            customer_id: "cus_never_invoiced".into(),
            as_of_date: None,
        })
        .await
        .unwrap_err();
    assert_eq!(unknown.code(), Code::NotFound);
}

pub async fn an_invoice_without_a_due_date_takes_the_customers_terms_from_limits(
    suite: &TestSuite,
) {
    let mut collections = billing(suite).await;
    let customer_id = customer(suite, 61_002, true).await;
    let mut limits = suite.limits(&suite.issue_token("ana", &[Role::Analyst]).await);
    // Limits learns of the customer from intake's event, a moment later.
    let mut terms = None;
    for _ in 0..credit_e2e_tests::POLLS {
        if let Ok(answer) = limits
            .get_credit_terms(pb::GetCreditTermsRequest {
                customer_id: customer_id.clone(),
            })
            .await
        {
            terms = answer
                .into_inner()
                .terms
                .and_then(|terms| terms.payment_terms);
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    let terms = terms.expect("limits knows the customer's terms");
    let issued = days_ago(10);
    let invoice = collections
        .post_invoice(pb::PostInvoiceRequest {
            customer_id: customer_id.clone(),
            invoice_number: "TERMS-1".into(),
            amount: cny("250.00"),
            issue_date: Some(issued),
            due: None,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .invoice
        .unwrap();
    let net_days = u64::try_from(terms.net_days).unwrap();
    let expected_due = {
        let issued_on =
            chrono::NaiveDate::from_ymd_opt(issued.year, issued.month as u32, issued.day as u32)
                .unwrap();
        to_date(issued_on + Days::new(net_days))
    };
    assert_eq!(invoice.due_date, Some(expected_due));
    assert_eq!(invoice.payment_terms.unwrap().net_days, terms.net_days);

    // A customer limits does not know: the due date must be given.
    let unknown = collections
        .post_invoice(pb::PostInvoiceRequest {
            customer_id: "cus_not_in_limits".into(),
            invoice_number: "TERMS-2".into(),
            amount: cny("250.00"),
            issue_date: Some(issued),
            due: None,
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(violated_fields(&unknown), ["due"]);
}

pub async fn two_overdue_detections_at_once_announce_a_change_once(suite: &TestSuite) {
    let mut first = billing(suite).await;
    let mut second = billing(suite).await;
    let customer_id = "cus_detect_twice";
    post_invoice(
        &mut first,
        customer_id,
        "DT-1",
        "700.00",
        days_ago(50),
        days_ago(40),
        "",
    )
    .await
    .unwrap();
    let request = || pb::DetectOverdueRequest {
        as_of_date: None,
        customer_ids: vec![customer_id.into()],
    };
    let (one, two) = tokio::join!(
        first.detect_overdue(request()),
        second.detect_overdue(request())
    );
    let announced =
        one.unwrap().into_inner().changed.len() + two.unwrap().into_inner().changed.len();
    assert_eq!(
        announced, 1,
        "one of the two detections announces the change"
    );
    let overdue_events = suite
        .outbox_event_types(&credit_collections::STORE)
        .await
        .into_iter()
        .filter(|kind| kind == "InvoiceOverdue")
        .count();
    assert_eq!(overdue_events, 1);
}

pub async fn concurrent_payments_never_allocate_the_same_open_amount(suite: &TestSuite) {
    let customer_id = "cus_many_payers";
    let mut collections = billing(suite).await;
    let invoice = post_invoice(
        &mut collections,
        customer_id,
        "MP-1",
        "1000.00",
        days_ago(5),
        days_ago(0),
        "",
    )
    .await
    .unwrap()
    .invoice
    .unwrap();
    // Ten payments of 200.00 at once against 1,000.00 owed: 1,000.00 is applied in all, the
    // other 1,000.00 is kept as unapplied credit, whatever the order.
    let mut payers = Vec::new();
    for index in 0..10 {
        let mut client = billing(suite).await;
        payers.push(tokio::spawn(async move {
            pay(
                &mut client,
                "cus_many_payers",
                &format!("MP-BANK-{index}"),
                "200.00",
                days_ago(0),
                &[],
            )
            .await
            .unwrap()
        }));
    }
    let mut applied = Decimal::ZERO;
    let mut unapplied = Decimal::ZERO;
    for payer in payers {
        let payment = payer.await.unwrap().payment.unwrap();
        applied += payment
            .allocations
            .iter()
            .map(|allocation| amount(&allocation.amount))
            .sum::<Decimal>();
        unapplied += amount(&payment.unapplied_amount);
    }
    assert_eq!(applied, Decimal::from(1000));
    assert_eq!(unapplied, Decimal::from(1000));
    let settled = collections
        .get_invoice(pb::GetInvoiceRequest {
            invoice_id: invoice.invoice_id.clone(),
        })
        .await
        .unwrap()
        .into_inner()
        .invoice
        .unwrap();
    assert_eq!(shown(&settled.paid_amount), "1000.00 CNY");
    assert_eq!(shown(&settled.open_amount), "0.00 CNY");
    let ledger = ledger_of(&mut collections, customer_id).await;
    assert_eq!(shown(&ledger.balances[0].unapplied_credit), "1000.00 CNY");
    assert_eq!(shown(&ledger.balances[0].balance), "-1000.00 CNY");
}

/// The running balances (issue #19) follow every kind of change, and an aging as of today —
/// totals from the balances per due date, lines in keyset pages — shows what aging the
/// invoices gives. Payments allocated automatically walk the open invoices by index in
/// batches: one reaching past the first batches still pays oldest first and skips what is
/// disputed. At the end the stored balances equal the ones computed from the rows, and a
/// backfill (migration 0007's, for customers from before it) computes the same again.
pub async fn running_balances_and_todays_aging_follow_every_change(suite: &TestSuite) {
    let mut collections = billing(suite).await;
    let customer_id = customer(suite, 61_900, true).await;
    // 20 invoices of 10.00 issued 100 days ago, due 90 days ago down to 71 days ago (61–90
    // bucket), then one due in 10 days (current).
    let mut invoices = Vec::new();
    for index in 0..20_u64 {
        let posted = post_invoice(
            &mut collections,
            &customer_id,
            &format!("B-{index:02}"),
            "10.00",
            days_ago(100),
            days_ago(90 - index),
            "",
        )
        .await
        .unwrap();
        invoices.push(posted.invoice.unwrap().invoice_id);
    }
    post_invoice(
        &mut collections,
        &customer_id,
        "C-1",
        "500.00",
        days_ago(1),
        to_date(Utc::now().date_naive() + Days::new(10)),
        "",
    )
    .await
    .unwrap();
    // The third oldest is partly disputed: automatic allocation leaves 4.00 of it alone.
    collections
        .open_dispute(pb::OpenDisputeRequest {
            request_id: "bal-dsp-1".into(),
            invoice_id: invoices[2].clone(),
            amount: cny("4.00"),
            reason: "short delivery".into(),
        })
        .await
        .unwrap();
    // 150.00 oldest first: 14 whole invoices (the disputed one gives 6.00) and 4.00 of the
    // sixteenth: beyond the first two batches of the walk (8 + 16 invoices read at most).
    let paid = pay(
        &mut collections,
        &customer_id,
        "BAL-P1",
        "150.00",
        days_ago(0),
        &[],
    )
    .await
    .unwrap();
    let allocations: Vec<(String, String)> = paid
        .payment
        .unwrap()
        .allocations
        .iter()
        .map(|allocation| (allocation.invoice_id.clone(), shown(&allocation.amount)))
        .collect();
    let mut expected: Vec<(String, String)> = (0..15)
        .map(|index| (invoices[index].clone(), "10.00 CNY".to_owned()))
        .collect();
    expected[2].1 = "6.00 CNY".to_owned();
    expected.push((invoices[15].clone(), "4.00 CNY".to_owned()));
    assert_eq!(allocations, expected);
    // A credit note closes the sixteenth; an overpayment leaves credit that the next
    // invoice takes at once.
    collections
        .post_credit_note(pb::PostCreditNoteRequest {
            customer_id: customer_id.clone(),
            invoice_id: invoices[15].clone(),
            credit_note_number: "BAL-CN-1".into(),
            amount: cny("6.00"),
            issue_date: Some(days_ago(0)),
            reason: "price correction".into(),
        })
        .await
        .unwrap();
    pay(
        &mut collections,
        &customer_id,
        "BAL-P2",
        "30.00",
        days_ago(0),
        &[(&invoices[16], "10.00")],
    )
    .await
    .unwrap();
    let taken = post_invoice(
        &mut collections,
        &customer_id,
        "C-2",
        "25.00",
        days_ago(0),
        to_date(Utc::now().date_naive() + Days::new(30)),
        "",
    )
    .await
    .unwrap();
    assert_eq!(shown(&taken.credit_applied), "20.00 CNY");
    // A write-off of the last old invoice, four eyes.
    let mut maker = suite.collections(
        &suite
            .issue_token_with_authority("mia", &[Role::CreditManager], Some("100000"))
            .await,
    );
    let mut checker = suite.collections(
        &suite
            .issue_token_with_authority("max", &[Role::CreditManager], Some("100000"))
            .await,
    );
    let write_off = maker
        .request_write_off(pb::RequestWriteOffRequest {
            request_id: "bal-wo-1".into(),
            invoice_id: invoices[19].clone(),
            amount: None,
            reason: "insolvent".into(),
        })
        .await
        .unwrap()
        .into_inner()
        .write_off
        .unwrap();
    checker
        .decide_write_off(pb::DecideWriteOffRequest {
            request_id: "bal-wo-2".into(),
            write_off_id: write_off.write_off_id,
            decision: pb::ApprovalDecision::Approve as i32,
            reason: "checked the file".into(),
        })
        .await
        .unwrap();

    // Open now: B-02 4.00 (disputed), B-17 and B-18 10.00 each (61–90 days past due),
    // C-1 500.00 and C-2 5.00 (current).
    let mut lines = Vec::new();
    let mut page_token = String::new();
    let mut totals = None;
    loop {
        let page = collections
            .get_aging(pb::GetAgingRequest {
                scope: Some(pb::get_aging_request::Scope::CustomerId(
                    customer_id.clone(),
                )),
                page_size: 2,
                page_token: page_token.clone(),
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner();
        assert!(page.invoices.len() <= 2);
        lines.extend(
            page.invoices
                .iter()
                .map(|line| (line.invoice_number.clone(), shown(&line.open_amount))),
        );
        totals.get_or_insert(page.totals);
        if page.next_page_token.is_empty() {
            break;
        }
        page_token = page.next_page_token;
    }
    let owned = |pairs: &[(&str, &str)]| -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(number, amount)| ((*number).to_owned(), (*amount).to_owned()))
            .collect()
    };
    assert_eq!(
        lines,
        owned(&[
            ("B-02", "4.00 CNY"),
            ("B-17", "10.00 CNY"),
            ("B-18", "10.00 CNY"),
            ("C-1", "500.00 CNY"),
            ("C-2", "5.00 CNY"),
        ])
    );
    assert_eq!(
        buckets(&totals.unwrap()),
        vec![
            (pb::AgingBucket::Current, "505.00 CNY".to_owned(), 2),
            (pb::AgingBucket::Days1To30, "0.00 CNY".to_owned(), 0),
            (pb::AgingBucket::Days31To60, "0.00 CNY".to_owned(), 0),
            (pb::AgingBucket::Days61To90, "24.00 CNY".to_owned(), 3),
            (pb::AgingBucket::Days91To180, "0.00 CNY".to_owned(), 0),
            (pb::AgingBucket::Days181To360, "0.00 CNY".to_owned(), 0),
            (pb::AgingBucket::Over360Days, "0.00 CNY".to_owned(), 0),
        ]
    );
    let ledger = ledger_of(&mut collections, &customer_id).await;
    let balance = &ledger.balances[0];
    assert_eq!(
        (
            shown(&balance.open_receivables),
            shown(&balance.unapplied_credit),
            shown(&balance.balance)
        ),
        (
            "529.00 CNY".to_owned(),
            "0.00 CNY".to_owned(),
            "529.00 CNY".to_owned()
        )
    );

    // The stored balances are the ones the rows give, and a backfill recomputes the same.
    let database =
        credit_runtime::Database::open(suite.backend(), &credit_collections::STORE, 2, false)
            .await
            .unwrap();
    let store = credit_collections::store::SqlReceivableStore::new(database.clone());
    use credit_collections::store::ReceivableStore;
    let stored = store.balances(&customer_id).await.unwrap();
    assert_eq!(stored, store.computed_balances(&customer_id).await.unwrap());
    assert_eq!(stored.due_dates.len(), 5, "{stored:?}");
    credit_runtime::on_database!(&database, |pool, sql| {
        sqlx::query(&sql(
            "UPDATE customer_balances SET open_receivables = '0' WHERE customer_id = $1",
        ))
        .bind(&customer_id)
        .execute(pool)
        .await
        .unwrap();
        sqlx::query(&sql(
            "INSERT INTO balance_backfill (customer_id) VALUES ($1)",
        ))
        .bind(&customer_id)
        .execute(pool)
        .await
        .unwrap();
    });
    assert_eq!(store.backfill_balances().await.unwrap(), 1);
    assert_eq!(store.balances(&customer_id).await.unwrap(), stored);
    database.close().await;
}
