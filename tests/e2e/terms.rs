//! Terms that do something (issue #24): the early-payment discount of "2/10 net 30" taken by a
//! payment within the window, shown in the ledger and lowering exposure like the payment.

use std::time::Duration;

use credit_core::Role;
use credit_e2e_tests::TestSuite;
use credit_proto::v1 as pb;
use rust_decimal::Decimal;

use crate::authorize::{amount, customer, exposure, grant, scope_of_customer};
use crate::collections::{billing, days_ago, ledger_of, shown};

fn two_ten_net_thirty() -> pb::PaymentTerms {
    pb::PaymentTerms {
        net_days: 30,
        discount_percent: "2".into(),
        discount_days: 10,
    }
}

async fn post_on_terms(
    collections: &mut crate::collections::Collections,
    customer_id: &str,
    number: &str,
    value: &str,
    issued_days_ago: u64,
) -> pb::Invoice {
    collections
        .post_invoice(pb::PostInvoiceRequest {
            customer_id: customer_id.into(),
            invoice_number: number.into(),
            amount: crate::authorize::cny(value),
            issue_date: Some(days_ago(issued_days_ago)),
            due: Some(pb::post_invoice_request::Due::PaymentTerms(
                two_ten_net_thirty(),
            )),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .invoice
        .unwrap()
}

async fn invoice(
    collections: &mut crate::collections::Collections,
    invoice_id: &str,
) -> pb::Invoice {
    collections
        .get_invoice(pb::GetInvoiceRequest {
            invoice_id: invoice_id.into(),
        })
        .await
        .unwrap()
        .into_inner()
        .invoice
        .unwrap()
}

pub async fn a_two_ten_net_thirty_invoice_paid_on_day_eight_settles_with_the_discount(
    suite: &TestSuite,
) {
    let customer_id = customer(suite, 24_101, true).await;
    grant(
        suite,
        scope_of_customer(&customer_id),
        "100000.00",
        "terms-lim-1",
    )
    .await;
    let mut collections = billing(suite).await;
    let mut limits = suite.limits(&suite.issue_token("ana", &[Role::Analyst]).await);

    // Issued eight days ago: the discount window (ten days) is still open.
    let early = post_on_terms(&mut collections, &customer_id, "DISC-1", "10000.00", 8).await;
    // Issued twelve days ago: the window has closed.
    let late = post_on_terms(&mut collections, &customer_id, "DISC-2", "5000.00", 12).await;

    // The customer pays 2 % less than the invoice, today: day 8 of DISC-1.
    let payment = crate::collections::pay(
        &mut collections,
        &customer_id,
        "WIRE-DISC-1",
        "9800.00",
        days_ago(0),
        &[(&early.invoice_id, "9800.00")],
    )
    .await
    .unwrap();
    let settled = invoice(&mut collections, &early.invoice_id).await;
    assert_eq!(settled.status(), pb::InvoiceStatus::Settled, "{settled:?}");
    assert_eq!(shown(&settled.paid_amount), "9800.00 CNY");
    assert_eq!(shown(&settled.discount_amount), "200.00 CNY");
    assert_eq!(shown(&settled.open_amount), "0.00 CNY");
    let allocations = payment.payment.unwrap().allocations;
    assert_eq!(allocations.len(), 1, "{allocations:?}");
    assert_eq!(shown(&allocations[0].amount), "9800.00 CNY");
    assert_eq!(shown(&allocations[0].discount), "200.00 CNY");
    assert_eq!(shown(&allocations[0].invoice_open_amount), "0.00 CNY");

    // Past the window the same 2 % short leaves 100.00 open.
    crate::collections::pay(
        &mut collections,
        &customer_id,
        "WIRE-DISC-2",
        "4900.00",
        days_ago(0),
        &[(&late.invoice_id, "4900.00")],
    )
    .await
    .unwrap();
    let short = invoice(&mut collections, &late.invoice_id).await;
    assert_eq!(short.status(), pb::InvoiceStatus::Open);
    assert_eq!(shown(&short.discount_amount), "0.00 CNY");
    assert_eq!(shown(&short.open_amount), "100.00 CNY");

    // The ledger shows the discount as its own credit, right after its payment.
    let ledger = ledger_of(&mut collections, &customer_id).await;
    let lines: Vec<(pb::LedgerEntryType, String, String)> = ledger
        .entries
        .iter()
        .map(|entry| {
            (
                entry.entry_type(),
                shown(&entry.credit),
                shown(&entry.balance),
            )
        })
        .collect();
    assert_eq!(
        lines,
        [
            (
                pb::LedgerEntryType::Invoice,
                "0.00 CNY".to_owned(),
                "10000.00 CNY".to_owned()
            ),
            (
                pb::LedgerEntryType::Invoice,
                "0.00 CNY".to_owned(),
                "15000.00 CNY".to_owned()
            ),
            (
                pb::LedgerEntryType::Payment,
                "9800.00 CNY".to_owned(),
                "5200.00 CNY".to_owned()
            ),
            (
                pb::LedgerEntryType::Discount,
                "200.00 CNY".to_owned(),
                "5000.00 CNY".to_owned()
            ),
            (
                pb::LedgerEntryType::Payment,
                "4900.00 CNY".to_owned(),
                "100.00 CNY".to_owned()
            ),
        ]
    );
    let discount_line = &ledger.entries[3];
    assert_eq!(discount_line.invoice_id, early.invoice_id);
    assert!(discount_line.description.contains("early-payment discount"));

    // Limits lowers the receivable exposure by the payment and the discount: 100.00 is left.
    let mut left = Decimal::MAX;
    for _ in 0..credit_e2e_tests::POLLS {
        left = amount(
            &exposure(&mut limits, scope_of_customer(&customer_id))
                .await
                .exposure,
        );
        if left == Decimal::new(10_000, 2) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert_eq!(left, Decimal::new(10_000, 2));
}

async fn interest(
    collections: &mut crate::collections::Collections,
    customer_id: &str,
    as_of: pb::Date,
) -> pb::GetOverdueInterestResponse {
    collections
        .get_overdue_interest(pb::GetOverdueInterestRequest {
            customer_id: customer_id.into(),
            as_of_date: Some(as_of),
        })
        .await
        .unwrap()
        .into_inner()
}

pub async fn overdue_interest_accrues_by_the_day_at_the_policy_rate(suite: &TestSuite) {
    let customer_id = customer(suite, 24_111, true).await;
    let mut collections = billing(suite).await;
    // 10,000.00 due ten days ago.
    let overdue = crate::collections::post_invoice(
        &mut collections,
        &customer_id,
        "INT-1",
        "10000.00",
        days_ago(40),
        days_ago(10),
        "",
    )
    .await
    .unwrap()
    .invoice
    .unwrap();

    // The shipped policy: 18.25 % a year, 0.05 % a day, so 5.00 a day on 10,000.00.
    let yesterday = interest(&mut collections, &customer_id, days_ago(1)).await;
    assert_eq!(yesterday.annual_rate_percent, "18.25");
    assert_eq!(yesterday.daily_rate_percent, "0.05");
    assert_eq!(shown(&yesterday.lines[0].accrued_interest), "45.00 CNY");
    let today = interest(&mut collections, &customer_id, days_ago(0)).await;
    assert_eq!(today.lines.len(), 1);
    assert_eq!(today.lines[0].invoice_id, overdue.invoice_id);
    assert_eq!(today.lines[0].days_past_due, 10);
    assert_eq!(shown(&today.lines[0].accrued_interest), "50.00 CNY");
    assert_eq!(shown(&today.totals.first().cloned()), "50.00 CNY");
    // Before the due date has passed, nothing.
    let before = interest(&mut collections, &customer_id, days_ago(10)).await;
    assert!(before.lines.is_empty(), "{before:?}");

    // 4,000.00 paid five days ago: five days on 10,000.00, then five on 6,000.00 = 40.00.
    crate::collections::pay(
        &mut collections,
        &customer_id,
        "WIRE-INT-1",
        "4000.00",
        days_ago(5),
        &[],
    )
    .await
    .unwrap();
    let after = interest(&mut collections, &customer_id, days_ago(0)).await;
    assert_eq!(shown(&after.lines[0].open_amount), "6000.00 CNY");
    assert_eq!(shown(&after.lines[0].accrued_interest), "40.00 CNY");
}
