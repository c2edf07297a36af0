//! The security register (issue #24): deposits, guarantees and credit insurance registered by
//! a maker and checked by a second person, counted by Authorize and CheckCredit as secured
//! exposure and extra capacity when the grade's policy says so, a guarantee counted as its
//! guarantor's contingent exposure, and the expiry that takes it away again.

use std::time::{Duration, SystemTime};

use credit_core::Role;
use credit_e2e_tests::TestSuite;
use credit_proto::v1 as pb;
use credit_proto::v1::event::Payload;
use rust_decimal::Decimal;
use tonic::Code;

use crate::approvals::{decide_step, queue};
use crate::authorize::{
    Limits, amount, authorize, check, codes, customer, exposure, grant, scope_of_customer,
    wait_until_approvable,
};
use crate::intake::violated_fields;
use crate::limits::reason;

fn cny(amount: &str) -> Option<pb::Money> {
    Some(pb::Money {
        amount: amount.into(),
        currency: "CNY".into(),
    })
}

fn date(days_from_today: i64) -> pb::Date {
    use chrono::Datelike;
    let day = chrono::Utc::now().date_naive() + chrono::Duration::days(days_from_today);
    pb::Date {
        year: day.year(),
        month: i32::try_from(day.month()).unwrap(),
        day: i32::try_from(day.day()).unwrap(),
    }
}

fn whole(units: i64) -> Decimal {
    Decimal::new(units, 0)
}

/// The maker (an analyst) and the checker (a credit manager) of securities.
async fn maker_and_checker(suite: &TestSuite) -> (Limits, String) {
    let maker = suite.limits(&suite.issue_token("ana", &[Role::Analyst]).await);
    let checker = suite.issue_token("sen", &[Role::CreditManager]).await;
    (maker, checker)
}

async fn register(
    maker: &mut Limits,
    request_id: &str,
    security: pb::Security,
) -> Result<pb::Security, tonic::Status> {
    Ok(maker
        .register_security(pb::RegisterSecurityRequest {
            request_id: request_id.into(),
            security: Some(security),
            reason: "security for the credit line".into(),
        })
        .await?
        .into_inner()
        .security
        .unwrap())
}

/// Registers `security` and has the checker approve it; the security as approved.
async fn register_approved(
    suite: &TestSuite,
    maker: &mut Limits,
    checker: &str,
    request_id: &str,
    security: pb::Security,
) -> pb::Security {
    let pending = register(maker, request_id, security).await.unwrap();
    assert_eq!(pending.status(), pb::SecurityStatus::Pending);
    let task = decide_step(
        &mut suite.approvals(checker),
        pb::DecisionKind::SecurityChange,
        &format!("{request_id}-check"),
        &pending.security_id,
        0,
        pb::ApprovalVerdict::Approve,
        "original seen and filed",
    )
    .await
    .unwrap();
    assert_eq!(
        task.chain.unwrap().status(),
        pb::ApprovalChainStatus::Approved
    );
    let approved = get(maker, &pending.security_id).await;
    assert_eq!(approved.status(), pb::SecurityStatus::Active);
    approved
}

async fn get(limits: &mut Limits, security_id: &str) -> pb::Security {
    limits
        .get_security(pb::GetSecurityRequest {
            security_id: security_id.into(),
        })
        .await
        .unwrap()
        .into_inner()
        .security
        .unwrap()
}

fn deposit(customer_id: &str, amount: &str) -> pb::Security {
    pb::Security {
        customer_id: customer_id.into(),
        kind: pb::SecurityKind::Deposit as i32,
        amount: cny(amount),
        provider: "cash deposit, receipt 2026-118".into(),
        reference: "DEP-118".into(),
        ..Default::default()
    }
}

fn insurance(customer_id: &str) -> pb::Security {
    pb::Security {
        customer_id: customer_id.into(),
        kind: pb::SecurityKind::CreditInsurance as i32,
        // Insured limit 40,000, deductible 10,000, 90 % covered: counts 27,000.
        amount: cny("40000.00"),
        deductible: cny("10000.00"),
        share_covered_percent: "90".into(),
        provider: "Sinosure".into(),
        reference: "POL-7781".into(),
        valid_until: Some(date(365)),
        ..Default::default()
    }
}

fn secured(response_position: &Option<pb::SecuredPosition>) -> &pb::SecuredPosition {
    response_position.as_ref().expect("a secured position")
}

