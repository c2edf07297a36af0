//! Per-call deadlines: every call gets the configured time (`CREDIT_REQUEST_TIMEOUT_MS`)
//! unless its method is known to run long (a bulk import), and a shorter `grpc-timeout` sent
//! by the caller still wins (tonic applies that one itself).

use std::collections::HashMap;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use futures::future::BoxFuture;
use tonic::body::Body;
use tower::{Layer, Service};

#[derive(Debug, Clone)]
pub struct DeadlineLayer {
    default: Duration,
    /// Longer deadlines by path, `/credit.v1.IntakeService/ImportCustomers`.
    long_running: Arc<HashMap<String, Duration>>,
}

impl DeadlineLayer {
    pub fn new(default: Duration, long_running: HashMap<String, Duration>) -> Self {
        Self {
            default,
            long_running: Arc::new(long_running),
        }
    }
}

impl<S> Layer<S> for DeadlineLayer {
    type Service = DeadlineService<S>;
    fn layer(&self, inner: S) -> Self::Service {
        DeadlineService {
            inner,
            layer: self.clone(),
        }
    }
}

#[derive(Debug, Clone)]
pub struct DeadlineService<S> {
    inner: S,
    layer: DeadlineLayer,
}

impl<S> Service<http::Request<Body>> for DeadlineService<S>
where
    S: Service<http::Request<Body>, Response = http::Response<Body>> + Send,
    S::Future: Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = BoxFuture<'static, Result<Self::Response, Self::Error>>;

    fn poll_ready(&mut self, context: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(context)
    }

    fn call(&mut self, request: http::Request<Body>) -> Self::Future {
        let deadline = self
            .layer
            .long_running
            .get(request.uri().path())
            .copied()
            .unwrap_or(self.layer.default);
        let response = self.inner.call(request);
        Box::pin(async move {
            match tokio::time::timeout(deadline, response).await {
                Ok(result) => result,
                Err(_) => Ok(tonic::Status::deadline_exceeded(format!(
                    "the call did not finish within its deadline of {} ms",
                    deadline.as_millis()
                ))
                .into_http()),
            }
        })
    }
}
