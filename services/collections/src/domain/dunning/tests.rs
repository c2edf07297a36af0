use super::*;
use crate::domain::promise::evaluate_promise;
use crate::domain::promise::test_support::{paid, promise};
use crate::domain::receivable::test_support::*;
use rust_decimal_macros::dec;

fn level(number: u32, days: u32, channel: ContactChannel, name: &str) -> DunningLevelDraft {
    DunningLevelDraft {
        level: number,
        display_name: name.into(),
        days_past_due: days,
        channel: Some(channel),
        template_id: format!("tpl-{number}"),
        message_template: format!(
            "{name}: invoice {{{{invoice_number}}}}, {{{{amount}}}} due {{{{due_date}}}}, \
             {{{{days_past_due}}}} days late"
        ),
    }
}

/// Reminder at 1, email at 10, phone at 30, final notice at 60, legal at 90.
fn default_draft() -> DunningPolicyDraft {
    DunningPolicyDraft {
        policy_id: "default".into(),
        display_name: "Default".into(),
        grades: vec![],
        levels: vec![
            level(1, 1, ContactChannel::Letter, "Reminder"),
            level(2, 10, ContactChannel::Email, "Email"),
            level(3, 30, ContactChannel::Phone, "Call"),
            level(4, 60, ContactChannel::Letter, "Final notice"),
            level(5, 90, ContactChannel::Legal, "Legal"),
        ],
    }
}

fn default_policy() -> DunningPolicy {
    DunningPolicy::parse(&default_draft(), 1).unwrap()
}

fn candidate(number: &str, due: &str, open: Decimal) -> DunningCandidate {
    DunningCandidate {
        customer_id: CustomerId::parse("c1").unwrap(),
        customer_name: "Acme".into(),
        grade: None,
        invoice_id: InvoiceId::parse(&format!("inv-{number}")).unwrap(),
        invoice_number: number.into(),
        currency: cny(),
        due_date: date(due),
        open_amount: open,
        disputed_amount: Decimal::ZERO,
    }
}

fn as_taken(plan: &DunningPlan) -> Vec<TakenAction> {
    plan.actions
        .iter()
        .map(|action| TakenAction {
            invoice_id: action.invoice_id.clone(),
            level: action.level,
            as_of: action.as_of,
        })
        .collect()
}

fn levels(plan: &DunningPlan) -> Vec<(&str, u32)> {
    plan.actions
        .iter()
        .map(|action| (action.invoice_number.as_str(), action.level))
        .collect()
}

#[test]
fn policy_validation_names_every_bad_field() {
    let mut draft = default_draft();
    draft.policy_id = "Default Policy".into();
    draft.grades = vec!["A".into(), "A".into()];
    draft.levels[1].level = 7;
    draft.levels[2].days_past_due = 10; // not above level 2's 10
    draft.levels[3].channel = None;
    draft.levels[4].message_template = "Pay {{amount}} to {{lawyer}}".into();
    let fields: Vec<String> = DunningPolicy::parse(&draft, 1)
        .unwrap_err()
        .into_iter()
        .map(|violation| violation.field)
        .collect();
    assert_eq!(
        fields,
        [
            "policy_id",
            "grades[1]",
            "levels[1].level",
            "levels[2].days_past_due",
            "levels[3].channel",
            "levels[4].message_template",
        ]
    );
    let mut empty = default_draft();
    empty.levels.clear();
    assert_eq!(
        DunningPolicy::parse(&empty, 1).unwrap_err()[0].field,
        "levels"
    );
    let mut at_zero = default_draft();
    at_zero.levels[0].days_past_due = 0;
    assert_eq!(
        DunningPolicy::parse(&at_zero, 1).unwrap_err()[0].field,
        "levels[0].days_past_due"
    );
}

