//! One conformance suite for the model store, run against both backends: the embedded SQLite
//! file and a PostgreSQL database of the test's own. Two stores on one database stand for two
//! replicas of the service.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "tests"
)]

use std::collections::BTreeSet;

use chrono::Utc;
use credit_core::approval::{Chain, ChainRule, Conditions, DecisionKind, StepRule, Verdict};
use credit_core::governance::VersionStatus;
use credit_core::{Actor, Principal, Role, ServiceError};
use credit_proto::v1 as pb;
use credit_rating::domain::defaults::{ENTERPRISE_DEFAULT, INDIVIDUAL_DEFAULT, enterprise_default};
use credit_rating::domain::{ModelId, ScorecardModel, selection};
use credit_rating::seed::{SYSTEM_PRINCIPAL, publish_shipped_models};
use credit_rating::store::{
    ModelCursor, ModelFilter, ModelProposal, ModelProposalStore, ModelStore, Outcome,
    ProposalFilter, Publication, SqlModelStore, StoreError,
};
use credit_runtime::Database;
use credit_runtime::config::Backend;
use credit_runtime::sql::IdempotencyKey;

async fn open(backend: &Backend) -> (Database, SqlModelStore) {
    let database = Database::open(backend, &credit_rating::STORE, 4, true)
        .await
        .unwrap();
    let store = SqlModelStore::new(database.clone());
    (database, store)
}

/// The shipped enterprise model under another id, for `industry_codes` (empty = a default).
fn model(model_id: &str, industry_codes: &[&str]) -> ScorecardModel {
    let mut wire = enterprise_default();
    wire.model_id = model_id.into();
    wire.industry_codes = industry_codes.iter().map(|code| (*code).into()).collect();
    ScorecardModel::try_from(&wire).unwrap()
}

fn publication() -> Publication {
    Publication {
        published_at: Utc::now(),
        published_by: Actor {
            principal_id: "ada-id".into(),
            person_id: String::new(),
            name: "ada".into(),
            roles: vec!["ADMIN".into()],
        },
    }
}

fn key(request_id: &str, fingerprint: &str) -> IdempotencyKey {
    IdempotencyKey {
        caller: "ada-id".into(),
        request_id: request_id.into(),
        operation: "PublishModel",
        fingerprint: fingerprint.into(),
    }
}

fn admit_all(_: &[ScorecardModel]) -> Result<(), ServiceError> {
    Ok(())
}

async fn versions(store: &SqlModelStore, model_id: &str) -> Vec<u32> {
    let filter = ModelFilter {
        model_id: Some(ModelId::parse(model_id).unwrap()),
        all_versions: true,
        ..Default::default()
    };
    store
        .list_models(&filter, None, 100)
        .await
        .unwrap()
        .iter()
        .map(|published| published.model.version())
        .collect()
}

/// Two replicas starting at once publish each shipped model once, as version 1 by the
/// service itself; later starts publish nothing.
async fn shipped_models_are_published_once(backend: &Backend) {
    let (first_database, first) = open(backend).await;
    let (second_database, second) = open(backend).await;
    let (first_published, second_published) = tokio::join!(
        publish_shipped_models(&first),
        publish_shipped_models(&second)
    );
    let mut published = first_published.unwrap();
    published.extend(second_published.unwrap());
    published.sort();
    assert_eq!(published, [ENTERPRISE_DEFAULT, INDIVIDUAL_DEFAULT]);
    assert!(publish_shipped_models(&first).await.unwrap().is_empty());

    let all = ModelFilter {
        all_versions: true,
        ..Default::default()
    };
    let listed = first.list_models(&all, None, 100).await.unwrap();
    let seen: Vec<(&str, u32, &str)> = listed
        .iter()
        .map(|published| {
            (
                published.model.model_id().as_str(),
                published.model.version(),
                published.published_by.name.as_str(),
            )
        })
        .collect();
    assert_eq!(
        seen,
        [
            (ENTERPRISE_DEFAULT, 1, SYSTEM_PRINCIPAL),
            (INDIVIDUAL_DEFAULT, 1, SYSTEM_PRINCIPAL),
        ]
    );
    // What was stored reads back as the model that was published.
    let shipped = ScorecardModel::try_from(&enterprise_default())
        .unwrap()
        .with_version(1);
    assert_eq!(listed[0].model, shipped);
    first_database.close().await;
    second_database.close().await;
}

