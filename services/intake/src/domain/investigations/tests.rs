#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests")]

use chrono::TimeZone;

use super::*;

fn analyst() -> Actor {
    Actor::named("ana")
}

fn at() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 3, 2, 9, 0, 0).unwrap()
}

fn item(code: &str, kind: ItemKind, required: bool) -> ItemDraft {
    ItemDraft {
        code: code.into(),
        kind: Some(kind),
        label_en: code.replace('_', " "),
        required,
        document_type: if kind == ItemKind::Document {
            code.into()
        } else {
            String::new()
        },
        data_point_code: if kind == ItemKind::DataPoint {
            "site_visit_result".into()
        } else {
            String::new()
        },
        ..ItemDraft::default()
    }
}

fn standard(id: &str, industry_codes: &[&str]) -> Checklist {
    ChecklistDraft {
        checklist_id: id.into(),
        display_name: "Enterprise standard".into(),
        customer_kind: Some(CustomerKind::Enterprise),
        industry_codes: industry_codes
            .iter()
            .map(|code| (*code).to_owned())
            .collect(),
        items: vec![
            item("business_licence", ItemKind::Document, true),
            item("site_visit_result", ItemKind::DataPoint, true),
            item("main_customers", ItemKind::Question, false),
            item("site_visit", ItemKind::Visit, true),
        ],
        change_note: String::new(),
    }
    .check(1, |code, _| code == "site_visit_result", &analyst(), at())
    .unwrap()
}

fn fields(violations: Violations) -> Vec<String> {
    match violations.finish() {
        Err(credit_core::ServiceError::InvalidArgument(list)) => {
            list.into_iter().map(|violation| violation.field).collect()
        }
        other => panic!("expected violations, got {other:?}"),
    }
}

#[test]
fn a_checklist_names_every_problem_and_its_data_points_must_be_defined() {
    let bad = ChecklistDraft {
        checklist_id: "Enterprise".into(),
        customer_kind: Some(CustomerKind::Enterprise),
        items: vec![
            ItemDraft {
                code: "licence".into(),
                kind: Some(ItemKind::Document),
                label_en: "Licence".into(),
                ..ItemDraft::default()
            },
            ItemDraft {
                data_point_code: "unknown".into(),
                ..item("licence", ItemKind::DataPoint, true)
            },
        ],
        ..ChecklistDraft::default()
    };
    let problems = fields(bad.check(1, |_, _| false, &analyst(), at()).unwrap_err());
    assert_eq!(
        problems,
        [
            "checklist.checklist_id",
            "checklist.display_name",
            "checklist.items[0].document_type",
            "checklist.items[1].code",
            "checklist.items[1].data_point_code",
        ]
    );
}

#[test]
fn the_longest_industry_prefix_wins_else_the_default_of_the_kind() {
    let checklists = [
        standard("enterprise-standard", &[]),
        standard("manufacturing", &["C"]),
        standard("machinery", &["C34", "C35"]),
    ];
    let chosen = |industry: &str| {
        select_checklist(&checklists, CustomerKind::Enterprise, industry)
            .map(|checklist| checklist.checklist_id.as_str())
    };
    assert_eq!(chosen("C3411"), Some("machinery"));
    assert_eq!(chosen("C2611"), Some("manufacturing"));
    assert_eq!(chosen("F5179"), Some("enterprise-standard"));
    assert_eq!(
        select_checklist(&checklists, CustomerKind::Individual, ""),
        None
    );
    // Two defaults of one kind, or two claims of one prefix, would make the choice ambiguous.
    assert!(
        standard("another-default", &[])
            .conflict(&checklists)
            .is_some()
    );
    assert!(standard("metals", &["C34"]).conflict(&checklists).is_some());
    assert!(
        standard("enterprise-standard", &[])
            .conflict(&checklists)
            .is_none()
    );
}

