//! Credit investigations (信用调查): a checklist per class of customer, an investigation worked
//! item by item (a document, a data point, a question, a visit), and a credit policy that
//! approves no first limit before it is completed.

use std::time::Duration;

use credit_core::Role;
use credit_e2e_tests::TestSuite;
use credit_proto::v1 as pb;
use tonic::Code;

use crate::limits::{first_limit_request, reason, registered_customer};
use crate::policy::{change_policy, policy};

fn date(year: i32, month: i32, day: i32) -> Option<pb::Date> {
    Some(pb::Date { year, month, day })
}

fn item(code: &str, kind: pb::ChecklistItemKind, required: bool) -> pb::ChecklistItem {
    pb::ChecklistItem {
        code: code.into(),
        kind: kind as i32,
        label_en: code.replace('_', " "),
        required,
        document_type: if kind == pb::ChecklistItemKind::Document {
            code.into()
        } else {
            String::new()
        },
        data_point_code: if kind == pb::ChecklistItemKind::DataPoint {
            code.into()
        } else {
            String::new()
        },
        ..Default::default()
    }
}

/// The enterprise checklist of 《客户信用调查表》: the licence, the visit's conclusion as a data
/// point, the main customers, the visit itself; a tax certificate if there is one.
fn enterprise_checklist() -> pb::InvestigationChecklist {
    use pb::ChecklistItemKind::{DataPoint, Document, Question, Visit};
    pb::InvestigationChecklist {
        checklist_id: "enterprise-standard".into(),
        display_name: "客户信用调查表 (enterprise)".into(),
        customer_kind: pb::CustomerKind::Enterprise as i32,
        items: vec![
            item("business_licence", Document, true),
            item("site_visit_result", DataPoint, true),
            item("main_customers", Question, true),
            item("site_visit", Visit, true),
            item("tax_certificate", Document, false),
        ],
        ..Default::default()
    }
}

fn record(
    investigation: &pb::Investigation,
    code: &str,
    outcome: pb::record_investigation_item_request::Outcome,
) -> pb::RecordInvestigationItemRequest {
    pb::RecordInvestigationItemRequest {
        investigation_id: investigation.investigation_id.clone(),
        item_code: code.into(),
        outcome: Some(outcome),
        note: String::new(),
        etag: investigation.etag.clone(),
    }
}

