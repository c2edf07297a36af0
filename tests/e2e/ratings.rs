//! Customer ratings, on both backends: RateCustomer reads the credit file from intake over
//! gRPC, scores it and stores it; overrides need a second person; reviews fall due and are
//! re-rated; a new statement re-rates a rated customer and limits sees the new grade.
//!
//! The figures are checked against a small model published by the test ("e2e-rated", for
//! industry Q87), computed by hand in the comments. Collections does not report payment
//! behaviour yet, so MAX_DAYS_OVERDUE_12M takes its missing points everywhere here.

use chrono::{Datelike, Months, Utc};
use credit_core::Role;
use credit_e2e_tests::{TestSuite, uscc};
use credit_proto::v1 as pb;
use tonic::Code;

use crate::intake::{create, enterprise, violated_fields};
use crate::rating::{category_bin, range_bin, reason};

pub(crate) type Rating = pb::rating_service_client::RatingServiceClient<credit_e2e_tests::Authed>;
type Intake = pb::intake_service_client::IntakeServiceClient<credit_e2e_tests::Authed>;

const MODEL_ID: &str = "e2e-rated";
const INDUSTRY: &str = "Q87";

fn cny(amount: &str) -> Option<pb::Money> {
    Some(pb::Money {
        amount: amount.into(),
        currency: "CNY".into(),
    })
}

fn characteristic(
    code: &str,
    source: pb::CharacteristicSource,
    input_key: &str,
    value_type: pb::CharacteristicValueType,
    bins: Vec<pb::ScorecardBin>,
    missing_points: &str,
) -> pb::Characteristic {
    pb::Characteristic {
        code: code.into(),
        display_name: code.to_lowercase().replace('_', " "),
        source: source.into(),
        input_key: input_key.into(),
        value_type: value_type.into(),
        family: pb::IndicatorFamily::Solvency.into(),
        bins,
        missing_points: missing_points.into(),
        reason_text: format!("{code} costs points"),
    }
}

/// Base 300; the characteristics give at most 120 + 120 + 100 + 80 + 100 + 80 = 600, at least
/// 0, so scores run 300..900 over the agency-8 scale (D below 380 ... AAA from 850).
pub(crate) async fn publish_model(suite: &TestSuite) {
    let mut rating = suite.rating(&suite.issue_token("root", &[Role::Admin]).await);
    let scale = rating
        .get_model(pb::GetModelRequest {
            model_id: "enterprise-default".into(),
            version: 0,
        })
        .await
        .unwrap()
        .into_inner()
        .model
        .unwrap()
        .master_scale;
    use pb::CharacteristicSource as Source;
    use pb::CharacteristicValueType::{Categorical, Numeric};
    let model = pb::ScorecardModel {
        model_id: MODEL_ID.into(),
        display_name: "E2E rated".into(),
        customer_kind: pb::CustomerKind::Enterprise.into(),
        industry_codes: vec![INDUSTRY.into()],
        base_points: "300".into(),
        characteristics: vec![
            characteristic(
                "CURRENT_RATIO",
                Source::FinancialStatement,
                "current_ratio",
                Numeric,
                vec![
                    range_bin(None, Some("1.0"), "0"),
                    range_bin(Some("1.0"), Some("1.5"), "60"),
                    range_bin(Some("1.5"), None, "120"),
                ],
                "30",
            ),
            characteristic(
                "DEBT_TO_ASSETS",
                Source::FinancialStatement,
                "debt_to_assets",
                Numeric,
                vec![
                    range_bin(None, Some("0.5"), "120"),
                    range_bin(Some("0.5"), Some("0.8"), "60"),
                    range_bin(Some("0.8"), None, "0"),
                ],
                "30",
            ),
            characteristic(
                "BUREAU_SCORE",
                Source::BureauReport,
                "score",
                Numeric,
                vec![
                    range_bin(None, Some("600"), "0"),
                    range_bin(Some("600"), Some("700"), "50"),
                    range_bin(Some("700"), None, "100"),
                ],
                "20",
            ),
            characteristic(
                "MANAGEMENT_QUALITY",
                Source::Qualitative,
                "management_quality",
                Numeric,
                vec![
                    range_bin(None, Some("3"), "0"),
                    range_bin(Some("3"), Some("4"), "40"),
                    range_bin(Some("4"), None, "80"),
                ],
                "20",
            ),
            characteristic(
                "MAX_DAYS_OVERDUE_12M",
                Source::PaymentBehaviour,
                "max_days_overdue_12m",
                Numeric,
                vec![
                    range_bin(None, Some("1"), "100"),
                    range_bin(Some("1"), Some("30"), "50"),
                    range_bin(Some("30"), None, "0"),
                ],
                "40",
            ),
            characteristic(
                "WORST_PAYMENT_EXPERIENCE",
                Source::TradeReferences,
                "worst_payment_experience",
                Categorical,
                vec![
                    category_bin("PROMPT", "80"),
                    category_bin("SLOW", "40"),
                    category_bin("VERY_SLOW", "0"),
                ],
                "20",
            ),
        ],
        master_scale: scale,
        change_note: "for the end-to-end tests".into(),
        ..Default::default()
    };
    let proposal = rating
        .publish_model(pb::PublishModelRequest {
            request_id: "e2e-rated-model".into(),
            model: Some(model),
            validate_only: false,
        })
        .await
        .unwrap()
        .into_inner()
        .proposal
        .unwrap();
    crate::rating::approve_model(suite, &proposal.proposal_id, "e2e-rated-model-approved")
        .await
        .unwrap();
}

