//! Collections' events in limits' exposure, on both backends: an invoice captures its hold
//! (or adds receivables without one), payments, credit notes and write-offs lower
//! receivables, each event counts once, and InvoiceOverdue sets and clears the OVERDUE block
//! against the tolerance of the customer's grade. The events are published on the suite's
//! bus, as collections' relay will once collections lands.

use std::time::Duration;

use credit_core::Role;
use credit_e2e_tests::TestSuite;
use credit_proto::service_names::COLLECTIONS;
use credit_proto::v1 as pb;
use credit_proto::v1::event::Payload;
use rust_decimal::Decimal;

use crate::authorize::{
    Limits, amount, authorize, check, cny, codes, customer, grant, scope_of_customer,
    wait_until_approvable,
};

async fn position(limits: &mut Limits, customer_id: &str) -> pb::Exposure {
    limits
        .get_exposure(pb::GetExposureRequest {
            scope: scope_of_customer(customer_id),
        })
        .await
        .unwrap()
        .into_inner()
        .exposure
        .unwrap()
}

/// Waits until the customer's open holds and receivables are `holds` and `receivables`.
async fn wait_for_position(limits: &mut Limits, customer_id: &str, holds: &str, receivables: &str) {
    let wanted = (
        holds.parse::<Decimal>().unwrap(),
        receivables.parse::<Decimal>().unwrap(),
    );
    let mut seen = None;
    for _ in 0..credit_e2e_tests::POLLS {
        let now = position(limits, customer_id).await;
        let pair = (amount(&now.open_holds), amount(&now.open_receivables));
        if pair == wanted {
            return;
        }
        seen = Some(pair);
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("{customer_id}: holds and receivables {seen:?}, expected {wanted:?}");
}

fn invoice(customer_id: &str, invoice_id: &str, hold_id: &str, open: &str) -> Payload {
    Payload::InvoicePosted(pb::InvoicePosted {
        invoice_id: invoice_id.into(),
        customer_id: customer_id.into(),
        invoice_number: format!("INV-{invoice_id}"),
        hold_id: hold_id.into(),
        amount: cny(open),
        open_amount: cny(open),
        ..Default::default()
    })
}

pub async fn receivable_events_move_exposure_once_each(suite: &TestSuite) {
    let mut orders = suite.limits(&suite.issue_token("erp", &[Role::OrderEntry]).await);
    let customer_id = customer(suite, 41_001, true).await;
    grant(
        suite,
        scope_of_customer(&customer_id),
        "10000.00",
        "rcv-lim",
    )
    .await;
    wait_until_approvable(&mut orders, &customer_id, "1.00").await;

    // An order's hold, invoiced for less than it reserved: the invoice replaces the hold.
    let order = authorize(&mut orders, &customer_id, "rcv-1", "3000.00")
        .await
        .unwrap();
    assert_eq!(order.decision(), pb::AuthorizationDecision::Approved);
    wait_for_position(&mut orders, &customer_id, "3000.00", "0.00").await;
    let posted = suite
        .publish(
            COLLECTIONS,
            invoice(&customer_id, "inv-1", &order.hold_id, "2800.00"),
        )
        .await;
    wait_for_position(&mut orders, &customer_id, "0.00", "2800.00").await;
    // The capture is announced like one made through Capture.
    let announced = suite.outbox_event_types(&credit_limits::STORE).await;
    assert_eq!(
        announced
            .iter()
            .filter(|kind| kind.as_str() == "HoldCaptured")
            .count(),
        1,
        "{announced:?}"
    );
    // Delivered again: counted once.
    suite.publish_event(&posted).await;

    // An invoice without a hold (a phone order, say) adds receivables as they are.
    suite
        .publish(COLLECTIONS, invoice(&customer_id, "inv-2", "", "5000.00"))
        .await;
    wait_for_position(&mut orders, &customer_id, "0.00", "7800.00").await;
    // The decision sees the receivables: 2,300 more is 10,100, within the 10 % band.
    assert_eq!(
        codes(&check(&mut orders, &customer_id, "2300.00").await.reasons),
        ["LIMIT_EXCEEDED"]
    );

    // A payment allocated to both invoices, then a credit note and a write-off.
    suite
        .publish(
            COLLECTIONS,
            Payload::PaymentReceived(pb::PaymentReceived {
                payment_id: "pay-1".into(),
                customer_id: customer_id.clone(),
                amount: cny("3000.00"),
                allocations: vec![
                    pb::PaymentAllocationApplied {
                        invoice_id: "inv-1".into(),
                        amount: cny("2800.00"),
                        invoice_open_amount: cny("0.00"),
                        discount: None,
                    },
                    pb::PaymentAllocationApplied {
                        invoice_id: "inv-2".into(),
                        amount: cny("100.00"),
                        invoice_open_amount: cny("4900.00"),
                        discount: None,
                    },
                ],
                // Unapplied cash stays credit on account; it does not lower exposure.
                unapplied_amount: cny("100.00"),
                ..Default::default()
            }),
        )
        .await;
    wait_for_position(&mut orders, &customer_id, "0.00", "4900.00").await;
    suite
        .publish(
            COLLECTIONS,
            Payload::CreditNotePosted(pb::CreditNotePosted {
                credit_note_id: "cn-1".into(),
                customer_id: customer_id.clone(),
                invoice_id: "inv-2".into(),
                amount: cny("900.00"),
                invoice_open_amount: cny("4000.00"),
            }),
        )
        .await;
    suite
        .publish(
            COLLECTIONS,
            Payload::ReceivableWrittenOff(pb::ReceivableWrittenOff {
                write_off_id: "wo-1".into(),
                customer_id: customer_id.clone(),
                invoice_id: "inv-2".into(),
                amount: cny("4000.00"),
                invoice_open_amount: cny("0.00"),
                ..Default::default()
            }),
        )
        .await;
    wait_for_position(&mut orders, &customer_id, "0.00", "0.00").await;
    // The cache agrees with the ledger: the whole limit is available again.
    assert_eq!(
        check(&mut orders, &customer_id, "10000.00")
            .await
            .decision(),
        pb::AuthorizationDecision::Approved
    );
}

pub async fn overdue_beyond_the_grade_tolerance_blocks_until_paid(suite: &TestSuite) {
    let mut orders = suite.limits(&suite.issue_token("erp", &[Role::OrderEntry]).await);
    let customer_id = customer(suite, 42_001, true).await;
    grant(suite, scope_of_customer(&customer_id), "10000.00", "od-lim").await;
    wait_until_approvable(&mut orders, &customer_id, "1.00").await;
    let overdue = |days: i32| {
        Payload::InvoiceOverdue(pb::InvoiceOverdue {
            customer_id: customer_id.clone(),
            oldest_overdue_days: days,
            ..Default::default()
        })
    };

    // Unrated customers tolerate 30 days (the shipped policy): 20 days changes nothing.
    suite.publish(COLLECTIONS, overdue(20)).await;
    for _ in 0..credit_e2e_tests::POLLS {
        if position(&mut orders, &customer_id)
            .await
            .oldest_overdue_days
            == 20
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert_eq!(
        position(&mut orders, &customer_id)
            .await
            .oldest_overdue_days,
        20
    );
    assert!(codes(&check(&mut orders, &customer_id, "1.00").await.reasons).is_empty());

    // 45 days: the OVERDUE block is set and orders are referred for both reasons.
    suite.publish(COLLECTIONS, overdue(45)).await;
    let mut reasons = Vec::new();
    for _ in 0..credit_e2e_tests::POLLS {
        reasons = codes(&check(&mut orders, &customer_id, "1.00").await.reasons);
        if !reasons.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert_eq!(reasons, ["CREDIT_BLOCK", "OVERDUE"]);
    let referred = check(&mut orders, &customer_id, "1.00").await;
    assert_eq!(referred.reasons[0].metadata["block_types"], "OVERDUE");
    assert_eq!(referred.reasons[1].metadata["oldest_overdue_days"], "45");
    assert_eq!(referred.reasons[1].metadata["tolerance_days"], "30");
    let blocks = position(&mut orders, &customer_id).await.blocks;
    assert_eq!(blocks.len(), 1);
    assert_eq!(blocks[0].block_type(), pb::CreditBlockType::Overdue);
    assert_eq!(blocks[0].reason.as_ref().unwrap().code, "OVERDUE");

    // Paid: back to 0 days, the block is cleared and orders are approved again.
    suite.publish(COLLECTIONS, overdue(0)).await;
    for _ in 0..credit_e2e_tests::POLLS {
        if codes(&check(&mut orders, &customer_id, "1.00").await.reasons).is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert!(codes(&check(&mut orders, &customer_id, "1.00").await.reasons).is_empty());
    assert!(position(&mut orders, &customer_id).await.blocks.is_empty());
}

fn money_in(amount: &str, currency: &str) -> Option<pb::Money> {
    Some(pb::Money {
        amount: amount.into(),
        currency: currency.into(),
    })
}

fn invoice_in(customer_id: &str, invoice_id: &str, open: &str, currency: &str) -> Payload {
    Payload::InvoicePosted(pb::InvoicePosted {
        invoice_id: invoice_id.into(),
        customer_id: customer_id.into(),
        invoice_number: format!("INV-{invoice_id}"),
        amount: money_in(open, currency),
        open_amount: money_in(open, currency),
        ..Default::default()
    })
}

fn block_types(exposure: &pb::Exposure) -> Vec<pb::CreditBlockType> {
    exposure
        .blocks
        .iter()
        .map(|block| block.block_type())
        .collect()
}

/// Exposure is kept in one currency per customer: its limit's, else the suite's base (CNY).
/// An amount no rate converts yet is neither dropped nor mixed in, and holds nothing back: it
/// waits, the customer's orders are referred meanwhile (FX_RATE_MISSING block), and a rate
/// brings it in and lifts the block.
pub async fn receivables_without_a_rate_wait_and_block_credit_until_one_is_set(suite: &TestSuite) {
    let mut orders = suite.limits(&suite.issue_token("erp", &[Role::OrderEntry]).await);
    let mut treasury = suite.limits(&suite.admin_token);

    // Without a limit: a USD invoice and a CNY one are never added as 15.00 of anything.
    let unlimited = customer(suite, 41_101, true).await;
    for _ in 0..credit_e2e_tests::POLLS {
        let known = orders
            .get_exposure(pb::GetExposureRequest {
                scope: scope_of_customer(&unlimited),
            })
            .await;
        if known.is_ok() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    suite
        .publish(COLLECTIONS, invoice_in(&unlimited, "fx-u1", "10.00", "USD"))
        .await;
    suite
        .publish(COLLECTIONS, invoice_in(&unlimited, "fx-u2", "5.00", "CNY"))
        .await;
    wait_for_position(&mut orders, &unlimited, "0.00", "5.00").await;
    let waiting = position(&mut orders, &unlimited).await;
    assert_eq!(waiting.currency, "CNY");
    assert_eq!(block_types(&waiting), [pb::CreditBlockType::FxRateMissing]);
    let reason = waiting.blocks[0].reason.clone().unwrap_or_default().message;
    assert!(
        reason.contains("10.00 USD"),
        "the block says what waits: {reason:?}"
    );

    // Its exposure is kept in CNY and is not zero: a USD limit would change what every figure
    // means, so it is refused until the exposure is cleared.
    let mut maker = suite.limits(&suite.issue_token("ana", &[Role::Analyst]).await);
    let refused = maker
        .request_limit_change(pb::RequestLimitChangeRequest {
            request_id: "fx-usd-limit".into(),
            scope: scope_of_customer(&unlimited),
            amount: money_in("1000.00", "USD"),
            reason: "export customer".into(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(
        refused.code(),
        tonic::Code::FailedPrecondition,
        "{refused:?}"
    );
    assert!(refused.message().contains("kept in CNY"), "{refused:?}");

    // With a CNY limit: the USD invoice waits, the CNY invoice after it does not; orders are
    // referred while an amount is missing from exposure.
    let limited = customer(suite, 41_102, true).await;
    grant(
        suite,
        scope_of_customer(&limited),
        "10000.00",
        "fx-wait-lim",
    )
    .await;
    wait_until_approvable(&mut orders, &limited, "1.00").await;
    suite
        .publish(COLLECTIONS, invoice_in(&limited, "fx-l1", "100.00", "USD"))
        .await;
    suite
        .publish(COLLECTIONS, invoice_in(&limited, "fx-l2", "300.00", "CNY"))
        .await;
    wait_for_position(&mut orders, &limited, "0.00", "300.00").await;
    let referred = check(&mut orders, &limited, "1.00").await;
    assert_eq!(referred.decision(), pb::AuthorizationDecision::Referred);
    assert_eq!(codes(&referred.reasons), ["CREDIT_BLOCK"]);
    // A USD payment of part of it waits as well (it would lower exposure).
    suite
        .publish(
            COLLECTIONS,
            Payload::PaymentReceived(pb::PaymentReceived {
                payment_id: "fx-pay".into(),
                customer_id: limited.clone(),
                amount: money_in("40.00", "USD"),
                allocations: vec![pb::PaymentAllocationApplied {
                    invoice_id: "fx-l1".into(),
                    amount: money_in("40.00", "USD"),
                    invoice_open_amount: money_in("60.00", "USD"),
                    discount: None,
                }],
                ..Default::default()
            }),
        )
        .await;

    // The rate: every waiting amount enters exposure converted, and the blocks are lifted.
    crate::authorize::set_rate(&mut treasury, "fx-wait-rate", "USD", "CNY", "7.10")
        .await
        .unwrap();
    wait_for_position(&mut orders, &unlimited, "0.00", "76.00").await;
    // 300.00 + 100 × 7.10 − 40 × 7.10
    wait_for_position(&mut orders, &limited, "0.00", "726.00").await;
    for customer_id in [&unlimited, &limited] {
        let mut blocks = block_types(&position(&mut orders, customer_id).await);
        for _ in 0..credit_e2e_tests::POLLS {
            if blocks.is_empty() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
            blocks = block_types(&position(&mut orders, customer_id).await);
        }
        assert!(blocks.is_empty(), "{customer_id}: {blocks:?}");
    }
    wait_until_approvable(&mut orders, &limited, "9000.00").await;
    assert_eq!(
        codes(&check(&mut orders, &limited, "9500.00").await.reasons),
        ["LIMIT_EXCEEDED"],
        "the converted receivables count: 726.00 + 9,500.00 is past the limit's band"
    );
}
