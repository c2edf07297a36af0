//! Prometheus metrics: per-RPC request count and latency, and the event pipeline's figures
//! ([`EventMetrics`]), served at `GET /metrics`; the same plain-HTTP port answers health
//! checks at `GET /health` and `GET /health/<service>` for probes that cannot speak gRPC over
//! TLS (the kubelet's gRPC probes are plain text only).

use std::net::SocketAddr;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Instant;

use futures::future::BoxFuture;
use prometheus_client::encoding::EncodeLabelSet;
pub use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;
use tokio::net::TcpListener;
use tower::{Layer, Service};

use crate::rpc_path::RpcPath;

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    service: String,
    method: String,
    /// gRPC status code name, `OK` or `UNAUTHENTICATED` ...
    code: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct LatencyLabels {
    service: String,
    method: String,
}

/// The suite's metrics and the registry that renders them.
#[derive(Debug)]
pub struct Metrics {
    /// Behind a lock so a service can add its own figures after start-up (`register_counter`).
    registry: std::sync::Mutex<Registry>,
    requests: Family<RequestLabels, Counter>,
    latency: Family<LatencyLabels, Histogram>,
    events: EventMetrics,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ConsumerLabels {
    consumer: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct DeliveryLabels {
    consumer: String,
    /// `applied`, `retried`, `dead_lettered`, `waited` (a dependency was down)
    outcome: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StreamLabels {
    consumer: String,
    producer: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ProducerLabels {
    producer: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StoreLabels {
    store: String,
}

/// The event pipeline's figures; docs/operations.md says what each means and when to act.
#[derive(Debug, Clone, Default)]
pub struct EventMetrics {
    deliveries: Family<DeliveryLabels, Counter>,
    dead_letters_open: Family<ConsumerLabels, Gauge>,
    lag: Family<StreamLabels, Gauge>,
    oldest_pending: Family<StreamLabels, Gauge<f64, std::sync::atomic::AtomicU64>>,
    claimed: Family<StreamLabels, Counter>,
    resyncs: Family<ProducerLabels, Counter>,
    outbox_unpublished: Family<StoreLabels, Gauge>,
    outbox_oldest_unpublished: Family<StoreLabels, Gauge<f64, std::sync::atomic::AtomicU64>>,
    consumers_down: Family<ConsumerLabels, Gauge>,
}

impl EventMetrics {
    fn register(&self, registry: &mut Registry) {
        registry.register(
            "events_deliveries",
            "Events handed to a consumer, by consumer group and outcome (applied, retried, dead_lettered, waited)",
            self.deliveries.clone(),
        );
        registry.register(
            "events_dead_letters_open",
            "Dead letters waiting for an operator (credit-suite events list-dead), by consumer group",
            self.dead_letters_open.clone(),
        );
        registry.register(
            "events_consumer_lag",
            "Stream entries not yet delivered to a consumer group, by group and producing service",
            self.lag.clone(),
        );
        registry.register(
            "events_oldest_pending_age_seconds",
            "Age of the oldest entry a consumer group has not yet acknowledged (delivered or not); 0 when none",
            self.oldest_pending.clone(),
        );
        registry.register(
            "events_claimed",
            "Entries taken over from a consumer that stopped reading them (XAUTOCLAIM)",
            self.claimed.clone(),
        );
        registry.register(
            "events_resyncs",
            "Times a producer's stream was published again from its outbox after Redis lost it",
            self.resyncs.clone(),
        );
        registry.register(
            "outbox_unpublished",
            "Outbox rows not yet published, by service store",
            self.outbox_unpublished.clone(),
        );
        registry.register(
            "outbox_oldest_unpublished_age_seconds",
            "Age of the oldest outbox row not yet published; 0 when none",
            self.outbox_oldest_unpublished.clone(),
        );
        registry.register(
            "events_consumers_down",
            "1 when a consumer group's task in this process has stopped (readiness is then NOT_SERVING)",
            self.consumers_down.clone(),
        );
    }

    pub fn delivered(&self, consumer: &str, outcome: &str) {
        self.deliveries
            .get_or_create(&DeliveryLabels {
                consumer: consumer.to_owned(),
                outcome: outcome.to_owned(),
            })
            .inc();
    }

    pub fn set_dead_letters_open(&self, consumer: &str, open: i64) {
        self.dead_letters_open
            .get_or_create(&ConsumerLabels {
                consumer: consumer.to_owned(),
            })
            .set(open);
    }

    pub fn set_lag(&self, consumer: &str, producer: &str, lag: i64, oldest_pending_secs: f64) {
        let labels = StreamLabels {
            consumer: consumer.to_owned(),
            producer: producer.to_owned(),
        };
        self.lag.get_or_create(&labels).set(lag);
        self.oldest_pending
            .get_or_create(&labels)
            .set(oldest_pending_secs);
    }

    pub fn claimed(&self, consumer: &str, producer: &str, count: u64) {
        self.claimed
            .get_or_create(&StreamLabels {
                consumer: consumer.to_owned(),
                producer: producer.to_owned(),
            })
            .inc_by(count);
    }

    pub fn resynced(&self, producer: &str) {
        self.resyncs
            .get_or_create(&ProducerLabels {
                producer: producer.to_owned(),
            })
            .inc();
    }

    pub fn set_outbox_backlog(&self, store: &str, unpublished: i64, oldest_secs: f64) {
        let labels = StoreLabels {
            store: store.to_owned(),
        };
        self.outbox_unpublished
            .get_or_create(&labels)
            .set(unpublished);
        self.outbox_oldest_unpublished
            .get_or_create(&labels)
            .set(oldest_secs);
    }

    pub fn set_consumer_down(&self, consumer: &str, down: bool) {
        self.consumers_down
            .get_or_create(&ConsumerLabels {
                consumer: consumer.to_owned(),
            })
            .set(i64::from(down));
    }
}

/// Latency buckets in seconds: fine below 10 ms, where `Authorize` must stay.
const LATENCY_BUCKETS: [f64; 14] = [
    0.0005, 0.001, 0.002, 0.003, 0.005, 0.0075, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0,
];

impl Metrics {
    pub fn new() -> Arc<Self> {
        let mut registry = Registry::with_prefix("credit");
        let requests = Family::<RequestLabels, Counter>::default();
        let latency = Family::<LatencyLabels, Histogram>::new_with_constructor(|| {
            Histogram::new(LATENCY_BUCKETS)
        });
        registry.register(
            "grpc_server_requests",
            "gRPC calls handled, by service, method and status code",
            requests.clone(),
        );
        registry.register(
            "grpc_server_request_duration_seconds",
            "Time to the response headers of a gRPC call, by service and method",
            latency.clone(),
        );
        let events = EventMetrics::default();
        events.register(&mut registry);
        Arc::new(Self {
            registry: std::sync::Mutex::new(registry),
            requests,
            latency,
            events,
        })
    }

    /// A counter of a service's own (`credit_<name>_total`); the handle shares its value
    /// with what `/metrics` renders.
    pub fn register_counter(&self, name: &str, help: &str) -> Counter {
        let counter = Counter::default();
        if let Ok(mut registry) = self.registry.lock() {
            registry.register(name, help, counter.clone());
        }
        counter
    }

    /// The event pipeline's metrics, registered here (handles share their values).
    pub fn events(&self) -> EventMetrics {
        self.events.clone()
    }

    fn observe(&self, path: &RpcPath, code: &str, seconds: f64) {
        self.requests
            .get_or_create(&RequestLabels {
                service: path.service.clone(),
                method: path.method.clone(),
                code: code.to_owned(),
            })
            .inc();
        self.latency
            .get_or_create(&LatencyLabels {
                service: path.service.clone(),
                method: path.method.clone(),
            })
            .observe(seconds);
    }

    /// The OpenMetrics text exposition.
    pub fn render(&self) -> String {
        let mut text = String::new();
        let encoded = match self.registry.lock() {
            Ok(registry) => prometheus_client::encoding::text::encode(&mut text, &registry),
            Err(_) => Err(std::fmt::Error),
        };
        if encoded.is_err() {
            text.clear();
        }
        text
    }
}

/// The health statuses of a process, for HTTP probes: the gRPC health service's statuses
/// and the names of the services the process runs.
#[derive(Debug)]
pub struct HttpHealth {
    pub statuses: tonic_health::server::HealthService,
    pub services: Vec<&'static str>,
}

impl HttpHealth {
    async fn status(&self, service: String) -> Option<bool> {
        use tonic_health::pb::health_check_response::ServingStatus;
        use tonic_health::pb::health_server::Health;
        let request = tonic::Request::new(tonic_health::pb::HealthCheckRequest { service });
        let response = self.statuses.check(request).await.ok()?;
        Some(response.get_ref().status() == ServingStatus::Serving)
    }
}

/// Serves `GET /metrics` and the health checks on `listener` until `shutdown` resolves:
/// `/health` is the process's liveness (gRPC service ""), `/health/<service>` one service's
/// readiness, `/ready` the readiness of every service the process runs. 200 SERVING, 503
/// NOT_SERVING, 404 for a service this process does not run.
pub async fn serve_metrics(
    listener: TcpListener,
    metrics: Arc<Metrics>,
    health: Arc<HttpHealth>,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let (process, service, ready) = (health.clone(), health.clone(), health);
    let app = axum::Router::new()
        .route(
            "/metrics",
            axum::routing::get(move || {
                let metrics = metrics.clone();
                async move {
                    (
                        [(
                            http::header::CONTENT_TYPE,
                            "application/openmetrics-text; version=1.0.0; charset=utf-8",
                        )],
                        metrics.render(),
                    )
                }
            }),
        )
        .route(
            "/health",
            axum::routing::get(move || {
                let health = process.clone();
                async move { answer(health.status(String::new()).await) }
            }),
        )
        .route(
            "/health/{service}",
            axum::routing::get(
                move |axum::extract::Path(name): axum::extract::Path<String>| {
                    let health = service.clone();
                    async move { answer(health.status(name).await) }
                },
            ),
        )
        .route(
            "/ready",
            axum::routing::get(move || {
                let health = ready.clone();
                async move {
                    let mut all = true;
                    for name in &health.services {
                        all &= health.status((*name).to_owned()).await == Some(true);
                    }
                    answer(Some(all))
                }
            }),
        );
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown)
        .await
}

fn answer(serving: Option<bool>) -> (http::StatusCode, &'static str) {
    match serving {
        Some(true) => (http::StatusCode::OK, "SERVING\n"),
        Some(false) => (http::StatusCode::SERVICE_UNAVAILABLE, "NOT_SERVING\n"),
        None => (http::StatusCode::NOT_FOUND, "SERVICE_UNKNOWN\n"),
    }
}

/// Binds the metrics address; a separate step so a taken port fails start-up, not later.
pub async fn bind_metrics(addr: SocketAddr) -> std::io::Result<TcpListener> {
    TcpListener::bind(addr).await
}

/// Counts every call and times it to its response headers.
#[derive(Debug, Clone)]
pub struct MetricsLayer {
    metrics: Arc<Metrics>,
}

impl MetricsLayer {
    pub fn new(metrics: Arc<Metrics>) -> Self {
        Self { metrics }
    }
}

impl<S> Layer<S> for MetricsLayer {
    type Service = MetricsService<S>;
    fn layer(&self, inner: S) -> Self::Service {
        MetricsService {
            inner,
            metrics: self.metrics.clone(),
        }
    }
}

#[derive(Debug, Clone)]
pub struct MetricsService<S> {
    inner: S,
    metrics: Arc<Metrics>,
}

impl<S, RequestBody, ResponseBody> Service<http::Request<RequestBody>> for MetricsService<S>
where
    S: Service<http::Request<RequestBody>, Response = http::Response<ResponseBody>> + Send,
    S::Future: Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = BoxFuture<'static, Result<Self::Response, Self::Error>>;

    fn poll_ready(&mut self, context: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(context)
    }

    fn call(&mut self, request: http::Request<RequestBody>) -> Self::Future {
        let path = RpcPath::parse(request.uri().path());
        let started = Instant::now();
        let metrics = self.metrics.clone();
        let response = self.inner.call(request);
        Box::pin(async move {
            let result = response.await;
            let code = match &result {
                // Errors of unary calls come "trailers-only", with the status in the headers.
                // A successful call carries its status in the trailers, which we do not wait
                // for here: no status header means the call is proceeding normally.
                Ok(response) => response
                    .headers()
                    .get("grpc-status")
                    .and_then(|value| value.to_str().ok())
                    .and_then(|value| value.parse::<i32>().ok())
                    .map_or("OK", code_name),
                Err(_) => "UNKNOWN",
            };
            metrics.observe(&path, code, started.elapsed().as_secs_f64());
            result
        })
    }
}

fn code_name(code: i32) -> &'static str {
    match tonic::Code::from_i32(code) {
        tonic::Code::Ok => "OK",
        tonic::Code::Cancelled => "CANCELLED",
        tonic::Code::Unknown => "UNKNOWN",
        tonic::Code::InvalidArgument => "INVALID_ARGUMENT",
        tonic::Code::DeadlineExceeded => "DEADLINE_EXCEEDED",
        tonic::Code::NotFound => "NOT_FOUND",
        tonic::Code::AlreadyExists => "ALREADY_EXISTS",
        tonic::Code::PermissionDenied => "PERMISSION_DENIED",
        tonic::Code::ResourceExhausted => "RESOURCE_EXHAUSTED",
        tonic::Code::FailedPrecondition => "FAILED_PRECONDITION",
        tonic::Code::Aborted => "ABORTED",
        tonic::Code::OutOfRange => "OUT_OF_RANGE",
        tonic::Code::Unimplemented => "UNIMPLEMENTED",
        tonic::Code::Internal => "INTERNAL",
        tonic::Code::Unavailable => "UNAVAILABLE",
        tonic::Code::DataLoss => "DATA_LOSS",
        tonic::Code::Unauthenticated => "UNAUTHENTICATED",
    }
}
