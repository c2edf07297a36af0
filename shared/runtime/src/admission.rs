//! Who gets in when there is too much to do: load shedding in front of everything (including
//! authentication), and a call budget per person right after it.
//!
//! A process serves `CREDIT_CONCURRENCY_LIMIT` calls at once; up to `CREDIT_QUEUE_LIMIT`
//! more wait for a slot, and anything beyond is answered at once with RESOURCE_EXHAUSTED
//! and a retry delay instead of queueing until its deadline. Health checks and reflection
//! are never shed: a busy process must not look dead to Kubernetes. Each person (all of their
//! tokens together) may make `CREDIT_RATE_LIMIT_PER_SECOND` calls a second with bursts up to
//! `CREDIT_RATE_LIMIT_BURST`; a caller over budget is refused while others are served.

use std::num::NonZeroU32;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use credit_core::{Principal, ServiceError};
use futures::future::BoxFuture;
use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use tokio::sync::Semaphore;
use tonic::body::Body;
use tower::{Layer, Service};

use crate::config::RateLimit;
use crate::rpc_path::RpcPath;

/// How long a shed caller is told to wait before trying again.
const SHED_RETRY_AFTER: Duration = Duration::from_secs(1);

#[derive(Debug)]
struct Slots {
    running: Arc<Semaphore>,
    waiting: AtomicUsize,
    queue_limit: usize,
}

/// Bounds the calls in flight and sheds what would wait beyond the queue limit.
#[derive(Debug, Clone)]
pub struct AdmissionLayer {
    slots: Arc<Slots>,
}

impl AdmissionLayer {
    pub fn new(concurrency_limit: usize, queue_limit: usize) -> Self {
        Self {
            slots: Arc::new(Slots {
                running: Arc::new(Semaphore::new(concurrency_limit)),
                waiting: AtomicUsize::new(0),
                queue_limit,
            }),
        }
    }
}

impl<S> Layer<S> for AdmissionLayer {
    type Service = Admission<S>;
    fn layer(&self, inner: S) -> Self::Service {
        Admission {
            inner,
            slots: self.slots.clone(),
        }
    }
}

#[derive(Debug, Clone)]
pub struct Admission<S> {
    inner: S,
    slots: Arc<Slots>,
}

/// Counts a caller waiting for a slot for as long as it waits (also when its call is dropped).
struct Waiting<'a>(&'a AtomicUsize);

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

impl<S> Service<http::Request<Body>> for Admission<S>
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

    fn call(&mut self, request: http::Request<Body>) -> Self::Future {
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        if RpcPath::parse(request.uri().path()).is_infrastructure() {
            return Box::pin(inner.call(request));
        }
        let slots = self.slots.clone();
        Box::pin(async move {
            let _permit = match slots.running.clone().try_acquire_owned() {
                Ok(permit) => permit,
                Err(_) => {
                    if slots.waiting.fetch_add(1, Ordering::AcqRel) >= slots.queue_limit {
                        slots.waiting.fetch_sub(1, Ordering::AcqRel);
                        tracing::warn!("over capacity: call shed");
                        return Ok(tonic::Status::from(ServiceError::ResourceExhausted {
                            reason: "OVERLOADED",
                            message: "the service is at capacity; retry shortly".to_owned(),
                            retry_after: SHED_RETRY_AFTER,
                        })
                        .into_http());
                    }
                    let _waiting = Waiting(&slots.waiting);
                    match slots.running.clone().acquire_owned().await {
                        Ok(permit) => permit,
                        // The semaphore is never closed.
                        Err(closed) => {
                            return Ok(
                                tonic::Status::from(ServiceError::internal(closed)).into_http()
                            );
                        }
                    }
                }
            };
            inner.call(request).await
        })
    }
}

/// The call budget of each person, checked after authentication.
#[derive(Debug)]
pub struct PersonRateLimiter {
    limiter: DefaultKeyedRateLimiter<String>,
}

impl PersonRateLimiter {
    pub fn new(limit: RateLimit) -> Option<Self> {
        let per_second = NonZeroU32::new(limit.per_second)?;
        let burst = NonZeroU32::new(limit.burst).unwrap_or(per_second);
        Some(Self {
            limiter: RateLimiter::keyed(Quota::per_second(per_second).allow_burst(burst)),
        })
    }

