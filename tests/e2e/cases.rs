//! Collection cases, on both backends: overdue detection opens a case per customer, promises
//! to pay are kept by payments or broken the day after their date (escalating the case), the
//! worklist ranks cases by expected loss with the PD rating announced, contacts are checked
//! and logged once per request_id, disputes leave automatic allocation and resolve into credit
//! notes.

use std::time::Duration;

use chrono::{Days, Utc};
use credit_core::Role;
use credit_e2e_tests::TestSuite;
use credit_proto::service_names::RATING;
use credit_proto::v1 as pb;
use credit_proto::v1::event::Payload;
use tonic::Code;

use crate::authorize::cny;
use crate::collections::{Collections, billing, days_ago, pay, post_invoice, shown, to_date};
use crate::intake::violated_fields;
use crate::rating::reason;

pub(crate) fn days_ahead(days: u64) -> pb::Date {
    to_date(Utc::now().date_naive() + Days::new(days))
}

fn today() -> pb::Date {
    days_ago(0)
}

/// A manager whose credits up to 10,000 CNY (the four-eyes threshold) post alone.
async fn manager(suite: &TestSuite) -> Collections {
    suite.collections(
        &suite
            .issue_token_with_authority("mgr", &[Role::CreditManager], Some("10000"))
            .await,
    )
}

pub(crate) async fn detect(
    collections: &mut Collections,
    customers: &[&str],
    as_of: Option<pb::Date>,
) -> pb::DetectOverdueResponse {
    collections
        .detect_overdue(pb::DetectOverdueRequest {
            as_of_date: as_of,
            customer_ids: customers.iter().map(|id| (*id).to_owned()).collect(),
        })
        .await
        .unwrap()
        .into_inner()
}

async fn worklist(collections: &mut Collections) -> Vec<pb::WorklistItem> {
    collections
        .list_worklist(pb::ListWorklistRequest::default())
        .await
        .unwrap()
        .into_inner()
        .items
}

/// The worklist item of the customer's open case.
async fn item_of(collections: &mut Collections, customer_id: &str) -> pb::WorklistItem {
    worklist(collections)
        .await
        .into_iter()
        .find(|item| item.collection_case.as_ref().unwrap().customer_id == customer_id)
        .unwrap_or_else(|| panic!("no open case for {customer_id}"))
}

pub(crate) async fn case_of(
    collections: &mut Collections,
    customer_id: &str,
) -> pb::CollectionCase {
    item_of(collections, customer_id)
        .await
        .collection_case
        .unwrap()
}

/// An invoice of `amount` CNY issued `due_days_ago + 30` days ago and due `due_days_ago` ago.
pub(crate) async fn overdue_invoice(
    collections: &mut Collections,
    customer_id: &str,
    number: &str,
    amount: &str,
    due_days_ago: u64,
) -> pb::Invoice {
    post_invoice(
        collections,
        customer_id,
        number,
        amount,
        days_ago(due_days_ago + 30),
        days_ago(due_days_ago),
        "",
    )
    .await
    .unwrap()
    .invoice
    .unwrap()
}

pub(crate) fn contact(
    request_id: &str,
    case_id: &str,
    outcome: pb::ContactOutcome,
    promise: Option<(&str, pb::Date)>,
) -> pb::LogContactRequest {
    pb::LogContactRequest {
        request_id: request_id.into(),
        case_id: case_id.into(),
        channel: pb::ContactChannel::Phone.into(),
        outcome: outcome.into(),
        notes: "spoke with accounts payable".into(),
        contact_name: "Ms. Li".into(),
        promise: promise.map(|(amount, date)| pb::PromiseToPayInput {
            amount: cny(amount),
            promised_date: Some(date),
            invoice_ids: Vec::new(),
        }),
        contacted_at: None,
        next_contact_date: None,
    }
}

