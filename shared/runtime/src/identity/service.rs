//! `credit.v1.TokenService`: the token lifecycle as administrators' RPCs, the same as
//! `credit-suite token …` on the command line. Every process serves it on the identity store.

use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};
use credit_core::{AccessPolicy, Money, Role, ServiceError, Violations, required_text};
use credit_proto::service_names::TOKENS;
use credit_proto::time::timestamp;
use credit_proto::v1 as pb;
use credit_proto::v1::token_service_server::{TokenService, TokenServiceServer};
use secrecy::ExposeSecret;
use tonic::{Request, Response, Status};

use super::{
    Authenticator, DEFAULT_TOKEN_LIFETIME_DAYS, IdentityError, MAX_TOKEN_LIFETIME_DAYS,
    NewPrincipal, TokenRecord, TokenStore, issue_token, rotate_token,
};
use crate::auth::principal;
use crate::sql::storage_error;

/// Tokens are keys to everything: only administrators manage them.
const ADMIN_ONLY: &[Role] = &[];
/// The longest grace a rotated token may keep: a week.
const MAX_GRACE_MINUTES: i32 = 7 * 24 * 60;

/// Who may call which RPC. ADMIN may call all of them.
pub fn access_policy() -> AccessPolicy {
    AccessPolicy::new(
        TOKENS,
        &[
            ("CreateToken", ADMIN_ONLY),
            ("ListTokens", ADMIN_ONLY),
            ("RevokeToken", ADMIN_ONLY),
            ("RotateToken", ADMIN_ONLY),
        ],
    )
}

/// The service, on the process's identity store; revocations made through it are forgotten by
/// this process's `authenticator` at once.
pub fn server(
    store: Arc<dyn TokenStore>,
    authenticator: Authenticator,
) -> TokenServiceServer<TokenApi> {
    TokenServiceServer::new(TokenApi {
        store,
        authenticator,
    })
}

#[derive(Debug, Clone)]
pub struct TokenApi {
    store: Arc<dyn TokenStore>,
    authenticator: Authenticator,
}

type Answer<T> = Result<Response<T>, Status>;

fn identity_error(error: IdentityError) -> ServiceError {
    match error {
        IdentityError::Store(error) => storage_error(error),
        IdentityError::UnknownToken(id) => ServiceError::not_found("token", id),
        IdentityError::TokenNotActive(id) => ServiceError::failed_precondition(
            "TOKEN_NOT_ACTIVE",
            format!("token '{id}' is revoked or expired"),
        ),
        corrupt @ IdentityError::Corrupt(_) => ServiceError::internal(corrupt),
    }
}

fn token_message(record: &TokenRecord, now: DateTime<Utc>) -> pb::Token {
    pb::Token {
        token_id: record.id.clone(),
        person_id: record.person_id.clone(),
        name: record.name.clone(),
        roles: record
            .roles
            .iter()
            .filter_map(|role| pb::Role::from_str_name(&format!("ROLE_{}", role.as_str())))
            .map(|role| role as i32)
            .collect(),
        approval_authority: record.approval_authority.map(Into::into),
        created_at: Some(timestamp(record.created_at)),
        expires_at: record.expires_at.map(timestamp),
        last_used_at: record.last_used_at.map(timestamp),
        revoked_at: record.revoked_at.map(timestamp),
        state: match record.state(now) {
            "active" => pb::TokenState::Active,
            "expired" => pb::TokenState::Expired,
            _ => pb::TokenState::Revoked,
        } as i32,
    }
}

/// The request as a token to issue, every problem named.
fn new_principal(request: &pb::CreateTokenRequest) -> Result<NewPrincipal, ServiceError> {
    let mut violations = Violations::default();
    let name = match required_text("name", &request.name, 200) {
        Ok(name) => Some(name),
        Err(ServiceError::InvalidArgument(found)) => {
            for violation in found {
                violations.add(violation.field, violation.description);
            }
            None
        }
        Err(other) => return Err(other),
    };
    let mut roles = Vec::new();
    for (index, role) in request.roles.iter().enumerate() {
        let parsed = pb::Role::try_from(*role)
            .ok()
            .and_then(|role| role.as_str_name().strip_prefix("ROLE_"))
            .and_then(|name| name.parse::<Role>().ok());
        match parsed {
            Some(role) => roles.push(role),
            None => violations.add(format!("roles[{index}]"), "is not a role"),
        }
    }
    if request.roles.is_empty() {
        violations.add("roles", "at least one role is required");
    }
    let authority = match &request.approval_authority {
        None => None,
        Some(money) => {
            match Money::parse(&money.amount, &money.currency).and_then(Money::non_negative) {
                Ok(money) => Some(money),
                Err(error) => {
                    violations.add("approval_authority", error.to_string());
                    None
                }
            }
        }
    };
    let days = match request.expires_in_days {
        0 => DEFAULT_TOKEN_LIFETIME_DAYS,
        days if (1..=MAX_TOKEN_LIFETIME_DAYS).contains(&i64::from(days)) => i64::from(days),
        _ => {
            violations.add(
                "expires_in_days",
                format!("must be from 1 to {MAX_TOKEN_LIFETIME_DAYS} (0: the default of {DEFAULT_TOKEN_LIFETIME_DAYS})"),
            );
            DEFAULT_TOKEN_LIFETIME_DAYS
        }
    };
    violations.finish()?;
    let name = name.ok_or_else(|| ServiceError::internal("a checked name is missing"))?;
    Ok(NewPrincipal::new(name, roles)
        .with_authority(authority)
        .expiring_at(Some(Utc::now() + Duration::days(days))))
}

