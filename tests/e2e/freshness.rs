//! Freshness of the credit file (定期审查和更新信用信息): the credit policy's maximum ages flag a
//! stale statement and an expired document on the rating, list the customer for a file review,
//! hold the limit approval and, when the policy says so, refuse to rate.

use std::time::Duration;

use chrono::{Datelike, Days, NaiveDate, Utc};
use credit_core::Role;
use credit_e2e_tests::TestSuite;
use credit_proto::v1 as pb;
use tonic::Code;

use crate::limits::{first_limit_request, reason, registered_customer};
use crate::policy::{change_policy, policy};

fn date(day: NaiveDate) -> Option<pb::Date> {
    Some(pb::Date {
        year: day.year(),
        month: i32::try_from(day.month()).unwrap(),
        day: i32::try_from(day.day()).unwrap(),
    })
}

fn days_ago(days: u64) -> NaiveDate {
    Utc::now()
        .date_naive()
        .checked_sub_days(Days::new(days))
        .unwrap()
}

fn codes(reasons: &[pb::Reason]) -> Vec<(String, String)> {
    let mut codes: Vec<(String, String)> = reasons
        .iter()
        .map(|reason| (reason.code.clone(), reason.metadata["input"].clone()))
        .collect();
    codes.sort();
    codes
}

