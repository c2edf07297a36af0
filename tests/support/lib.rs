//! Starts the suite on free ports for end-to-end tests and hands out clients and tokens.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "test support: a failure is a failed test"
)]

pub mod own_servers;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use credit_core::Role;
use credit_runtime::Settings;
use credit_runtime::config::Backend;
use credit_runtime::identity::{self, NewPrincipal};
use credit_runtime::testing::TestDatabase;
use credit_suite::{ADMIN_TOKEN_FILE, Application, ServiceSelection};
use secrecy::ExposeSecret;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tonic::transport::Channel;
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;

pub const SERVICE_NAMES: [&str; 4] = [
    credit_proto::service_names::INTAKE,
    credit_proto::service_names::RATING,
    credit_proto::service_names::LIMITS,
    credit_proto::service_names::COLLECTIONS,
];

/// A suite running inside the test process.
#[derive(Debug)]
pub struct TestSuite {
    pub addr: SocketAddr,
    pub metrics_addr: Option<SocketAddr>,
    pub settings: Settings,
    pub channel: Channel,
    /// An ADMIN token: read from `admin.token` on the embedded default, issued otherwise.
    pub admin_token: String,
    /// The hold expiry sweeper of limits, to run a sweep at a chosen time.
    expiry_sweeper: Option<credit_limits::expiry::ExpirySweeper>,
    /// The suite's event bus, to announce what a service not built yet would.
    bus: std::sync::Arc<dyn credit_runtime::events::EventBus>,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<()>>,
    database: Option<TestDatabase>,
    _data_dir: Option<tempfile::TempDir>,
}

impl TestSuite {
    /// All four services on the embedded default, in a fresh data folder.
    pub async fn embedded() -> Self {
        Self::embedded_with(|_| {}).await
    }

    /// As [`TestSuite::embedded`], with settings changed by `configure` first.
    pub async fn embedded_with(configure: impl FnOnce(&mut Settings)) -> Self {
        let data_dir = tempfile::tempdir().unwrap();
        let mut settings = Settings::for_tests(data_dir.path().to_owned());
        configure(&mut settings);
        let mut suite = Self::start(settings, ServiceSelection::all(), None).await;
        suite.admin_token = std::fs::read_to_string(data_dir.path().join(ADMIN_TOKEN_FILE))
            .expect("the first start writes admin.token")
            .trim()
            .to_owned();
        suite._data_dir = Some(data_dir);
        suite
    }

    /// `selection` on PostgreSQL (a database of its own) and Redis (a key prefix of its own).
    pub async fn production(selection: ServiceSelection) -> Self {
        Self::production_on(selection, None).await
    }

    /// As [`TestSuite::production`], on the Redis at `redis_url` when given.
    pub async fn production_on(selection: ServiceSelection, redis_url: Option<String>) -> Self {
        Self::production_with(selection, redis_url, |_| {}).await
    }

    /// As [`TestSuite::production_on`], with settings changed by `configure` first.
    pub async fn production_with(
        selection: ServiceSelection,
        redis_url: Option<String>,
        configure: impl FnOnce(&mut Settings),
    ) -> Self {
        let database = TestDatabase::create().await;
        let mut settings = Settings::for_tests(std::env::temp_dir());
        configure(&mut settings);
        settings.backend = database.backend();
        if let (Some(url), Backend::Production { redis_url, .. }) =
            (redis_url, &mut settings.backend)
        {
            *redis_url = secrecy::SecretString::from(url);
        }
        let mut suite = Self::start(settings, selection, Some(database)).await;
        suite.admin_token = suite.issue_token("admin", &[Role::Admin]).await;
        suite
    }

    /// `selection` on the stores `settings` already names (servers a test started itself),
    /// with an ADMIN token issued into its identity store.
    pub async fn on_backend(settings: Settings, selection: ServiceSelection) -> Self {
        let mut suite = Self::start(settings, selection, None).await;
        suite.admin_token = suite.issue_token("admin", &[Role::Admin]).await;
        suite
    }