fn q87_enterprise(name: &str, seed: u64) -> pb::Customer {
    let mut customer = enterprise(name, &uscc(seed));
    if let Some(pb::customer::Details::Enterprise(details)) = &mut customer.details {
        details.industry_code = INDUSTRY.into();
    }
    customer
}

/// An active Q87 customer, registered in intake (and made active by a credit manager).
async fn register(suite: &TestSuite, name: &str, seed: u64) -> String {
    let mut intake = suite.intake(
        &suite
            .issue_token("mgr", &[Role::Analyst, Role::CreditManager])
            .await,
    );
    let customer = create(
        &mut intake,
        &format!("rc-{seed}"),
        q87_enterprise(name, seed),
    )
    .await
    .unwrap();
    intake
        .set_customer_status(pb::SetCustomerStatusRequest {
            customer_id: customer.customer_id.clone(),
            status: pb::CustomerStatus::Active as i32,
            reason: "approved for credit".into(),
            etag: String::new(),
        })
        .await
        .unwrap();
    customer.customer_id
}

/// A statement whose current ratio is current assets / current liabilities and whose
/// debt-to-assets is total liabilities / total assets.
async fn submit_statement(
    intake: &mut Intake,
    customer_id: &str,
    fiscal_year: i32,
    current_assets: &str,
    current_liabilities: &str,
    total_assets: &str,
    total_liabilities: &str,
) -> String {
    let equity = total_assets.parse::<rust_decimal::Decimal>().unwrap()
        - total_liabilities.parse::<rust_decimal::Decimal>().unwrap();
    intake
        .submit_financial_statement(pb::SubmitFinancialStatementRequest {
            request_id: format!("rs-{customer_id}-{fiscal_year}"),
            customer_id: customer_id.into(),
            statement: Some(pb::FinancialStatement {
                period_type: pb::FiscalPeriodType::Annual as i32,
                fiscal_year,
                period_end_date: Some(pb::Date {
                    year: fiscal_year,
                    month: 12,
                    day: 31,
                }),
                currency: "CNY".into(),
                balance_sheet: Some(pb::BalanceSheet {
                    current_assets: cny(current_assets),
                    current_liabilities: cny(current_liabilities),
                    total_assets: cny(total_assets),
                    total_liabilities: cny(total_liabilities),
                    equity: cny(&format!("{equity:.2}")),
                    ..Default::default()
                }),
                income_statement: Some(pb::IncomeStatement {
                    revenue: cny("12000000.00"),
                    ..Default::default()
                }),
                cash_flow_statement: Some(pb::CashFlowStatement::default()),
                ..Default::default()
            }),
        })
        .await
        .unwrap()
        .into_inner()
        .statement
        .unwrap()
        .statement_id
}

async fn record_bureau_score(intake: &mut Intake, customer_id: &str, score: &str) -> String {
    intake
        .record_bureau_report(pb::RecordBureauReportRequest {
            request_id: format!("rb-{customer_id}"),
            customer_id: customer_id.into(),
            report: Some(pb::BureauReport {
                agency: "PBOC Credit Reference Center".into(),
                report_date: Some(pb::Date {
                    year: 2026,
                    month: 10,
                    day: 2,
                }),
                score: score.into(),
                agency_rating: "A".into(),
                tax_compliance_status: pb::TaxComplianceStatus::Compliant as i32,
                ..Default::default()
            }),
        })
        .await
        .unwrap()
        .into_inner()
        .report
        .unwrap()
        .report_id
}

