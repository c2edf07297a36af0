use std::collections::BTreeSet;

use chrono::{TimeZone, Utc};
use rust_decimal_macros::dec;

use super::*;

fn person(name: &str, roles: &[Role], authority: Option<i64>) -> Principal {
    Principal {
        id: format!("prn_{name}"),
        person_id: format!("psn_{name}"),
        name: name.to_owned(),
        roles: roles.iter().copied().collect::<BTreeSet<_>>(),
        approval_authority: authority.map(|units| Money::new(Decimal::new(units, 0), cny())),
    }
}

fn cny() -> Currency {
    Currency::parse("CNY").unwrap()
}

fn matrix() -> ApprovalMatrix {
    shipped_matrix(cny())
}

fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 12, 7, 9, 0, 0).unwrap()
}

fn limit_chain(amount: i64) -> Chain {
    let figures = Figures {
        amount: Some(Decimal::new(amount, 0)),
        ..Figures::default()
    };
    let matrix = matrix();
    let rule = matrix
        .chain_rule(DecisionKind::LimitRequest, &figures)
        .unwrap();
    let maker = Actor::of(&person("sales", &[Role::Sales], None));
    Chain::start(
        rule,
        1,
        maker,
        Some(Money::new(Decimal::new(amount, 0), cny())),
    )
}

#[test]
fn the_shipped_matrix_passes_its_own_check() {
    matrix().check().unwrap();
}

#[test]
fn a_small_limit_is_one_step_for_a_credit_manager_and_a_large_one_the_documents_chain() {
    let small = limit_chain(1_000_000);
    assert_eq!(small.rule_id, "limit-delegated");
    assert_eq!(small.steps.len(), 1);
    let large = limit_chain(8_000_000);
    assert_eq!(large.rule_id, "limit-large");
    let roles: Vec<_> = large
        .steps
        .iter()
        .map(|step| step.rule.roles.iter().next().copied().unwrap())
        .collect();
    assert_eq!(
        roles,
        [Role::Finance, Role::Risk, Role::GeneralManager, Role::Board]
    );
    assert!(large.steps[3].rule.inform_only);
}

#[test]
fn beyond_the_grade_maximum_the_whole_chain_decides_whatever_the_amount() {
    let figures = Figures {
        amount: Some(dec!(10)),
        exceeds_grade_max_limit: true,
        ..Figures::default()
    };
    let matrix = matrix();
    let rule = matrix
        .chain_rule(DecisionKind::LimitRequest, &figures)
        .unwrap();
    assert_eq!(rule.rule_id, "limit-beyond-grade-max");
}

#[test]
fn an_override_beyond_two_notches_either_way_is_the_general_managers() {
    let matrix = matrix();
    let rule_for = |notches: Option<u32>| {
        let figures = Figures {
            grade_notches: notches,
            ..Figures::default()
        };
        matrix
            .chain_rule(DecisionKind::RatingOverride, &figures)
            .map(|rule| rule.rule_id.as_str())
    };
    assert_eq!(rule_for(Some(2)), Some("rating-override"));
    assert_eq!(rule_for(Some(3)), Some("rating-override-large"));
    // A move the caller could not count (another scale) is not "more than two".
    assert_eq!(rule_for(None), Some("rating-override"));
}

#[test]
fn the_waiting_step_is_decided_without_naming_it_and_still_by_a_new_person() {
    let mut chain = limit_chain(8_000_000);
    let finance = person("fin", &[Role::Finance], None);
    assert_eq!(
        chain.decide_current(&finance, Verdict::Approve, "sized", now()),
        Ok(Progress::Advanced)
    );
    let finance_as_risk = person("fin", &[Role::Risk], None);
    assert_eq!(
        chain.decide_current(&finance_as_risk, Verdict::Approve, "", now()),
        Err(StepRefused::SamePerson)
    );
    assert_eq!(chain.current_step(), Some(1));
}

