//! The gRPC server every service runs in: bind first (port 0 works), then serve with health,
//! reflection, the tower layers, and a graceful shutdown that has a hard deadline.

use std::collections::HashMap;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use credit_core::AccessPolicy;
use opentelemetry::propagation::TextMapPropagator as _;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tonic::service::RoutesBuilder;
use tonic::transport::ServerTlsConfig;
use tonic_health::ServingStatus;
use tonic_health::server::HealthReporter;
use tower_http::classify::GrpcFailureClass;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::trace::TraceLayer;
use tracing::Span;
use tracing_opentelemetry::OpenTelemetrySpanExt;

use crate::admission::AdmissionLayer;
use crate::auth::AuthLayer;
use crate::config::Settings;
use crate::deadline::DeadlineLayer;
use crate::identity::Authenticator;
use crate::metrics::{HttpHealth, Metrics, MetricsLayer, serve_metrics};
use crate::rpc_path::RpcPath;
use crate::storage::{Database, RedisHandle};
use crate::telemetry::HeaderExtractor;

/// The multi-threaded tokio runtime a server process runs on: a worker thread per core, or as
/// many as `TOKIO_WORKER_THREADS` says (tokio reads it; README, "Configuration").
///
/// Built with `tokio_unstable` (.cargo/config.toml), it has no LIFO slot. With the slot, a
/// task woken by a running task runs next on the same worker. When one group commit answers
/// thirty orders at once, each order's task hands its response to the HTTP/2 connection task,
/// which then runs at once and writes that one response with a syscall of its own: about 2.5
/// socket writes per order under load. Without the slot the connection task runs after the
/// woken orders and writes their responses in one `writev`: 1.4 writes per order, 5–10 % less
/// CPU per order and about 7 % more orders a second with 64 callers (BENCHMARKS.md, tenth
/// run). One caller's order waits about 0.05–0.1 ms longer, well inside its budget.
pub fn runtime() -> std::io::Result<tokio::runtime::Runtime> {
    let mut builder = tokio::runtime::Builder::new_multi_thread();
    builder.enable_all();
    #[cfg(tokio_unstable)]
    builder.disable_lifo_slot();
    builder.build()
}

/// Something a service needs in order to answer; health is SERVING only while all answer.
#[derive(Debug, Clone)]
pub enum Dependency {
    Database(&'static str, Database),
    Redis(RedisHandle),
    /// A task the process must keep running, such as an event consumer: a process whose
    /// consumer died answers calls on figures that no longer move.
    Task(TaskLiveness),
}

impl Dependency {
    async fn probe(&self) -> Result<(), String> {
        match self {
            Dependency::Database(name, database) => database
                .probe()
                .await
                .map_err(|error| format!("{name} {error}")),
            Dependency::Redis(redis) => redis.probe().await,
            Dependency::Task(task) => {
                if task.is_alive() {
                    Ok(())
                } else {
                    Err(format!("{} stopped", task.name))
                }
            }
        }
    }
}

/// Whether a background task still runs: alive from creation until [`TaskLiveness::watch`]
/// sees the task end.
#[derive(Debug, Clone)]
pub struct TaskLiveness {
    name: String,
    alive: Arc<std::sync::atomic::AtomicBool>,
}

impl TaskLiveness {
    pub fn new(name: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            alive: Arc::new(std::sync::atomic::AtomicBool::new(true)),
        }
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn is_alive(&self) -> bool {
        self.alive.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Waits for `task` and marks this liveness dead when it ends (returned, or panicked).
    pub async fn watch(self, task: tokio::task::JoinHandle<()>) {
        let ended = task.await;
        self.alive
            .store(false, std::sync::atomic::Ordering::Relaxed);
        if let Err(error) = ended
            && error.is_panic()
        {
            tracing::error!(task = %self.name, "background task panicked; readiness is NOT_SERVING");
        }
    }
}

/// What the services of one process contribute to its server.
pub struct ServerParts {
    routes: RoutesBuilder,
    service_names: Vec<&'static str>,
    policies: Vec<AccessPolicy>,
    dependencies: Vec<Dependency>,
    /// Methods allowed more than the default deadline, by path.
    long_running: HashMap<String, Duration>,
    /// The process's metrics, which its services and background tasks also report to.
    metrics: Arc<Metrics>,
}

impl Default for ServerParts {
    fn default() -> Self {
        Self {
            routes: RoutesBuilder::default(),
            service_names: Vec::new(),
            policies: Vec::new(),
            dependencies: Vec::new(),
            long_running: HashMap::new(),
            metrics: Metrics::new(),
        }
    }
}

impl std::fmt::Debug for ServerParts {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("ServerParts")
            .field("service_names", &self.service_names)
            .field("dependencies", &self.dependencies)
            .finish_non_exhaustive()
    }
}

impl ServerParts {
    /// Adds a `credit.v1` service with the access policy of its RPCs.
    pub fn add_service<S>(&mut self, service: S, policy: AccessPolicy) -> &mut Self
    where
        S: tower::Service<http::Request<tonic::body::Body>, Error = std::convert::Infallible>
            + tonic::server::NamedService
            + Clone
            + Send
            + Sync
            + 'static,
        S::Response: axum::response::IntoResponse,
        S::Future: Send + 'static,
    {
        self.service_names.push(S::NAME);
        self.policies.push(policy);
        self.routes.add_service(service);
        self
    }