#[test]
fn an_investigation_completes_only_when_its_required_items_are_done_or_waived() {
    let checklist = standard("enterprise-standard", &[]);
    let mut investigation =
        Investigation::open("inv_1".into(), "cus_1", &checklist, &analyst(), at());
    assert_eq!(
        investigation.complete("", &analyst(), at()),
        Err(InvestigationRefusal::Incomplete(vec![
            "business_licence".into(),
            "site_visit_result".into(),
            "site_visit".into()
        ]))
    );
    // An answer does not do for a document, nor an unknown visit report for the visit.
    assert!(matches!(
        investigation.record(
            "business_licence",
            ItemOutcome::Answer("seen".into()),
            "",
            &analyst(),
            at()
        ),
        Err(InvestigationRefusal::WrongOutcome { .. })
    ));
    assert_eq!(
        investigation.record(
            "site_visit",
            ItemOutcome::Visit("vis_x".into()),
            "",
            &analyst(),
            at()
        ),
        Err(InvestigationRefusal::UnknownVisitReport("vis_x".into()))
    );
    investigation
        .record(
            "business_licence",
            ItemOutcome::Document("doc_1".into()),
            "",
            &analyst(),
            at(),
        )
        .unwrap();
    investigation
        .record(
            "site_visit_result",
            ItemOutcome::Value(DataPointValue::Category("satisfactory".into())),
            "",
            &analyst(),
            at(),
        )
        .unwrap();
    let report = VisitDraft {
        visited_on: Some(Ok(NaiveDate::from_ymd_opt(2026, 3, 1).unwrap())),
        visitors: vec!["ana".into(), "li".into()],
        location: "Plant 2".into(),
        met_with: "CFO".into(),
        findings: "Running three shifts; stock matches the books.".into(),
        attachments: vec!["dms://photos/1".into()],
    }
    .check("vis_1".into(), &analyst(), at())
    .unwrap();
    investigation.add_visit(report).unwrap();
    investigation
        .record(
            "site_visit",
            ItemOutcome::Waived("visited last month".into()),
            "",
            &analyst(),
            at(),
        )
        .unwrap();
    let before = investigation.etag();
    investigation
        .complete("all seen", &analyst(), at())
        .unwrap();
    assert_ne!(investigation.etag(), before);
    assert_eq!(investigation.status, InvestigationStatus::Completed);
    assert_eq!(
        investigation.record(
            "main_customers",
            ItemOutcome::Answer("x".into()),
            "",
            &analyst(),
            at()
        ),
        Err(InvestigationRefusal::Closed(InvestigationStatus::Completed))
    );
}

#[test]
fn a_document_needs_its_type_issue_date_and_storage_and_may_not_expire_before_issue() {
    let draft = DocumentDraft {
        document_type: "Business Licence".into(),
        title: String::new(),
        issuer: String::new(),
        number: String::new(),
        issued_on: Some(Ok(NaiveDate::from_ymd_opt(2025, 1, 1).unwrap())),
        valid_until: Some(Ok(NaiveDate::from_ymd_opt(2024, 12, 31).unwrap())),
        storage_uri: String::new(),
        sha256: "abc".into(),
        note: String::new(),
    };
    let problems = fields(
        draft
            .check("doc_1".into(), "cus_1", &analyst(), at())
            .unwrap_err(),
    );
    assert_eq!(
        problems,
        [
            "document.document_type",
            "document.storage_uri",
            "document.sha256",
            "document.valid_until"
        ]
    );
    let licence = DocumentDraft {
        document_type: "business_licence".into(),
        title: "营业执照".into(),
        issuer: "上海市市场监督管理局".into(),
        number: "91310000MA1FL8TQ36".into(),
        issued_on: Some(Ok(NaiveDate::from_ymd_opt(2016, 3, 1).unwrap())),
        valid_until: Some(Ok(NaiveDate::from_ymd_opt(2026, 2, 28).unwrap())),
        storage_uri: "dms://licences/1".into(),
        sha256: String::new(),
        note: String::new(),
    }
    .check("doc_1".into(), "cus_1", &analyst(), at())
    .unwrap();
    assert!(licence.is_expired(at().date_naive()));
    assert!(!licence.is_expired(NaiveDate::from_ymd_opt(2026, 2, 28).unwrap()));
}