#[test]
fn a_waiting_chain_is_withdrawn_once_and_an_ended_one_never() {
    let mut chain = limit_chain(8_000_000);
    let system = Actor::named("system:rating");
    assert!(chain.withdraw(system.clone(), "replaced", now()));
    assert_eq!(chain.status, ChainStatus::Rejected);
    assert_eq!(chain.steps[0].status, StepStatus::Skipped);
    assert_eq!(
        chain.steps[3].status,
        StepStatus::Skipped,
        "nothing to file"
    );
    assert_eq!(chain.trail.last().unwrap().action, TrailAction::Withdraw);
    assert!(!chain.withdraw(system, "again", now()));
    assert_eq!(chain.trail.len(), 1);
    let finance = person("fin", &[Role::Finance], None);
    assert!(matches!(
        chain.decide_current(&finance, Verdict::Approve, "", now()),
        Err(StepRefused::NotPending { .. })
    ));
}

#[test]
fn a_chain_walks_finance_risk_and_the_general_manager_then_files_with_the_board() {
    let mut chain = limit_chain(8_000_000);
    let finance = person("fin", &[Role::Finance], None);
    let risk = person("risk", &[Role::Risk], None);
    let manager = person("gm", &[Role::GeneralManager], Some(10_000_000));
    assert_eq!(chain.waiting_roles(), BTreeSet::from([Role::Finance]));
    assert_eq!(
        chain.decide(&finance, 0, Verdict::Approve, "sized", now()),
        Ok(Progress::Advanced)
    );
    assert_eq!(
        chain.decide(&risk, 1, Verdict::Approve, "", now()),
        Ok(Progress::Advanced)
    );
    assert_eq!(
        chain.waiting_roles(),
        BTreeSet::from([Role::GeneralManager])
    );
    assert_eq!(
        chain.decide(&manager, 2, Verdict::Approve, "go", now()),
        Ok(Progress::Approved)
    );
    assert_eq!(chain.status, ChainStatus::Approved);
    assert_eq!(chain.steps[3].status, StepStatus::Informed);
    assert_eq!(chain.trail.len(), 3);
    assert!(chain.waiting_roles().is_empty());
}

#[test]
fn nobody_decides_two_steps_of_one_chain_nor_a_step_of_their_own_request() {
    let mut chain = limit_chain(8_000_000);
    let both = person("both", &[Role::Finance, Role::Risk], None);
    chain.decide(&both, 0, Verdict::Approve, "", now()).unwrap();
    assert_eq!(
        chain.decide(&both, 1, Verdict::Approve, "", now()),
        Err(StepRefused::SamePerson)
    );
    // The same person under another token is still the same person.
    let mut other_token = both.clone();
    other_token.id = "prn_both_2".into();
    assert_eq!(chain.may_decide(&other_token), Err(StepRefused::SamePerson));

    let mut own = limit_chain(8_000_000);
    let maker_with_finance = person("sales", &[Role::Finance], None);
    assert_eq!(
        own.decide(&maker_with_finance, 0, Verdict::Approve, "", now()),
        Err(StepRefused::SamePerson)
    );
}

#[test]
fn a_step_needs_its_role_and_the_authority_it_names() {
    let mut chain = limit_chain(8_000_000);
    let analyst = person("ana", &[Role::Analyst], None);
    assert!(matches!(
        chain.decide(&analyst, 0, Verdict::Approve, "", now()),
        Err(StepRefused::RoleRequired { .. })
    ));
    chain
        .decide(
            &person("fin", &[Role::Finance], None),
            0,
            Verdict::Approve,
            "",
            now(),
        )
        .unwrap();
    chain
        .decide(
            &person("risk", &[Role::Risk], None),
            1,
            Verdict::Approve,
            "",
            now(),
        )
        .unwrap();
    let small_authority = person("gm", &[Role::GeneralManager], Some(1_000_000));
    assert!(matches!(
        chain.decide(&small_authority, 2, Verdict::Approve, "", now()),
        Err(StepRefused::AuthorityInsufficient { .. })
    ));
    // ADMIN may decide any step, within the same four-eyes rule.
    let admin = person("root", &[Role::Admin], None);
    assert_eq!(
        chain.decide(&admin, 2, Verdict::Approve, "", now()),
        Ok(Progress::Approved)
    );
}

