//! Dunning, on both backends: policies as data, checked when published; runs create the level
//! due for each overdue invoice, never a level twice, skipped lower levels never later; a retry
//! of a run answers the first.

use chrono::{Days, Utc};
use credit_core::Role;
use credit_e2e_tests::TestSuite;
use credit_proto::v1 as pb;
use tonic::Code;

use crate::authorize::cny;
use crate::intake::violated_fields;

type Collections =
    pb::collections_service_client::CollectionsServiceClient<credit_e2e_tests::Authed>;

const TEMPLATE: &str = "Dear {{customer_name}}, invoice {{invoice_number}} of {{amount}} was due \
                        {{due_date}} ({{days_past_due}} days).";

fn date_in(days: i64) -> pb::Date {
    use chrono::Datelike;
    let today = Utc::now().date_naive();
    let date = if days >= 0 {
        today + Days::new(days.unsigned_abs())
    } else {
        today - Days::new(days.unsigned_abs())
    };
    pb::Date {
        year: date.year(),
        month: date.month() as i32,
        day: date.day() as i32,
    }
}

fn level(level: i32, name: &str, days: i32, channel: pb::ContactChannel) -> pb::DunningLevel {
    pb::DunningLevel {
        level,
        display_name: name.into(),
        days_past_due: days,
        channel: channel.into(),
        template_id: format!("tpl-{level}"),
        message_template: TEMPLATE.into(),
    }
}

/// Reminder at 1 day, email at 10, phone at 30, final notice at 60, legal at 90.
fn default_policy() -> pb::DunningPolicy {
    use pb::ContactChannel::*;
    pb::DunningPolicy {
        policy_id: "default".into(),
        display_name: "Standard dunning".into(),
        levels: vec![
            level(1, "Reminder", 1, Email),
            level(2, "Second reminder", 10, Email),
            level(3, "Phone call", 30, Phone),
            level(4, "Final notice", 60, Letter),
            level(5, "Legal", 90, Legal),
        ],
        ..Default::default()
    }
}

/// Proposes `policy` with `collections` (an ADMIN's client) and has a credit manager, a second
/// person, approve it, as every change of a dunning policy is made: the version published.
async fn publish(
    suite: &TestSuite,
    collections: &mut Collections,
    request_id: &str,
    policy: pb::DunningPolicy,
) -> Result<pb::DunningPolicy, tonic::Status> {
    let proposal = propose(collections, request_id, policy).await?;
    let approved = decide(
        suite,
        "policy-approver",
        &proposal.proposal_id,
        pb::ApprovalVerdict::Approve,
        "",
    )
    .await?;
    Ok(approved.policy.unwrap())
}

async fn propose(
    collections: &mut Collections,
    request_id: &str,
    policy: pb::DunningPolicy,
) -> Result<pb::DunningPolicyProposal, tonic::Status> {
    Ok(collections
        .publish_dunning_policy(pb::PublishDunningPolicyRequest {
            request_id: request_id.into(),
            policy: Some(policy),
            validate_only: false,
        })
        .await?
        .into_inner()
        .proposal
        .unwrap())
}

/// `decider`'s verdict (a credit manager's) on a dunning policy proposal.
async fn decide(
    suite: &TestSuite,
    decider: &str,
    proposal_id: &str,
    verdict: pb::ApprovalVerdict,
    note: &str,
) -> Result<pb::DunningPolicyProposal, tonic::Status> {
    let token = suite.issue_token(decider, &[Role::CreditManager]).await;
    Ok(suite
        .collections(&token)
        .decide_dunning_policy_proposal(pb::DecideDunningPolicyProposalRequest {
            request_id: format!("{}-{proposal_id}", verdict.as_str_name()),
            proposal_id: proposal_id.into(),
            verdict: verdict.into(),
            note: note.into(),
        })
        .await?
        .into_inner()
        .proposal
        .unwrap())
}

