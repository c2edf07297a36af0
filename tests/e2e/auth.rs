//! Every call needs a valid token, and the caller's roles must permit the RPC.

use chrono::{Duration, Utc};
use credit_core::Role;
use credit_e2e_tests::{TestSuite, with_token};
use credit_proto::v1::intake_service_client::IntakeServiceClient;
use credit_proto::v1::limit_service_client::LimitServiceClient;
use credit_proto::v1::{CreateCustomerRequest, GetCustomerRequest};
use credit_runtime::identity::NewPrincipal;
use secrecy::ExposeSecret;
use tonic::Code;
use tonic_types::StatusExt;

fn reason(status: &tonic::Status) -> String {
    status
        .get_error_details()
        .error_info()
        .map(|info| info.reason.clone())
        .unwrap_or_default()
}

#[tokio::test]
async fn calls_without_a_valid_token_are_unauthenticated() {
    let suite = TestSuite::embedded().await;
    let mut client = IntakeServiceClient::new(suite.channel.clone());

    let missing = client
        .get_customer(GetCustomerRequest {
            customer_id: "c1".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(missing.code(), Code::Unauthenticated);
    assert_eq!(reason(&missing), "MISSING_TOKEN");

    let wrong = client
        .get_customer(with_token(
            GetCustomerRequest {
                customer_id: "c1".into(),
            },
            "cst_made-up",
        ))
        .await
        .unwrap_err();
    assert_eq!(wrong.code(), Code::Unauthenticated);
    assert_eq!(reason(&wrong), "INVALID_TOKEN");

    let not_ours = client
        .get_customer(with_token(
            GetCustomerRequest {
                customer_id: "c1".into(),
            },
            "eyJhbGciOi.something.else",
        ))
        .await
        .unwrap_err();
    assert_eq!(not_ours.code(), Code::Unauthenticated);
    suite.stop().await;
}

#[tokio::test]
async fn the_admin_token_of_the_first_start_reaches_every_service() {
    let suite = TestSuite::embedded().await;
    // The call got past authentication and access control into the service, which looked
    // for the customer, or checked the order (an empty one is INVALID_ARGUMENT).
    let status = IntakeServiceClient::new(suite.channel.clone())
        .get_customer(with_token(
            GetCustomerRequest {
                customer_id: "c1".into(),
            },
            &suite.admin_token,
        ))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::NotFound);
    let status = LimitServiceClient::new(suite.channel.clone())
        .authorize(with_token(Default::default(), &suite.admin_token))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument);
    suite.stop().await;
}

#[tokio::test]
async fn roles_that_may_not_call_an_rpc_are_denied() {
    let suite = TestSuite::production(credit_suite::ServiceSelection::all()).await;
    let order_entry = suite.issue_token("erp-orders", &[Role::OrderEntry]).await;
    let analyst = suite.issue_token("ana", &[Role::Analyst]).await;
    let mut intake = IntakeServiceClient::new(suite.channel.clone());
    let mut limits = LimitServiceClient::new(suite.channel.clone());

    // Order entry may look customers up but not register them.
    let denied = intake
        .create_customer(with_token(CreateCustomerRequest::default(), &order_entry))
        .await
        .unwrap_err();
    assert_eq!(denied.code(), Code::PermissionDenied);
    assert_eq!(reason(&denied), "ROLE_NOT_PERMITTED");
    let allowed = intake
        .get_customer(with_token(
            GetCustomerRequest {
                customer_id: "c1".into(),
            },
            &order_entry,
        ))
        .await
        .unwrap_err();
    assert_eq!(allowed.code(), Code::NotFound);

    // An analyst may register customers but not authorize orders.
    let allowed = intake
        .create_customer(with_token(CreateCustomerRequest::default(), &analyst))
        .await
        .unwrap_err();
    assert_eq!(allowed.code(), Code::InvalidArgument);
    let denied = limits
        .authorize(with_token(Default::default(), &analyst))
        .await
        .unwrap_err();
    assert_eq!(denied.code(), Code::PermissionDenied);
    let allowed = limits
        .authorize(with_token(Default::default(), &order_entry))
        .await
        .unwrap_err();
    assert_eq!(allowed.code(), Code::InvalidArgument);
    suite.stop().await;
}