/// Versions count up per model id; a key replays its own version, and is refused with other
/// content; a refused model writes nothing, not even its key.
async fn versions_count_up_and_keys_replay(backend: &Backend) {
    let (database, store) = open(backend).await;
    let utilities = model("utilities", &["D35"]);
    let first = store
        .publish(&utilities, &publication(), &key("k1", "a"), &admit_all)
        .await
        .unwrap();
    assert!(matches!(&first, Outcome::New(published) if published.model.version() == 1));
    let replayed = store
        .publish(&utilities, &publication(), &key("k1", "a"), &admit_all)
        .await
        .unwrap();
    let Outcome::Replayed(replayed) = replayed else {
        panic!("expected a replay");
    };
    assert_eq!(replayed.model.version(), 1);
    assert_eq!(replayed.published_at, first.into_inner().published_at);
    let reused = store
        .publish(&utilities, &publication(), &key("k1", "b"), &admit_all)
        .await;
    assert!(matches!(reused, Err(StoreError::KeyReused(_))));

    let refuse = |_: &[ScorecardModel]| {
        Err(ServiceError::failed_precondition(
            "MODEL_APPLICABILITY_CONFLICT",
            "refused",
        ))
    };
    let refused = store
        .publish(&utilities, &publication(), &key("k2", "a"), &refuse)
        .await;
    assert!(matches!(refused, Err(StoreError::Refused(_))));
    assert_eq!(versions(&store, "utilities").await, [1]);

    let second = store
        .publish(&utilities, &publication(), &key("k2", "a"), &admit_all)
        .await
        .unwrap()
        .into_inner();
    assert_eq!(second.model.version(), 2);
    let id = ModelId::parse("utilities").unwrap();
    let latest = store.model(&id, None).await.unwrap().unwrap();
    assert_eq!(latest.model.version(), 2);
    assert_eq!(latest.published_by.roles, ["ADMIN"]);
    let first_version = store.model(&id, Some(1)).await.unwrap().unwrap();
    assert_eq!(first_version.model.version(), 1);
    assert!(store.model(&id, Some(3)).await.unwrap().is_none());
    let unknown = ModelId::parse("nobody").unwrap();
    assert!(store.model(&unknown, None).await.unwrap().is_none());
    database.close().await;
}

/// Publications are queued: of two models claiming the same customers at once exactly one is
/// admitted, and concurrent versions of one model get distinct numbers.
async fn concurrent_publications_never_conflict(backend: &Backend) {
    let (first_database, first) = open(backend).await;
    let (second_database, second) = open(backend).await;
    let alpha = model("alpha", &[]);
    let beta = model("beta", &[]);
    let admit_alpha = |published: &[ScorecardModel]| {
        selection::check_applicability(&alpha, published).map_err(ServiceError::from)
    };
    let admit_beta = |published: &[ScorecardModel]| {
        selection::check_applicability(&beta, published).map_err(ServiceError::from)
    };
    let (alpha_key, beta_key) = (key("alpha", "a"), key("beta", "b"));
    let (alpha_publication, beta_publication) = (publication(), publication());
    let (alpha_outcome, beta_outcome) = tokio::join!(
        first.publish(&alpha, &alpha_publication, &alpha_key, &admit_alpha),
        second.publish(&beta, &beta_publication, &beta_key, &admit_beta),
    );
    let admitted = [alpha_outcome.is_ok(), beta_outcome.is_ok()];
    assert_eq!(admitted.iter().filter(|ok| **ok).count(), 1, "{admitted:?}");
    let refusal = alpha_outcome.err().or(beta_outcome.err()).unwrap();
    assert!(matches!(
        refusal,
        StoreError::Refused(answer) if matches!(*answer, ServiceError::FailedPrecondition {
            reason: "MODEL_APPLICABILITY_CONFLICT",
            ..
        })
    ));

    let gamma = model("gamma", &["F"]);
    let stores = [&first, &second, &first, &second];
    let attempts = stores.iter().enumerate().map(|(index, store)| {
        let gamma = &gamma;
        async move {
            let gamma_key = key(&format!("gamma-{index}"), "g");
            store
                .publish(gamma, &publication(), &gamma_key, &admit_all)
                .await
                .unwrap()
                .into_inner()
                .model
                .version()
        }
    });
    let mut numbers = futures::future::join_all(attempts).await;
    numbers.sort_unstable();
    assert_eq!(numbers, [1, 2, 3, 4]);
    first_database.close().await;
    second_database.close().await;
}