async fn add_slow_payer_reference(intake: &mut Intake, customer_id: &str) {
    intake
        .add_trade_reference(pb::AddTradeReferenceRequest {
            request_id: format!("rt-{customer_id}"),
            customer_id: customer_id.into(),
            reference: Some(pb::TradeReference {
                supplier_name: "Fujian Steel Supply".into(),
                relationship_months: 36,
                typical_credit_line: cny("300000.00"),
                payment_experience: pb::PaymentExperience::Slow as i32,
                days_beyond_terms: 12,
                ..Default::default()
            }),
        })
        .await
        .unwrap();
}

pub(crate) async fn rate(
    rating: &mut Rating,
    request_id: &str,
    customer_id: &str,
    qualitative: &[(&str, i32)],
) -> Result<pb::RateCustomerResponse, tonic::Status> {
    Ok(rating
        .rate_customer(pb::RateCustomerRequest {
            request_id: request_id.into(),
            customer_id: customer_id.into(),
            qualitative_inputs: qualitative
                .iter()
                .map(|(key, value)| ((*key).to_owned(), *value))
                .collect(),
            ..Default::default()
        })
        .await?
        .into_inner())
}

/// (code, points, missing) of each line of a breakdown.
fn breakdown(rating: &pb::Rating) -> Vec<(&str, &str, bool)> {
    rating
        .breakdown
        .iter()
        .map(|line| (line.code.as_str(), line.points.as_str(), line.missing))
        .collect()
}

fn reason_codes(reasons: &[pb::Reason]) -> Vec<&str> {
    reasons.iter().map(|reason| reason.code.as_str()).collect()
}

fn months_from_today(months: u32) -> pb::Date {
    let date = Utc::now().date_naive() + Months::new(months);
    pb::Date {
        year: date.year(),
        month: date.month() as i32,
        day: date.day() as i32,
    }
}

fn day_after(date: &pb::Date) -> pb::Date {
    let next = chrono::NaiveDate::from_ymd_opt(date.year, date.month as u32, date.day as u32)
        .unwrap()
        .succ_opt()
        .unwrap();
    pb::Date {
        year: next.year(),
        month: next.month() as i32,
        day: next.day() as i32,
    }
}

/// A customer with a current ratio of 1.25, debt-to-assets of 0.6, a bureau score of 712 and
/// one supplier reporting slow payment, rated by an analyst with management quality 4.
pub(crate) async fn rated_bbb_customer(
    suite: &TestSuite,
    name: &str,
    seed: u64,
) -> (String, pb::Rating) {
    let analyst = suite.issue_token("ana", &[Role::Analyst]).await;
    let mut intake = suite.intake(&analyst);
    let customer_id = register(suite, name, seed).await;
    record_bureau_score(&mut intake, &customer_id, "712").await;
    add_slow_payer_reference(&mut intake, &customer_id).await;
    submit_statement(
        &mut intake,
        &customer_id,
        2025,
        "1500000.00",
        "1200000.00",
        "3000000.00",
        "1800000.00",
    )
    .await;
    let mut rating = suite.rating(&analyst);
    let rated = rate(
        &mut rating,
        &format!("rate-{seed}"),
        &customer_id,
        &[("management_quality", 4)],
    )
    .await
    .unwrap();
    (customer_id, rated.rating.unwrap())
}