async fn invoice(
    collections: &mut Collections,
    customer_id: &str,
    number: &str,
    due_in: i64,
) -> String {
    collections
        .post_invoice(pb::PostInvoiceRequest {
            customer_id: customer_id.into(),
            invoice_number: number.into(),
            amount: cny("1200.00"),
            issue_date: Some(date_in(due_in.min(0) - 30)),
            due: Some(pb::post_invoice_request::Due::DueDate(date_in(due_in))),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .invoice
        .unwrap()
        .invoice_id
}

async fn run(
    collections: &mut Collections,
    request_id: &str,
    as_of: pb::Date,
    dry_run: bool,
) -> pb::RunDunningResponse {
    collections
        .run_dunning(pb::RunDunningRequest {
            request_id: request_id.into(),
            as_of_date: Some(as_of),
            customer_ids: Vec::new(),
            dry_run,
        })
        .await
        .unwrap()
        .into_inner()
}

/// (invoice id, level, days past due) of each action.
fn levels(response: &pb::RunDunningResponse) -> Vec<(String, i32, i32)> {
    let mut levels: Vec<(String, i32, i32)> = response
        .actions
        .iter()
        .map(|action| {
            (
                action.invoice_id.clone(),
                action.level,
                action.days_past_due,
            )
        })
        .collect();
    levels.sort();
    levels
}

pub async fn a_dunning_run_twice_creates_each_action_once(suite: &TestSuite) {
    let mut admin = suite.collections(&suite.issue_token("root", &[Role::Admin]).await);
    // The suite ships policy "default" as version 1; this one is its version 2.
    let published = publish(suite, &mut admin, "pol-1", default_policy())
        .await
        .unwrap();
    assert_eq!(published.version, 2);
    let mut collections = suite.collections(
        &suite
            .issue_token("col", &[Role::OrderEntry, Role::Collector])
            .await,
    );
    let customer_id = "cus_dunned_1";
    // Due 5 days ago -> level 1; due 35 days ago -> level 3 (1 and 2 are skipped, never
    // created later); not due yet -> nothing.
    let five = invoice(&mut collections, customer_id, "DN-5", -5).await;
    let thirty_five = invoice(&mut collections, customer_id, "DN-35", -35).await;
    invoice(&mut collections, customer_id, "DN-NEXT", 10).await;

    let dry = run(&mut collections, "run-dry", date_in(0), true).await;
    assert_eq!(dry.actions.len(), 2);
    let first = run(&mut collections, "run-1", date_in(0), false).await;
    let mut wanted = vec![(five.clone(), 1, 5), (thirty_five.clone(), 3, 35)];
    wanted.sort();
    assert_eq!(levels(&first), wanted, "the dry run wrote nothing");
    let reminder = first
        .actions
        .iter()
        .find(|action| action.invoice_id == five)
        .unwrap();
    assert_eq!(reminder.channel(), pb::ContactChannel::Email);
    assert_eq!(reminder.policy_id, "default");
    // The customer is not in intake: its id stands in for the name.
    assert_eq!(
        reminder.message,
        format!(
            "Dear {customer_id}, invoice DN-5 of 1200.00 CNY was due {} (5 days).",
            {
                let due = date_in(-5);
                format!("{:04}-{:02}-{:02}", due.year, due.month, due.day)
            }
        )
    );
    assert_eq!(reminder.amount.as_ref().unwrap().amount, "1200.00");

    // The same request answers the same; a new run the same day creates nothing.
    let replay = run(&mut collections, "run-1", date_in(0), false).await;
    assert_eq!(replay, first);
    let again = run(&mut collections, "run-2", date_in(0), false).await;
    assert!(again.actions.is_empty());
    assert_eq!(again.skipped_already_dunned, 2);

    // Ten days on: DN-5 is 15 days past due -> level 2; DN-35 is 45 -> still level 3.
    let later = run(&mut collections, "run-3", date_in(10), false).await;
    assert_eq!(levels(&later), [(five.clone(), 2, 15)]);
    let listed = collections
        .list_dunning_actions(pb::ListDunningActionsRequest {
            invoice_id: five.clone(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .actions;
    let listed_levels: Vec<i32> = listed.iter().map(|action| action.level).collect();
    assert_eq!(listed_levels, [2, 1], "newest first");
    // Each invoice shows the highest level it reached.
    for (invoice_id, level) in [(&five, 2), (&thirty_five, 3)] {
        let invoice = collections
            .get_invoice(pb::GetInvoiceRequest {
                invoice_id: invoice_id.clone(),
            })
            .await
            .unwrap()
            .into_inner()
            .invoice
            .unwrap();
        assert_eq!(invoice.dunning_level, level);
    }
}

/// A run's request_id is its caller's own: another collector sending the same id runs anew
/// (and finds the levels already created) instead of being handed the first caller's answer;
/// each caller's retry still answers its own first run.
pub async fn a_run_id_is_the_callers_own(suite: &TestSuite) {
    let mut billing = suite.collections(&suite.issue_token("erp", &[Role::OrderEntry]).await);
    let customer_id = "cus_dunned_2";
    let overdue = invoice(&mut billing, customer_id, "DN2-5", -5).await;
    let mut ana = suite.collections(&suite.issue_token("ana", &[Role::Collector]).await);
    let mut ben = suite.collections(&suite.issue_token("ben", &[Role::Collector]).await);

    let anas = run(&mut ana, "daily", date_in(0), false).await;
    assert_eq!(levels(&anas), [(overdue.clone(), 1, 5)]);
    let bens = run(&mut ben, "daily", date_in(0), false).await;
    assert!(bens.actions.is_empty(), "not ana's answer: {bens:?}");
    assert_eq!(bens.skipped_already_dunned, 1);

    assert_eq!(run(&mut ana, "daily", date_in(0), false).await, anas);
    assert_eq!(run(&mut ben, "daily", date_in(0), false).await, bens);

    // Publishing too: the same request id from another administrator is its own publication.
    let mut root = suite.collections(&suite.issue_token("root", &[Role::Admin]).await);
    let mut boss = suite.collections(&suite.issue_token("boss", &[Role::Admin]).await);
    let roots = publish(suite, &mut root, "pub-1", default_policy())
        .await
        .unwrap();
    let bosses = publish(suite, &mut boss, "pub-1", default_policy())
        .await
        .unwrap();
    assert_eq!((roots.version, bosses.version), (2, 3));
    let again = publish(suite, &mut root, "pub-1", default_policy())
        .await
        .unwrap();
    assert_eq!(again.version, 2, "root's retry answers root's publication");
}

pub async fn dunning_policies_are_checked_when_published(suite: &TestSuite) {
    let mut admin = suite.collections(&suite.issue_token("root", &[Role::Admin]).await);
    let mut broken = default_policy();
    broken.levels[0].message_template = "Pay {{amount_due}} now".into();
    broken.levels[2].days_past_due = 5;
    let refused = publish(suite, &mut admin, "pol-bad", broken)
        .await
        .unwrap_err();
    assert_eq!(
        violated_fields(&refused),
        [
            "policy.levels[0].message_template",
            "policy.levels[2].days_past_due"
        ]
    );
    publish(suite, &mut admin, "pol-1", default_policy())
        .await
        .unwrap();
    // A second default policy is refused; one for grades is accepted.
    let mut second_default = default_policy();
    second_default.policy_id = "strict".into();
    let refused = publish(suite, &mut admin, "pol-2", second_default.clone())
        .await
        .unwrap_err();
    assert_eq!(violated_fields(&refused), ["policy.grades"]);
    second_default.grades = vec!["B".into(), "CCC".into()];
    let strict = publish(suite, &mut admin, "pol-3", second_default)
        .await
        .unwrap();
    assert_eq!(strict.version, 1);
    // A new version of the default keeps the earlier ones (1 is the shipped policy).
    let mut shorter = default_policy();
    shorter.levels.truncate(2);
    let third = publish(suite, &mut admin, "pol-4", shorter).await.unwrap();
    assert_eq!(third.version, 3);
    let latest = admin
        .list_dunning_policies(pb::ListDunningPoliciesRequest::default())
        .await
        .unwrap()
        .into_inner()
        .policies;
    let listed: Vec<(String, i32)> = latest
        .iter()
        .map(|policy| (policy.policy_id.clone(), policy.version))
        .collect();
    assert_eq!(listed, [("default".into(), 3), ("strict".into(), 1)]);
    let every_version = admin
        .list_dunning_policies(pb::ListDunningPoliciesRequest {
            all_versions: true,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .policies;
    let shipped = every_version
        .iter()
        .find(|policy| policy.policy_id == "default" && policy.version == 1)
        .unwrap();
    assert_eq!(shipped.levels.len(), 5);
    assert_eq!(
        shipped.published_by.as_ref().unwrap().principal,
        "system:collections"
    );
    // Only an administrator publishes.
    let mut collector = suite.collections(&suite.issue_token("col", &[Role::Collector]).await);
    let denied = publish(suite, &mut collector, "pol-5", default_policy())
        .await
        .unwrap_err();
    assert_eq!(denied.code(), Code::PermissionDenied);
}

pub async fn a_promise_pauses_dunning_and_a_broken_one_escalates(suite: &TestSuite) {
    use crate::cases::{case_of, contact, days_ahead, detect, overdue_invoice};
    use pb::ContactChannel::{Email, Phone};
    let mut admin = suite.collections(&suite.issue_token("root", &[Role::Admin]).await);
    let policy = pb::DunningPolicy {
        policy_id: "default".into(),
        display_name: "Two steps".into(),
        levels: vec![
            level(1, "Reminder", 1, Email),
            level(2, "Phone call", 30, Phone),
        ],
        ..Default::default()
    };
    publish(suite, &mut admin, "pol-two", policy).await.unwrap();
    let mut collections = suite.collections(
        &suite
            .issue_token("col", &[Role::OrderEntry, Role::Collector])
            .await,
    );
    let customer_id = "cus_promise_1";
    let invoice = overdue_invoice(&mut collections, customer_id, "PR-1", "900.00", 2).await;
    detect(&mut collections, &[customer_id], None).await;
    let case = case_of(&mut collections, customer_id).await;

    // Two days past due: the reminder.
    let first = run(&mut collections, "pr-run-1", date_in(0), false).await;
    assert_eq!(levels(&first), [(invoice.invoice_id.clone(), 1, 2)]);
    assert_eq!(first.actions[0].case_id, case.case_id);

    // The customer promises to pay everything in five days: dunning waits.
    collections
        .log_contact(contact(
            "pr-ptp",
            &case.case_id,
            pb::ContactOutcome::PromiseToPay,
            Some(("900.00", days_ahead(5))),
        ))
        .await
        .unwrap();
    let paused = run(&mut collections, "pr-run-2", date_in(3), false).await;
    assert!(paused.actions.is_empty());
    assert_eq!(paused.skipped_promised, 1);

    // Nothing paid: broken the day after its date. Nine days past due would still be the
    // reminder's level, but the broken promise escalates to the next level at once.
    let broken = detect(&mut collections, &[customer_id], Some(days_ahead(6))).await;
    assert_eq!(broken.promises_broken, 1);
    let escalated = run(&mut collections, "pr-run-3", date_in(7), false).await;
    assert_eq!(levels(&escalated), [(invoice.invoice_id.clone(), 2, 9)]);
    assert_eq!(escalated.actions[0].channel(), Phone);
    // And it is not escalated again by the same broken promise.
    let after = run(&mut collections, "pr-run-4", date_in(8), false).await;
    assert!(after.actions.is_empty());
}

pub async fn a_dunning_policy_change_needs_a_second_person_and_keeps_its_history(
    suite: &TestSuite,
) {
    let mut admin = suite.collections(&suite.issue_token("root", &[Role::Admin]).await);
    // The phone call at 20 days past due instead of 30: a proposal, with its change.
    let mut sooner = default_policy();
    sooner.levels[2].days_past_due = 20;
    let proposal = propose(&mut admin, "sooner-call", sooner).await.unwrap();
    assert_eq!(proposal.status(), pb::PolicyVersionStatus::Proposed);
    assert_eq!(proposal.base_version, 1, "over the shipped policy");
    let changes: Vec<(&str, &str, &str)> = proposal
        .changes
        .iter()
        .map(|change| {
            (
                change.path.as_str(),
                change.before.as_str(),
                change.after.as_str(),
            )
        })
        .collect();
    assert!(
        changes.contains(&("levels[2].days_past_due", "30", "20")),
        "{changes:?}"
    );
    assert_eq!(
        proposal.approval_chain.as_ref().unwrap().rule_id,
        "policy-change"
    );
    // Nothing is in force yet: the latest version is still the shipped one.
    let latest = |policies: Vec<pb::DunningPolicy>| {
        policies
            .into_iter()
            .find(|policy| policy.policy_id == "default")
            .map(|policy| (policy.version, policy.levels[2].days_past_due))
    };
    let listed = admin
        .list_dunning_policies(pb::ListDunningPoliciesRequest::default())
        .await
        .unwrap()
        .into_inner()
        .policies;
    assert_eq!(latest(listed), Some((1, 30)));

    // The proposer may not approve it, under another token either; a collector may not decide.
    let own = suite
        .collections(
            &suite
                .issue_token("root", &[Role::Admin, Role::CreditManager])
                .await,
        )
        .decide_dunning_policy_proposal(pb::DecideDunningPolicyProposalRequest {
            request_id: "own".into(),
            proposal_id: proposal.proposal_id.clone(),
            verdict: pb::ApprovalVerdict::Approve.into(),
            note: String::new(),
        })
        .await
        .unwrap_err();
    assert_eq!(own.code(), Code::PermissionDenied);
    assert_eq!(crate::limits::reason(&own), "SELF_APPROVAL");
    let by_collector = suite
        .collections(&suite.issue_token("col", &[Role::Collector]).await)
        .decide_dunning_policy_proposal(pb::DecideDunningPolicyProposalRequest {
            request_id: "col".into(),
            proposal_id: proposal.proposal_id.clone(),
            verdict: pb::ApprovalVerdict::Approve.into(),
            note: String::new(),
        })
        .await
        .unwrap_err();
    assert_eq!(by_collector.code(), Code::PermissionDenied);
    // A rejection needs a note.
    let bare = decide(
        suite,
        "mei",
        &proposal.proposal_id,
        pb::ApprovalVerdict::Reject,
        "",
    )
    .await
    .unwrap_err();
    assert_eq!(violated_fields(&bare), ["note"]);

    let approved = decide(
        suite,
        "mei",
        &proposal.proposal_id,
        pb::ApprovalVerdict::Approve,
        "",
    )
    .await
    .unwrap();
    assert_eq!(approved.status(), pb::PolicyVersionStatus::Published);
    assert_eq!(approved.published_version, 2);
    let listed = admin
        .list_dunning_policies(pb::ListDunningPoliciesRequest::default())
        .await
        .unwrap()
        .into_inner()
        .policies;
    assert_eq!(latest(listed.clone()), Some((2, 20)));
    let published = listed
        .iter()
        .find(|policy| policy.policy_id == "default")
        .unwrap();
    assert_eq!(published.published_by.as_ref().unwrap().principal, "mei");

    // Two proposals over version 2: once one is published the other is stale, and rejected
    // with a note it stays in the history.
    let mut later = default_policy();
    later.levels[3].days_past_due = 45;
    let stale = propose(&mut admin, "later-notice", later.clone())
        .await
        .unwrap();
    assert_eq!(stale.base_version, 2);
    let mut rival = default_policy();
    rival.levels[3].days_past_due = 50;
    let rival = propose(&mut admin, "rival-notice", rival).await.unwrap();
    decide(
        suite,
        "mei",
        &rival.proposal_id,
        pb::ApprovalVerdict::Approve,
        "",
    )
    .await
    .unwrap();
    let refused = decide(
        suite,
        "li",
        &stale.proposal_id,
        pb::ApprovalVerdict::Approve,
        "",
    )
    .await
    .unwrap_err();
    assert_eq!(refused.code(), Code::FailedPrecondition);
    assert_eq!(crate::limits::reason(&refused), "PROPOSAL_STALE");
    let rejected = decide(
        suite,
        "li",
        &stale.proposal_id,
        pb::ApprovalVerdict::Reject,
        "superseded by the 50-day notice",
    )
    .await
    .unwrap();
    assert_eq!(rejected.status(), pb::PolicyVersionStatus::Rejected);

    let history = admin
        .list_dunning_policy_proposals(pb::ListDunningPolicyProposalsRequest {
            policy_id: "default".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .proposals;
    let outcomes: Vec<(pb::PolicyVersionStatus, i32)> = history
        .iter()
        .map(|proposal| (proposal.status(), proposal.published_version))
        .collect();
    use pb::PolicyVersionStatus::{Published, Rejected};
    assert_eq!(outcomes, [(Published, 3), (Rejected, 0), (Published, 2)]);
}