/// ListModels' order (model id, then version descending), filters and pages.
async fn lists_filter_and_page(backend: &Backend) {
    let (database, store) = open(backend).await;
    publish_shipped_models(&store).await.unwrap();
    for (index, id) in ["utilities", "utilities", "mining", "utilities"]
        .iter()
        .enumerate()
    {
        let codes: &[&str] = if *id == "mining" { &["B"] } else { &["D35"] };
        store
            .publish(
                &model(id, codes),
                &publication(),
                &key(&format!("list-{index}"), "l"),
                &admit_all,
            )
            .await
            .unwrap();
    }
    let page_through = |filter: ModelFilter| {
        let store = &store;
        async move {
            let mut seen = Vec::new();
            let mut after: Option<ModelCursor> = None;
            loop {
                let page = store.list_models(&filter, after.as_ref(), 2).await.unwrap();
                let Some(last) = page.last() else { break };
                after = Some(ModelCursor::of(&last.model));
                seen.extend(page.iter().map(|published| {
                    format!(
                        "{}/{}",
                        published.model.model_id(),
                        published.model.version()
                    )
                }));
            }
            seen
        }
    };
    assert_eq!(
        page_through(ModelFilter::default()).await,
        [
            "enterprise-default/1",
            "individual-default/1",
            "mining/1",
            "utilities/3"
        ]
    );
    assert_eq!(
        page_through(ModelFilter {
            all_versions: true,
            ..Default::default()
        })
        .await,
        [
            "enterprise-default/1",
            "individual-default/1",
            "mining/1",
            "utilities/3",
            "utilities/2",
            "utilities/1"
        ]
    );
    assert_eq!(
        page_through(ModelFilter {
            customer_kind: Some(credit_rating::domain::CustomerKind::Individual),
            ..Default::default()
        })
        .await,
        ["individual-default/1"]
    );
    let latest = store.latest_models().await.unwrap();
    let ids: Vec<String> = latest
        .iter()
        .map(|published| {
            format!(
                "{}/{}",
                published.model.model_id(),
                published.model.version()
            )
        })
        .collect();
    assert_eq!(
        ids,
        [
            "enterprise-default/1",
            "individual-default/1",
            "mining/1",
            "utilities/3"
        ]
    );
    // The proto form names the stored version.
    assert_eq!(pb::ScorecardModel::from(&latest[3].model).version, 3);
    database.close().await;
}

