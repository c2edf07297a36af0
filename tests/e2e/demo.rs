//! `credit-suite demo` on both backends: the scripted order-to-cash story runs against the
//! suite, first with the cast it issues itself, then again on the same suite with a maker's
//! (the ADMIN) and a checker's token; the figures and the printed steps are checked.

use credit_core::Role;
use credit_core::error::ErrorChain;
use credit_e2e_tests::TestSuite;
use credit_proto::v1::AuthorizationDecision::{Approved, Referred};
use credit_suite::demo::{DemoCast, DemoSummary, DunningOutcome};
use rust_decimal::Decimal;
use secrecy::SecretString;

/// Every step the story prints, in order.
const STEPS: [&str; 21] = [
    "register customer",
    "financial statement",
    "bureau and trade ref",
    "investigation",
    "rate",
    "propose limit",
    "limit request",
    "limit approval",
    "order within limit",
    "order over limit",
    "referral release",
    "order far beyond",
    "invoice",
    "partial payment",
    "overdue invoice",
    "overdue detection",
    "blocked",
    "order while blocked",
    "dunning",
    "payment of the rest",
    "order after payment",
];

async fn run_demo(suite: &TestSuite, cast: &DemoCast) -> (DemoSummary, String) {
    let mut out = Vec::new();
    let outcome = credit_suite::demo::run(suite.channel.clone(), cast, &mut out).await;
    let text = String::from_utf8(out).unwrap();
    match outcome {
        Ok(summary) => (summary, text),
        Err(error) => panic!("the demo failed: {}\n{text}", ErrorChain(&error)),
    }
}

fn check_story(summary: &DemoSummary, text: &str) {
    // Three orders: within the limit, over it within the 10 % band (released by the checker),
    // far beyond it: the demo customer's grade refers that to step 7.2, where finance verifies
    // and the general manager refuses to trade beyond the terms without a deposit.
    let decisions: Vec<_> = summary.orders.iter().map(|order| order.decision).collect();
    assert_eq!(decisions, [Approved, Referred, Referred], "{text}");
    assert!(
        text.contains("approval chain (rule referral-large-overshoot)"),
        "{text}"
    );
    assert!(!summary.orders[2].released);
    assert!(!summary.orders[0].released && summary.orders[1].released);
    assert_eq!(summary.orders[1].reasons, ["LIMIT_EXCEEDED"]);
    assert_eq!(summary.orders[2].reasons, ["LIMIT_EXCEEDED"]);
    assert!(summary.limit > Decimal::ZERO);
    assert_eq!(
        summary.orders[0].amount,
        (summary.limit * Decimal::new(60, 2)).round_dp(2)
    );
    // Blocked while an invoice is 45 days overdue, unblocked once everything is paid.
    assert_eq!(summary.oldest_overdue_days, 45);
    assert_eq!(summary.blocked_order.decision, Referred);
    assert!(
        summary
            .blocked_order
            .reasons
            .contains(&"CREDIT_BLOCK".to_owned())
            && summary
                .blocked_order
                .reasons
                .contains(&"OVERDUE".to_owned()),
        "{:?}",
        summary.blocked_order.reasons
    );
    assert_eq!(summary.final_order.decision, Approved);
    assert!(summary.final_order.reasons.is_empty());
    // Exposure = open holds + open receivables: the last order's hold and the referrals the
    // system released once paid, nothing owed.
    assert_eq!(
        summary.exposure,
        summary.open_holds + summary.open_receivables
    );
    assert_eq!(
        summary.open_holds,
        summary.final_order.amount + summary.released_by_system
    );
    assert_eq!(summary.open_receivables, Decimal::ZERO);
    assert_eq!(
        summary.available,
        Some(summary.limit - summary.final_order.amount - summary.released_by_system)
    );
    // The shipped dunning policy calls at 30 days past due: the invoice 45 days overdue gets
    // the phone call (the lower levels, skipped, are never created later).
    assert_eq!(
        summary.dunning,
        DunningOutcome::Ran { actions: 1 },
        "{text}"
    );
    assert!(text.contains("1 dunning actions created"), "{text}");
    assert!(text.contains("level 3 by PHONE"), "{text}");

    let mut lines = text.lines();
    for (number, step) in STEPS.iter().enumerate() {
        let label = format!("{:>2}. {step}", number + 1);
        assert!(
            lines.any(|line| line.starts_with(&label)),
            "step '{label}' missing or out of order:\n{text}"
        );
    }
    for figure in [
        summary.customer_id.as_str(),
        summary.grade.as_str(),
        "APPROVED, hold hld_",
        "REFERRED, referral ref_",
        "refer_beyond_tolerance true",
        "within_tolerance true",
        "within_tolerance false",
        "oldest overdue 45 days",
        "OVERDUE",
        "unblocked",
        "story complete",
    ] {
        assert!(text.contains(figure), "'{figure}' missing:\n{text}");
    }
}