pub async fn an_investigation_is_worked_item_by_item_and_gates_the_first_limit(suite: &TestSuite) {
    use pb::record_investigation_item_request::Outcome;
    let mut shipped = policy(&mut suite.limits(&suite.admin_token)).await;
    shipped.investigation_required_for_first_limit = true;
    change_policy(suite, shipped, &["investigation_required_for_first_limit"]).await;

    let manager_token = suite.issue_token("carla", &[Role::CreditManager]).await;
    let analyst_token = suite.issue_token("ana", &[Role::Analyst]).await;
    let mut manager = suite.intake(&manager_token);
    let mut analyst = suite.intake(&analyst_token);
    manager
        .define_data_point(pb::DefineDataPointRequest {
            definition: Some(pb::DataPointDefinition {
                code: "site_visit_result".into(),
                label_zh: "现场尽职调查结论".into(),
                r#type: pb::DataPointType::Category as i32,
                customer_kind: pb::CustomerKind::Enterprise as i32,
                allowed_values: vec!["satisfactory".into(), "concerns".into()],
                ..Default::default()
            }),
            expected_version: 0,
        })
        .await
        .unwrap();
    // An item naming a data point nobody defined is refused at its field.
    let mut undefined = enterprise_checklist();
    undefined.items[1].data_point_code = "site_visit_score".into();
    let refused = manager
        .publish_checklist(pb::PublishChecklistRequest {
            checklist: Some(undefined),
            request_id: "cl-0".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::InvalidArgument);
    assert!(format!("{refused:?}").contains("checklist.items[1].data_point_code"));
    let published = manager
        .publish_checklist(pb::PublishChecklistRequest {
            checklist: Some(enterprise_checklist()),
            request_id: "cl-1".into(),
        })
        .await
        .unwrap()
        .into_inner()
        .checklist
        .unwrap();
    assert_eq!(published.version, 1);
    // A second default checklist for enterprises would make the choice ambiguous.
    let mut rival = enterprise_checklist();
    rival.checklist_id = "enterprise-lite".into();
    let conflict = manager
        .publish_checklist(pb::PublishChecklistRequest {
            checklist: Some(rival),
            request_id: "cl-2".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(conflict.code(), Code::FailedPrecondition);
    assert_eq!(reason(&conflict), "CHECKLIST_APPLICABILITY_CONFLICT");

    let customer_id = registered_customer(suite, 23_001).await;
    let opened = analyst
        .open_investigation(pb::OpenInvestigationRequest {
            customer_id: customer_id.clone(),
            request_id: "inv-1".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .investigation
        .unwrap();
    assert_eq!(opened.checklist_id, "enterprise-standard");
    assert_eq!(opened.items.len(), 5);
    let again = analyst
        .open_investigation(pb::OpenInvestigationRequest {
            customer_id: customer_id.clone(),
            request_id: "inv-2".into(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(reason(&again), "INVESTIGATION_OPEN");

    // The first limit waits for the investigation.
    let (pending, mut checker) =
        first_limit_request(suite, &customer_id, "lr-first", "500000.00").await;
    let approve = |request_id: String| pb::DecideLimitRequestRequest {
        request_id,
        limit_request_id: pending.limit_request_id.clone(),
        decision: pb::ApprovalDecision::Approve as i32,
        reason: "financials support it".into(),
    };
    let gated = checker
        .decide_limit_request(approve("approve-0".into()))
        .await
        .unwrap_err();
    assert_eq!(gated.code(), Code::FailedPrecondition);
    assert_eq!(reason(&gated), "INVESTIGATION_REQUIRED");

    // Completing too early names what is missing.
    let early = analyst
        .complete_investigation(pb::CompleteInvestigationRequest {
            investigation_id: opened.investigation_id.clone(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(reason(&early), "INVESTIGATION_INCOMPLETE");
    assert!(
        early
            .message()
            .contains("business_licence, site_visit_result, main_customers, site_visit"),
        "{}",
        early.message()
    );

    // The licence: a document of the customer's file, then the item.
    let licence = analyst
        .record_document(pb::RecordDocumentRequest {
            customer_id: customer_id.clone(),
            document: Some(pb::CreditDocument {
                document_type: "business_licence".into(),
                title: "营业执照".into(),
                issuer: "厦门市市场监督管理局".into(),
                issued_on: date(2019, 5, 6),
                valid_until: date(2039, 5, 5),
                storage_uri: "dms://credit-files/licence-23001.pdf".into(),
                ..Default::default()
            }),
            request_id: "doc-1".into(),
        })
        .await
        .unwrap()
        .into_inner()
        .document
        .unwrap();
    let photo = analyst
        .record_document(pb::RecordDocumentRequest {
            customer_id: customer_id.clone(),
            document: Some(pb::CreditDocument {
                document_type: "site_photo".into(),
                issued_on: date(2026, 1, 5),
                storage_uri: "dms://credit-files/photo-1.jpg".into(),
                ..Default::default()
            }),
            request_id: "doc-2".into(),
        })
        .await
        .unwrap()
        .into_inner()
        .document
        .unwrap();
    let wrong_type = analyst
        .record_investigation_item(record(
            &opened,
            "business_licence",
            Outcome::DocumentId(photo.document_id.clone()),
        ))
        .await
        .unwrap_err();
    assert_eq!(wrong_type.code(), Code::InvalidArgument);
    let mut investigation = analyst
        .record_investigation_item(record(
            &opened,
            "business_licence",
            Outcome::DocumentId(licence.document_id.clone()),
        ))
        .await
        .unwrap()
        .into_inner()
        .investigation
        .unwrap();
    // A stale etag is refused: someone else recorded meanwhile.
    let stale = analyst
        .record_investigation_item(record(
            &opened,
            "main_customers",
            Outcome::Answer("Three distributors in Fujian".into()),
        ))
        .await
        .unwrap_err();
    assert_eq!(stale.code(), Code::Aborted);

    // The visit's conclusion becomes the customer's data point; a value outside the list is
    // refused at its field.
    let bad_value = analyst
        .record_investigation_item(record(
            &investigation,
            "site_visit_result",
            Outcome::Value(pb::DataPointValue {
                value: Some(pb::data_point_value::Value::Category("excellent".into())),
            }),
        ))
        .await
        .unwrap_err();
    assert_eq!(bad_value.code(), Code::InvalidArgument);
    investigation = analyst
        .record_investigation_item(record(
            &investigation,
            "site_visit_result",
            Outcome::Value(pb::DataPointValue {
                value: Some(pb::data_point_value::Value::Category("satisfactory".into())),
            }),
        ))
        .await
        .unwrap()
        .into_inner()
        .investigation
        .unwrap();
    let points = analyst
        .list_data_points(pb::ListDataPointsRequest {
            customer_id: customer_id.clone(),
        })
        .await
        .unwrap()
        .into_inner()
        .data_points;
    assert_eq!(points.len(), 1);
    assert_eq!(points[0].source, pb::DataPointSource::Investigation as i32);
    assert_eq!(points[0].source_reference, investigation.investigation_id);

    investigation = analyst
        .record_investigation_item(record(
            &investigation,
            "main_customers",
            Outcome::Answer("Three distributors in Fujian, none above 30 % of sales".into()),
        ))
        .await
        .unwrap()
        .into_inner()
        .investigation
        .unwrap();
    let visited = analyst
        .record_visit_report(pb::RecordVisitReportRequest {
            investigation_id: investigation.investigation_id.clone(),
            report: Some(pb::VisitReport {
                visited_on: date(2026, 1, 5),
                visitors: vec!["ana".into(), "Li Hua (sales)".into()],
                location: "Plant 2, Haicang".into(),
                met_with: "CFO".into(),
                findings: "Two lines running; stock matches the books.".into(),
                attachments: vec![photo.document_id.clone()],
                ..Default::default()
            }),
        })
        .await
        .unwrap()
        .into_inner();
    investigation = visited.investigation.unwrap();
    let report_id = visited.report.unwrap().visit_report_id;
    // Waiving is a manager's call.
    let waived_by_analyst = analyst
        .record_investigation_item(record(
            &investigation,
            "site_visit",
            Outcome::WaiverReason("visited last year".into()),
        ))
        .await
        .unwrap_err();
    assert_eq!(waived_by_analyst.code(), Code::PermissionDenied);
    investigation = analyst
        .record_investigation_item(record(
            &investigation,
            "site_visit",
            Outcome::VisitReportId(report_id),
        ))
        .await
        .unwrap()
        .into_inner()
        .investigation
        .unwrap();
    let completed = analyst
        .complete_investigation(pb::CompleteInvestigationRequest {
            investigation_id: investigation.investigation_id.clone(),
            note: "no concerns".into(),
            cancel: false,
        })
        .await
        .unwrap()
        .into_inner()
        .investigation
        .unwrap();
    assert_eq!(completed.status, pb::InvestigationStatus::Completed as i32);
    assert_eq!(
        completed
            .items
            .iter()
            .filter(|item| item.status == pb::InvestigationItemStatus::Done as i32)
            .count(),
        4
    );
    let listed = analyst
        .list_investigations(pb::ListInvestigationsRequest {
            customer_id: customer_id.clone(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .investigations;
    assert_eq!(listed.len(), 1);

    // Once limits has heard of the completion, the first limit is approved.
    let mut approved = None;
    for attempt in 0..credit_e2e_tests::POLLS {
        match checker
            .decide_limit_request(approve(format!("approve-{}", attempt + 1)))
            .await
        {
            Ok(response) => {
                approved = Some(response.into_inner());
                break;
            }
            Err(status) if reason(&status) == "INVESTIGATION_REQUIRED" => {
                tokio::time::sleep(Duration::from_millis(25)).await;
            }
            Err(status) => panic!("{status:?}"),
        }
    }
    let approved = approved.expect("limits never heard of the completed investigation");
    assert_eq!(
        approved.limit_request.unwrap().status(),
        pb::ApprovalStatus::Approved
    );
}