/// A proposal is filed once per key; approving the last step of its chain publishes the next
/// version in the same write; two conflicting proposals approved at once by two replicas
/// publish one model, and the other approval leaves its proposal waiting.
async fn approving_a_proposal_publishes_it_once(backend: &Backend) {
    let (first_database, first) = open(backend).await;
    let (second_database, second) = open(backend).await;
    let maker = publication().published_by;
    let one_step = ChainRule {
        rule_id: "policy-change".into(),
        kind: DecisionKind::PolicyChange,
        description: String::new(),
        conditions: Conditions::default(),
        steps: vec![StepRule {
            name: "a second person approves".into(),
            roles: BTreeSet::from([Role::CreditManager]),
            needs_authority: false,
            inform_only: false,
            escalate_after_seconds: None,
            escalate_to: BTreeSet::new(),
        }],
    };
    let proposal = |id: &str, model: ScorecardModel| ModelProposal {
        proposal_id: id.into(),
        document: model,
        base_version: 0,
        changes: Vec::new(),
        chain: Chain::start(&one_step, 0, maker.clone(), None),
        proposed_at: Utc::now(),
        published_version: None,
    };
    let alpha = proposal("mpr_alpha", model("alpha", &[]));
    let filed = first
        .propose_model(&alpha, &key("p-alpha", "a"))
        .await
        .unwrap();
    assert!(matches!(filed, Outcome::New(_)));
    let replay = second
        .propose_model(&alpha, &key("p-alpha", "a"))
        .await
        .unwrap();
    assert!(matches!(replay, Outcome::Replayed(ref again) if again.proposal_id == "mpr_alpha"));
    assert!(
        versions(&first, "alpha").await.is_empty(),
        "filed, not published"
    );
    let beta = proposal("mpr_beta", model("beta", &[]));
    second
        .propose_model(&beta, &key("p-beta", "b"))
        .await
        .unwrap();

    let checker = Principal {
        id: "mei-id".into(),
        person_id: "psn_mei".into(),
        name: "mei".into(),
        roles: BTreeSet::from([Role::CreditManager]),
        approval_authority: None,
    };
    let approve = |proposal: &ModelProposal, _latest: u32| {
        let mut chain = proposal.chain.clone();
        chain
            .decide_current(&checker, Verdict::Approve, "", Utc::now())
            .map_err(ServiceError::from)?;
        Ok(ModelProposal {
            chain,
            ..proposal.clone()
        })
    };
    let admit = |model: &ScorecardModel| {
        let model = model.clone();
        move |published: &[ScorecardModel]| {
            selection::check_applicability(&model, published).map_err(ServiceError::from)
        }
    };
    let (admit_alpha, admit_beta) = (admit(&alpha.document), admit(&beta.document));
    let (alpha_key, beta_key) = (key("d-alpha", "a"), key("d-beta", "b"));
    let (alpha_outcome, beta_outcome) = tokio::join!(
        first.decide_model_proposal("mpr_alpha", &alpha_key, &approve, &admit_alpha),
        second.decide_model_proposal("mpr_beta", &beta_key, &approve, &admit_beta),
    );
    let admitted = [alpha_outcome.is_ok(), beta_outcome.is_ok()];
    assert_eq!(admitted.iter().filter(|ok| **ok).count(), 1, "{admitted:?}");
    let (published_id, waiting_id) = if alpha_outcome.is_ok() {
        ("mpr_alpha", "mpr_beta")
    } else {
        ("mpr_beta", "mpr_alpha")
    };
    let published = first.model_proposal(published_id).await.unwrap().unwrap();
    assert_eq!(published.published_version, Some(1));
    assert_eq!(published.status(), VersionStatus::Published);
    let waiting = second.model_proposal(waiting_id).await.unwrap().unwrap();
    assert_eq!(waiting.status(), VersionStatus::Proposed);
    assert_eq!(waiting.published_version, None);
    let listed = first
        .model_proposals(
            &ProposalFilter {
                status: Some(VersionStatus::Proposed),
                ..Default::default()
            },
            None,
            10,
        )
        .await
        .unwrap();
    let ids: Vec<&str> = listed.iter().map(|p| p.proposal_id.as_str()).collect();
    assert_eq!(ids, [waiting_id]);
    first_database.close().await;
    second_database.close().await;
}

macro_rules! on_both_backends {
    ($($scenario:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test]
                async fn $scenario() {
                    let data_dir = tempfile::tempdir().unwrap();
                    super::$scenario(&credit_runtime::config::Backend::Embedded {
                        data_dir: data_dir.path().to_owned(),
                    })
                    .await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test]
                async fn $scenario() {
                    let database = credit_runtime::testing::TestDatabase::create().await;
                    super::$scenario(&database.backend()).await;
                    database.drop_database().await;
                }
            )*
        }
    };
}

on_both_backends!(
    shipped_models_are_published_once,
    versions_count_up_and_keys_replay,
    concurrent_publications_never_conflict,
    lists_filter_and_page,
    approving_a_proposal_publishes_it_once,
);