    async fn start(
        settings: Settings,
        selection: ServiceSelection,
        database: Option<TestDatabase>,
    ) -> Self {
        install_log_capture();
        let application = Application::build(&settings, &selection)
            .await
            .expect("the suite starts");
        let addr = application.local_addr().unwrap();
        let metrics_addr = application.metrics_addr();
        let expiry_sweeper = application.expiry_sweeper();
        let bus = application.event_bus();
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            application
                .run_until_stopped(async {
                    let _ = stopped.await;
                })
                .await
                .expect("the suite serves until stopped");
        });
        // Over TLS when the suite serves it, trusting what its own services trust when they call
        // each other: its server certificate, and its client certificate under mutual TLS.
        let scheme = if settings.tls.serves_tls() {
            "https"
        } else {
            "http"
        };
        let channel = credit_runtime::tls::ClientTls::for_own_server(&settings.tls)
            .unwrap()
            .endpoint("the test suite", &format!("{scheme}://{addr}"))
            .unwrap()
            .connect_lazy();
        Self {
            addr,
            metrics_addr,
            settings,
            channel,
            admin_token: String::new(),
            expiry_sweeper,
            bus,
            stop: Some(stop),
            task: Some(task),
            database,
            _data_dir: None,
        }
    }

    /// Issues a token straight into the identity store, as `credit-suite token create` does.
    pub async fn issue_token(&self, name: &str, roles: &[Role]) -> String {
        self.issue_token_with_authority(name, roles, None).await
    }

    /// A token whose holder may approve up to `authority` CNY.
    pub async fn issue_token_with_authority(
        &self,
        name: &str,
        roles: &[Role],
        authority: Option<&str>,
    ) -> String {
        let principal = NewPrincipal::new(name, roles.iter().copied()).with_authority(
            authority.map(|amount| credit_core::Money::parse(amount, "CNY").unwrap()),
        );
        self.issue(&principal)
            .await
            .token
            .expose_secret()
            .to_owned()
    }

    /// Issues `principal`'s token straight into the identity store and returns all that was
    /// issued (token id, person id, the token).
    pub async fn issue(&self, principal: &NewPrincipal) -> identity::IssuedToken {
        identity::issue_token(self.token_store().await.as_ref(), principal)
            .await
            .unwrap()
    }

    /// The suite's identity store, as `credit-suite token …` opens it.
    pub async fn token_store(&self) -> std::sync::Arc<dyn identity::TokenStore> {
        credit_suite::open_token_store(&self.settings)
            .await
            .unwrap()
    }

    pub async fn health(&self, service: &str) -> Result<ServingStatus, tonic::Status> {
        let response = HealthClient::new(self.channel.clone())
            .check(HealthCheckRequest {
                service: service.to_owned(),
            })
            .await?;
        Ok(response.into_inner().status())
    }

    /// Waits until `service` reports `wanted`, failing the test after 15 s.
    pub async fn wait_for_health(&self, service: &str, wanted: ServingStatus) {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let status = self.health(service).await;
            if matches!(status, Ok(status) if status == wanted) {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "{service} did not become {wanted:?}; last: {status:?}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Runs the hold expiry sweep of limits as if the time were `now`; returns the expired
    /// holds' ids.
    pub async fn expire_holds_at(&self, now: std::time::SystemTime) -> Vec<String> {
        self.expiry_sweeper
            .as_ref()
            .expect("this suite runs limits")
            .sweep(now.into())
            .await
            .unwrap()
            .into_iter()
            .map(|hold| hold.id)
            .collect()
    }

    /// Publishes `payload` as `producer` would through its outbox relay: for the events of
    /// services that have not landed yet (rating's RatingChanged, collections' receivables).
    pub async fn publish(
        &self,
        producer: &'static str,
        payload: credit_proto::v1::event::Payload,
    ) -> credit_proto::v1::Event {
        let event = credit_runtime::events::new_event(producer, payload);
        self.publish_event(&event).await;
        event
    }

    /// Publishes `event` as it is (a relay delivering the same event twice, for instance).
    pub async fn publish_event(&self, event: &credit_proto::v1::Event) {
        let encoded = prost::Message::encode_to_vec(event);
        self.bus.publish(event, &encoded).await.unwrap();
    }

    /// The exposure cache limits decides on: Redis on PostgreSQL + Redis, the in-process
    /// cache on the embedded default (reachable only from inside this process).
    pub fn exposure_cache(&self) -> std::sync::Arc<dyn credit_limits::exposure::ExposureCache> {
        self.expiry_sweeper
            .as_ref()
            .expect("this suite runs limits")
            .exposure_cache()
            .clone()
    }

    /// The PostgreSQL database of a production suite.
    pub fn database(&self) -> &TestDatabase {
        self.database.as_ref().expect("a production suite")
    }

    pub fn backend(&self) -> &Backend {
        &self.settings.backend
    }

    /// Stops serving (drain included) and drops the test database.
    pub async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            task.await.unwrap();
        }
        if let Some(database) = self.database.take() {
            database.drop_database().await;
        }
    }
}

