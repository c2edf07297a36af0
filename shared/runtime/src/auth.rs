//! The authentication and access layer in front of every service.
//!
//! Reads `authorization: Bearer <token>`, resolves the principal, spends one call of the
//! person's budget (see [`crate::admission`]), checks the service's access policy for the method, and hands the principal to the handler in the request extensions.
//! Health and reflection are open: Kubernetes probes and grpcurl carry no token.

use std::collections::HashMap;
use std::sync::Arc;
use std::task::{Context, Poll};

use credit_core::{AccessPolicy, Principal, ServiceError};
use futures::future::BoxFuture;
use secrecy::SecretString;
use tonic::body::Body;
use tower::{Layer, Service};

use crate::admission::PersonRateLimiter;
use crate::config::RateLimit;
use crate::identity::Authenticator;
use crate::rpc_path::RpcPath;

#[derive(Debug)]
struct AuthState {
    authenticator: Authenticator,
    /// Each person's call budget; `None` when the limit is off.
    rate_limiter: Option<PersonRateLimiter>,
    /// Access policy of each served service, by full service name.
    policies: HashMap<&'static str, AccessPolicy>,
}

#[derive(Debug, Clone)]
pub struct AuthLayer {
    state: Arc<AuthState>,
}

impl AuthLayer {
    pub fn new(
        authenticator: Authenticator,
        policies: impl IntoIterator<Item = AccessPolicy>,
        rate_limit: Option<RateLimit>,
    ) -> Self {
        let policies = policies
            .into_iter()
            .map(|policy| (policy.service(), policy))
            .collect();
        Self {
            state: Arc::new(AuthState {
                authenticator,
                rate_limiter: rate_limit.and_then(PersonRateLimiter::new),
                policies,
            }),
        }
    }
}

impl<S> Layer<S> for AuthLayer {
    type Service = AuthService<S>;
    fn layer(&self, inner: S) -> Self::Service {
        AuthService {
            inner,
            state: self.state.clone(),
        }
    }
}

#[derive(Debug, Clone)]
pub struct AuthService<S> {
    inner: S,
    state: Arc<AuthState>,
}

impl AuthState {
    /// Decides from the call's path and token (both read before any await: the request body
    /// is not `Sync`) whether it may proceed, and as whom.
    async fn admit(
        &self,
        path: RpcPath,
        token: Option<SecretString>,
    ) -> Result<Option<Principal>, ServiceError> {
        if path.is_infrastructure() {
            return Ok(None);
        }
        let token = token.ok_or(ServiceError::Unauthenticated {
            reason: "MISSING_TOKEN",
            message: "this call needs an 'authorization: Bearer <token>' header".to_owned(),
        })?;
        let principal = self
            .authenticator
            .authenticate(&token)
            .await
            .map_err(|error| ServiceError::unavailable("cannot check the token now; retry", error))?
            .ok_or(ServiceError::Unauthenticated {
                reason: "INVALID_TOKEN",
                message: "the bearer token is unknown, expired or revoked".to_owned(),
            })?;
        if let Some(limiter) = &self.rate_limiter {
            limiter.admit(&principal)?;
        }
        // A path outside the contract gets past here only to be answered UNIMPLEMENTED.
        if let Some(policy) = self.policies.get(path.service.as_str())
            && !policy.allows(&principal, &path.method)
        {
            tracing::info!(principal = %principal.name, service = %path.service, method = %path.method, "call refused by access policy");
            return Err(ServiceError::permission_denied(
                "ROLE_NOT_PERMITTED",
                format!(
                    "the roles of '{}' do not permit {}",
                    principal.name, path.method
                ),
            ));
        }
        Ok(Some(principal))
    }
}

fn bearer_token(headers: &http::HeaderMap) -> Option<SecretString> {
    let value = headers.get(http::header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("bearer") {
        return None;
    }
    let token = token.trim();
    (!token.is_empty()).then(|| SecretString::from(token.to_owned()))
}

impl<S> Service<http::Request<Body>> for AuthService<S>
where
    S: Service<http::Request<Body>, Response = http::Response<Body>> + Clone + Send + 'static,
    S::Future: Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = BoxFuture<'static, Result<Self::Response, Self::Error>>;

    fn poll_ready(&mut self, context: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(context)
    }

    fn call(&mut self, mut request: http::Request<Body>) -> Self::Future {
        // The clone that was polled ready is the one that must be called (tower's contract).
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let state = self.state.clone();
        let path = RpcPath::parse(request.uri().path());
        let token = bearer_token(request.headers());
        Box::pin(async move {
            match state.admit(path, token).await {
                Ok(principal) => {
                    if let Some(principal) = principal {
                        request.extensions_mut().insert(principal);
                    }
                    inner.call(request).await
                }
                Err(error) => Ok(tonic::Status::from(error).into_http()),
            }
        })
    }
}

/// The principal of a call, put there by [`AuthLayer`]. Handlers of `credit.v1` services
/// always have one; its absence means the layer is missing, which is a bug.
pub fn principal<T>(request: &tonic::Request<T>) -> Result<&Principal, tonic::Status> {
    request.extensions().get::<Principal>().ok_or_else(|| {
        tonic::Status::from(ServiceError::internal(
            "no principal on an authenticated call",
        ))
    })
}