#[test]
fn one_default_policy_and_each_grade_in_one_policy() {
    let default = default_policy();
    let mut high_risk = default_draft();
    high_risk.policy_id = "high-risk".into();
    high_risk.grades = vec!["CCC".into(), "D".into()];
    let high_risk = DunningPolicy::parse(&high_risk, 1).unwrap();
    let published = [default.clone(), high_risk.clone()];

    let mut second_default = default_draft();
    second_default.policy_id = "other".into();
    let second_default = DunningPolicy::parse(&second_default, 1).unwrap();
    assert_eq!(
        check_publishable(&published, &second_default)[0].field,
        "grades"
    );

    let mut overlapping = default_draft();
    overlapping.policy_id = "watch".into();
    overlapping.grades = vec!["E".into(), "D".into(), "B".into()];
    let overlapping = DunningPolicy::parse(&overlapping, 1).unwrap();
    // The path indexes the request's list: D is grades[1].
    assert_eq!(
        check_publishable(&published, &overlapping)[0].field,
        "grades[1]"
    );
    // A new version of the default itself is fine.
    assert!(
        check_publishable(
            &published,
            &DunningPolicy::parse(&default_draft(), 2).unwrap()
        )
        .is_empty()
    );

    assert_eq!(
        select_policy(&published, Some("D")).unwrap().policy_id(),
        "high-risk"
    );
    assert_eq!(
        select_policy(&published, Some("A")).unwrap().policy_id(),
        "default"
    );
    assert_eq!(
        select_policy(&published, None).unwrap().policy_id(),
        "default"
    );
    assert!(select_policy(&[high_risk], Some("A")).is_none());
}

#[test]
fn a_run_creates_the_highest_level_due_and_a_second_run_creates_nothing() {
    let policies = [default_policy()];
    let as_of = date("2026-03-31");
    let mut disputed = candidate("D", "2026-03-01", dec!(300.00));
    disputed.disputed_amount = dec!(300.00);
    let mut partly_disputed = candidate("E", "2026-03-01", dec!(300.00));
    partly_disputed.disputed_amount = dec!(120.00);
    let candidates = [
        candidate("A", "2026-03-30", dec!(100.00)), // 1 day → level 1
        candidate("B", "2026-01-01", dec!(200.00)), // 89 days → levels 1–4 due, only 4
        candidate("C", "2026-04-30", dec!(50.00)),  // not due
        disputed,                                   // 30 days, all disputed
        partly_disputed,                            // 30 days → level 3 on 300 − 120
    ];
    let first = plan_dunning(as_of, &policies, &candidates, &[], &[]);
    assert_eq!(levels(&first), [("A", 1), ("B", 4), ("E", 3)]);
    let e = &first.actions[2];
    assert_eq!(e.amount, dec!(180.00));
    assert_eq!(e.channel, ContactChannel::Phone);
    assert_eq!(
        e.message,
        "Call: invoice E, 180.00 CNY due 2026-03-01, 30 days late"
    );
    assert!(first.skipped.contains(&(
        InvoiceId::parse("inv-D").unwrap(),
        SkipReason::FullyDisputed
    )));

    let taken = as_taken(&first);
    let second = plan_dunning(as_of, &policies, &candidates, &taken, &[]);
    assert!(second.actions.is_empty(), "{:?}", second.actions);

    // A day later B reaches 90 days: level 5 only; A (2 days) stays at level 1.
    let next_day = plan_dunning(date("2026-04-01"), &policies, &candidates, &taken, &[]);
    assert_eq!(levels(&next_day), [("B", 5)]);
    // The skipped levels 1–3 of B are never created afterwards.
    let mut all_taken = taken.clone();
    all_taken.extend(as_taken(&next_day));
    assert!(
        plan_dunning(date("2026-06-01"), &policies, &candidates, &all_taken, &[])
            .actions
            .iter()
            .all(|action| action.invoice_number != "B")
    );
}