/// Wraps `message` in a request that carries `token` as a bearer token.
pub fn with_token<T>(message: T, token: &str) -> tonic::Request<T> {
    let mut request = tonic::Request::new(message);
    request
        .metadata_mut()
        .insert("authorization", format!("Bearer {token}").parse().unwrap());
    request
}

/// Puts a bearer token on every call of a client.
#[derive(Debug, Clone)]
pub struct Bearer(tonic::metadata::MetadataValue<tonic::metadata::Ascii>);

impl Bearer {
    pub fn new(token: &str) -> Self {
        Self(format!("Bearer {token}").parse().unwrap())
    }
}

impl tonic::service::Interceptor for Bearer {
    fn call(
        &mut self,
        mut request: tonic::Request<()>,
    ) -> Result<tonic::Request<()>, tonic::Status> {
        request
            .metadata_mut()
            .insert("authorization", self.0.clone());
        Ok(request)
    }
}

pub type Authed = tonic::service::interceptor::InterceptedService<Channel, Bearer>;

impl TestSuite {
    fn bearer(token: &str) -> Bearer {
        Bearer::new(token)
    }

    pub fn limits(
        &self,
        token: &str,
    ) -> credit_proto::v1::limit_service_client::LimitServiceClient<Authed> {
        credit_proto::v1::limit_service_client::LimitServiceClient::with_interceptor(
            self.channel.clone(),
            Self::bearer(token),
        )
    }

    pub fn approvals(
        &self,
        token: &str,
    ) -> credit_proto::v1::approval_service_client::ApprovalServiceClient<Authed> {
        credit_proto::v1::approval_service_client::ApprovalServiceClient::with_interceptor(
            self.channel.clone(),
            Self::bearer(token),
        )
    }

    pub fn rating(
        &self,
        token: &str,
    ) -> credit_proto::v1::rating_service_client::RatingServiceClient<Authed> {
        credit_proto::v1::rating_service_client::RatingServiceClient::with_interceptor(
            self.channel.clone(),
            Self::bearer(token),
        )
    }

    pub fn collections(
        &self,
        token: &str,
    ) -> credit_proto::v1::collections_service_client::CollectionsServiceClient<Authed> {
        credit_proto::v1::collections_service_client::CollectionsServiceClient::with_interceptor(
            self.channel.clone(),
            Self::bearer(token),
        )
    }

    pub fn intake(
        &self,
        token: &str,
    ) -> credit_proto::v1::intake_service_client::IntakeServiceClient<Authed> {
        credit_proto::v1::intake_service_client::IntakeServiceClient::with_interceptor(
            self.channel.clone(),
            Self::bearer(token),
        )
    }

