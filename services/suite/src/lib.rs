//! `credit-suite`: the four credit services in one process on the embedded default, or any
//! subset of them on PostgreSQL + Redis (like Loki's `-target=all` versus microservices).
//!
//! The binary in `main.rs` parses the command line; everything it does lives here so tests
//! can start the same application on a free port.

use std::collections::BTreeSet;
use std::fmt;
use std::future::Future;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::Arc;

use credit_core::{Principal, Role};
use credit_runtime::config::{Backend, ConfigError, Settings};
use credit_runtime::events::{
    DeadLetterStore, EVENTS_STORE, EventBus, EventHandler, EventPipeline, InProcessBus,
    OutboxRelay, RedisStreamsBus,
};
use credit_runtime::identity::{self, Authenticator, IDENTITY_STORE, NewPrincipal, TokenStore};
use credit_runtime::peers::{self, PeerChannel};
use credit_runtime::server::ServeError;
use credit_runtime::server::TaskLiveness;
use credit_runtime::storage::StorageError;
use credit_runtime::tls::ClientTls;
use credit_runtime::{
    BoundServer, Database, Dependency, Listeners, RedisHandle, ServerParts, StoreSpec,
};
use secrecy::{ExposeSecret, SecretString};

pub mod audit_cli;
pub mod client;
pub mod demo;
pub mod events_cli;
pub mod import;
pub mod reconcile;
pub mod tokens_cli;

/// File in `CREDIT_DATA_DIR` where the embedded default writes the first admin token.
pub const ADMIN_TOKEN_FILE: &str = "admin.token";

/// One of the four services.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ServiceKind {
    Intake,
    Rating,
    Limits,
    Collections,
}

impl ServiceKind {
    pub const ALL: [ServiceKind; 4] = [
        ServiceKind::Intake,
        ServiceKind::Rating,
        ServiceKind::Limits,
        ServiceKind::Collections,
    ];

    pub fn as_str(&self) -> &'static str {
        match self {
            ServiceKind::Intake => "intake",
            ServiceKind::Rating => "rating",
            ServiceKind::Limits => "limits",
            ServiceKind::Collections => "collections",
        }
    }

    fn store(&self) -> &'static StoreSpec {
        match self {
            ServiceKind::Intake => &credit_intake::STORE,
            ServiceKind::Rating => &credit_rating::STORE,
            ServiceKind::Limits => &credit_limits::STORE,
            ServiceKind::Collections => &credit_collections::STORE,
        }
    }

    /// Adds the service to `parts` and returns the event handlers it consumes with (and, for
    /// limits, its hold expiry sweeper).
    async fn add_to(
        &self,
        parts: &mut ServerParts,
        database: Database,
        redis: Option<&RedisHandle>,
        peers: &PeerDirectory<'_>,
        background: &mut BackgroundWork,
    ) -> Result<Vec<Arc<dyn EventHandler>>, StartupError> {
        Ok(match self {
            ServiceKind::Intake => {
                parts
                    .add_service(
                        credit_intake::server(database),
                        credit_intake::access_policy(),
                    )
                    .set_deadline(credit_intake::IMPORT_PATH, credit_intake::IMPORT_DEADLINE);
                Vec::new()
            }
            ServiceKind::Rating => {
                let rating = credit_rating::build(
                    database,
                    credit_rating::Peers {
                        intake: peers.channel(ServiceKind::Intake)?.ok_or_else(|| {
                            ConfigError::new(
                                "CREDIT_INTAKE_URL",
                                "is required to run rating without intake in the same process",
                            )
                        })?,
                        collections: peers.channel(ServiceKind::Collections)?,
                        limits: peers.channel(ServiceKind::Limits)?,
                    },
                )
                .await?;
                parts.add_service(rating.server, credit_rating::access_policy());
                background.review_schedulers.push(rating.scheduler);
                rating.handlers
            }
            ServiceKind::Limits => {
                let limits =
                    credit_limits::build(database, redis.cloned(), peers.settings.base_currency);
                if let Some(interval) = peers.settings.exposure_reconcile_interval {
                    let (name, help) = credit_limits::reconcile::REPAIRS_METRIC;
                    let repairs = parts.metrics().register_counter(name, help);
                    background
                        .reconciles
                        .push(limits.background_reconcile(interval, repairs));
                }
                parts.add_service(limits.approvals, credit_limits::approvals_access_policy());
                parts
                    .add_service(limits.server, credit_limits::access_policy())
                    .set_deadline(
                        credit_limits::RECONCILE_PATH,
                        credit_limits::RECONCILE_DEADLINE,
                    );
                background.sweepers.push(limits.sweeper);
                background.reexaminers.push(limits.reexaminer);
                background.escalators.push(limits.escalator);
                limits.handlers
            }
            ServiceKind::Collections => {
                let collections = credit_collections::build(
                    database,
                    credit_collections::CollectionsPeers {
                        limits: peers.channel(ServiceKind::Limits)?,
                        intake: peers.channel(ServiceKind::Intake)?,
                    },
                    collections_config(peers.settings)?,
                )
                .await?;
                parts.add_service(collections.server, credit_collections::access_policy());
                background.overdue_schedulers.push(collections.scheduler);
                collections.handlers
            }
        })
    }
}