#[test]
fn a_promise_pauses_dunning_and_a_broken_one_escalates() {
    let policies = [default_policy()];
    let invoice = candidate("A", "2026-03-01", dec!(500.00));
    let candidates = [invoice];
    // Level 1 reminder on 03-02 (1 day past due).
    let reminder = plan_dunning(date("2026-03-02"), &policies, &candidates, &[], &[]);
    assert_eq!(levels(&reminder), [("A", 1)]);
    let taken = as_taken(&reminder);

    // On 03-05 the customer promises 500 by 03-20.
    let pledge = promise(dec!(500.00), "2026-03-05", "2026-03-20");
    let state_on = |day: &str, payments: &[_]| PromiseState {
        promise: pledge.clone(),
        evaluation: evaluate_promise(&pledge, payments, date(day)),
    };
    // 03-15: 14 days past due would give level 2 (10 days), but the promise pauses it.
    let paused = plan_dunning(
        date("2026-03-15"),
        &policies,
        &candidates,
        &taken,
        &[state_on("2026-03-15", &[])],
    );
    assert!(paused.actions.is_empty());
    assert_eq!(
        paused.skipped,
        [(
            InvoiceId::parse("inv-A").unwrap(),
            SkipReason::PausedByPromise(pledge.promise_id.clone())
        )]
    );

    // Only 200 paid by 03-20: broken on 03-21. On 03-21 (20 days) the days give level 2;
    // the broken promise asks for at least taken + 1 = 2 as well: level 2, no escalation.
    let partial = [paid("inv-A", dec!(200.00), "2026-03-10")];
    let broken = state_on("2026-03-21", &partial);
    assert_eq!(broken.evaluation.status, PromiseStatus::Broken);
    let mut after_break = candidates.clone();
    after_break[0].open_amount = dec!(300.00);
    let resumed = plan_dunning(
        date("2026-03-21"),
        &policies,
        &after_break,
        &taken,
        std::slice::from_ref(&broken),
    );
    assert_eq!(levels(&resumed), [("A", 2)]);
    assert_eq!(resumed.actions[0].escalated_by, None);
    assert_eq!(resumed.actions[0].amount, dec!(300.00));

    // Escalation proper: invoice B due 02-01 got level 1 on 02-02 and level 2 on 02-11
    // (10 days); a promise made 02-15 for 02-20 was not paid. On 02-21 B is 20 days past
    // due, which only reaches level 2, but the break escalates to taken + 1 = level 3
    // (which the days alone would give on 03-03, at 30 days).
    let b = [candidate("B", "2026-02-01", dec!(800.00))];
    let b_id = InvoiceId::parse("inv-B").unwrap();
    let mut b_taken = vec![
        TakenAction {
            invoice_id: b_id.clone(),
            level: 1,
            as_of: date("2026-02-02"),
        },
        TakenAction {
            invoice_id: b_id.clone(),
            level: 2,
            as_of: date("2026-02-11"),
        },
    ];
    let b_promise = promise(dec!(800.00), "2026-02-15", "2026-02-20");
    let b_broken = PromiseState {
        evaluation: evaluate_promise(&b_promise, &[], date("2026-02-21")),
        promise: b_promise.clone(),
    };
    assert_eq!(b_broken.evaluation.decided_on, Some(date("2026-02-21")));
    // On the promised date itself B is still paused.
    let b_paused = PromiseState {
        evaluation: evaluate_promise(&b_promise, &[], date("2026-02-20")),
        promise: b_promise.clone(),
    };
    assert!(
        plan_dunning(date("2026-02-20"), &policies, &b, &b_taken, &[b_paused])
            .actions
            .is_empty()
    );
    let escalated = plan_dunning(
        date("2026-02-21"),
        &policies,
        &b,
        &b_taken,
        std::slice::from_ref(&b_broken),
    );
    assert_eq!(levels(&escalated), [("B", 3)]);
    assert_eq!(
        escalated.actions[0].escalated_by,
        Some(b_promise.promise_id.clone())
    );
    assert_eq!(escalated.actions[0].channel, ContactChannel::Phone);
    assert_eq!(escalated.actions[0].days_past_due, 20);
    // Run again with that action taken: the escalation is consumed, nothing new, on the
    // same day or the next.
    b_taken.extend(as_taken(&escalated));
    for day in ["2026-02-21", "2026-02-22"] {
        let again = plan_dunning(
            date(day),
            &policies,
            &b,
            &b_taken,
            std::slice::from_ref(&b_broken),
        );
        assert!(again.actions.is_empty(), "{day}: {:?}", again.actions);
    }
}

#[test]
fn the_policy_of_the_customers_grade_applies() {
    let mut strict = default_draft();
    strict.policy_id = "strict".into();
    strict.grades = vec!["D".into()];
    strict.levels = vec![level(1, 1, ContactChannel::Legal, "Legal")];
    let policies = [default_policy(), DunningPolicy::parse(&strict, 3).unwrap()];
    let mut risky = candidate("R", "2026-03-25", dec!(10.00));
    risky.grade = Some("D".into());
    let plan = plan_dunning(date("2026-03-31"), &policies, &[risky], &[], &[]);
    assert_eq!(plan.actions[0].channel, ContactChannel::Legal);
    assert_eq!(plan.actions[0].policy_id, "strict");
    assert_eq!(plan.actions[0].policy_version, 3);
}
