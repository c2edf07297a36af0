//! Credit notes under four eyes: authority covering the amount and, above the threshold
//! (10,000 CNY by default), a second person — for PostCreditNote and for VALID disputes.

use credit_core::Role;
use credit_e2e_tests::TestSuite;
use credit_proto::v1 as pb;
use tonic::Code;

use crate::authorize::cny;
use crate::cases::overdue_invoice;
use crate::collections::{Collections, billing, shown, to_date};
use crate::rating::reason;

fn credit(
    customer_id: &str,
    invoice_id: &str,
    number: &str,
    amount: &str,
) -> pb::PostCreditNoteRequest {
    pb::PostCreditNoteRequest {
        customer_id: customer_id.into(),
        invoice_id: invoice_id.into(),
        credit_note_number: number.into(),
        amount: cny(amount),
        issue_date: Some(to_date(chrono::Utc::now().date_naive())),
        reason: "returned goods".into(),
    }
}

fn decide(request_id: &str, credit_note_id: &str, approve: bool) -> pb::DecideCreditNoteRequest {
    pb::DecideCreditNoteRequest {
        request_id: request_id.into(),
        credit_note_id: credit_note_id.into(),
        decision: if approve {
            pb::ApprovalDecision::Approve
        } else {
            pb::ApprovalDecision::Reject
        } as i32,
        reason: "checked the return slip".into(),
    }
}

async fn manager(suite: &TestSuite, name: &str, authority: &str) -> Collections {
    suite.collections(
        &suite
            .issue_token_with_authority(name, &[Role::CreditManager], Some(authority))
            .await,
    )
}