pub async fn a_deposit_and_insurance_raise_what_authorize_approves_when_the_policy_says_so(
    suite: &TestSuite,
) {
    let mut orders = suite.limits(&suite.issue_token("erp", &[Role::OrderEntry]).await);
    let customer_id = customer(suite, 24_001, true).await;
    grant(
        suite,
        scope_of_customer(&customer_id),
        "100000.00",
        "sec-lim-1",
    )
    .await;
    wait_until_approvable(&mut orders, &customer_id, "1.00").await;
    let before = check(&mut orders, &customer_id, "150000.00").await;
    assert_eq!(codes(&before.reasons), ["LIMIT_EXCEEDED"]);
    assert_eq!(
        amount(&secured(&before.secured_position).secured_cover),
        whole(0)
    );

    let (mut maker, checker) = maker_and_checker(suite).await;
    let pending = register(&mut maker, "sec-dep-1", deposit(&customer_id, "30000.00"))
        .await
        .unwrap();
    assert_eq!(pending.status(), pb::SecurityStatus::Pending);
    assert_eq!(amount(&pending.eligible_value), whole(30_000));
    // Nothing counts before a second person checked it, and the maker may not.
    let unchecked = check(&mut orders, &customer_id, "150000.00").await;
    assert_eq!(codes(&unchecked.reasons), ["LIMIT_EXCEEDED"]);
    let own = decide_step(
        &mut suite.approvals(&suite.issue_token("ana", &[Role::Analyst]).await),
        pb::DecisionKind::SecurityChange,
        "sec-dep-1-self",
        &pending.security_id,
        0,
        pb::ApprovalVerdict::Approve,
        "my own",
    )
    .await
    .unwrap_err();
    assert_eq!(own.code(), Code::PermissionDenied);
    let waiting = queue(
        &mut suite.approvals(&checker),
        pb::DecisionKind::SecurityChange,
        false,
    )
    .await;
    assert!(
        waiting
            .iter()
            .any(|task| task.record_id == pending.security_id && task.summary.contains("deposit")),
        "{waiting:?}"
    );
    decide_step(
        &mut suite.approvals(&checker),
        pb::DecisionKind::SecurityChange,
        "sec-dep-1-check",
        &pending.security_id,
        0,
        pb::ApprovalVerdict::Approve,
        "receipt seen",
    )
    .await
    .unwrap();
    let policy = register_approved(
        suite,
        &mut maker,
        &checker,
        "sec-ins-1",
        insurance(&customer_id),
    )
    .await;
    assert_eq!(amount(&policy.eligible_value), whole(27_000));

    // Capacity 100,000 + 30,000 + 27,000 = 157,000.
    let what_if = check(&mut orders, &customer_id, "150000.00").await;
    assert_eq!(
        what_if.decision(),
        pb::AuthorizationDecision::Approved,
        "{:?}",
        what_if.reasons
    );
    let position = secured(&what_if.secured_position);
    assert_eq!(amount(&position.secured_cover), whole(57_000));
    assert_eq!(amount(&position.capacity), whole(157_000));
    assert!(position.extends_capacity);

    let approved = authorize(&mut orders, &customer_id, "sec-o-1", "150000.00")
        .await
        .unwrap();
    assert_eq!(approved.decision(), pb::AuthorizationDecision::Approved);
    assert_eq!(amount(&approved.exposure), whole(150_000));
    assert_eq!(amount(&approved.available), whole(7_000));
    let position = secured(&approved.secured_position);
    assert_eq!(amount(&position.secured_exposure), whole(57_000));
    assert_eq!(amount(&position.unsecured_exposure), whole(93_000));
    let over = authorize(&mut orders, &customer_id, "sec-o-2", "7000.01")
        .await
        .unwrap();
    assert_eq!(codes(&over.reasons), ["LIMIT_EXCEEDED"]);
    assert_eq!(over.reasons[0].metadata["capacity"], "157000.00");

    let shown = exposure(&mut orders, scope_of_customer(&customer_id)).await;
    let position = secured(&shown.secured_position);
    assert_eq!(amount(&position.secured_exposure), whole(57_000));
    assert_eq!(amount(&position.unsecured_exposure), whole(93_000));
    assert_eq!(amount(&shown.available), whole(7_000));

    // A policy where security only lowers the loss: the limit alone binds again, the
    // security is still reported.
    let mut admin = suite.limits(&suite.admin_token);
    let mut changed = crate::policy::policy(&mut admin).await;
    changed.default_grade_policy.as_mut().unwrap().security_use =
        pb::SecurityUse::LowersLossOnly as i32;
    crate::policy::change_policy(suite, changed, &["default_grade_policy"]).await;
    let mut limited = None;
    for _ in 0..credit_e2e_tests::POLLS {
        let answer = check(&mut orders, &customer_id, "1.00").await;
        if answer.decision() != pb::AuthorizationDecision::Approved {
            limited = Some(answer);
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let limited = limited.expect("the policy change reached the cache");
    assert_eq!(codes(&limited.reasons), ["LIMIT_EXCEEDED"]);
    let position = secured(&limited.secured_position);
    assert!(!position.extends_capacity);
    assert_eq!(amount(&position.secured_cover), whole(57_000));
    assert_eq!(amount(&position.capacity), whole(100_000));
}

pub async fn a_guarantee_is_the_guarantors_contingent_exposure_until_it_expires(suite: &TestSuite) {
    let mut orders = suite.limits(&suite.issue_token("erp", &[Role::OrderEntry]).await);
    let debtor = customer(suite, 24_011, true).await;
    let guarantor = customer(suite, 24_012, true).await;
    grant(suite, scope_of_customer(&debtor), "100000.00", "sec-lim-d").await;
    grant(
        suite,
        scope_of_customer(&guarantor),
        "200000.00",
        "sec-lim-g",
    )
    .await;
    wait_until_approvable(&mut orders, &debtor, "1.00").await;
    wait_until_approvable(&mut orders, &guarantor, "1.00").await;

    let (mut maker, checker) = maker_and_checker(suite).await;
    let guarantee = register_approved(
        suite,
        &mut maker,
        &checker,
        "sec-gtee-1",
        pb::Security {
            customer_id: debtor.clone(),
            kind: pb::SecurityKind::ThirdPartyGuarantee as i32,
            amount: cny("80000.00"),
            guarantor_customer_id: guarantor.clone(),
            provider: "parent company guarantee".into(),
            reference: "GTEE-1".into(),
            valid_until: Some(date(10)),
            ..Default::default()
        },
    )
    .await;

    // The debtor may buy up to 180,000; the guarantor has 80,000 less to use.
    let debtor_check = check(&mut orders, &debtor, "180000.00").await;
    assert_eq!(debtor_check.decision(), pb::AuthorizationDecision::Approved);
    let shown = exposure(&mut orders, scope_of_customer(&guarantor)).await;
    assert_eq!(
        amount(&secured(&shown.secured_position).contingent_exposure),
        whole(80_000)
    );
    assert_eq!(amount(&shown.available), whole(120_000));
    let guarantor_check = check(&mut orders, &guarantor, "120000.01").await;
    assert_eq!(codes(&guarantor_check.reasons), ["LIMIT_EXCEEDED"]);
    assert_eq!(
        guarantor_check.reasons[0].metadata["contingent_exposure"],
        "80000.00"
    );
    let given = maker
        .list_securities(pb::ListSecuritiesRequest {
            guarantor_customer_id: guarantor.clone(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .securities;
    assert_eq!(
        given
            .iter()
            .map(|security| security.security_id.as_str())
            .collect::<Vec<_>>(),
        [guarantee.security_id.as_str()]
    );

    // Past its last day the sweep ends it: the capacity falls back, the guarantor is free,
    // and SecurityChanged says so.
    suite
        .expire_holds_at(SystemTime::now() + Duration::from_secs(12 * 86_400))
        .await;
    assert_eq!(
        get(&mut maker, &guarantee.security_id).await.status(),
        pb::SecurityStatus::Expired
    );
    let after = check(&mut orders, &debtor, "180000.00").await;
    assert_eq!(codes(&after.reasons), ["LIMIT_EXCEEDED"]);
    assert_eq!(
        amount(&secured(&after.secured_position).capacity),
        whole(100_000)
    );
    let freed = check(&mut orders, &guarantor, "200000.00").await;
    assert_eq!(freed.decision(), pb::AuthorizationDecision::Approved);
    let expired: Vec<pb::SecurityChanged> = suite
        .outbox_events(&credit_limits::STORE)
        .await
        .into_iter()
        .filter_map(|event| match event.payload {
            Some(Payload::SecurityChanged(changed)) => Some(changed),
            _ => None,
        })
        .filter(|changed| changed.security_id == guarantee.security_id)
        .collect();
    assert_eq!(
        expired
            .iter()
            .map(|changed| changed.change.as_str())
            .collect::<Vec<_>>(),
        ["REGISTERED", "EXPIRED"]
    );
    assert_eq!(expired[1].guarantor_customer_id, guarantor);
    assert_eq!(amount(&expired[1].eligible_value), whole(0));
}

pub async fn securities_are_checked_released_and_revalued_with_four_eyes(suite: &TestSuite) {
    let customer_id = customer(suite, 24_021, true).await;
    let (mut maker, checker) = maker_and_checker(suite).await;
    wait_known(&mut maker, &customer_id).await;

    // Bad input names every field and writes nothing.
    let refused = register(
        &mut maker,
        "sec-bad-1",
        pb::Security {
            customer_id: customer_id.clone(),
            kind: pb::SecurityKind::Pledge as i32,
            amount: cny("-5"),
            haircut_percent: "150".into(),
            ..Default::default()
        },
    )
    .await
    .unwrap_err();
    assert_eq!(refused.code(), Code::InvalidArgument);
    let fields = violated_fields(&refused);
    for field in [
        "security.amount",
        "security.haircut_percent",
        "security.provider",
        "security.valuation_date",
    ] {
        assert!(
            fields.iter().any(|named| named == field),
            "{field} in {fields:?}"
        );
    }
    let unknown = register(&mut maker, "sec-bad-2", deposit("nobody", "10.00"))
        .await
        .unwrap_err();
    assert_eq!(unknown.code(), Code::NotFound);
    let listed = maker
        .list_securities(pb::ListSecuritiesRequest {
            customer_id: customer_id.clone(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .securities;
    assert!(listed.is_empty(), "{listed:?}");

    // A pledge valued at 200,000 with a 40 % haircut counts 120,000.
    let pledge = register_approved(
        suite,
        &mut maker,
        &checker,
        "sec-pledge-1",
        pb::Security {
            customer_id: customer_id.clone(),
            kind: pb::SecurityKind::Pledge as i32,
            amount: cny("200000.00"),
            haircut_percent: "40".into(),
            valuation_date: Some(date(-3)),
            provider: "steel coils in bonded warehouse 3".into(),
            reference: "PLG-3".into(),
            ..Default::default()
        },
    )
    .await;
    assert_eq!(amount(&pledge.eligible_value), whole(120_000));

    // A lower valuation applies at once; a higher one waits for the checker.
    let change = |request_id: &str, action: pb::SecurityChangeAction, value: Option<&str>| {
        pb::ChangeSecurityRequest {
            request_id: request_id.into(),
            security_id: pledge.security_id.clone(),
            action: action as i32,
            new_amount: value.and_then(cny),
            valuation_date: None,
            reason: "market price".into(),
        }
    };
    let lower = maker
        .change_security(change(
            "sec-rev-1",
            pb::SecurityChangeAction::Revalue,
            Some("150000.00"),
        ))
        .await
        .unwrap()
        .into_inner()
        .security
        .unwrap();
    assert_eq!(amount(&lower.eligible_value), whole(90_000));
    assert!(lower.pending_change.is_none());
    assert_eq!(lower.valuations.len(), 2);
    let higher = maker
        .change_security(change(
            "sec-rev-2",
            pb::SecurityChangeAction::Revalue,
            Some("180000.00"),
        ))
        .await
        .unwrap()
        .into_inner()
        .security
        .unwrap();
    assert_eq!(
        amount(&higher.eligible_value),
        whole(90_000),
        "not before approval"
    );
    assert!(higher.pending_change.is_some());
    let busy = maker
        .change_security(change("sec-rel-0", pb::SecurityChangeAction::Release, None))
        .await
        .unwrap_err();
    assert_eq!(reason(&busy), "SECURITY_CHANGE_PENDING");
    decide_step(
        &mut suite.approvals(&checker),
        pb::DecisionKind::SecurityChange,
        "sec-rev-2-check",
        &pledge.security_id,
        0,
        pb::ApprovalVerdict::Approve,
        "appraisal seen",
    )
    .await
    .unwrap();
    assert_eq!(
        amount(&get(&mut maker, &pledge.security_id).await.eligible_value),
        whole(108_000)
    );

    // A release is checked too; rejected, the pledge stays.
    let release = maker
        .change_security(change("sec-rel-1", pb::SecurityChangeAction::Release, None))
        .await
        .unwrap()
        .into_inner()
        .security
        .unwrap();
    assert_eq!(release.status(), pb::SecurityStatus::Active);
    decide_step(
        &mut suite.approvals(&checker),
        pb::DecisionKind::SecurityChange,
        "sec-rel-1-check",
        &pledge.security_id,
        0,
        pb::ApprovalVerdict::Reject,
        "debt still open",
    )
    .await
    .unwrap();
    let kept = get(&mut maker, &pledge.security_id).await;
    assert_eq!(kept.status(), pb::SecurityStatus::Active);
    assert_eq!(kept.decided_changes.len(), 3);
}

/// Waits until limits knows the customer (from intake's event).
async fn wait_known(limits: &mut Limits, customer_id: &str) {
    for _ in 0..credit_e2e_tests::POLLS {
        if limits
            .get_exposure(pb::GetExposureRequest {
                scope: scope_of_customer(customer_id),
            })
            .await
            .is_ok()
        {
            return;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("limits never learned of {customer_id}");
}

async fn quote(
    limits: &mut Limits,
    customer_id: &str,
    amount: &str,
    days_financed: i32,
) -> Result<pb::QuoteCreditPriceResponse, tonic::Status> {
    Ok(limits
        .quote_credit_price(pb::QuoteCreditPriceRequest {
            customer_id: customer_id.into(),
            amount: cny(amount),
            days_financed,
        })
        .await?
        .into_inner())
}

fn component<'a>(quote: &'a pb::QuoteCreditPriceResponse, code: &str) -> &'a pb::PriceComponent {
    quote
        .components
        .iter()
        .find(|component| component.code == code)
        .unwrap_or_else(|| panic!("no {code} in {quote:?}"))
}

pub async fn quote_credit_price_reproduces_the_documents_cost_of_funds_by_hand(suite: &TestSuite) {
    let customer_id = customer(suite, 24_031, true).await;
    let mut sales = suite.limits(&suite.issue_token("sam", &[Role::Sales]).await);
    suite
        .publish(
            credit_proto::service_names::RATING,
            Payload::RatingChanged(pb::RatingChanged {
                customer_id: customer_id.clone(),
                rating_id: "rat-quote-1".into(),
                grade: "BBB".into(),
                pd: "0.02".into(),
                next_review_date: Some(date(300)),
                ..Default::default()
            }),
        )
        .await;
    let mut rated = None;
    for _ in 0..credit_e2e_tests::POLLS {
        if let Ok(answer) = quote(&mut sales, &customer_id, "100000.00", 365).await
            && answer.grade == "BBB"
        {
            rated = Some(answer);
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    let year = rated.expect("limits learned the rating");

    // The documents: with an average cost of funds of 8.2 %, a credit customer's price is at
    // least 8.2 % above the cash price for a year of credit. By hand, on 100,000 CNY:
    //   financing     100,000 × 8.2 % × 365/365        = 8,200.00
    //   expected loss 100,000 × PD 2 % × LGD 45 %      =   900.00
    //   risk margin   100,000 × 1 % (BBB's margin)      = 1,000.00
    let financing = component(&year, "FINANCING");
    assert_eq!(amount(&financing.amount), whole(8_200));
    assert_eq!(financing.percent_of_price, "8.2000");
    assert!(
        financing.explanation.contains("8.2% a year"),
        "{}",
        financing.explanation
    );
    assert_eq!(
        amount(&component(&year, "EXPECTED_LOSS").amount),
        whole(900)
    );
    assert_eq!(
        amount(&component(&year, "RISK_MARGIN").amount),
        whole(1_000)
    );
    assert_eq!(amount(&year.minimum_surcharge), whole(10_100));
    assert_eq!(year.minimum_surcharge_percent, "10.1000");
    assert_eq!(amount(&year.minimum_credit_price), whole(110_100));
    assert_eq!(
        (year.pd_percent.as_str(), year.lgd_percent.as_str()),
        ("2", "45")
    );

    // Without days, the customer's terms: BBB is net 30, so 100,000 × 8.2 % × 30/365.
    let month = quote(&mut sales, &customer_id, "100000.00", 0)
        .await
        .unwrap();
    assert_eq!(month.days_financed, 30);
    assert_eq!(
        amount(&component(&month, "FINANCING").amount),
        Decimal::new(67_397, 2)
    );

    // A deposit covering 60 % of the exposure leaves 40 % of the 45 % LGD: 18 %.
    let (mut maker, checker) = maker_and_checker(suite).await;
    register_approved(
        suite,
        &mut maker,
        &checker,
        "sec-quote-dep",
        deposit(&customer_id, "60000.00"),
    )
    .await;
    let secured_quote = quote(&mut sales, &customer_id, "100000.00", 365)
        .await
        .unwrap();
    assert_eq!(secured_quote.lgd_percent, "18");
    assert_eq!(
        amount(&component(&secured_quote, "EXPECTED_LOSS").amount),
        whole(360)
    );
    assert_eq!(amount(&secured_quote.secured_cover), whole(60_000));

    let refused = sales
        .quote_credit_price(pb::QuoteCreditPriceRequest {
            customer_id: customer_id.clone(),
            amount: None,
            days_financed: -3,
        })
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::InvalidArgument);
    let fields = violated_fields(&refused);
    assert_eq!(fields, ["amount", "days_financed"]);
}