impl fmt::Display for ServiceKind {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(self.as_str())
    }
}

/// Where this process reaches the other services: its own address for the services it runs
/// (called with a credential minted at start-up), the configured URL for the others (called
/// with `CREDIT_SERVICE_TOKEN`).
struct PeerDirectory<'a> {
    settings: &'a Settings,
    selection: &'a ServiceSelection,
    local_url: String,
    process_token: SecretString,
    /// TLS of the calls to this process's own port: its own certificate trusted, its client
    /// certificate presented. An error (mutual TLS without a client certificate) stops
    /// start-up only when a service here calls another one here.
    own_tls: Result<ClientTls, ConfigError>,
    /// TLS of the calls to other processes (`CREDIT_TLS_CA_FILE`, the client certificate).
    peer_tls: ClientTls,
}

impl PeerDirectory<'_> {
    /// A channel to `kind`, `None` when it neither runs here nor has a URL.
    fn channel(&self, kind: ServiceKind) -> Result<Option<PeerChannel>, ConfigError> {
        let timeout = self.settings.request_timeout;
        if self.selection.contains(kind) {
            let setting = "--listen-addr (CREDIT_LISTEN_ADDR)";
            let tls = self.own_tls.as_ref().map_err(Clone::clone)?;
            return peers::connect_lazy(
                setting,
                &self.local_url,
                &self.process_token,
                timeout,
                tls,
            )
            .map(Some);
        }
        let configured = &self.settings.peers;
        let (setting, url) = match kind {
            ServiceKind::Intake => ("CREDIT_INTAKE_URL", &configured.intake),
            ServiceKind::Rating => ("CREDIT_RATING_URL", &configured.rating),
            ServiceKind::Limits => ("CREDIT_LIMITS_URL", &configured.limits),
            ServiceKind::Collections => ("CREDIT_COLLECTIONS_URL", &configured.collections),
        };
        let Some(url) = url else {
            return Ok(None);
        };
        let token = configured.service_token.as_ref().ok_or_else(|| {
            ConfigError::new(
                "CREDIT_SERVICE_TOKEN",
                format!("is required to call the service at {setting}: issue a token to this service's principal"),
            )
        })?;
        peers::connect_lazy(setting, url, token, timeout, &self.peer_tls).map(Some)
    }
}

/// Credit notes up to this amount of the base currency post on the poster's authority alone.
const DEFAULT_CREDIT_NOTE_FOUR_EYES_ABOVE: &str = "10000";