#[tokio::test]
async fn expired_and_revoked_tokens_are_unauthenticated() {
    let suite = TestSuite::embedded().await;
    let mut client = IntakeServiceClient::new(suite.channel.clone());
    let get = |token: &str| {
        with_token(
            GetCustomerRequest {
                customer_id: "c1".into(),
            },
            token,
        )
    };
    let expired = suite
        .issue(
            &NewPrincipal::new("ana", [Role::Analyst])
                .expiring_at(Some(Utc::now() - Duration::minutes(1))),
        )
        .await;
    let refused = client
        .get_customer(get(expired.token.expose_secret()))
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::Unauthenticated);
    assert_eq!(reason(&refused), "INVALID_TOKEN");

    let revoked = suite
        .issue(&NewPrincipal::new("ana", [Role::Analyst]))
        .await;
    let store = suite.token_store().await;
    assert!(
        store
            .revoke(&revoked.principal_id, Utc::now())
            .await
            .unwrap()
    );
    let refused = client
        .get_customer(get(revoked.token.expose_secret()))
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::Unauthenticated);

    // The same person's live token still works (NOT_FOUND: past authentication).
    let live = suite.issue_token("ana", &[Role::Analyst]).await;
    let found = client.get_customer(get(&live)).await.unwrap_err();
    assert_eq!(found.code(), Code::NotFound);
    suite.stop().await;
}

#[tokio::test]
async fn a_caller_over_its_budget_is_refused_while_others_are_served() {
    let suite = TestSuite::embedded_with(|settings| {
        settings.rate_limit = Some(credit_runtime::config::RateLimit {
            per_second: 1,
            burst: 5,
        });
    })
    .await;
    let mut client = IntakeServiceClient::new(suite.channel.clone());
    let get = |token: &str| {
        with_token(
            GetCustomerRequest {
                customer_id: "c1".into(),
            },
            token,
        )
    };
    let busy = suite.issue_token("busy", &[Role::Analyst]).await;
    // The burst is served (NOT_FOUND: the call reached the service) ...
    for _ in 0..5 {
        let served = client.get_customer(get(&busy)).await.unwrap_err();
        assert_eq!(served.code(), Code::NotFound);
    }
    // ... then the caller is refused with a delay to wait, with any of its tokens ...
    let refused = client.get_customer(get(&busy)).await.unwrap_err();
    assert_eq!(refused.code(), Code::ResourceExhausted);
    assert_eq!(reason(&refused), "RATE_LIMITED");
    let details = refused.get_error_details();
    let delay = details.retry_info().unwrap().retry_delay;
    assert!(delay.is_some_and(|delay| delay > std::time::Duration::ZERO));
    let second_token = suite.issue_token("busy", &[Role::Analyst]).await;
    let refused = client.get_customer(get(&second_token)).await.unwrap_err();
    assert_eq!(refused.code(), Code::ResourceExhausted);
    // ... while another caller is served.
    let quiet = suite.issue_token("quiet", &[Role::Analyst]).await;
    let served = client.get_customer(get(&quiet)).await.unwrap_err();
    assert_eq!(served.code(), Code::NotFound);
    suite.stop().await;
}

#[tokio::test]
async fn the_service_role_reads_what_peers_need_and_nothing_else() {
    let suite = TestSuite::embedded().await;
    let service = suite.issue_token("svc-peers", &[Role::Service]).await;
    let mut intake = IntakeServiceClient::new(suite.channel.clone());
    let read = intake
        .get_customer(with_token(
            GetCustomerRequest {
                customer_id: "c1".into(),
            },
            &service,
        ))
        .await
        .unwrap_err();
    assert_eq!(read.code(), Code::NotFound, "a peer may read a customer");
    let write = intake
        .create_customer(with_token(CreateCustomerRequest::default(), &service))
        .await
        .unwrap_err();
    assert_eq!(write.code(), Code::PermissionDenied);
    let authorize = LimitServiceClient::new(suite.channel.clone())
        .authorize(with_token(Default::default(), &service))
        .await
        .unwrap_err();
    assert_eq!(authorize.code(), Code::PermissionDenied);
    suite.stop().await;
}