pub async fn a_stale_statement_and_an_expired_document_are_flagged_reviewed_and_hold_approval(
    suite: &TestSuite,
) {
    let mut rules = policy(&mut suite.limits(&suite.admin_token)).await;
    rules.freshness = Some(pb::CreditFileFreshness {
        statement_max_age_days: 365,
        bureau_report_max_age_days: 365,
        notice_days: 60,
        block_approval: true,
        ..Default::default()
    });
    change_policy(suite, rules.clone(), &["freshness"]).await;

    let analyst = suite.issue_token("ana", &[Role::Analyst]).await;
    let mut intake = suite.intake(&analyst);
    let customer_id = registered_customer(suite, 23_101).await;
    // The latest statement is of the year before last: more than 365 days past its period end.
    let year = Utc::now().year() - 2;
    let statement = intake
        .submit_financial_statement(pb::SubmitFinancialStatementRequest {
            request_id: "fs-old".into(),
            customer_id: customer_id.clone(),
            statement: Some(crate::intake::statement_of_year(year, true)),
        })
        .await
        .unwrap()
        .into_inner()
        .statement
        .unwrap();
    intake
        .record_bureau_report(pb::RecordBureauReportRequest {
            request_id: "br-fresh".into(),
            customer_id: customer_id.clone(),
            report: Some(pb::BureauReport {
                agency: "Dun & Bradstreet".into(),
                report_date: date(days_ago(10)),
                score: "712".into(),
                ..Default::default()
            }),
        })
        .await
        .unwrap();
    // The guarantee ran out a week ago; the licence is current.
    let guarantee = intake
        .record_document(pb::RecordDocumentRequest {
            customer_id: customer_id.clone(),
            document: Some(pb::CreditDocument {
                document_type: "guarantee".into(),
                issuer: "Bank of Xiamen".into(),
                issued_on: date(days_ago(372)),
                valid_until: date(days_ago(7)),
                storage_uri: "dms://guarantees/1".into(),
                ..Default::default()
            }),
            request_id: "doc-guarantee".into(),
        })
        .await
        .unwrap()
        .into_inner()
        .document
        .unwrap();
    assert!(guarantee.expired);
    intake
        .record_document(pb::RecordDocumentRequest {
            customer_id: customer_id.clone(),
            document: Some(pb::CreditDocument {
                document_type: "business_licence".into(),
                issued_on: date(days_ago(700)),
                valid_until: date(days_ago(0).checked_add_days(Days::new(3650)).unwrap()),
                storage_uri: "dms://licences/1".into(),
                ..Default::default()
            }),
            request_id: "doc-licence".into(),
        })
        .await
        .unwrap();
    // The visit's conclusion is valid for 30 days: it goes stale within the notice.
    suite
        .intake(&suite.issue_token("carla", &[Role::CreditManager]).await)
        .define_data_point(pb::DefineDataPointRequest {
            definition: Some(pb::DataPointDefinition {
                code: "site_visit_result".into(),
                label_en: "Site visit result".into(),
                r#type: pb::DataPointType::Category as i32,
                allowed_values: vec!["satisfactory".into(), "concerns".into()],
                valid_days: 30,
                ..Default::default()
            }),
            expected_version: 0,
        })
        .await
        .unwrap();
    intake
        .set_data_points(pb::SetDataPointsRequest {
            customer_id: customer_id.clone(),
            values: vec![pb::DataPointEntry {
                code: "site_visit_result".into(),
                value: Some(pb::DataPointValue {
                    value: Some(pb::data_point_value::Value::Text("satisfactory".into())),
                }),
            }],
            request_id: "dp-visit".into(),
            ..Default::default()
        })
        .await
        .unwrap();

    // The rating is made, and says what was stale and when the next input goes stale.
    let mut rating = suite.rating(&analyst);
    let rated = rating
        .rate_customer(pb::RateCustomerRequest {
            request_id: "rate-stale".into(),
            customer_id: customer_id.clone(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .rating
        .unwrap();
    assert_eq!(
        codes(&rated.stale_inputs),
        [
            ("EXPIRED_DOCUMENT".to_owned(), guarantee.document_id.clone()),
            ("STALE_STATEMENT".to_owned(), statement.statement_id.clone()),
        ]
    );
    let expired = rated
        .stale_inputs
        .iter()
        .find(|reason| reason.code == "EXPIRED_DOCUMENT")
        .unwrap();
    assert_eq!(expired.metadata["stale_since"], days_ago(6).to_string());
    assert_eq!(
        rated.inputs_stale_on,
        date(days_ago(0).checked_add_days(Days::new(30)).unwrap()),
        "the visit's conclusion goes stale next"
    );

    // The customer is listed for a file review, already past due.
    let reviews = rating
        .list_file_reviews(pb::ListFileReviewsRequest {
            customer_id: customer_id.clone(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .reviews;
    assert_eq!(reviews.len(), 1);
    assert_eq!(reviews[0].rating_id, rated.rating_id);
    assert!(reviews[0].days_left < 0, "{:?}", reviews[0]);
    assert_eq!(reviews[0].stale_inputs.len(), 2);

    // The policy holds limit approvals on a stale file: once limits has the rating, the
    // approval of a limit is refused until the file is brought up to date.
    let mut terms = suite.limits(&suite.admin_token);
    for _ in 0..credit_e2e_tests::POLLS {
        let known = terms
            .get_credit_terms(pb::GetCreditTermsRequest {
                customer_id: customer_id.clone(),
            })
            .await
            .unwrap()
            .into_inner()
            .terms
            .unwrap();
        if known.grade == rated.grade {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    let (pending, mut checker) =
        first_limit_request(suite, &customer_id, "lr-stale", "300000.00").await;
    let held = checker
        .decide_limit_request(pb::DecideLimitRequestRequest {
            request_id: "approve-stale".into(),
            limit_request_id: pending.limit_request_id.clone(),
            decision: pb::ApprovalDecision::Approve as i32,
            reason: "looks fine".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(held.code(), Code::FailedPrecondition);
    assert_eq!(reason(&held), "CREDIT_FILE_STALE");

    // A renewed guarantee re-rates the customer by itself (rating follows intake's
    // CreditFileUpdated): only the statement is stale now.
    intake
        .record_document(pb::RecordDocumentRequest {
            customer_id: customer_id.clone(),
            document: Some(pb::CreditDocument {
                document_type: "guarantee".into(),
                issuer: "Bank of Xiamen".into(),
                issued_on: date(days_ago(1)),
                valid_until: date(days_ago(0).checked_add_days(Days::new(365)).unwrap()),
                storage_uri: "dms://guarantees/2".into(),
                ..Default::default()
            }),
            request_id: "doc-guarantee-renewed".into(),
        })
        .await
        .unwrap();
    let mut rerated = None;
    for _ in 0..credit_e2e_tests::POLLS {
        let current = rating
            .get_rating(pb::GetRatingRequest {
                lookup: Some(pb::get_rating_request::Lookup::CustomerId(
                    customer_id.clone(),
                )),
            })
            .await
            .unwrap()
            .into_inner()
            .rating
            .unwrap();
        if current.rating_id != rated.rating_id {
            rerated = Some(current);
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    let rerated = rerated.expect("the renewed guarantee never re-rated the customer");
    assert_eq!(rerated.trigger, pb::RatingTrigger::CreditFile as i32);
    assert_eq!(
        codes(&rerated.stale_inputs),
        [("STALE_STATEMENT".to_owned(), statement.statement_id.clone())]
    );

    // A policy that rates nobody on stale inputs refuses the next rating and names them.
    let mut blocking = policy(&mut suite.limits(&suite.admin_token)).await;
    if let Some(freshness) = blocking.freshness.as_mut() {
        freshness.block_rating = true;
    }
    change_policy(suite, blocking, &["freshness"]).await;
    let refused = rating
        .rate_customer(pb::RateCustomerRequest {
            request_id: "rate-blocked".into(),
            customer_id: customer_id.clone(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::FailedPrecondition);
    assert_eq!(reason(&refused), "CREDIT_FILE_STALE");
    assert!(
        refused.message().contains("period end"),
        "{}",
        refused.message()
    );
}
