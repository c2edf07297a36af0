use std::collections::BTreeSet;

use chrono::{Duration, TimeZone, Utc};

use super::*;
use crate::approval::{DecisionKind, Figures, Verdict, shipped_matrix};
use crate::identity::{Principal, Role};
use crate::{Actor, Currency};

fn person(name: &str, roles: &[Role]) -> Principal {
    Principal {
        id: format!("prn_{name}"),
        person_id: format!("psn_{name}"),
        name: name.to_owned(),
        roles: roles.iter().copied().collect::<BTreeSet<_>>(),
        approval_authority: None,
    }
}

fn proposal(version: u32, text: &str, effective_from: DateTime<Utc>) -> Version<String> {
    let matrix = shipped_matrix(Currency::parse("CNY").unwrap());
    let rule = matrix
        .chain_rule(DecisionKind::PolicyChange, &Figures::default())
        .unwrap();
    let proposer = person("alice", &[Role::CreditManager]);
    Version {
        version,
        document: text.to_owned(),
        reason: "yearly revision".into(),
        proposed_at: effective_from,
        effective_from,
        published_at: None,
        chain: Chain::start(rule, 0, Actor::of(&proposer), None),
        based_on: version.saturating_sub(1),
        changes: Vec::new(),
    }
}

#[test]
fn a_proposal_is_published_by_a_second_person_only() {
    let now = Utc.with_ymd_and_hms(2026, 12, 7, 9, 0, 0).unwrap();
    let mut version = proposal(1, "v1", now);
    assert_eq!(version.status(), VersionStatus::Proposed);
    let alice = person("alice", &[Role::CreditManager]);
    assert!(
        version
            .chain
            .decide(&alice, 0, Verdict::Approve, "", now)
            .is_err()
    );
    let bob = person("bob", &[Role::GeneralManager]);
    version
        .chain
        .decide(&bob, 0, Verdict::Approve, "", now)
        .unwrap();
    assert_eq!(version.status(), VersionStatus::Published);
}

#[test]
fn the_version_in_force_is_the_latest_published_one_already_effective() {
    let start = Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap();
    let bob = person("bob", &[Role::GeneralManager]);
    let mut first = proposal(1, "v1", start);
    first
        .chain
        .decide(&bob, 0, Verdict::Approve, "", start)
        .unwrap();
    first.publish(start);
    let mut future = proposal(2, "v2", start + Duration::days(30));
    future
        .chain
        .decide(&bob, 0, Verdict::Approve, "", start)
        .unwrap();
    future.publish(start);
    let pending = proposal(3, "v3", start);
    let versions = vec![first, future, pending];
    assert_eq!(
        in_force(&versions, start + Duration::days(1))
            .unwrap()
            .version,
        1
    );
    assert_eq!(
        in_force(&versions, start + Duration::days(31))
            .unwrap()
            .version,
        2
    );
    assert!(in_force(&versions, start - Duration::days(1)).is_none());
}

#[test]
fn a_version_approved_after_its_date_takes_effect_when_approved() {
    let asked = Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap();
    let mut version = proposal(1, "v1", asked);
    let approved = asked + Duration::days(3);
    version.publish(approved);
    assert_eq!(version.effective_from, approved);
}

#[test]
fn the_diff_names_each_changed_field() {
    #[derive(serde::Serialize)]
    struct Policy {
        tolerance: u32,
        grades: Vec<&'static str>,
    }
    let before = Policy {
        tolerance: 10,
        grades: vec!["A", "B"],
    };
    let after = Policy {
        tolerance: 5,
        grades: vec!["A", "B", "C"],
    };
    let changes = diff(&before, &after);
    assert_eq!(
        changes,
        vec![
            Change {
                path: "grades[2]".into(),
                before: String::new(),
                after: "\"C\"".into(),
            },
            Change {
                path: "tolerance".into(),
                before: "10".into(),
                after: "5".into(),
            },
        ]
    );
}

#[test]
fn record_ids_name_the_document_and_its_version() {
    use crate::approval::ApprovalMatrix;
    assert_eq!(record_id::<ApprovalMatrix>(3), "matrix:3");
    assert_eq!(parse_record_id::<ApprovalMatrix>("matrix:3"), Some(3));
    assert_eq!(parse_record_id::<ApprovalMatrix>("matrix3"), None);
    assert_eq!(parse_record_id::<ApprovalMatrix>("policy:3"), None);
    assert_eq!(parse_record_id::<ApprovalMatrix>("matrix:x"), None);
}