    /// Gives `path` (`/credit.v1.IntakeService/ImportCustomers`) its own deadline instead of
    /// `CREDIT_REQUEST_TIMEOUT_MS`.
    pub fn set_deadline(&mut self, path: &str, deadline: Duration) -> &mut Self {
        self.long_running.insert(path.to_owned(), deadline);
        self
    }

    pub fn add_dependency(&mut self, dependency: Dependency) -> &mut Self {
        self.dependencies.push(dependency);
        self
    }

    /// The metrics the server will serve at `GET /metrics`.
    pub fn metrics(&self) -> Arc<Metrics> {
        self.metrics.clone()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error("cannot listen on CREDIT_LISTEN_ADDR {addr}: {source}")]
    Listen {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("cannot listen on CREDIT_METRICS_ADDR {addr}: {source}")]
    MetricsListen {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error(transparent)]
    Tls(#[from] crate::config::ConfigError),
    #[error("cannot build gRPC reflection: {0}")]
    Reflection(#[from] tonic_reflection::server::Error),
    #[error("the gRPC server failed: {0}")]
    Transport(#[from] tonic::transport::Error),
}

/// A server that has bound its ports and not yet started serving.
#[derive(Debug)]
pub struct BoundServer {
    listener: TcpListener,
    metrics_listener: Option<TcpListener>,
    tls: Option<ServerTlsConfig>,
    parts: ServerParts,
    authenticator: Authenticator,
    settings: Settings,
}

/// The gRPC and metrics ports of a process, bound before its services are built: services of
/// one process that call each other need the address first.
#[derive(Debug)]
pub struct Listeners {
    listener: TcpListener,
    metrics_listener: Option<TcpListener>,
    /// The gRPC port's TLS (`CREDIT_TLS_CERT_FILE`); the metrics port is always plain HTTP.
    tls: Option<ServerTlsConfig>,
}

impl Listeners {
    /// Binds the gRPC and metrics addresses, so a taken port fails here with the setting named,
    /// and loads the gRPC port's certificate and key.
    pub async fn bind(settings: &Settings) -> Result<Self, ServeError> {
        let tls = crate::tls::server_config(&settings.tls)?;
        let listener = TcpListener::bind(settings.listen_addr)
            .await
            .map_err(|source| ServeError::Listen {
                addr: settings.listen_addr,
                source,
            })?;
        let metrics_listener = match settings.metrics_addr {
            Some(addr) => Some(
                TcpListener::bind(addr)
                    .await
                    .map_err(|source| ServeError::MetricsListen { addr, source })?,
            ),
            None => None,
        };
        Ok(Self {
            listener,
            metrics_listener,
            tls,
        })
    }

    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// The URL this process's own services are called at: the bound address, with an
    /// unspecified IP (`0.0.0.0`, `::`) replaced by loopback; `https://` when the port speaks
    /// TLS (see [`crate::tls::ClientTls::for_own_server`] for what such a call trusts).
    pub fn local_url(&self) -> std::io::Result<String> {
        let mut addr = self.local_addr()?;
        if addr.ip().is_unspecified() {
            addr.set_ip(if addr.is_ipv4() {
                std::net::Ipv4Addr::LOCALHOST.into()
            } else {
                std::net::Ipv6Addr::LOCALHOST.into()
            });
        }
        let scheme = if self.tls.is_some() { "https" } else { "http" };
        Ok(format!("{scheme}://{addr}"))
    }
}

impl BoundServer {
    /// Binds the ports, then prepares to serve `parts` on them.
    pub async fn bind(
        settings: &Settings,
        parts: ServerParts,
        authenticator: Authenticator,
    ) -> Result<Self, ServeError> {
        Ok(Self::on(
            Listeners::bind(settings).await?,
            settings,
            parts,
            authenticator,
        ))
    }

    /// Prepares to serve `parts` on ports bound earlier.
    pub fn on(
        listeners: Listeners,
        settings: &Settings,
        parts: ServerParts,
        authenticator: Authenticator,
    ) -> Self {
        Self {
            listener: listeners.listener,
            metrics_listener: listeners.metrics_listener,
            tls: listeners.tls,
            parts,
            authenticator,
            settings: settings.clone(),
        }
    }

    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    pub fn metrics_addr(&self) -> Option<SocketAddr> {
        self.metrics_listener
            .as_ref()
            .and_then(|listener| listener.local_addr().ok())
    }

    /// Serves until `shutdown` resolves, then reports NOT_SERVING, stops accepting calls,
    /// lets calls in flight finish, and returns at the latest after the shutdown deadline.
    pub async fn run_until_stopped(
        self,
        shutdown: impl Future<Output = ()> + Send,
    ) -> Result<(), ServeError> {
        let Self {
            listener,
            metrics_listener,
            tls,
            parts,
            authenticator,
            settings,
        } = self;
        let ServerParts {
            mut routes,
            service_names,
            policies,
            dependencies,
            long_running,
            metrics,
        } = parts;

        let (health_reporter, health_service) = tonic_health::server::health_reporter();
        // The overall status "" says the process is up and answering (liveness); each service
        // name says whether that service can do its work now (readiness). A database outage
        // must take pods out of rotation, not restart them all.
        health_reporter
            .set_service_status("", ServingStatus::Serving)
            .await;
        set_status(&health_reporter, &service_names, ServingStatus::NotServing).await;
        routes.add_service(health_service);
        if settings.reflection {
            routes.add_service(
                tonic_reflection::server::Builder::configure()
                    .register_encoded_file_descriptor_set(credit_proto::FILE_DESCRIPTOR_SET)
                    .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
                    .build_v1()?,
            );
            routes.add_service(
                tonic_reflection::server::Builder::configure()
                    .register_encoded_file_descriptor_set(credit_proto::FILE_DESCRIPTOR_SET)
                    .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
                    .build_v1alpha()?,
            );
        }

        let (stop_sender, stop_receiver) = watch::channel(false);
        let readiness = tokio::spawn(watch_readiness(
            health_reporter.clone(),
            service_names.clone(),
            dependencies,
            settings.readiness_interval,
            stop_receiver.clone(),
        ));

        let metrics_task = metrics_listener.map(|listener| {
            let mut stop = stop_receiver.clone();
            // The same statuses as the gRPC health service, for HTTP probes.
            let health = Arc::new(HttpHealth {
                statuses: tonic_health::server::HealthService::from_health_reporter(
                    health_reporter.clone(),
                ),
                services: service_names.clone(),
            });
            tokio::spawn(serve_metrics(
                listener,
                metrics.clone(),
                health,
                async move {
                    let _ = stop.wait_for(|stopped| *stopped).await;
                },
            ))
        });

        let layers = tower::ServiceBuilder::new()
            .layer(SetRequestIdLayer::x_request_id(MakeRequestUuid))
            .layer(PropagateRequestIdLayer::x_request_id())
            .layer(
                TraceLayer::new_for_grpc()
                    .make_span_with(make_request_span)
                    .on_failure(|failure: GrpcFailureClass, latency: Duration, _span: &Span| {
                        tracing::debug!(%failure, latency_ms = latency.as_millis(), "call failed");
                    }),
            )
            .layer(MetricsLayer::new(metrics))
            .layer(AdmissionLayer::new(
                settings.concurrency_limit,
                settings.queue_limit,
            ))
            .layer(DeadlineLayer::new(settings.request_timeout, long_running))
            .layer(AuthLayer::new(authenticator, policies, settings.rate_limit))
            .into_inner();

        let mut stop_serving = stop_receiver.clone();
        let mut builder = tonic::transport::Server::builder();
        if let Some(tls) = tls {
            // Every connection must complete a TLS handshake first (and with
            // CREDIT_TLS_CLIENT_CA_FILE present a client certificate): plain text is refused.
            builder = builder.tls_config(tls)?;
        }
        let server = builder
            .tcp_nodelay(true)
            .http2_keepalive_interval(Some(Duration::from_secs(30)))
            .layer(layers)
            .add_routes(routes.routes())
            // The builder's tcp_nodelay applies only to listeners tonic binds itself: an
            // accepted socket of our own listener keeps Nagle's algorithm unless told, and
            // Nagle with delayed ACKs holds small answers back for up to 40 ms.
            .serve_with_incoming_shutdown(
                tonic::transport::server::TcpIncoming::from(listener).with_nodelay(Some(true)),
                async move {
                    let _ = stop_serving.wait_for(|stopped| *stopped).await;
                },
            );
        tokio::pin!(server);

        let result = tokio::select! {
            result = &mut server => result.map_err(ServeError::from),
            () = shutdown => {
                tracing::info!(deadline_secs = settings.shutdown_timeout.as_secs(), "shutting down: draining calls in flight");
                let _ = stop_sender.send(true);
                health_reporter.set_service_status("", ServingStatus::NotServing).await;
                set_status(&health_reporter, &service_names, ServingStatus::NotServing).await;
                match tokio::time::timeout(settings.shutdown_timeout, &mut server).await {
                    Ok(result) => result.map_err(ServeError::from),
                    Err(_) => {
                        tracing::warn!("drain deadline passed; stopping with calls still in flight");
                        Ok(())
                    }
                }
            }
        };
        let _ = stop_sender.send(true);
        readiness.abort();
        if let Some(task) = metrics_task {
            task.abort();
        }
        result
    }
}

fn make_request_span(request: &http::Request<tonic::body::Body>) -> Span {
    let path = RpcPath::parse(request.uri().path());
    let request_id = request
        .headers()
        .get("x-request-id")
        .and_then(|value| value.to_str().ok())
        .unwrap_or_default();
    let span = tracing::info_span!(
        "grpc",
        otel.kind = "server",
        rpc.system = "grpc",
        rpc.service = %path.service,
        rpc.method = %path.method,
        request_id = %request_id,
    );
    let parent = opentelemetry_sdk::propagation::TraceContextPropagator::new()
        .extract(&HeaderExtractor(request.headers()));
    let _ = span.set_parent(parent);
    span
}

async fn set_status(
    reporter: &HealthReporter,
    service_names: &[&'static str],
    status: ServingStatus,
) {
    for name in service_names {
        reporter.set_service_status(*name, status).await;
    }
}

/// Keeps health true: SERVING while every dependency answers, NOT_SERVING otherwise, and
/// NOT_SERVING for good once shutdown begins.
async fn watch_readiness(
    reporter: HealthReporter,
    service_names: Vec<&'static str>,
    dependencies: Vec<Dependency>,
    interval: Duration,
    mut stop: watch::Receiver<bool>,
) {
    let dependencies = Arc::new(dependencies);
    let mut last_ready = None;
    loop {
        let failures: Vec<String> =
            futures::future::join_all(dependencies.iter().map(Dependency::probe))
                .await
                .into_iter()
                .filter_map(Result::err)
                .collect();
        if *stop.borrow() {
            return;
        }
        let ready = failures.is_empty();
        if last_ready != Some(ready) {
            if ready {
                tracing::info!(services = ?service_names, "serving");
            } else {
                tracing::warn!(problems = ?failures, "not serving: a dependency does not answer");
            }
            let status = if ready {
                ServingStatus::Serving
            } else {
                ServingStatus::NotServing
            };
            set_status(&reporter, &service_names, status).await;
            last_ready = Some(ready);
        }
        tokio::select! {
            () = tokio::time::sleep(interval) => {}
            _ = stop.changed() => return,
        }
    }
}