async fn contacts_of_case(
    collections: &mut Collections,
    case_id: &str,
) -> Vec<pb::ContactLogEntry> {
    collections
        .list_contacts(pb::ListContactsRequest {
            case_id: case_id.into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .contacts
}

pub async fn a_promise_kept_by_a_payment_is_kept(suite: &TestSuite) {
    let mut collections = billing(suite).await;
    let customer_id = "cus_ptp_kept";
    overdue_invoice(&mut collections, customer_id, "K-1", "1000.00", 30).await;
    let detected = detect(&mut collections, &[customer_id], None).await;
    assert_eq!(detected.cases_opened, 1);
    // Again: the case is open already.
    assert_eq!(
        detect(&mut collections, &[customer_id], None)
            .await
            .cases_opened,
        0
    );
    let case = case_of(&mut collections, customer_id).await;
    assert_eq!(case.oldest_days_past_due, 30);
    assert_eq!(
        case.next_contact_date,
        Some(today()),
        "a new case is due today"
    );

    let logged = collections
        .log_contact(contact(
            "ptp-kept-1",
            &case.case_id,
            pb::ContactOutcome::PromiseToPay,
            Some(("600.00", days_ahead(3))),
        ))
        .await
        .unwrap()
        .into_inner();
    let promise = logged.contact.as_ref().unwrap().promise.clone().unwrap();
    assert_eq!(promise.status(), pb::PromiseStatus::Open);
    // A promise's next contact is the day after its date.
    assert_eq!(
        logged.contact.unwrap().next_contact_date,
        Some(days_ahead(4))
    );
    let after = logged.collection_case.unwrap();
    assert_eq!(after.next_contact_date, Some(days_ahead(4)));
    assert_eq!(
        after.open_promise.as_ref().unwrap().promise_id,
        promise.promise_id
    );

    // 600 paid today, between the promise and its date: kept (the payment runs detection).
    pay(
        &mut collections,
        customer_id,
        "BANK-K1",
        "600.00",
        today(),
        &[],
    )
    .await
    .unwrap();
    let contacts = contacts_of_case(&mut collections, &case.case_id).await;
    assert_eq!(contacts.len(), 1);
    let promise = contacts[0].promise.as_ref().unwrap();
    assert_eq!(promise.status(), pb::PromiseStatus::Kept);
    assert_eq!(shown(&promise.paid_amount), "600.00 CNY");
    // 400 is still overdue: the case stays open, not escalated, without an open promise.
    let case = case_of(&mut collections, customer_id).await;
    assert_eq!(case.escalation_level, 0);
    assert!(case.open_promise.is_none());
    assert_eq!(shown(&case.overdue_amounts.first().cloned()), "400.00 CNY");

    // Paid in full: the case closes.
    pay(
        &mut collections,
        customer_id,
        "BANK-K2",
        "400.00",
        today(),
        &[],
    )
    .await
    .unwrap();
    assert!(
        worklist(&mut collections).await.iter().all(|item| item
            .collection_case
            .as_ref()
            .unwrap()
            .customer_id
            != customer_id)
    );
    let detected = detect(&mut collections, &[customer_id], None).await;
    assert_eq!((detected.cases_opened, detected.cases_closed), (0, 0));
}

pub async fn a_promise_not_kept_by_its_date_is_broken_the_day_after_and_escalates(
    suite: &TestSuite,
) {
    let mut collections = billing(suite).await;
    let customer_id = "cus_ptp_broken";
    overdue_invoice(&mut collections, customer_id, "B-1", "800.00", 20).await;
    detect(&mut collections, &[customer_id], None).await;
    let case = case_of(&mut collections, customer_id).await;
    collections
        .log_contact(contact(
            "ptp-broken-1",
            &case.case_id,
            pb::ContactOutcome::PromiseToPay,
            Some(("500.00", today())),
        ))
        .await
        .unwrap();
    // Only 100 paid by the date.
    pay(
        &mut collections,
        customer_id,
        "BANK-B1",
        "100.00",
        today(),
        &[],
    )
    .await
    .unwrap();
    // On its date the promise is still open.
    let on_the_date = detect(&mut collections, &[customer_id], Some(today())).await;
    assert_eq!(on_the_date.promises_broken, 0);
    // The day after: broken, and the case escalates.
    let day_after = detect(&mut collections, &[customer_id], Some(days_ahead(1))).await;
    assert_eq!(day_after.promises_broken, 1);
    let again = detect(&mut collections, &[customer_id], Some(days_ahead(1))).await;
    assert_eq!(again.promises_broken, 0, "a promise breaks once");
    let item = item_of(&mut collections, customer_id).await;
    let case = item.collection_case.as_ref().unwrap();
    assert_eq!(case.broken_promises, 1);
    assert_eq!(case.escalation_level, 1);
    assert!(case.open_promise.is_none());
    assert_eq!(item.broken_promise_factor, "1.25");
    let contacts = contacts_of_case(&mut collections, &case.case_id).await;
    let promise = contacts[0].promise.as_ref().unwrap();
    assert_eq!(promise.status(), pb::PromiseStatus::Broken);
    assert_eq!(shown(&promise.paid_amount), "100.00 CNY");
}

/// rank, customer, overdue amount, pd, lgd, expected loss, days factor, promise factor, priority.
type Line = (
    i32,
    String,
    String,
    String,
    String,
    String,
    String,
    String,
    String,
);

fn rating_changed(customer_id: &str, grade: &str, pd: &str) -> Payload {
    Payload::RatingChanged(pb::RatingChanged {
        customer_id: customer_id.into(),
        rating_id: format!("rat-{customer_id}"),
        grade: grade.into(),
        pd: pd.into(),
        ..Default::default()
    })
}

pub async fn the_worklist_ranks_cases_by_expected_loss_with_every_component(suite: &TestSuite) {
    let mut collections = billing(suite).await;
    let mut managers = manager(suite).await;
    suite
        .publish(RATING, rating_changed("cus_wl_a", "A", "0.02"))
        .await;
    suite
        .publish(RATING, rating_changed("cus_wl_b", "C", "0.10"))
        .await;
    overdue_invoice(&mut collections, "cus_wl_a", "WA-1", "10000.00", 45).await;
    overdue_invoice(&mut collections, "cus_wl_b", "WB-1", "2000.00", 90).await;
    // Not rated: the default PD 0.05.
    overdue_invoice(&mut collections, "cus_wl_c", "WC-1", "1000.00", 9).await;
    let detected = detect(&mut collections, &[], None).await;
    assert_eq!(detected.cases_opened, 3);

    // The projection of RatingChanged is asynchronous: wait for both PDs.
    let mut items = Vec::new();
    for _ in 0..credit_e2e_tests::POLLS {
        items = worklist(&mut collections).await;
        let pds: Vec<&str> = items.iter().map(|item| item.pd.as_str()).collect();
        if pds.contains(&"0.02") && pds.contains(&"0.1") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    let shown_items: Vec<Line> = items
        .iter()
        .map(|item| {
            (
                item.rank,
                item.collection_case.as_ref().unwrap().customer_id.clone(),
                shown(&item.overdue_amount),
                item.pd.clone(),
                item.lgd.clone(),
                shown(&item.expected_loss),
                item.days_past_due_factor.clone(),
                item.broken_promise_factor.clone(),
                shown(&item.priority_amount),
            )
        })
        .collect();
    let line = |rank: i32,
                customer: &str,
                overdue: &str,
                pd: &str,
                el: &str,
                dpd: &str,
                priority: &str| {
        (
            rank,
            customer.to_owned(),
            format!("{overdue} CNY"),
            pd.to_owned(),
            "0.45".to_owned(),
            format!("{el} CNY"),
            dpd.to_owned(),
            "1".to_owned(),
            format!("{priority} CNY"),
        )
    };
    assert_eq!(
        shown_items,
        [
            // 2000 x 0.10 x 0.45 = 90.00; 1 + 90/90 = 2 -> 180.00.
            line(1, "cus_wl_b", "2000.00", "0.1", "90.00", "2", "180.00"),
            // 10000 x 0.02 x 0.45 = 90.00; 1 + 45/90 = 1.5 -> 135.00.
            line(2, "cus_wl_a", "10000.00", "0.02", "90.00", "1.5", "135.00"),
            // 1000 x 0.05 x 0.45 = 22.50; 1 + 9/90 = 1.1 -> 24.75.
            line(3, "cus_wl_c", "1000.00", "0.05", "22.50", "1.1", "24.75"),
        ]
    );

    // Assigned to a collector: the collector's view keeps the case's rank.
    let case_a = items[1].collection_case.clone().unwrap();
    let assigned = managers
        .assign_case(pb::AssignCaseRequest {
            case_id: case_a.case_id.clone(),
            collector: "col-1".into(),
            reason: "largest exposure".into(),
        })
        .await
        .unwrap()
        .into_inner()
        .collection_case
        .unwrap();
    assert_eq!(assigned.assigned_collector, "col-1");
    let mine = collections
        .list_worklist(pb::ListWorklistRequest {
            collector: "col-1".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .items;
    assert_eq!(mine.len(), 1);
    assert_eq!(mine[0].rank, 2);
    assert_eq!(
        mine[0].collection_case.as_ref().unwrap().next_contact_date,
        Some(today())
    );
    // Only managers assign.
    let refused = collections
        .assign_case(pb::AssignCaseRequest {
            case_id: case_a.case_id,
            collector: "me".into(),
            reason: String::new(),
        })
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::PermissionDenied);
}

pub async fn contacts_are_checked_and_logged_once_per_request_id(suite: &TestSuite) {
    let mut collections = billing(suite).await;
    let customer_id = "cus_contact";
    overdue_invoice(&mut collections, customer_id, "C-1", "300.00", 5).await;
    detect(&mut collections, &[customer_id], None).await;
    let case = case_of(&mut collections, customer_id).await;

    // PROMISE_TO_PAY without the promise: refused, nothing written.
    let refused = collections
        .log_contact(contact(
            "con-1",
            &case.case_id,
            pb::ContactOutcome::PromiseToPay,
            None,
        ))
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::FailedPrecondition);
    assert_eq!(reason(&refused), "PROMISE_REQUIRED");
    assert!(
        contacts_of_case(&mut collections, &case.case_id)
            .await
            .is_empty()
    );
    assert_eq!(
        case_of(&mut collections, customer_id)
            .await
            .next_contact_date,
        Some(today())
    );

    // A promise on another customer's invoice: refused at the field.
    let other = overdue_invoice(&mut collections, "cus_contact_other", "O-1", "50.00", 5).await;
    let mut foreign = contact(
        "con-1",
        &case.case_id,
        pb::ContactOutcome::PromiseToPay,
        Some(("50.00", days_ahead(1))),
    );
    foreign.promise.as_mut().unwrap().invoice_ids = vec![other.invoice_id];
    let refused = collections.log_contact(foreign).await.unwrap_err();
    assert_eq!(refused.code(), Code::InvalidArgument);
    assert_eq!(violated_fields(&refused), ["promise.invoice_ids[0]"]);
    assert!(
        contacts_of_case(&mut collections, &case.case_id)
            .await
            .is_empty()
    );

    // The key was not used up: the same request_id with a proper contact is logged.
    let first = collections
        .log_contact(contact(
            "con-1",
            &case.case_id,
            pb::ContactOutcome::NoAnswer,
            None,
        ))
        .await
        .unwrap()
        .into_inner();
    let logged = first.contact.clone().unwrap();
    // NO_ANSWER: try again in two days.
    assert_eq!(logged.next_contact_date, Some(days_ahead(2)));
    assert_eq!(logged.logged_by.as_ref().unwrap().principal, "billing");
    // A retry answers the first result.
    let retry = collections
        .log_contact(contact(
            "con-1",
            &case.case_id,
            pb::ContactOutcome::NoAnswer,
            None,
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(retry.contact.unwrap().contact_id, logged.contact_id);
    // Other content under the key: refused.
    let reused = collections
        .log_contact(contact(
            "con-1",
            &case.case_id,
            pb::ContactOutcome::Reached,
            None,
        ))
        .await
        .unwrap_err();
    assert_eq!(reused.code(), Code::AlreadyExists);
    assert_eq!(reason(&reused), "IDEMPOTENCY_KEY_REUSED");
    // REACHED: a week later.
    let reached = collections
        .log_contact(contact(
            "con-2",
            &case.case_id,
            pb::ContactOutcome::Reached,
            None,
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        reached.collection_case.unwrap().next_contact_date,
        Some(days_ahead(7))
    );
    let contacts = contacts_of_case(&mut collections, &case.case_id).await;
    let outcomes: Vec<pb::ContactOutcome> = contacts.iter().map(|c| c.outcome()).collect();
    assert_eq!(
        outcomes,
        [pb::ContactOutcome::Reached, pb::ContactOutcome::NoAnswer],
        "newest first"
    );
    let by_customer = collections
        .list_contacts(pb::ListContactsRequest {
            customer_id: customer_id.into(),
            page_size: 1,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(by_customer.contacts.len(), 1);
    assert!(!by_customer.next_page_token.is_empty());
}

pub async fn disputes_leave_automatic_allocation_and_valid_ones_are_credited(suite: &TestSuite) {
    let mut collections = billing(suite).await;
    let mut managers = manager(suite).await;
    let customer_id = "cus_dispute";
    let x = overdue_invoice(&mut collections, customer_id, "X-1", "1000.00", 10).await;
    let y = overdue_invoice(&mut collections, customer_id, "Y-1", "500.00", 5).await;

    let opened = collections
        .open_dispute(pb::OpenDisputeRequest {
            request_id: "dsp-1".into(),
            invoice_id: x.invoice_id.clone(),
            amount: cny("400.00"),
            reason: "goods damaged".into(),
        })
        .await
        .unwrap()
        .into_inner();
    let dispute = opened.dispute.unwrap();
    assert_eq!(dispute.status(), pb::DisputeStatus::Open);
    assert_eq!(
        shown(&opened.invoice.unwrap().disputed_amount),
        "400.00 CNY"
    );
    // Only 600 of X is not disputed yet.
    let too_much = collections
        .open_dispute(pb::OpenDisputeRequest {
            request_id: "dsp-2".into(),
            invoice_id: x.invoice_id.clone(),
            amount: cny("600.01"),
            reason: "more".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(too_much.code(), Code::FailedPrecondition);
    assert_eq!(reason(&too_much), "AMOUNT_EXCEEDS_OPEN_AMOUNT");

    // 900 without allocations: X's undisputed 600 first, then 300 to Y.
    let paid = pay(
        &mut collections,
        customer_id,
        "BANK-D1",
        "900.00",
        today(),
        &[],
    )
    .await
    .unwrap();
    let applied: Vec<(String, String)> = paid
        .payment
        .unwrap()
        .allocations
        .iter()
        .map(|allocation| (allocation.invoice_id.clone(), shown(&allocation.amount)))
        .collect();
    assert_eq!(
        applied,
        [
            (x.invoice_id.clone(), "600.00 CNY".to_owned()),
            (y.invoice_id.clone(), "300.00 CNY".to_owned()),
        ]
    );
    let listed = collections
        .list_disputes(pb::ListDisputesRequest {
            customer_id: customer_id.into(),
            status: pb::DisputeStatus::Open.into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .disputes;
    assert_eq!(listed.len(), 1);

    // Valid: a credit note for the disputed amount closes X.
    let resolve = pb::ResolveDisputeRequest {
        request_id: "dsp-r1".into(),
        dispute_id: dispute.dispute_id.clone(),
        resolution: pb::DisputeResolution::Valid.into(),
        notes: "photos confirm the damage".into(),
        credit_amount: None,
        credit_note_number: String::new(),
    };
    let resolved = managers
        .resolve_dispute(resolve.clone())
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        resolved.dispute.as_ref().unwrap().status(),
        pb::DisputeStatus::ResolvedValid
    );
    let note = resolved.credit_note.unwrap();
    assert_eq!(note.dispute_id, dispute.dispute_id);
    assert_eq!(shown(&note.amount), "400.00 CNY");
    let invoice = resolved.invoice.unwrap();
    assert_eq!(shown(&invoice.open_amount), "0.00 CNY");
    assert_eq!(shown(&invoice.credited_amount), "400.00 CNY");
    assert_eq!(shown(&invoice.disputed_amount), "0.00 CNY");
    assert_eq!(invoice.status(), pb::InvoiceStatus::Settled);
    // A retry answers the first result; another request finds the dispute resolved.
    let retry = managers
        .resolve_dispute(resolve)
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        retry.credit_note.unwrap().credit_note_id,
        note.credit_note_id
    );
    let not_open = managers
        .resolve_dispute(pb::ResolveDisputeRequest {
            request_id: "dsp-r2".into(),
            dispute_id: dispute.dispute_id.clone(),
            resolution: pb::DisputeResolution::Invalid.into(),
            notes: "again".into(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(reason(&not_open), "DISPUTE_NOT_OPEN");
    // The credit note is on the ledger.
    let ledger = collections
        .get_customer_ledger(pb::GetCustomerLedgerRequest {
            customer_id: customer_id.into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert!(
        ledger
            .entries
            .iter()
            .any(|entry| entry.entry_type() == pb::LedgerEntryType::CreditNote)
    );

    // Invalid: the amount is ordinary open amount again.
    let on_y = collections
        .open_dispute(pb::OpenDisputeRequest {
            request_id: "dsp-3".into(),
            invoice_id: y.invoice_id.clone(),
            amount: cny("100.00"),
            reason: "price".into(),
        })
        .await
        .unwrap()
        .into_inner()
        .dispute
        .unwrap();
    let rejected = managers
        .resolve_dispute(pb::ResolveDisputeRequest {
            request_id: "dsp-r3".into(),
            dispute_id: on_y.dispute_id,
            resolution: pb::DisputeResolution::Invalid.into(),
            notes: "price as agreed".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert!(rejected.credit_note.is_none());
    let y_after = rejected.invoice.unwrap();
    assert_eq!(shown(&y_after.open_amount), "200.00 CNY");
    assert_eq!(shown(&y_after.disputed_amount), "0.00 CNY");
}

pub async fn the_worklist_ranks_other_currencies_at_the_fx_rate_of_limits(suite: &TestSuite) {
    use crate::authorize::{money, set_rate};
    let mut limits = suite.limits(&suite.issue_token("root", &[Role::Admin]).await);
    set_rate(&mut limits, "fx-usd", "USD", "CNY", "7.10")
        .await
        .unwrap();
    let mut collections = billing(suite).await;
    // The same days overdue and the same (default) PD: only the amounts decide. USD 100.00 is
    // CNY 710.00 at 7.10, more than the CNY 500.00 of the other customer.
    collections
        .post_invoice(pb::PostInvoiceRequest {
            customer_id: "cus_fx_usd".into(),
            invoice_number: "FX-USD-1".into(),
            amount: money("100.00", "USD"),
            issue_date: Some(days_ago(70)),
            due: Some(pb::post_invoice_request::Due::DueDate(days_ago(40))),
            ..Default::default()
        })
        .await
        .unwrap();
    overdue_invoice(&mut collections, "cus_fx_cny", "FX-CNY-1", "500.00", 40).await;
    detect(&mut collections, &["cus_fx_usd", "cus_fx_cny"], None).await;
    let items = worklist(&mut collections).await;
    let ranked: Vec<(String, String)> = items
        .iter()
        .map(|item| {
            (
                item.collection_case.as_ref().unwrap().customer_id.clone(),
                shown(&item.overdue_amount),
            )
        })
        .collect();
    assert_eq!(
        ranked,
        [
            ("cus_fx_usd".into(), "710.00 CNY".into()),
            ("cus_fx_cny".into(), "500.00 CNY".into()),
        ]
    );
    // Intake does not know these customers: the worklist names them by id.
    assert_eq!(items[0].customer_display_name, "cus_fx_usd");
}

pub async fn a_dispute_credit_note_number_in_use_is_refused_and_leaves_it_open(suite: &TestSuite) {
    let mut collections = billing(suite).await;
    let mut managers = manager(suite).await;
    let customer_id = "cus_cn_taken";
    let first = overdue_invoice(&mut collections, customer_id, "CT-1", "300.00", 5).await;
    let second = overdue_invoice(&mut collections, customer_id, "CT-2", "200.00", 5).await;
    let mut disputes = Vec::new();
    for (request_id, invoice) in [("ct-d1", &first), ("ct-d2", &second)] {
        let opened = collections
            .open_dispute(pb::OpenDisputeRequest {
                request_id: request_id.into(),
                invoice_id: invoice.invoice_id.clone(),
                amount: cny("50.00"),
                reason: "short delivery".into(),
            })
            .await
            .unwrap()
            .into_inner();
        disputes.push(opened.dispute.unwrap().dispute_id);
    }
    let resolve = |request_id: &str, dispute_id: &str, number: &str| pb::ResolveDisputeRequest {
        request_id: request_id.into(),
        dispute_id: dispute_id.into(),
        resolution: pb::DisputeResolution::Valid.into(),
        notes: "agreed".into(),
        credit_amount: None,
        credit_note_number: number.into(),
    };
    managers
        .resolve_dispute(resolve("ct-r1", &disputes[0], "CN-777"))
        .await
        .unwrap();
    let taken = managers
        .resolve_dispute(resolve("ct-r2", &disputes[1], "CN-777"))
        .await
        .unwrap_err();
    assert_eq!(taken.code(), Code::AlreadyExists);
    assert_eq!(reason(&taken), "CREDIT_NOTE_NUMBER_TAKEN");
    let still_open = collections
        .list_disputes(pb::ListDisputesRequest {
            customer_id: customer_id.into(),
            status: pb::DisputeStatus::Open.into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .disputes;
    let open_ids: Vec<&str> = still_open
        .iter()
        .map(|dispute| dispute.dispute_id.as_str())
        .collect();
    assert_eq!(open_ids, [disputes[1].as_str()]);
}