/// Collections' settings, checked: a bad classification stops start-up naming the setting.
fn collections_config(
    settings: &Settings,
) -> Result<credit_collections::CollectionsConfig, ConfigError> {
    let classification = match &settings.classification_rules {
        None => credit_collections::domain::ClassificationPolicy::default(),
        Some(rules) => credit_collections::domain::ClassificationPolicy::parse_setting(rules)
            .map_err(|problem| ConfigError::new("CREDIT_CLASSIFICATION_RULES", problem))?,
    };
    let four_eyes_above = settings
        .credit_note_four_eyes_above
        .as_deref()
        .unwrap_or(DEFAULT_CREDIT_NOTE_FOUR_EYES_ABOVE);
    let credit_note_four_eyes_above =
        credit_core::Money::parse(four_eyes_above, settings.base_currency.code())
            .and_then(credit_core::Money::non_negative)
            .map_err(|problem| {
                ConfigError::new("CREDIT_CREDIT_NOTE_FOUR_EYES_ABOVE", problem.to_string())
            })?;
    Ok(credit_collections::CollectionsConfig {
        classification,
        reporting_currency: settings.base_currency,
        credit_note_four_eyes_above,
    })
}

/// How often keys past their retention are swept: hourly keeps the table within an hour of
/// the retention at a cost of one indexed delete.
const IDEMPOTENCY_SWEEP_INTERVAL: std::time::Duration = std::time::Duration::from_secs(3_600);

/// Work a process does besides answering calls.
#[derive(Debug, Default)]
struct BackgroundWork {
    /// Release expired holds (limits).
    sweepers: Vec<credit_limits::expiry::ExpirySweeper>,
    /// Release referrals whose cause has cleared (limits).
    reexaminers: Vec<credit_limits::app::ReferralReexaminer>,
    /// Escalate approval steps left waiting past their deadline (limits).
    escalators: Vec<credit_limits::app::Escalator>,
    /// Compare cached exposure with the ledger and repair it (limits).
    reconciles: Vec<credit_limits::reconcile::BackgroundReconcile>,
    /// Re-rate customers whose review date has come (rating).
    review_schedulers: Vec<credit_rating::events::ReviewScheduler>,
    /// Announce receivables going overdue (collections).
    overdue_schedulers: Vec<credit_collections::schedule::OverdueScheduler>,
    /// Forget idempotency keys older than the retention (every service's store).
    idempotency_stores: Vec<(&'static str, Database)>,
    idempotency_retention: std::time::Duration,
}

/// The principal the services of one process call each other as: SERVICE, the reads a peer
/// needs and nothing else.
fn process_principal() -> Principal {
    Principal {
        id: "system:suite".to_owned(),
        person_id: "system:suite".to_owned(),
        name: "system:suite".to_owned(),
        roles: BTreeSet::from([Role::Service]),
        approval_authority: None,
    }
}

/// The services a process runs; all four unless `--services` names fewer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceSelection(BTreeSet<ServiceKind>);

impl ServiceSelection {
    pub fn all() -> Self {
        Self(ServiceKind::ALL.into_iter().collect())
    }

    pub fn is_all(&self) -> bool {
        self.0.len() == ServiceKind::ALL.len()
    }

    pub fn iter(&self) -> impl Iterator<Item = ServiceKind> + '_ {
        self.0.iter().copied()
    }

    pub fn contains(&self, kind: ServiceKind) -> bool {
        self.0.contains(&kind)
    }
}

impl FromStr for ServiceSelection {
    type Err = ConfigError;
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let mut selected = BTreeSet::new();
        for name in text
            .split(',')
            .map(str::trim)
            .filter(|name| !name.is_empty())
        {
            if name == "all" {
                return Ok(Self::all());
            }
            let kind = ServiceKind::ALL
                .into_iter()
                .find(|kind| kind.as_str() == name)
                .ok_or_else(|| {
                    ConfigError::new(
                        "--services (CREDIT_SERVICES)",
                        format!("unknown service '{name}'; expected any of intake, rating, limits, collections"),
                    )
                })?;
            selected.insert(kind);
        }
        if selected.is_empty() {
            return Err(ConfigError::new(
                "--services (CREDIT_SERVICES)",
                "names no service",
            ));
        }
        Ok(Self(selected))
    }
}