    /// Event types in a service's outbox, oldest first, one per event (a packed row gives
    /// one per event it packs): what the service announced.
    pub async fn outbox_event_types(
        &self,
        store: &'static credit_runtime::StoreSpec,
    ) -> Vec<String> {
        self.outbox_events(store)
            .await
            .iter()
            .map(|event| credit_runtime::events::event_type(event).to_owned())
            .collect()
    }

    /// The events in a service's outbox, oldest first, one per event.
    pub async fn outbox_events(
        &self,
        store: &'static credit_runtime::StoreSpec,
    ) -> Vec<credit_proto::v1::Event> {
        let database = credit_runtime::Database::open(&self.settings.backend, store, 1, false)
            .await
            .unwrap();
        let rows = credit_runtime::on_database!(&database, |pool, sql| {
            sqlx::query_as::<_, (Vec<u8>, bool)>(&sql(
                "SELECT payload, packed FROM outbox ORDER BY position",
            ))
            .fetch_all(pool)
            .await
            .unwrap()
        });
        database.close().await;
        rows.into_iter()
            .flat_map(|(payload, packed)| {
                credit_runtime::events::outbox_row_events(payload, packed).unwrap()
            })
            .map(|(event, _)| event)
            .collect()
    }
}

/// Digits and letters of a unified social credit code (GB 32100-2015) made from `seed`, with
/// its correct check character.
pub fn uscc(seed: u64) -> String {
    let body = format!("91350100{:09}", seed % 1_000_000_000);
    let check = credit_intake::domain::uscc::check_character(&body).unwrap();
    format!("{body}{check}")
}

/// Everything the suites of this test process logged, at debug level and above.
static LOGS: std::sync::OnceLock<std::sync::Arc<std::sync::Mutex<Vec<u8>>>> =
    std::sync::OnceLock::new();

#[derive(Clone)]
struct CaptureWriter(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

impl std::io::Write for CaptureWriter {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Sends the log output of every suite in this process to a buffer (once per process), so a
/// test can check what an operator's log collector would receive.
fn install_log_capture() {
    LOGS.get_or_init(|| {
        let buffer = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let writer = CaptureWriter(buffer.clone());
        let subscriber = tracing_subscriber::fmt()
            .with_env_filter("debug,h2=info,hyper=info,hyper_util=info,tower=info")
            .with_ansi(false)
            .with_writer(move || writer.clone())
            .finish();
        let _ = tracing::subscriber::set_global_default(subscriber);
        buffer
    });
}

/// The log output captured so far.
pub fn captured_logs() -> String {
    LOGS.get()
        .map(|buffer| String::from_utf8_lossy(&buffer.lock().unwrap()).into_owned())
        .unwrap_or_default()
}

/// A redis-server of this test's own, so stopping it disturbs no other test.
#[derive(Debug)]
pub struct OwnRedis {
    child: std::process::Child,
    pub port: u16,
}

impl OwnRedis {
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/0", self.port)
    }

    pub async fn start() -> Self {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let mut child = std::process::Command::new("redis-server")
            .args([
                "--port",
                &port.to_string(),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
            ])
            .stdout(std::process::Stdio::null())
            .spawn()
            .expect("redis-server must be installed for this test");
        for _ in 0..100 {
            if tokio::net::TcpStream::connect(("127.0.0.1", port))
                .await
                .is_ok()
            {
                return Self { child, port };
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let _ = child.kill();
        let _ = child.wait();
        panic!("redis-server did not start on port {port}");
    }

    pub fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for OwnRedis {
    fn drop(&mut self) {
        self.stop();
    }
}

/// How many times (25 ms apart) a test polls for an eventually consistent state — an event
/// reaching limits, a cache rebuilt — before failing: 30 s, far beyond what it takes even on
/// a loaded 2-core CI machine. Only failures wait that long.
pub const POLLS: u32 = 1_200;