#[tokio::test]
async fn administrators_manage_tokens_over_grpc_and_a_revocation_takes_effect_at_once() {
    use credit_proto::v1 as pb;
    use credit_proto::v1::token_service_client::TokenServiceClient;

    let suite = TestSuite::embedded().await;
    let mut tokens = TokenServiceClient::new(suite.channel.clone());
    let mut intake = IntakeServiceClient::new(suite.channel.clone());
    let get = |token: &str| {
        with_token(
            GetCustomerRequest {
                customer_id: "c1".into(),
            },
            token,
        )
    };
    let created = tokens
        .create_token(with_token(
            pb::CreateTokenRequest {
                name: "ana".into(),
                roles: vec![pb::Role::Analyst as i32],
                expires_in_days: 30,
                ..Default::default()
            },
            &suite.admin_token,
        ))
        .await
        .unwrap()
        .into_inner();
    let token = created.token.unwrap();
    assert_eq!(token.state(), pb::TokenState::Active);
    assert!(token.person_id.starts_with("psn_"));
    // The token works, and is now in this process's cache.
    let served = intake.get_customer(get(&created.secret)).await.unwrap_err();
    assert_eq!(served.code(), Code::NotFound);

    // Rotation without grace: the old token is refused at once, the new one works.
    let rotated = tokens
        .rotate_token(with_token(
            pb::RotateTokenRequest {
                token_id: token.token_id.clone(),
                grace_minutes: 0,
            },
            &suite.admin_token,
        ))
        .await
        .unwrap()
        .into_inner();
    let new_token = rotated.token.unwrap();
    assert_eq!(new_token.person_id, token.person_id);
    let old = intake.get_customer(get(&created.secret)).await.unwrap_err();
    assert_eq!(old.code(), Code::Unauthenticated);
    let new = intake.get_customer(get(&rotated.secret)).await.unwrap_err();
    assert_eq!(new.code(), Code::NotFound);

    // Revocation: refused at once on this process although the token was just used.
    tokens
        .revoke_token(with_token(
            pb::RevokeTokenRequest {
                token_id: new_token.token_id.clone(),
            },
            &suite.admin_token,
        ))
        .await
        .unwrap();
    let revoked = intake.get_customer(get(&rotated.secret)).await.unwrap_err();
    assert_eq!(revoked.code(), Code::Unauthenticated);
    let listed = tokens
        .list_tokens(with_token(pb::ListTokensRequest {}, &suite.admin_token))
        .await
        .unwrap()
        .into_inner()
        .tokens;
    let states: Vec<(String, pb::TokenState)> = listed
        .iter()
        .filter(|listed| listed.name == "ana")
        .map(|listed| (listed.token_id.clone(), listed.state()))
        .collect();
    assert_eq!(
        states,
        [
            (token.token_id.clone(), pb::TokenState::Revoked),
            (new_token.token_id.clone(), pb::TokenState::Revoked),
        ]
    );

    // Only an administrator; bad input named field by field; unknown ids NOT_FOUND.
    let analyst = suite.issue_token("ana", &[Role::Analyst]).await;
    let denied = tokens
        .list_tokens(with_token(pb::ListTokensRequest {}, &analyst))
        .await
        .unwrap_err();
    assert_eq!(denied.code(), Code::PermissionDenied);
    let bad = tokens
        .create_token(with_token(
            pb::CreateTokenRequest {
                expires_in_days: 5000,
                ..Default::default()
            },
            &suite.admin_token,
        ))
        .await
        .unwrap_err();
    assert_eq!(bad.code(), Code::InvalidArgument);
    let fields: Vec<String> = bad
        .get_error_details()
        .bad_request()
        .unwrap()
        .field_violations
        .iter()
        .map(|violation| violation.field.clone())
        .collect();
    assert_eq!(fields, ["name", "roles", "expires_in_days"]);
    let unknown = tokens
        .revoke_token(with_token(
            pb::RevokeTokenRequest {
                token_id: "prn_nobody".into(),
            },
            &suite.admin_token,
        ))
        .await
        .unwrap_err();
    assert_eq!(unknown.code(), Code::NotFound);
    suite.stop().await;
}