/// Why the suite could not start; each names what to fix.
#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Storage(#[from] StorageError),
    #[error(transparent)]
    Serve(#[from] ServeError),
    #[error("the identity store failed: {0}")]
    Identity(#[from] identity::IdentityError),
    #[error(transparent)]
    RatingModels(#[from] credit_rating::seed::SeedError),
    #[error(transparent)]
    DunningPolicy(#[from] credit_collections::seed::SeedError),
    #[error("cannot write the admin token to {path}: {source}")]
    AdminToken {
        path: String,
        source: std::io::Error,
    },
}

/// A started suite: ports bound, stores open and migrated, not yet serving.
#[derive(Debug)]
pub struct Application {
    server: BoundServer,
    databases: Vec<Database>,
    /// One outbox relay per service store, publishing to the process's event bus.
    relays: Vec<OutboxRelay>,
    /// Where this process publishes, and from where its services consume.
    bus: Arc<dyn EventBus>,
    handlers: Vec<Arc<dyn EventHandler>>,
    /// Readiness of each consumer task, in the order of `handlers`, and of each relay, in
    /// the order of `relays`: a process whose consumer or relay died is not ready.
    consumer_liveness: Vec<TaskLiveness>,
    relay_liveness: Vec<TaskLiveness>,
    background: BackgroundWork,
}

impl Application {
    /// Opens the stores of `selection`, prepares identity, and binds the ports.
    pub async fn build(
        settings: &Settings,
        selection: &ServiceSelection,
    ) -> Result<Self, StartupError> {
        if settings.backend.is_embedded() && !selection.is_all() {
            return Err(ConfigError::new(
                "--services (CREDIT_SERVICES)",
                "the embedded default runs all four services in one process; \
                 set CREDIT_DATABASE_URL and CREDIT_REDIS_URL to run a subset",
            )
            .into());
        }
        let max_connections = settings.database_max_connections;
        let migrate = settings.migrate_on_start;
        if let Backend::Production { database_url, .. } = &settings.backend {
            credit_runtime::storage::warn_unless_postgres_verified(database_url);
        }

        let identity_database =
            Database::open(&settings.backend, &IDENTITY_STORE, max_connections, migrate).await?;
        let token_store = identity::token_store(&identity_database);
        if let Backend::Embedded { data_dir } = &settings.backend {
            bootstrap_admin_token(token_store.as_ref(), data_dir, settings).await?;
        }

        // Bound first: the services of this process call each other at this address.
        let listeners = Listeners::bind(settings).await?;
        let (authenticator, process_token) =
            Authenticator::new(token_store.clone()).with_process_credential(process_principal());
        let peers = PeerDirectory {
            settings,
            selection,
            local_url: listeners.local_url().map_err(|source| ServeError::Listen {
                addr: settings.listen_addr,
                source,
            })?,
            process_token,
            own_tls: ClientTls::for_own_server(&settings.tls),
            peer_tls: ClientTls::load(&settings.tls)?,
        };

        let mut parts = ServerParts::default();
        parts.add_service(
            identity::service::server(token_store.clone(), authenticator.clone()),
            identity::service::access_policy(),
        );
        parts.add_dependency(Dependency::Database("identity", identity_database.clone()));
        let mut databases = vec![identity_database];
        let redis = match &settings.backend {
            Backend::Production {
                redis_url,
                redis_key_prefix,
                ..
            } => {
                let redis = RedisHandle::connect_with_ca(
                    redis_url,
                    redis_key_prefix,
                    settings.tls.redis_ca_file.as_deref(),
                )
                .await?;
                parts.add_dependency(Dependency::Redis(redis.clone()));
                Some(redis)
            }
            Backend::Embedded { .. } => None,
        };
        // The event pipeline's own store: dead letters, and how far consumers got.
        let events_database =
            Database::open(&settings.backend, &EVENTS_STORE, max_connections, migrate).await?;
        parts.add_dependency(Dependency::Database("events", events_database.clone()));
        databases.push(events_database.clone());
        let dead_letters = DeadLetterStore::new(events_database);
        parts.add_service(
            credit_runtime::operations::server(dead_letters.clone()),
            credit_runtime::operations::access_policy(),
        );
        let pipeline = EventPipeline::new(
            dead_letters,
            parts.metrics().events(),
            settings.delivery.clone(),
        );
        let bus: Arc<dyn EventBus> = match &redis {
            Some(redis) => Arc::new(RedisStreamsBus::new(redis.clone(), pipeline)),
            None => Arc::new(InProcessBus::new(pipeline)),
        };
        let mut relays = Vec::new();
        let mut handlers = Vec::new();
        let mut background = BackgroundWork {
            idempotency_retention: settings.idempotency_retention,
            ..BackgroundWork::default()
        };
        for kind in selection.iter() {
            let database =
                Database::open(&settings.backend, kind.store(), max_connections, migrate).await?;
            parts.add_dependency(Dependency::Database(kind.as_str(), database.clone()));
            handlers.extend(
                kind.add_to(
                    &mut parts,
                    database.clone(),
                    redis.as_ref(),
                    &peers,
                    &mut background,
                )
                .await?,
            );
            relays.push(OutboxRelay::new(
                kind.as_str(),
                database.clone(),
                bus.clone(),
            ));
            background
                .idempotency_stores
                .push((kind.as_str(), database.clone()));
            databases.push(database);
        }
        let consumer_liveness: Vec<TaskLiveness> = handlers
            .iter()
            .map(|handler| TaskLiveness::new(format!("event consumer {}", handler.consumer())))
            .collect();
        let relay_liveness: Vec<TaskLiveness> = selection
            .iter()
            .map(|kind| TaskLiveness::new(format!("outbox relay {kind}")))
            .collect();
        for liveness in consumer_liveness.iter().chain(&relay_liveness) {
            parts.add_dependency(Dependency::Task(liveness.clone()));
        }

        let server = BoundServer::on(listeners, settings, parts, authenticator);
        Ok(Self {
            server,
            databases,
            relays,
            bus,
            handlers,
            consumer_liveness,
            relay_liveness,
            background,
        })
    }

    /// The bus this process publishes to and consumes from: what a producing service's
    /// relay publishes reaches the consumers through it.
    pub fn event_bus(&self) -> Arc<dyn EventBus> {
        self.bus.clone()
    }

    /// The hold expiry sweeper of limits, when this process runs limits (tests call its
    /// `sweep` with a time of their choosing).
    pub fn expiry_sweeper(&self) -> Option<credit_limits::expiry::ExpirySweeper> {
        self.background.sweepers.first().cloned()
    }

    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.server.local_addr()
    }

    pub fn metrics_addr(&self) -> Option<SocketAddr> {
        self.server.metrics_addr()
    }

    /// Serves until `shutdown` resolves, drains within the deadline, closes the stores.
    pub async fn run_until_stopped(
        self,
        shutdown: impl Future<Output = ()> + Send,
    ) -> Result<(), StartupError> {
        let (stop_relays, relays_stopped) = tokio::sync::watch::channel(false);
        let metrics = self.bus.pipeline().metrics().clone();
        let consumers: Vec<_> = self
            .handlers
            .into_iter()
            .zip(self.consumer_liveness)
            .map(|(handler, liveness)| {
                let consumer = handler.consumer();
                let task = self.bus.subscribe(handler, relays_stopped.clone());
                let metrics = metrics.clone();
                metrics.set_consumer_down(consumer, false);
                tokio::spawn(async move {
                    liveness.watch(task).await;
                    metrics.set_consumer_down(consumer, true);
                })
            })
            .collect();
        let relay_tasks: Vec<_> = self
            .relays
            .into_iter()
            .zip(self.relay_liveness)
            .map(|(relay, liveness)| {
                tokio::spawn(liveness.watch(tokio::spawn(relay.run(relays_stopped.clone()))))
            })
            .chain(
                self.background
                    .sweepers
                    .into_iter()
                    .map(|sweeper| tokio::spawn(sweeper.run(relays_stopped.clone()))),
            )
            .chain(
                self.background
                    .reconciles
                    .into_iter()
                    .map(|reconcile| tokio::spawn(reconcile.run(relays_stopped.clone()))),
            )
            .chain(
                self.background
                    .reexaminers
                    .into_iter()
                    .map(|reexaminer| tokio::spawn(reexaminer.run(relays_stopped.clone()))),
            )
            .chain(
                self.background
                    .escalators
                    .into_iter()
                    .map(|escalator| tokio::spawn(escalator.run(relays_stopped.clone()))),
            )
            .chain(
                self.background
                    .review_schedulers
                    .into_iter()
                    .map(|scheduler| tokio::spawn(scheduler.run(relays_stopped.clone()))),
            )
            .chain(
                self.background
                    .overdue_schedulers
                    .into_iter()
                    .map(|scheduler| tokio::spawn(scheduler.run(relays_stopped.clone()))),
            )
            .chain(std::iter::once(tokio::spawn(
                credit_runtime::store::run_idempotency_sweeper(
                    self.background.idempotency_stores,
                    self.background.idempotency_retention,
                    IDEMPOTENCY_SWEEP_INTERVAL,
                    relays_stopped.clone(),
                ),
            )))
            .collect();
        let result = self.server.run_until_stopped(shutdown).await;
        let _ = stop_relays.send(true);
        for task in relay_tasks.into_iter().chain(consumers) {
            let _ = task.await;
        }
        for database in &self.databases {
            database.close().await;
        }
        result.map_err(StartupError::from)
    }
}

/// On the first start of the embedded default there is no token yet: issue an ADMIN token
/// and write it to `CREDIT_DATA_DIR/admin.token` (readable by the owner only), so a newcomer
/// can call the suite at once. The token itself is never logged.
async fn bootstrap_admin_token(
    store: &dyn TokenStore,
    data_dir: &Path,
    settings: &Settings,
) -> Result<(), StartupError> {
    if store.count().await? > 0 {
        return Ok(());
    }
    let issued = identity::issue_token(store, &NewPrincipal::new("admin", [Role::Admin])).await?;
    let path = data_dir.join(ADMIN_TOKEN_FILE);
    write_private_file(&path, issued.token.expose_secret()).map_err(|source| {
        StartupError::AdminToken {
            path: path.display().to_string(),
            source,
        }
    })?;
    tracing::info!(path = %path.display(), base_currency = %settings.base_currency, "first start: admin token written");
    Ok(())
}

fn write_private_file(path: &PathBuf, contents: &str) -> std::io::Result<()> {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options.open(path)?;
    file.write_all(contents.as_bytes())?;
    file.write_all(b"\n")
}

/// Applies the migrations of every store (identity and the four services) and returns.
pub async fn migrate(settings: &Settings) -> Result<Vec<&'static str>, StartupError> {
    let mut migrated = Vec::new();
    let stores = [&IDENTITY_STORE, &EVENTS_STORE]
        .into_iter()
        .chain(ServiceKind::ALL.iter().map(ServiceKind::store));
    for spec in stores {
        let database = Database::open(&settings.backend, spec, 1, true).await?;
        database.close().await;
        migrated.push(spec.name);
    }
    Ok(migrated)
}

/// Opens the identity store (migrating it when allowed) for the `token` commands.
pub async fn open_token_store(settings: &Settings) -> Result<Arc<dyn TokenStore>, StartupError> {
    let database = Database::open(
        &settings.backend,
        &IDENTITY_STORE,
        1,
        settings.migrate_on_start,
    )
    .await?;
    Ok(identity::token_store(&database))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn service_selection_parses_names_and_refuses_unknown_ones() {
        let selection: ServiceSelection = "limits, intake".parse().unwrap();
        assert_eq!(
            selection.iter().collect::<Vec<_>>(),
            [ServiceKind::Intake, ServiceKind::Limits]
        );
        assert!("all".parse::<ServiceSelection>().unwrap().is_all());
        let error = "limits,billing".parse::<ServiceSelection>().unwrap_err();
        assert!(error.to_string().contains("unknown service 'billing'"));
        assert!(error.to_string().contains("--services"));
        assert!("".parse::<ServiceSelection>().is_err());
    }
}
