//! ProposeLimit, on both backends: the grade cap from the credit policy, a share of equity and
//! a multiple of average monthly revenue from the latest statement submitted through intake
//! (limits learns of it from FinancialStatementSubmitted), the smallest of them proposed.
//! Rating's RatingChanged events are published on the suite's bus, as the rating service's
//! relay will. The shipped policy: grade BBB caps 10,000,000 CNY, 20 % of equity, 1.5 x
//! average monthly revenue.

use std::time::Duration;

use credit_core::Role;
use credit_e2e_tests::TestSuite;
use credit_proto::service_names::RATING;
use credit_proto::v1 as pb;
use credit_proto::v1::event::Payload;
use pb::LimitProposalComponentType as Kind;
use rust_decimal::Decimal;
use tonic::Code;
use tonic_types::StatusExt;

use crate::authorize::{Limits, cny, customer, grant, scope_of_customer};

fn reason(status: &tonic::Status) -> String {
    status
        .get_error_details()
        .error_info()
        .map(|info| info.reason.clone())
        .unwrap_or_default()
}

async fn analyst(suite: &TestSuite) -> Limits {
    suite.limits(&suite.issue_token("ana", &[Role::Analyst]).await)
}

async fn rate(suite: &TestSuite, customer_id: &str, grade: &str) {
    suite
        .publish(
            RATING,
            Payload::RatingChanged(pb::RatingChanged {
                customer_id: customer_id.into(),
                rating_id: format!("rat-{customer_id}"),
                grade: grade.into(),
                next_review_date: Some(pb::Date {
                    year: 2099,
                    month: 1,
                    day: 1,
                }),
                ..Default::default()
            }),
        )
        .await;
}

async fn propose(
    limits: &mut Limits,
    customer_id: &str,
    currency: &str,
) -> Result<pb::ProposeLimitResponse, tonic::Status> {
    Ok(limits
        .propose_limit(pb::ProposeLimitRequest {
            customer_id: customer_id.into(),
            currency: currency.into(),
        })
        .await?
        .into_inner())
}