fn required_token_id(token_id: &str) -> Result<String, ServiceError> {
    required_text("token_id", token_id, 100)
}

#[tonic::async_trait]
impl TokenService for TokenApi {
    async fn create_token(
        &self,
        request: Request<pb::CreateTokenRequest>,
    ) -> Answer<pb::CreateTokenResponse> {
        let admin = principal(&request)?.name.clone();
        let principal = new_principal(request.get_ref())?;
        let issued = issue_token(self.store.as_ref(), &principal)
            .await
            .map_err(identity_error)?;
        let record = self
            .store
            .get(&issued.principal_id)
            .await
            .map_err(identity_error)?
            .ok_or_else(|| ServiceError::internal("a token just issued is missing"))?;
        tracing::info!(%admin, token_id = %issued.principal_id, holder = %principal.name, "token issued");
        Ok(Response::new(pb::CreateTokenResponse {
            token: Some(token_message(&record, Utc::now())),
            secret: issued.token.expose_secret().to_owned(),
        }))
    }

    async fn list_tokens(
        &self,
        _request: Request<pb::ListTokensRequest>,
    ) -> Answer<pb::ListTokensResponse> {
        let now = Utc::now();
        let tokens = self.store.list().await.map_err(identity_error)?;
        Ok(Response::new(pb::ListTokensResponse {
            tokens: tokens
                .iter()
                .map(|token| token_message(token, now))
                .collect(),
        }))
    }

    async fn revoke_token(
        &self,
        request: Request<pb::RevokeTokenRequest>,
    ) -> Answer<pb::RevokeTokenResponse> {
        let admin = principal(&request)?.name.clone();
        let token_id = required_token_id(&request.get_ref().token_id)?;
        let revoked = self
            .store
            .revoke(&token_id, Utc::now())
            .await
            .map_err(identity_error)?;
        let record = self
            .store
            .get(&token_id)
            .await
            .map_err(identity_error)?
            .ok_or_else(|| identity_error(IdentityError::UnknownToken(token_id.clone())))?;
        if !revoked {
            return Err(identity_error(IdentityError::TokenNotActive(token_id)).into());
        }
        self.authenticator.forget_token(&token_id);
        tracing::info!(%admin, %token_id, "token revoked");
        Ok(Response::new(pb::RevokeTokenResponse {
            token: Some(token_message(&record, Utc::now())),
        }))
    }

    async fn rotate_token(
        &self,
        request: Request<pb::RotateTokenRequest>,
    ) -> Answer<pb::RotateTokenResponse> {
        let admin = principal(&request)?.name.clone();
        let request = request.into_inner();
        let token_id = required_token_id(&request.token_id);
        let grace = if (0..=MAX_GRACE_MINUTES).contains(&request.grace_minutes) {
            Ok(Duration::minutes(i64::from(request.grace_minutes)))
        } else {
            Err(ServiceError::invalid(
                "grace_minutes",
                format!("must be from 0 to {MAX_GRACE_MINUTES}"),
            ))
        };
        let (token_id, grace) = credit_core::both(token_id, grace)?;
        let issued = rotate_token(self.store.as_ref(), &token_id, grace)
            .await
            .map_err(identity_error)?;
        if grace.is_zero() {
            self.authenticator.forget_token(&token_id);
        }
        let record = self
            .store
            .get(&issued.principal_id)
            .await
            .map_err(identity_error)?
            .ok_or_else(|| ServiceError::internal("a token just issued is missing"))?;
        tracing::info!(%admin, old = %token_id, new = %issued.principal_id, "token rotated");
        Ok(Response::new(pb::RotateTokenResponse {
            token: Some(token_message(&record, Utc::now())),
            secret: issued.token.expose_secret().to_owned(),
        }))
    }
}