    /// Spends one call of `principal`'s budget, or says how long until there is one. The
    /// suite's own services (persons `system:…`) are not limited: their calls are the work of
    /// callers already counted.
    pub fn admit(&self, principal: &Principal) -> Result<(), ServiceError> {
        if principal.person_id.starts_with("system:") {
            return Ok(());
        }
        self.limiter
            .check_key(&principal.person_id)
            .map_err(|not_until| {
                let retry_after = not_until.wait_time_from(DefaultClock::default().now());
                tracing::info!(principal = %principal.name, "over its call budget: refused");
                ServiceError::ResourceExhausted {
                    reason: "RATE_LIMITED",
                    message: format!(
                        "'{}' is over its call budget; retry after {} ms",
                        principal.name,
                        retry_after.as_millis().max(1)
                    ),
                    retry_after,
                }
            })
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;

    fn person(person_id: &str) -> Principal {
        Principal {
            id: format!("prn_{person_id}"),
            person_id: person_id.to_owned(),
            name: person_id.to_owned(),
            roles: BTreeSet::new(),
            approval_authority: None,
        }
    }

    #[test]
    fn a_person_over_budget_is_refused_while_others_are_served() {
        let limiter = PersonRateLimiter::new(RateLimit {
            per_second: 1,
            burst: 3,
        })
        .unwrap();
        let busy = person("psn_busy");
        for _ in 0..3 {
            assert!(limiter.admit(&busy).is_ok());
        }
        let refused = limiter.admit(&busy).unwrap_err();
        let ServiceError::ResourceExhausted {
            reason,
            retry_after,
            ..
        } = refused
        else {
            unreachable!("a refusal is RESOURCE_EXHAUSTED")
        };
        assert_eq!(reason, "RATE_LIMITED");
        assert!(retry_after > Duration::ZERO && retry_after <= Duration::from_secs(1));
        // Another token of the same person shares the budget; another person has their own.
        let same_person = Principal {
            id: "prn_other_token".into(),
            ..busy.clone()
        };
        assert!(limiter.admit(&same_person).is_err());
        assert!(limiter.admit(&person("psn_quiet")).is_ok());
        assert!(limiter.admit(&person("system:suite")).is_ok());
    }

    /// A call to `path` through `service`, answered with its gRPC status code.
    async fn call_status<S>(service: &mut S, path: &str) -> String
    where
        S: Service<http::Request<Body>, Response = http::Response<Body>>,
        S::Error: std::fmt::Debug,
    {
        let request = http::Request::builder()
            .uri(format!("http://suite{path}"))
            .body(Body::empty())
            .unwrap();
        let response = service.call(request).await.unwrap();
        response
            .headers()
            .get("grpc-status")
            .map(|code| code.to_str().unwrap().to_owned())
            .unwrap_or_else(|| "0".to_owned())
    }

    #[tokio::test]
    async fn beyond_the_running_and_waiting_calls_a_call_is_shed_at_once() {
        // Calls to the inner service wait until released: one runs, one waits, the third is
        // shed; health checks pass whatever the load.
        let release = Arc::new(tokio::sync::Notify::new());
        let gate = release.clone();
        let inner = tower::service_fn(move |request: http::Request<Body>| {
            let gate = gate.clone();
            async move {
                if !request.uri().path().starts_with("/grpc.health") {
                    gate.notified().await;
                }
                Ok::<_, std::convert::Infallible>(http::Response::new(Body::empty()))
            }
        });
        let mut service = AdmissionLayer::new(1, 1).layer(inner);
        let path = "/credit.v1.IntakeService/GetCustomer";
        let mut running = service.clone();
        let first = tokio::spawn(async move { call_status(&mut running, path).await });
        let mut waiting = service.clone();
        let second = tokio::spawn(async move { call_status(&mut waiting, path).await });
        while service.slots.waiting.load(Ordering::Acquire) == 0 {
            tokio::task::yield_now().await;
        }
        assert_eq!(
            call_status(&mut service, path).await,
            (tonic::Code::ResourceExhausted as i32).to_string()
        );
        assert_eq!(
            call_status(&mut service, "/grpc.health.v1.Health/Check").await,
            "0"
        );
        release.notify_one();
        assert_eq!(first.await.unwrap(), "0");
        release.notify_one();
        assert_eq!(second.await.unwrap(), "0");
        assert_eq!(service.slots.waiting.load(Ordering::Acquire), 0);
    }

    #[test]
    fn no_budget_means_no_limit() {
        assert!(
            PersonRateLimiter::new(RateLimit {
                per_second: 0,
                burst: 0
            })
            .is_none()
        );
    }
}