/// Polls ProposeLimit until its answer satisfies `ready`: limits applies intake's and
/// rating's events a moment after they happen.
async fn proposal_once(
    limits: &mut Limits,
    customer_id: &str,
    ready: impl Fn(&pb::ProposeLimitResponse) -> bool,
) -> pb::ProposeLimitResponse {
    let mut last = None;
    for _ in 0..credit_e2e_tests::POLLS {
        match propose(limits, customer_id, "").await {
            Ok(proposal) if ready(&proposal) => return proposal,
            Ok(proposal) => last = Some(Ok(proposal)),
            Err(status) if matches!(status.code(), Code::NotFound | Code::FailedPrecondition) => {
                last = Some(Err(status));
            }
            Err(status) => panic!("{status:?}"),
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("{customer_id}: the proposal never got ready; last answer {last:?}");
}

fn component(proposal: &pb::ProposeLimitResponse, kind: Kind) -> &pb::LimitProposalComponent {
    proposal
        .components
        .iter()
        .find(|component| component.component_type() == kind)
        .unwrap_or_else(|| panic!("no {kind:?} in {proposal:?}"))
}

fn binding(proposal: &pb::ProposeLimitResponse) -> Vec<Kind> {
    proposal
        .components
        .iter()
        .filter(|component| component.binding)
        .map(|component| component.component_type())
        .collect()
}

fn shown(money: &Option<pb::Money>) -> Option<String> {
    money
        .as_ref()
        .map(|money| format!("{} {}", money.amount, money.currency))
}

/// The period a statement covers.
enum Period {
    Annual(i32),
    Quarter(i32, i32),
}

/// Submits a CNY statement through intake with the given equity and revenue (liabilities
/// 1,000,000, assets balancing them); its statement id.
async fn submit_statement(
    suite: &TestSuite,
    customer_id: &str,
    request_id: &str,
    period: Period,
    equity: &str,
    revenue: &str,
) -> String {
    let mut intake = suite.intake(&suite.issue_token("ana", &[Role::Analyst]).await);
    let liabilities = Decimal::from(1_000_000);
    let assets = liabilities + equity.parse::<Decimal>().unwrap();
    let (period_type, fiscal_year, fiscal_quarter, period_end_date) = match period {
        Period::Annual(year) => (
            pb::FiscalPeriodType::Annual,
            year,
            0,
            pb::Date {
                year,
                month: 12,
                day: 31,
            },
        ),
        Period::Quarter(year, quarter) => {
            let month = quarter * 3;
            let day = if month == 6 || month == 9 { 30 } else { 31 };
            (
                pb::FiscalPeriodType::Quarterly,
                year,
                quarter,
                pb::Date { year, month, day },
            )
        }
    };
    intake
        .submit_financial_statement(pb::SubmitFinancialStatementRequest {
            request_id: request_id.into(),
            customer_id: customer_id.into(),
            statement: Some(pb::FinancialStatement {
                period_type: period_type as i32,
                fiscal_year,
                fiscal_quarter,
                period_end_date: Some(period_end_date),
                currency: "CNY".into(),
                balance_sheet: Some(pb::BalanceSheet {
                    total_assets: cny(&format!("{assets:.2}")),
                    total_liabilities: cny(&format!("{liabilities:.2}")),
                    equity: cny(equity),
                    ..Default::default()
                }),
                income_statement: Some(pb::IncomeStatement {
                    revenue: cny(revenue),
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

pub async fn without_a_rating_no_limit_is_proposed(suite: &TestSuite) {
    let mut limits = analyst(suite).await;
    let unknown = propose(&mut limits, "cus_unknown", "").await.unwrap_err();
    assert_eq!(unknown.code(), Code::NotFound);

    let customer_id = customer(suite, 41_001, true).await;
    let mut refused = None;
    for _ in 0..credit_e2e_tests::POLLS {
        match propose(&mut limits, &customer_id, "").await {
            // Limits learns of the customer from intake's events, a moment later.
            Err(status) if status.code() == Code::NotFound => {
                tokio::time::sleep(Duration::from_millis(25)).await;
            }
            other => {
                refused = Some(other.unwrap_err());
                break;
            }
        }
    }
    let refused = refused.expect("limits learned of the customer");
    assert_eq!(refused.code(), Code::FailedPrecondition, "{refused:?}");
    assert_eq!(reason(&refused), "RATING_REQUIRED");

    let bad_currency = propose(&mut limits, &customer_id, "yuan")
        .await
        .unwrap_err();
    assert_eq!(bad_currency.code(), Code::InvalidArgument);
}

pub async fn a_rated_customer_without_a_statement_gets_the_grade_cap(suite: &TestSuite) {
    let mut limits = analyst(suite).await;
    let customer_id = customer(suite, 41_002, true).await;
    rate(suite, &customer_id, "BBB").await;
    let proposal = proposal_once(&mut limits, &customer_id, |_| true).await;
    assert_eq!(proposal.grade, "BBB");
    assert_eq!(proposal.rating_id, format!("rat-{customer_id}"));
    assert_eq!(proposal.statement_id, "");
    assert_eq!(proposal.current_limit, None);
    assert_eq!(
        shown(&proposal.proposed_amount).as_deref(),
        Some("10000000.00 CNY")
    );
    assert_eq!(proposal.components.len(), 3);
    assert_eq!(binding(&proposal), [Kind::GradeCap]);
    let cap = component(&proposal, Kind::GradeCap);
    assert_eq!(shown(&cap.basis).as_deref(), Some("10000000.00 CNY"));
    assert_eq!(cap.factor, "");
    assert_eq!(
        cap.explanation,
        "maximum limit of grade BBB: 10,000,000.00 CNY"
    );
    for (kind, factor) in [(Kind::EquityShare, "20"), (Kind::RevenueMultiple, "1.5")] {
        let missing = component(&proposal, kind);
        assert_eq!(missing.amount, None, "{missing:?}");
        assert_eq!(missing.factor, factor);
        assert!(
            missing.explanation.contains("no financial statement"),
            "{missing:?}"
        );
    }

    // The current limit is shown for comparison, and its currency is the proposal's.
    grant(
        suite,
        scope_of_customer(&customer_id),
        "2000000.00",
        "prop-lim",
    )
    .await;
    let with_limit = proposal_once(&mut limits, &customer_id, |proposal| {
        proposal.current_limit.is_some()
    })
    .await;
    assert_eq!(
        shown(&with_limit.current_limit).as_deref(),
        Some("2000000.00 CNY")
    );
    assert_eq!(with_limit.proposed_amount, proposal.proposed_amount);

    // In USD the cap needs a rate: without one nothing is computable and nothing proposed;
    // with 1 CNY = 0.14 USD the cap is 1,400,000.00 USD.
    let without_rate = propose(&mut limits, &customer_id, "USD").await.unwrap();
    assert_eq!(without_rate.proposed_amount, None);
    let cap = component(&without_rate, Kind::GradeCap);
    assert_eq!(cap.amount, None);
    assert!(cap.explanation.contains("no FX rate converts"), "{cap:?}");
    suite
        .limits(&suite.admin_token)
        .set_fx_rate(pb::SetFxRateRequest {
            request_id: "prop-fx".into(),
            fx_rate: Some(pb::FxRate {
                base_currency: "CNY".into(),
                quote_currency: "USD".into(),
                rate: "0.14".into(),
                ..Default::default()
            }),
        })
        .await
        .unwrap();
    let in_usd = propose(&mut limits, &customer_id, "USD").await.unwrap();
    assert_eq!(
        shown(&in_usd.proposed_amount).as_deref(),
        Some("1400000.00 USD")
    );
    assert_eq!(
        component(&in_usd, Kind::GradeCap).explanation,
        "maximum limit of grade BBB: 1,400,000.00 USD (10,000,000.00 CNY at 1 CNY = 0.14 USD)"
    );
}

pub async fn the_equity_share_binds_when_equity_is_small(suite: &TestSuite) {
    let mut limits = analyst(suite).await;
    let customer_id = customer(suite, 41_003, true).await;
    rate(suite, &customer_id, "BBB").await;
    // By hand: 20 % of equity 500,000.00 = 100,000.00; revenue 2,400,000.00 / 12 =
    // 200,000.00 a month, x 1.5 = 300,000.00; the BBB cap is 10,000,000.00. The minimum is
    // the equity share.
    let statement_id = submit_statement(
        suite,
        &customer_id,
        "prop-fs-1",
        Period::Annual(2025),
        "500000.00",
        "2400000.00",
    )
    .await;
    let proposal = proposal_once(&mut limits, &customer_id, |proposal| {
        proposal.statement_id == statement_id
    })
    .await;
    assert_eq!(
        shown(&proposal.proposed_amount).as_deref(),
        Some("100000.00 CNY")
    );
    assert_eq!(binding(&proposal), [Kind::EquityShare]);
    let equity = component(&proposal, Kind::EquityShare);
    assert_eq!(shown(&equity.basis).as_deref(), Some("500000.00 CNY"));
    assert_eq!(equity.factor, "20");
    assert_eq!(equity.explanation, "20 % of equity 500,000.00 CNY");
    let revenue = component(&proposal, Kind::RevenueMultiple);
    assert_eq!(shown(&revenue.amount).as_deref(), Some("300000.00 CNY"));
    assert_eq!(shown(&revenue.basis).as_deref(), Some("200000.00 CNY"));
    assert_eq!(
        revenue.explanation,
        "1.5 x average monthly revenue 200,000.00 CNY: revenue 2,400,000.00 CNY / 12 months to 2025-12-31"
    );
    assert_eq!(
        shown(&component(&proposal, Kind::GradeCap).amount).as_deref(),
        Some("10000000.00 CNY")
    );
}

pub async fn the_revenue_multiple_binds_when_revenue_is_small(suite: &TestSuite) {
    let mut limits = analyst(suite).await;
    let customer_id = customer(suite, 41_004, true).await;
    rate(suite, &customer_id, "BBB").await;
    let annual = submit_statement(
        suite,
        &customer_id,
        "prop-fs-fy",
        Period::Annual(2025),
        "500000.00",
        "2400000.00",
    )
    .await;
    proposal_once(&mut limits, &customer_id, |proposal| {
        proposal.statement_id == annual
    })
    .await;

    // A later period replaces the annual statement. By hand: revenue 100,000.00 over a
    // quarter = 33,333.33 a month (rounded half-even), x 1.5 = 49,999.995 → 50,000.00
    // (half-even: 49,999.99 is odd). 20 % of equity 4,000,000.00 = 800,000.00.
    let quarter = submit_statement(
        suite,
        &customer_id,
        "prop-fs-q3",
        Period::Quarter(2026, 3),
        "4000000.00",
        "100000.00",
    )
    .await;
    let proposal = proposal_once(&mut limits, &customer_id, |proposal| {
        proposal.statement_id == quarter
    })
    .await;
    assert_eq!(
        shown(&proposal.proposed_amount).as_deref(),
        Some("50000.00 CNY")
    );
    assert_eq!(binding(&proposal), [Kind::RevenueMultiple]);
    let revenue = component(&proposal, Kind::RevenueMultiple);
    assert_eq!(shown(&revenue.basis).as_deref(), Some("33333.33 CNY"));
    assert_eq!(revenue.factor, "1.5");
    assert_eq!(
        revenue.explanation,
        "1.5 x average monthly revenue 33,333.33 CNY: revenue 100,000.00 CNY / 3 months to 2026-09-30"
    );
    assert_eq!(
        shown(&component(&proposal, Kind::EquityShare).amount).as_deref(),
        Some("800000.00 CNY")
    );

    // A corrected version of the quarter replaces it: 300,000.00 / 3 = 100,000.00 x 1.5 =
    // 150,000.00, still below the equity share.
    let corrected = submit_statement(
        suite,
        &customer_id,
        "prop-fs-q3-v2",
        Period::Quarter(2026, 3),
        "4000000.00",
        "300000.00",
    )
    .await;
    let proposal = proposal_once(&mut limits, &customer_id, |proposal| {
        proposal.statement_id == corrected
    })
    .await;
    assert_eq!(
        shown(&proposal.proposed_amount).as_deref(),
        Some("150000.00 CNY")
    );
    assert_eq!(binding(&proposal), [Kind::RevenueMultiple]);
}

pub async fn negative_equity_takes_no_part_in_the_proposal(suite: &TestSuite) {
    let mut limits = analyst(suite).await;
    let customer_id = customer(suite, 41_005, true).await;
    rate(suite, &customer_id, "BBB").await;
    // Equity -300,000.00: no share of it. Revenue 2,400,000.00 / 12 x 1.5 = 300,000.00 binds.
    let statement_id = submit_statement(
        suite,
        &customer_id,
        "prop-fs-neg",
        Period::Annual(2025),
        "-300000.00",
        "2400000.00",
    )
    .await;
    let proposal = proposal_once(&mut limits, &customer_id, |proposal| {
        proposal.statement_id == statement_id
    })
    .await;
    let equity = component(&proposal, Kind::EquityShare);
    assert_eq!(equity.amount, None);
    assert!(!equity.binding);
    assert_eq!(shown(&equity.basis).as_deref(), Some("-300000.00 CNY"));
    assert_eq!(
        equity.explanation,
        "not computable: equity -300,000.00 CNY is not positive, so there is no share of it to lend against"
    );
    assert_eq!(
        shown(&proposal.proposed_amount).as_deref(),
        Some("300000.00 CNY")
    );
    assert_eq!(binding(&proposal), [Kind::RevenueMultiple]);
}

pub async fn only_makers_may_ask_for_a_proposal(suite: &TestSuite) {
    let customer_id = customer(suite, 41_006, true).await;
    rate(suite, &customer_id, "BBB").await;
    for (name, role) in [("erp", Role::OrderEntry), ("col", Role::Collector)] {
        let mut outsider = suite.limits(&suite.issue_token(name, &[role]).await);
        let denied = propose(&mut outsider, &customer_id, "").await.unwrap_err();
        assert_eq!(denied.code(), Code::PermissionDenied, "{role:?}");
    }
    let mut manager = suite.limits(&suite.issue_token("sen", &[Role::CreditManager]).await);
    let proposal = proposal_once(&mut manager, &customer_id, |_| true).await;
    assert_eq!(binding(&proposal), [Kind::GradeCap]);
}