pub async fn credit_notes_need_authority_and_above_the_threshold_a_second_person(
    suite: &TestSuite,
) {
    // Billing may post up to 10,000 alone; an ERP without authority may post nothing alone.
    let mut billing = billing(suite).await;
    let mut erp = suite.collections(&suite.issue_token("erp", &[Role::OrderEntry]).await);
    let customer_id = "cus_cn_four_eyes";
    let invoice = overdue_invoice(&mut billing, customer_id, "CN4-1", "50000.00", 3).await;
    let post =
        |number: &str, amount: &str| credit(customer_id, &invoice.invoice_id, number, amount);

    // Within authority and the threshold: posted at once.
    let small = billing
        .post_credit_note(post("CN4-A", "1000.00"))
        .await
        .unwrap()
        .into_inner();
    let note = small.credit_note.unwrap();
    assert_eq!(note.approval_status(), pb::ApprovalStatus::Approved);
    assert_eq!(shown(&small.invoice.unwrap().open_amount), "49000.00 CNY");

    // Above the threshold, even with authority: waits, and changes nothing.
    let big = billing
        .post_credit_note(post("CN4-B", "12000.00"))
        .await
        .unwrap()
        .into_inner();
    let waiting = big.credit_note.unwrap();
    assert_eq!(waiting.approval_status(), pb::ApprovalStatus::Pending);
    assert!(waiting.posted_at.is_none());
    assert_eq!(shown(&big.invoice.unwrap().open_amount), "49000.00 CNY");
    // A retry of the same post answers the same waiting credit note.
    let retried = billing
        .post_credit_note(post("CN4-B", "12000.00"))
        .await
        .unwrap()
        .into_inner();
    assert!(retried.replayed);
    assert_eq!(
        retried.credit_note.unwrap().credit_note_id,
        waiting.credit_note_id
    );

    // Without authority, even a small one waits.
    let unauthorised = erp
        .post_credit_note(post("CN4-C", "10.00"))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        unauthorised.credit_note.unwrap().approval_status(),
        pb::ApprovalStatus::Pending
    );

    // The queue a checker reads, newest first.
    let queue = billing
        .list_credit_note_approvals(pb::ListCreditNoteApprovalsRequest {
            status: pb::ApprovalStatus::Pending as i32,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .credit_notes;
    let numbers: Vec<&str> = queue
        .iter()
        .map(|note| note.credit_note_number.as_str())
        .collect();
    assert_eq!(numbers, ["CN4-C", "CN4-B"]);

    // Four eyes: the maker, with a second token that holds CREDIT_MANAGER and ample
    // authority, cannot decide it; nor can a checker whose authority does not cover it.
    let mut billing_again = manager(suite, "billing", "100000000").await;
    let own = billing_again
        .decide_credit_note(decide("cn4-d1", &waiting.credit_note_id, true))
        .await
        .unwrap_err();
    assert_eq!(own.code(), Code::PermissionDenied);
    assert_eq!(reason(&own), "SELF_APPROVAL");
    let mut junior = manager(suite, "jun", "5000").await;
    let small_authority = junior
        .decide_credit_note(decide("cn4-d2", &waiting.credit_note_id, true))
        .await
        .unwrap_err();
    assert_eq!(small_authority.code(), Code::PermissionDenied);
    assert_eq!(reason(&small_authority), "AUTHORITY_INSUFFICIENT");

    // Another person with authority approves: now it reduces the invoice.
    let mut senior = manager(suite, "sen", "100000").await;
    let approved = senior
        .decide_credit_note(decide("cn4-d3", &waiting.credit_note_id, true))
        .await
        .unwrap()
        .into_inner();
    let posted = approved.credit_note.unwrap();
    assert_eq!(posted.approval_status(), pb::ApprovalStatus::Approved);
    assert_eq!(posted.decided_by.unwrap().principal, "sen");
    assert_eq!(posted.posted_by.unwrap().principal, "billing");
    assert!(posted.posted_at.is_some());
    assert_eq!(
        shown(&approved.invoice.unwrap().open_amount),
        "37000.00 CNY"
    );
    // Decided once: a retry answers the same, another decision is refused.
    let replay = senior
        .decide_credit_note(decide("cn4-d3", &waiting.credit_note_id, true))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(shown(&replay.invoice.unwrap().open_amount), "37000.00 CNY");
    let again = junior
        .decide_credit_note(decide("cn4-d4", &waiting.credit_note_id, false))
        .await
        .unwrap_err();
    assert_eq!(again.code(), Code::FailedPrecondition);
    assert_eq!(reason(&again), "CREDIT_NOTE_NOT_PENDING");
    // The original post, retried after the approval, answers the posted credit note.
    let after = billing
        .post_credit_note(post("CN4-B", "12000.00"))
        .await
        .unwrap()
        .into_inner();
    assert!(after.replayed);
    assert_eq!(
        after.credit_note.unwrap().approval_status(),
        pb::ApprovalStatus::Approved
    );

    // A rejection (needing no authority) leaves the invoice as it was.
    let rejected = junior
        .decide_credit_note(decide(
            "cn4-d5",
            &unauthorised_id(&mut billing).await,
            false,
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        rejected.credit_note.unwrap().approval_status(),
        pb::ApprovalStatus::Rejected
    );
    assert_eq!(
        shown(&rejected.invoice.unwrap().open_amount),
        "37000.00 CNY"
    );

    // Bad input: INVALID_ARGUMENT naming the fields, nothing written.
    let bad = senior
        .decide_credit_note(pb::DecideCreditNoteRequest::default())
        .await
        .unwrap_err();
    assert_eq!(bad.code(), Code::InvalidArgument);
    let unknown = senior
        .decide_credit_note(decide("cn4-d6", "crn_nobody", true))
        .await
        .unwrap_err();
    assert_eq!(unknown.code(), Code::NotFound);
}

/// The id of the one credit note still waiting.
async fn unauthorised_id(reader: &mut Collections) -> String {
    let waiting = reader
        .list_credit_note_approvals(pb::ListCreditNoteApprovalsRequest {
            status: pb::ApprovalStatus::Pending as i32,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .credit_notes;
    assert_eq!(waiting.len(), 1);
    waiting[0].credit_note_id.clone()
}

pub async fn a_valid_dispute_above_the_threshold_waits_for_a_second_person(suite: &TestSuite) {
    let mut billing = billing(suite).await;
    let mut resolver = manager(suite, "mgr", "100000").await;
    let customer_id = "cus_cn_dispute";
    let invoice = overdue_invoice(&mut billing, customer_id, "CND-1", "30000.00", 3).await;
    let dispute = billing
        .open_dispute(pb::OpenDisputeRequest {
            request_id: "cnd-open".into(),
            invoice_id: invoice.invoice_id.clone(),
            amount: cny("20000.00"),
            reason: "short delivery".into(),
        })
        .await
        .unwrap()
        .into_inner()
        .dispute
        .unwrap();
    let resolved = resolver
        .resolve_dispute(pb::ResolveDisputeRequest {
            request_id: "cnd-resolve".into(),
            dispute_id: dispute.dispute_id.clone(),
            resolution: pb::DisputeResolution::Valid as i32,
            notes: "delivery note confirms".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    // 20,000 is above the threshold: the dispute stays open, its credit waits.
    assert_eq!(resolved.dispute.unwrap().status(), pb::DisputeStatus::Open);
    let waiting = resolved.credit_note.unwrap();
    assert_eq!(waiting.approval_status(), pb::ApprovalStatus::Pending);
    assert_eq!(waiting.dispute_id, dispute.dispute_id);
    assert_eq!(
        shown(&resolved.invoice.unwrap().open_amount),
        "30000.00 CNY"
    );
    // A second resolution while it waits is refused.
    let twice = resolver
        .resolve_dispute(pb::ResolveDisputeRequest {
            request_id: "cnd-resolve-2".into(),
            dispute_id: dispute.dispute_id.clone(),
            resolution: pb::DisputeResolution::Valid as i32,
            notes: "again".into(),
            credit_note_number: "CND-OTHER".into(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(twice.code(), Code::FailedPrecondition);
    assert_eq!(reason(&twice), "CREDIT_NOTE_PENDING");

    // The resolver cannot approve its own credit; another manager can, which resolves the
    // dispute VALID and credits the invoice.
    let own = resolver
        .decide_credit_note(decide("cnd-d1", &waiting.credit_note_id, true))
        .await
        .unwrap_err();
    assert_eq!(reason(&own), "SELF_APPROVAL");
    let mut checker = manager(suite, "chk", "100000").await;
    let approved = checker
        .decide_credit_note(decide("cnd-d2", &waiting.credit_note_id, true))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        shown(&approved.invoice.unwrap().open_amount),
        "10000.00 CNY"
    );
    let disputes = checker
        .list_disputes(pb::ListDisputesRequest {
            invoice_id: invoice.invoice_id.clone(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .disputes;
    assert_eq!(disputes[0].status(), pb::DisputeStatus::ResolvedValid);
    assert_eq!(disputes[0].credit_note_id, waiting.credit_note_id);
    assert_eq!(disputes[0].resolved_by.as_ref().unwrap().principal, "mgr");

    // The request, the refused second one (nothing of it lands) and the decision are in
    // collections' audit chain, intact.
    let verdict = credit_suite::audit_cli::verify(&suite.settings)
        .await
        .unwrap();
    assert!(!verdict.tampered, "{:?}", verdict.lines);
    assert!(
        verdict
            .lines
            .contains(&"collections: 2 entries, chain intact".to_owned()),
        "{:?}",
        verdict.lines
    );
}