pub async fn the_order_to_cash_story_runs_with_four_eyes_and_twice(suite: &TestSuite) {
    // The cast the command issues for itself: four principals, revoked at the end.
    let store = credit_suite::open_token_store(&suite.settings)
        .await
        .unwrap();
    let cast = DemoCast::issue(store.as_ref()).await.unwrap();
    let (first, text) = run_demo(suite, &cast).await;
    cast.revoke(store.as_ref()).await.unwrap();
    check_story(&first, &text);
    assert!(text.contains("approved by demo-manager"), "{text}");
    assert!(text.contains("released by demo-manager"), "{text}");
    // Step 7.2 walked by the cast: finance verifies, the general manager refuses, for the
    // order far beyond the limit and for the order while overdue; nothing left to release.
    assert!(text.contains("step 0 approved by demo-finance"), "{text}");
    assert!(text.contains("step 1 rejected by demo-gm"), "{text}");
    assert_eq!(first.released_by_system, Decimal::ZERO);
    // The override walks the shipped matrix's chain and the credit manager turns it down.
    // The grade proposed from is the one in force then (the story's events re-rated the
    // customer since step 4); the rejection leaves that grade.
    let proposed_from = text
        .split("demo-analyst proposes ")
        .nth(1)
        .and_then(|rest| rest.split(' ').next())
        .unwrap_or_else(|| panic!("no override proposed: {text}"));
    assert!(
        text.contains("chain rating-override, waiting for CREDIT_MANAGER or GENERAL_MANAGER"),
        "{text}"
    );
    assert!(
        text.contains(&format!(
            "rejected by demo-manager: grade {proposed_from} stays in force"
        )),
        "{text}"
    );
    // The policy change: proposed by the credit manager, turned down by the general manager;
    // the policy in force stays.
    assert!(
        text.contains("demo-manager proposes policy version 1: rating_grace_days"),
        "{text}"
    );
    assert!(
        text.contains(
            "rejected by demo-gm: version 1 is rejected in the history; version 0 stays in force"
        ),
        "{text}"
    );

    // Again on the same suite, as --checker-token runs it: the ADMIN makes, a manager checks.
    let checker = suite
        .issue_token_with_authority("mei", &[Role::CreditManager], Some("100000000"))
        .await;
    let cast = DemoCast::from_tokens(
        SecretString::from(suite.admin_token.clone()),
        SecretString::from(checker),
    );
    let (second, text) = run_demo(suite, &cast).await;
    check_story(&second, &text);
    assert_ne!(second.customer_id, first.customer_id);
    assert_ne!(second.run_id, first.run_id);
    assert!(text.contains("approved by mei"), "{text}");
    // Nobody of this cast holds finance's role: the referrals wait, and the system releases
    // them once the payment has cleared their cause.
    assert!(
        text.contains("waits: nobody in this run's cast holds its role"),
        "{text}"
    );
    assert!(second.released_by_system > Decimal::ZERO, "{text}");
    assert!(text.contains("released by the system"), "{text}");
}