pub async fn a_customer_is_rated_as_computed_by_hand(suite: &TestSuite) {
    publish_model(suite).await;
    let (customer_id, rated) = rated_bbb_customer(suite, "Hand Computed Co", 51_001).await;

    // By hand: current ratio 1.5M / 1.2M = 1.25 -> [1.0, 1.5) 60; debt-to-assets 1.8M / 3M =
    // 0.6 -> [0.5, 0.8) 60; bureau 712 -> [700, inf) 100; management 4 -> [4, inf) 80; no
    // payment behaviour -> missing 40; worst experience SLOW -> 40. 300 + 60 + 60 + 100 + 80 +
    // 40 + 40 = 680, in BBB's band [620, 700): PD 0.0075, reviewed after 6 months.
    assert_eq!(rated.model_id, MODEL_ID);
    assert_eq!(
        breakdown(&rated),
        [
            ("CURRENT_RATIO", "60", false),
            ("DEBT_TO_ASSETS", "60", false),
            ("BUREAU_SCORE", "100", false),
            ("MANAGEMENT_QUALITY", "80", false),
            ("MAX_DAYS_OVERDUE_12M", "40", true),
            ("WORST_PAYMENT_EXPERIENCE", "40", false),
        ]
    );
    assert_eq!(rated.score, "680");
    assert_eq!(
        (rated.model_grade.as_str(), rated.grade.as_str()),
        ("BBB", "BBB")
    );
    assert_eq!(rated.pd, "0.0075");
    assert_eq!(rated.next_review_date, Some(months_from_today(6)));
    assert!(rated.current);
    assert_eq!(rated.trigger, pb::RatingTrigger::Manual as i32);
    // Points lost: 60, 60, 0, 0, 60, 40; the largest first, ties in model order.
    assert_eq!(
        reason_codes(&rated.reasons),
        [
            "CURRENT_RATIO",
            "DEBT_TO_ASSETS",
            "MAX_DAYS_OVERDUE_12M",
            "WORST_PAYMENT_EXPERIENCE"
        ]
    );
    let snapshot = rated.inputs.clone().unwrap();
    assert!(!snapshot.statement_id.is_empty());
    assert!(!snapshot.bureau_report_id.is_empty());

    let analyst = suite.issue_token("ana", &[Role::Analyst]).await;
    let mut rating = suite.rating(&analyst);
    // A retry returns the first rating; the same key for another customer is refused.
    let again = rate(
        &mut rating,
        "rate-51001",
        &customer_id,
        &[("management_quality", 4)],
    )
    .await
    .unwrap();
    assert_eq!(again.rating.unwrap().rating_id, rated.rating_id);
    let reused = rate(
        &mut rating,
        "rate-51001",
        &customer_id,
        &[("management_quality", 2)],
    )
    .await
    .unwrap_err();
    assert_eq!(reused.code(), Code::AlreadyExists);

    // The stored snapshot re-scores to the same figures with the same model version.
    let rescored = rating
        .score_snapshot(pb::ScoreSnapshotRequest {
            source: Some(pb::score_snapshot_request::Source::RatingId(
                rated.rating_id.clone(),
            )),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .result
        .unwrap();
    assert_eq!(
        (
            rescored.score.as_str(),
            rescored.grade.as_str(),
            rescored.model_version
        ),
        ("680", "BBB", rated.model_version)
    );
    assert_eq!(rescored.breakdown, rated.breakdown);

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
    assert_eq!(current.rating_id, rated.rating_id);

    // The committee's report: structured, and one self-contained page.
    let report = rating
        .get_rating_report(pb::GetRatingReportRequest {
            customer_id: customer_id.clone(),
            rating_id: String::new(),
        })
        .await
        .unwrap()
        .into_inner();
    let structured = report.report.unwrap();
    assert_eq!(structured.rating.unwrap().rating_id, rated.rating_id);
    assert_eq!(structured.customer.unwrap().industry_code, INDUSTRY);
    assert_eq!(structured.model_display_name, "E2E rated");
    assert_eq!(structured.statements.len(), 1);
    assert_eq!(structured.trade_references.len(), 1);
    assert!(structured.bureau_report.is_some());
    assert!(!structured.grade_history.is_empty());
    assert!(report.html.starts_with("<!DOCTYPE html>"));
    assert!(report.html.contains("Hand Computed Co"));
    assert!(report.html.contains("BBB"));
    assert!(!report.html.contains("http://") && !report.html.contains("https://"));
}

pub async fn missing_inputs_take_the_missing_value_points(suite: &TestSuite) {
    publish_model(suite).await;
    let analyst = suite.issue_token("ana", &[Role::Analyst]).await;
    let customer_id = register(suite, "Blank File Co", 51_002).await;
    let mut rating = suite.rating(&analyst);
    let rated = rate(&mut rating, "rate-blank", &customer_id, &[])
        .await
        .unwrap()
        .rating
        .unwrap();
    // By hand: 300 + 30 + 30 + 20 + 20 + 40 + 20 = 460, the lowest score of B [460, 540).
    assert_eq!(
        breakdown(&rated),
        [
            ("CURRENT_RATIO", "30", true),
            ("DEBT_TO_ASSETS", "30", true),
            ("BUREAU_SCORE", "20", true),
            ("MANAGEMENT_QUALITY", "20", true),
            ("MAX_DAYS_OVERDUE_12M", "40", true),
            ("WORST_PAYMENT_EXPERIENCE", "20", true),
        ]
    );
    assert_eq!((rated.score.as_str(), rated.grade.as_str()), ("460", "B"));
    assert_eq!(rated.next_review_date, Some(months_from_today(3)));
    // Lost: 90, 90, 80, 60, 60, 60 -> four reasons, ties in model order.
    assert_eq!(
        reason_codes(&rated.reasons),
        [
            "CURRENT_RATIO",
            "DEBT_TO_ASSETS",
            "BUREAU_SCORE",
            "MANAGEMENT_QUALITY"
        ]
    );

    // Bad input writes nothing and names each field; an unknown customer is NOT_FOUND.
    let bad = rate(
        &mut rating,
        "rate-bad",
        &customer_id,
        &[("management_quality", 7)],
    )
    .await
    .unwrap_err();
    assert_eq!(
        violated_fields(&bad),
        ["qualitative_inputs[management_quality]"]
    );
    let unknown = rate(&mut rating, "rate-unknown", "cus_nobody", &[])
        .await
        .unwrap_err();
    assert_eq!(unknown.code(), Code::NotFound);
    let history = rating
        .list_rating_history(pb::ListRatingHistoryRequest {
            customer_id: customer_id.clone(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .ratings;
    assert_eq!(history.len(), 1);
}

pub(crate) async fn propose(
    rating: &mut Rating,
    request_id: &str,
    rating_id: &str,
    grade: &str,
) -> Result<pb::RatingOverride, tonic::Status> {
    Ok(rating
        .propose_override(pb::ProposeOverrideRequest {
            request_id: request_id.into(),
            rating_id: rating_id.into(),
            proposed_grade: grade.into(),
            justification: "parent company guarantee covers the exposure".into(),
        })
        .await?
        .into_inner()
        .rating_override
        .unwrap())
}

pub(crate) async fn decide(
    rating: &mut Rating,
    request_id: &str,
    override_id: &str,
    decision: pb::ApprovalDecision,
) -> Result<pb::DecideOverrideResponse, tonic::Status> {
    Ok(rating
        .decide_override(pb::DecideOverrideRequest {
            request_id: request_id.into(),
            override_id: override_id.into(),
            decision: decision as i32,
            comment: "checked the guarantee deed".into(),
        })
        .await?
        .into_inner())
}

pub async fn an_override_needs_a_second_person_with_enough_rank(suite: &TestSuite) {
    publish_model(suite).await;
    let (customer_id, rated) = rated_bbb_customer(suite, "Override Co", 51_003).await;
    let mut mei = suite.rating(&suite.issue_token("mei", &[Role::CreditManager]).await);
    let mut li = suite.rating(&suite.issue_token("li", &[Role::CreditManager]).await);
    let mut root = suite.rating(&suite.issue_token("root", &[Role::Admin]).await);

    // A grade of another scale is refused at its field and nothing is stored.
    let foreign = propose(&mut mei, "ov-bad", &rated.rating_id, "EXCELLENT")
        .await
        .unwrap_err();
    assert_eq!(violated_fields(&foreign), ["proposed_grade"]);

    // BBB -> A is one notch up: a credit manager other than the proposer decides.
    let proposal = propose(&mut mei, "ov-1", &rated.rating_id, "A")
        .await
        .unwrap();
    assert_eq!(proposal.notches, 1);
    assert_eq!(proposal.status, pb::ApprovalStatus::Pending as i32);
    assert_eq!(proposal.required_role, pb::Role::CreditManager as i32);
    let second = propose(&mut li, "ov-2", &rated.rating_id, "AA")
        .await
        .unwrap_err();
    assert_eq!(reason(&second), "OVERRIDE_PENDING");
    let own = decide(
        &mut mei,
        "dec-own",
        &proposal.override_id,
        pb::ApprovalDecision::Approve,
    )
    .await
    .unwrap_err();
    assert_eq!(own.code(), Code::PermissionDenied);
    assert_eq!(reason(&own), "SELF_APPROVAL");
    // Rotating the proposer's token (a new token for the same person) changes nothing.
    let mut mei_again = suite.rating(&suite.issue_token("mei", &[Role::Admin]).await);
    let own_again = decide(
        &mut mei_again,
        "dec-own-2",
        &proposal.override_id,
        pb::ApprovalDecision::Approve,
    )
    .await
    .unwrap_err();
    assert_eq!(own_again.code(), Code::PermissionDenied);
    assert_eq!(reason(&own_again), "SELF_APPROVAL");
    let approved = decide(
        &mut li,
        "dec-1",
        &proposal.override_id,
        pb::ApprovalDecision::Approve,
    )
    .await
    .unwrap();
    let after = approved.rating.unwrap();
    assert_eq!(
        (after.model_grade.as_str(), after.grade.as_str()),
        ("BBB", "A")
    );
    assert_eq!(after.override_id, proposal.override_id);
    assert_eq!(after.pd, "0.0025");
    // A is reviewed yearly, counted from the rating date.
    assert_eq!(after.next_review_date, Some(months_from_today(12)));
    let replay = decide(
        &mut li,
        "dec-1",
        &proposal.override_id,
        pb::ApprovalDecision::Approve,
    )
    .await
    .unwrap();
    assert_eq!(replay.rating.unwrap().grade, "A");
    let again = decide(
        &mut root,
        "dec-again",
        &proposal.override_id,
        pb::ApprovalDecision::Reject,
    )
    .await
    .unwrap_err();
    assert_eq!(reason(&again), "OVERRIDE_NOT_PENDING");

    // A -> CCC is four notches below the model's BBB... counted from the model grade: BBB ->
    // CCC is -3, more than two, so a manager may not decide it, an admin may.
    let large = propose(&mut li, "ov-3", &rated.rating_id, "CCC")
        .await
        .unwrap();
    assert_eq!(large.notches, -3);
    assert_eq!(large.required_role, pb::Role::Admin as i32);
    let by_manager = decide(
        &mut mei,
        "dec-3m",
        &large.override_id,
        pb::ApprovalDecision::Approve,
    )
    .await
    .unwrap_err();
    assert_eq!(by_manager.code(), Code::PermissionDenied);
    let by_admin = decide(
        &mut root,
        "dec-3a",
        &large.override_id,
        pb::ApprovalDecision::Approve,
    )
    .await
    .unwrap();
    assert_eq!(by_admin.rating.unwrap().grade, "CCC");

    let approved_list = mei
        .list_overrides(pb::ListOverridesRequest {
            customer_id: customer_id.clone(),
            status: pb::ApprovalStatus::Approved as i32,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .overrides;
    let ids: Vec<&str> = approved_list
        .iter()
        .map(|o| o.override_id.as_str())
        .collect();
    assert_eq!(
        ids,
        [large.override_id.as_str(), proposal.override_id.as_str()]
    );
    assert_eq!(
        approved_list[1].decided_by.as_ref().unwrap().principal,
        "li"
    );

    // A new rating supersedes the overridden one: its overrides can no longer be proposed.
    let analyst = suite.issue_token("ana", &[Role::Analyst]).await;
    let mut rating = suite.rating(&analyst);
    let newer = rate(&mut rating, "rate-newer", &customer_id, &[])
        .await
        .unwrap();
    // The qualitative input carried over; the override did not: the model grade is back.
    let newer = newer.rating.unwrap();
    assert_eq!((newer.score.as_str(), newer.grade.as_str()), ("680", "BBB"));
    let stale = propose(&mut mei, "ov-stale", &rated.rating_id, "A")
        .await
        .unwrap_err();
    assert_eq!(reason(&stale), "RATING_SUPERSEDED");
}

pub async fn due_reviews_are_found_and_rerated(suite: &TestSuite) {
    publish_model(suite).await;
    let (customer_id, rated) = rated_bbb_customer(suite, "Review Co", 51_004).await;
    let (closed_id, closed_rating) = rated_bbb_customer(suite, "Closing Co", 51_005).await;
    let analyst = suite
        .issue_token("ana", &[Role::Analyst, Role::CreditManager])
        .await;
    let mut intake = suite.intake(&analyst);
    intake
        .set_customer_status(pb::SetCustomerStatusRequest {
            customer_id: closed_id.clone(),
            status: pb::CustomerStatus::Closed as i32,
            reason: "relationship ended".into(),
            etag: String::new(),
        })
        .await
        .unwrap();
    let mut rating = suite.rating(&analyst);
    let review_date = rated.next_review_date.unwrap();
    assert_eq!(closed_rating.next_review_date.as_ref(), Some(&review_date));
    let due_on = |as_of: pb::Date| pb::ListDueReviewsRequest {
        as_of_date: Some(as_of),
        ..Default::default()
    };

    let before = rating
        .list_due_reviews(due_on(months_from_today(1)))
        .await
        .unwrap()
        .into_inner()
        .reviews;
    assert!(before.iter().all(|due| due.customer_id != customer_id));

    // The day after the review date: the open customer is due one day, the closed one is
    // not listed (rating learns of the closure from intake's event, a moment later).
    let as_of = day_after(&review_date);
    let mut due = Vec::new();
    for _ in 0..credit_e2e_tests::POLLS {
        due = rating
            .list_due_reviews(due_on(as_of))
            .await
            .unwrap()
            .into_inner()
            .reviews;
        if due.iter().all(|review| review.customer_id != closed_id) {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    }
    let ours: Vec<(&str, &str, i32)> = due
        .iter()
        .filter(|review| review.customer_id == customer_id || review.customer_id == closed_id)
        .map(|review| {
            (
                review.customer_id.as_str(),
                review.grade.as_str(),
                review.days_overdue,
            )
        })
        .collect();
    assert_eq!(ours, [(customer_id.as_str(), "BBB", 1)]);

    let run = pb::RunScheduledReviewsRequest {
        request_id: "reviews-1".into(),
        as_of_date: Some(as_of),
        max_customers: 0,
    };
    let results = rating
        .run_scheduled_reviews(run.clone())
        .await
        .unwrap()
        .into_inner();
    let ours = results
        .results
        .iter()
        .find(|result| result.customer_id == customer_id)
        .unwrap();
    assert!(ours.error.is_none(), "{ours:?}");
    assert_eq!(
        (ours.previous_grade.as_str(), ours.grade.as_str()),
        ("BBB", "BBB")
    );
    assert!(
        results
            .results
            .iter()
            .all(|result| result.customer_id != closed_id)
    );
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
    assert_eq!(current.rating_id, ours.rating_id);
    assert_ne!(current.rating_id, rated.rating_id);
    assert_eq!(current.trigger, pb::RatingTrigger::ScheduledReview as i32);
    assert_eq!(current.rated_by.unwrap().principal, "system:rating");
    // The management assessment carried over to the review.
    assert_eq!(current.score, "680");

    // A retry answers the first run; nobody is rated twice.
    let replay = rating
        .run_scheduled_reviews(run)
        .await
        .unwrap()
        .into_inner();
    assert_eq!(replay, results);
    let history = rating
        .list_rating_history(pb::ListRatingHistoryRequest {
            customer_id: customer_id.clone(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .ratings;
    assert_eq!(history.len(), 2);
    assert!(history[0].current && !history[1].current);
}

pub async fn a_new_statement_rerates_and_limits_sees_the_new_grade(suite: &TestSuite) {
    publish_model(suite).await;
    let analyst = suite.issue_token("ana", &[Role::Analyst]).await;
    let mut intake = suite.intake(&analyst);
    let customer_id = register(suite, "Turnaround Co", 51_006).await;
    record_bureau_score(&mut intake, &customer_id, "712").await;
    add_slow_payer_reference(&mut intake, &customer_id).await;
    // Weak: current ratio 0.8 -> 0, debt-to-assets 0.9 -> 0: 300 + 0 + 0 + 100 + 80 + 40 +
    // 40 = 560, BB.
    submit_statement(
        &mut intake,
        &customer_id,
        2024,
        "800000.00",
        "1000000.00",
        "2000000.00",
        "1800000.00",
    )
    .await;
    let mut rating = suite.rating(&analyst);
    let first = rate(
        &mut rating,
        "rate-turn",
        &customer_id,
        &[("management_quality", 4)],
    )
    .await
    .unwrap()
    .rating
    .unwrap();
    assert_eq!((first.score.as_str(), first.grade.as_str()), ("560", "BB"));

    // Strong: current ratio 2.0 -> 120, debt-to-assets 0.3 -> 120: 300 + 120 + 120 + 100 +
    // 80 + 40 + 40 = 800, AA. Intake announces the statement; rating re-rates by itself.
    let statement_id = submit_statement(
        &mut intake,
        &customer_id,
        2025,
        "2000000.00",
        "1000000.00",
        "4000000.00",
        "1200000.00",
    )
    .await;
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
        if current.trigger == pb::RatingTrigger::FinancialStatement as i32 {
            rerated = Some(current);
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    }
    let rerated = rerated.expect("the statement re-rated the customer");
    assert_eq!(
        (rerated.score.as_str(), rerated.grade.as_str()),
        ("800", "AA")
    );
    assert_eq!(rerated.inputs.unwrap().statement_id, statement_id);

    // Limits learns the new grade from RatingChanged: ProposeLimit uses it.
    let mut limits = suite.limits(&analyst);
    let mut seen = None;
    for _ in 0..credit_e2e_tests::POLLS {
        if let Ok(proposal) = limits
            .propose_limit(pb::ProposeLimitRequest {
                customer_id: customer_id.clone(),
                currency: String::new(),
            })
            .await
        {
            let proposal = proposal.into_inner();
            if proposal.rating_id == rerated.rating_id {
                seen = Some(proposal);
                break;
            }
        }
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    }
    let proposal = seen.expect("limits saw the new rating");
    assert_eq!(proposal.grade, "AA");
}

/// The customer's current rating once `ready` holds for it (events arrive a moment later).
async fn current_rating_once(
    rating: &mut Rating,
    customer_id: &str,
    ready: impl Fn(&pb::Rating) -> bool,
) -> pb::Rating {
    let mut last = None;
    for _ in 0..credit_e2e_tests::POLLS {
        let current = rating
            .get_rating(pb::GetRatingRequest {
                lookup: Some(pb::get_rating_request::Lookup::CustomerId(
                    customer_id.to_owned(),
                )),
            })
            .await
            .unwrap()
            .into_inner()
            .rating
            .unwrap();
        if ready(&current) {
            return current;
        }
        last = Some(current);
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    }
    panic!("the rating never became ready: {last:?}");
}

fn overdue(customer_id: &str, previous_days: i32, days: i32) -> pb::event::Payload {
    pb::event::Payload::InvoiceOverdue(pb::InvoiceOverdue {
        customer_id: customer_id.into(),
        as_of_date: Some(months_from_today(0)),
        oldest_overdue_days: days,
        previous_oldest_overdue_days: previous_days,
        ..Default::default()
    })
}

pub async fn overdue_past_thirty_days_rerates_once(suite: &TestSuite) {
    publish_model(suite).await;
    let (customer_id, rated) = rated_bbb_customer(suite, "Late Payer Co", 51_007).await;
    let analyst = suite.issue_token("ana", &[Role::Analyst]).await;
    let mut rating = suite.rating(&analyst);
    use credit_proto::service_names::COLLECTIONS;

    // 10 -> 20 days stays below the threshold; 20 -> 35 crosses it and re-rates; 35 -> 40
    // is past it already and does not rate again.
    suite
        .publish(COLLECTIONS, overdue(&customer_id, 10, 20))
        .await;
    suite
        .publish(COLLECTIONS, overdue(&customer_id, 20, 35))
        .await;
    let rerated = current_rating_once(&mut rating, &customer_id, |current| {
        current.rating_id != rated.rating_id
    })
    .await;
    assert_eq!(rerated.trigger, pb::RatingTrigger::Overdue as i32);
    assert_eq!(rerated.rated_by.unwrap().principal, "system:rating");
    suite
        .publish(COLLECTIONS, overdue(&customer_id, 35, 40))
        .await;
    // A bureau report recorded afterwards re-rates too: once it has, the 35 -> 40 event (sent
    // before it) has been handled as well, since one consumer applies events in order.
    let mut intake = suite.intake(&analyst);
    intake
        .record_bureau_report(pb::RecordBureauReportRequest {
            request_id: "late-bureau-2".into(),
            customer_id: customer_id.clone(),
            report: Some(pb::BureauReport {
                agency: "PBOC Credit Reference Center".into(),
                report_date: Some(months_from_today(0)),
                score: "640".into(),
                ..Default::default()
            }),
        })
        .await
        .unwrap();
    let after_bureau = current_rating_once(&mut rating, &customer_id, |current| {
        current.trigger == pb::RatingTrigger::BureauReport as i32
    })
    .await;
    // Bureau 640 -> [600, 700) 50 instead of 100: 680 - 50 = 630, still BBB.
    assert_eq!(after_bureau.score, "630");
    let triggers: Vec<i32> = rating
        .list_rating_history(pb::ListRatingHistoryRequest {
            customer_id: customer_id.clone(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .ratings
        .iter()
        .map(|rating| rating.trigger)
        .collect();
    assert_eq!(
        triggers,
        [
            pb::RatingTrigger::BureauReport as i32,
            pb::RatingTrigger::Overdue as i32,
            pb::RatingTrigger::Manual as i32,
        ]
    );
}

pub async fn payment_behaviour_from_collections_is_scored(suite: &TestSuite) {
    use crate::collections::{billing, days_ago, pay, post_invoice};
    publish_model(suite).await;
    let analyst = suite.issue_token("ana", &[Role::Analyst]).await;
    let customer_id = register(suite, "Late Payer Two Co", 51_008).await;
    // Collections: an invoice due 60 days ago, paid today: 60 days overdue at settlement.
    let mut collections = billing(suite).await;
    let invoice = post_invoice(
        &mut collections,
        &customer_id,
        "LP-1",
        "1000.00",
        days_ago(90),
        days_ago(60),
        "",
    )
    .await
    .unwrap()
    .invoice
    .unwrap();
    pay(
        &mut collections,
        &customer_id,
        "BANK-LP",
        "1000.00",
        days_ago(0),
        &[(&invoice.invoice_id, "1000.00")],
    )
    .await
    .unwrap();

    let mut rating = suite.rating(&analyst);
    let rated = rate(&mut rating, "rate-late", &customer_id, &[])
        .await
        .unwrap()
        .rating
        .unwrap();
    // 60 days -> [30, inf) 0 points (was the missing 40), so 460 - 40 = 420: CCC.
    let line = rated
        .breakdown
        .iter()
        .find(|line| line.code == "MAX_DAYS_OVERDUE_12M")
        .unwrap();
    assert!(!line.missing);
    assert_eq!(line.points, "0");
    assert_eq!(
        line.input.as_ref().unwrap().value,
        Some(pb::rating_input::Value::Number("60".into()))
    );
    assert!(
        line.input
            .as_ref()
            .unwrap()
            .origin
            .starts_with("payment_behaviour:")
    );
    assert_eq!((rated.score.as_str(), rated.grade.as_str()), ("420", "CCC"));
}