#[test]
fn a_decision_meant_for_one_step_never_lands_on_the_next() {
    let mut chain = limit_chain(8_000_000);
    chain
        .decide(
            &person("fin", &[Role::Finance], None),
            0,
            Verdict::Approve,
            "",
            now(),
        )
        .unwrap();
    let admin = person("root", &[Role::Admin], None);
    assert_eq!(
        chain.decide(&admin, 0, Verdict::Approve, "", now()),
        Err(StepRefused::StepMovedOn {
            asked: 0,
            current: 1
        })
    );
}

#[test]
fn a_rejection_ends_the_chain_and_files_nothing() {
    let mut chain = limit_chain(8_000_000);
    chain
        .decide(
            &person("fin", &[Role::Finance], None),
            0,
            Verdict::Reject,
            "no",
            now(),
        )
        .unwrap();
    assert_eq!(chain.status, ChainStatus::Rejected);
    assert_eq!(chain.steps[3].status, StepStatus::Skipped);
    assert!(matches!(
        chain.decide(
            &person("risk", &[Role::Risk], None),
            1,
            Verdict::Approve,
            "",
            now()
        ),
        Err(StepRefused::NotPending { .. })
    ));
}

#[test]
fn a_returned_request_waits_for_its_maker_and_comes_back_to_the_same_step() {
    let mut chain = limit_chain(8_000_000);
    let finance = person("fin", &[Role::Finance], None);
    chain
        .decide(&finance, 0, Verdict::Approve, "", now())
        .unwrap();
    let risk = person("risk", &[Role::Risk], None);
    assert_eq!(
        chain.decide(
            &risk,
            1,
            Verdict::Return,
            "send the audited statements",
            now()
        ),
        Ok(Progress::Returned)
    );
    assert!(chain.waiting_roles().is_empty());
    assert_eq!(
        chain.resubmit(Actor::of(&risk), 1, "", now()),
        Err(StepRefused::NotTheMaker)
    );
    let maker = person("sales", &[Role::Sales], None);
    chain
        .resubmit(Actor::of(&maker), 1, "attached", now())
        .unwrap();
    assert_eq!(chain.current_step(), Some(1));
    // The one who returned it decides the same step again.
    assert_eq!(
        chain.decide(&risk, 1, Verdict::Approve, "", now()),
        Ok(Progress::Advanced)
    );
    let actions: Vec<_> = chain.trail.iter().map(|entry| entry.action).collect();
    assert_eq!(
        actions,
        [
            TrailAction::Approve,
            TrailAction::Return,
            TrailAction::Resubmit,
            TrailAction::Approve
        ]
    );
}

#[test]
fn a_matrix_without_a_catch_all_for_every_kind_is_refused() {
    let mut matrix = matrix();
    matrix
        .rules
        .retain(|rule| rule.rule_id != "referral-delegated");
    let error = matrix.check().unwrap_err();
    assert!(format!("{error:?}").contains("ORDER_REFERRAL"));

    let mut inform_first = super::shipped_matrix(cny());
    let large = inform_first
        .rules
        .iter_mut()
        .find(|rule| rule.rule_id == "limit-large")
        .unwrap();
    large.steps.rotate_right(1);
    assert!(inform_first.check().is_err());
}

#[test]
fn conditions_on_a_figure_the_decision_lacks_do_not_hold() {
    let conditions = Conditions {
        overshoot_above: Some(dec!(100)),
        ..Conditions::default()
    };
    assert!(!conditions.hold_for(&Figures::default()));
    assert!(conditions.hold_for(&Figures {
        overshoot: Some(dec!(100.01)),
        ..Figures::default()
    }));
    assert!(!conditions.hold_for(&Figures {
        overshoot: Some(dec!(100)),
        ..Figures::default()
    }));
}

#[test]
fn a_chain_reads_back_the_same_from_its_stored_form() {
    let mut chain = limit_chain(8_000_000);
    chain
        .decide(
            &person("fin", &[Role::Finance], None),
            0,
            Verdict::Approve,
            "ok",
            now(),
        )
        .unwrap();
    let stored = serde_json::to_string(&chain).unwrap();
    let read: Chain = serde_json::from_str(&stored).unwrap();
    assert_eq!(read, chain);
}

#[test]
fn a_chain_is_in_the_queue_of_its_step_then_its_maker_then_the_board() {
    let mut chain = limit_chain(8_000_000);
    assert_eq!(chain.audiences(), ["role:FINANCE"]);
    let finance = person("fin", &[Role::Finance], None);
    assert!(audiences_of(&finance, false).contains(&"role:FINANCE".to_owned()));
    chain
        .decide(&finance, 0, Verdict::Return, "which year?", now())
        .unwrap();
    assert_eq!(chain.audiences(), ["person:psn_sales"]);
    let maker = person("sales", &[Role::Sales], None);
    assert!(audiences_of(&maker, false).contains(&"person:psn_sales".to_owned()));
    chain.resubmit(Actor::of(&maker), 0, "2025", now()).unwrap();
    chain
        .decide(&finance, 0, Verdict::Approve, "", now())
        .unwrap();
    chain
        .decide(
            &person("risk", &[Role::Risk], None),
            1,
            Verdict::Approve,
            "",
            now(),
        )
        .unwrap();
    chain
        .decide(
            &person("gm", &[Role::GeneralManager], Some(10_000_000)),
            2,
            Verdict::Approve,
            "",
            now(),
        )
        .unwrap();
    assert_eq!(chain.audiences(), ["informed:BOARD"]);
    let board = person("board", &[Role::Board], None);
    assert!(!audiences_of(&board, false).contains(&"informed:BOARD".to_owned()));
    assert!(audiences_of(&board, true).contains(&"informed:BOARD".to_owned()));
}

#[test]
fn a_step_left_waiting_past_its_deadline_is_put_before_the_credit_department_once() {
    let mut chain = limit_chain(8_000_000);
    let due = chain.escalation_due(now()).unwrap();
    assert_eq!(due, now() + chrono::Duration::hours(48));
    let manager = person("carl", &[Role::CreditManager], Some(10_000_000));
    assert!(matches!(
        chain.may_decide(&manager),
        Err(StepRefused::RoleRequired { .. })
    ));

    let system = Actor::of(&person("system", &[], None));
    assert_eq!(chain.escalate(system.clone(), due), Ok(0));
    assert_eq!(chain.trail.last().unwrap().action, TrailAction::Escalate);
    assert_eq!(chain.escalation_due(now()), None, "escalated once only");
    assert_eq!(
        chain.escalate(system, due),
        Err(StepRefused::NothingToEscalate)
    );
    assert!(chain.waiting_roles().contains(&Role::CreditManager));
    assert!(chain.waiting_roles().contains(&Role::Finance));
    // The credit manager may now decide finance's step; four eyes still hold.
    assert_eq!(chain.may_decide(&manager), Ok(0));
    chain
        .decide(&manager, 0, Verdict::Approve, "sized", due)
        .unwrap();
    // Risk's step has its own deadline, counted from when it began to wait.
    assert_eq!(
        chain.escalation_due(due),
        Some(due + chrono::Duration::hours(48))
    );
    // The general manager's step has none.
    let risk = person("rick", &[Role::Risk], None);
    chain.decide(&risk, 1, Verdict::Approve, "", due).unwrap();
    assert_eq!(chain.escalation_due(due), None);
}

#[test]
fn an_escalation_needs_a_deadline_and_roles_and_never_on_a_filing() {
    let mut matrix = matrix();
    let rule = matrix
        .rules
        .iter_mut()
        .find(|rule| rule.rule_id == "limit-large")
        .unwrap();
    rule.steps[0].escalate_to.clear();
    rule.steps[1].escalate_after_seconds = Some(0);
    rule.steps[3].escalate_after_seconds = Some(3600);
    rule.steps[3].escalate_to = BTreeSet::from([Role::GeneralManager]);
    let ServiceError::InvalidArgument(violations) = matrix.check().unwrap_err() else {
        panic!("not invalid")
    };
    let fields: Vec<String> = violations
        .iter()
        .map(|violation| violation.field.clone())
        .collect();
    for field in [
        "matrix.rules[1].steps[0].escalate_to",
        "matrix.rules[1].steps[1].escalate_after",
        "matrix.rules[1].steps[3].escalate_after",
    ] {
        assert!(
            fields.contains(&field.to_owned()),
            "{field} not in {fields:?}"
        );
    }
}
