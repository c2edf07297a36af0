//! Settings: defaults, then an optional TOML file, then `CREDIT_*` environment variables.
//!
//! Raw values are read with figment and then parsed here into typed settings, so that a bad
//! value is reported on one line naming the setting as an operator writes it
//! (`CREDIT_LISTEN_ADDR`), never as a serde path.

use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use credit_core::Currency;
use figment::Figment;
use figment::providers::{Env, Format, Serialized, Toml};
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};

/// A setting that could not be used. `Display` is one line that names the setting.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid setting {setting}: {problem}")]
pub struct ConfigError {
    /// The environment variable name (`CREDIT_LISTEN_ADDR`), or a command-line flag.
    pub setting: String,
    pub problem: String,
}

impl ConfigError {
    pub fn new(setting: impl Into<String>, problem: impl Into<String>) -> Self {
        Self {
            setting: setting.into(),
            problem: problem.into(),
        }
    }
}

/// Raw settings as read from the layers; every value is text so that parsing, and its error
/// message, happen in one place below.
/// One setting's raw value. A TOML file may write `4` or `true` where the environment can only
/// write text; every form is kept as text and parsed below.
#[derive(Debug, Clone, Serialize)]
struct Scalar(String);

impl std::ops::Deref for Scalar {
    type Target = str;
    fn deref(&self) -> &str {
        &self.0
    }
}

impl<'de> Deserialize<'de> for Scalar {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum AnyScalar {
            Text(String),
            Integer(i64),
            Float(f64),
            Bool(bool),
        }
        Ok(Scalar(match AnyScalar::deserialize(deserializer)? {
            AnyScalar::Text(text) => text,
            AnyScalar::Integer(number) => number.to_string(),
            AnyScalar::Float(number) => number.to_string(),
            AnyScalar::Bool(flag) => flag.to_string(),
        }))
    }
}

#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(default)]
struct RawSettings {
    listen_addr: Option<Scalar>,
    metrics_addr: Option<Scalar>,
    data_dir: Option<Scalar>,
    database_url: Option<Scalar>,
    database_max_connections: Option<Scalar>,
    redis_url: Option<Scalar>,
    redis_key_prefix: Option<Scalar>,
    log_format: Option<Scalar>,
    shutdown_timeout_secs: Option<Scalar>,
    request_timeout_ms: Option<Scalar>,
    concurrency_limit: Option<Scalar>,
    readiness_interval_ms: Option<Scalar>,
    migrate_on_start: Option<Scalar>,
    base_currency: Option<Scalar>,
    intake_url: Option<Scalar>,
    rating_url: Option<Scalar>,
    limits_url: Option<Scalar>,
    collections_url: Option<Scalar>,
    service_token: Option<Scalar>,
    classification_rules: Option<Scalar>,
    credit_note_four_eyes_above: Option<Scalar>,
    events_max_attempts: Option<Scalar>,
    events_claim_idle_ms: Option<Scalar>,
    exposure_reconcile_interval_secs: Option<Scalar>,
    idempotency_retention_hours: Option<Scalar>,
    queue_limit: Option<Scalar>,
    rate_limit_per_second: Option<Scalar>,
    rate_limit_burst: Option<Scalar>,
    reflection: Option<Scalar>,
    tls_cert_file: Option<Scalar>,
    tls_key_file: Option<Scalar>,
    tls_client_ca_file: Option<Scalar>,
    tls_ca_file: Option<Scalar>,
    tls_client_cert_file: Option<Scalar>,
    tls_client_key_file: Option<Scalar>,
    redis_ca_file: Option<Scalar>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    /// Human-readable lines, for a terminal.
    Pretty,
    /// One JSON object a line, for log collectors.
    Json,
}

/// Where a service keeps its records.
#[derive(Clone)]
pub enum Backend {
    /// SQLite files in `data_dir`, in-process cache and event bus: nothing to install.
    Embedded { data_dir: PathBuf },
    /// PostgreSQL (one schema per service) and Redis.
    Production {
        database_url: SecretString,
        redis_url: SecretString,
        /// Prefix of every Redis key, so several suites (or tests) can share one Redis.
        redis_key_prefix: String,
    },
}

impl fmt::Debug for Backend {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Backend::Embedded { data_dir } => formatter
                .debug_struct("Embedded")
                .field("data_dir", data_dir)
                .finish(),
            Backend::Production {
                redis_key_prefix, ..
            } => formatter
                .debug_struct("Production")
                .field("database_url", &"[redacted]")
                .field("redis_url", &"[redacted]")
                .field("redis_key_prefix", redis_key_prefix)
                .finish(),
        }
    }
}

impl Backend {
    pub fn is_embedded(&self) -> bool {
        matches!(self, Backend::Embedded { .. })
    }
}

mod tls;
pub use tls::{IdentityFiles, TlsSettings};

/// Addresses of the four services, for calls between them when a process runs a subset.
#[derive(Debug, Clone, Default)]
pub struct PeerUrls {
    pub intake: Option<String>,
    pub rating: Option<String>,
    pub limits: Option<String>,
    pub collections: Option<String>,
    /// The bearer token this process presents to services in other processes
    /// (`CREDIT_SERVICE_TOKEN`, a token issued to the service's principal). Services of the
    /// same process call each other with a credential minted at start-up instead.
    pub service_token: Option<SecretString>,
}

/// Typed, validated settings of a `credit-suite` process.
#[derive(Debug, Clone)]
pub struct Settings {
    pub listen_addr: SocketAddr,
    /// `None` turns the Prometheus endpoint off (`CREDIT_METRICS_ADDR=off`).
    pub metrics_addr: Option<SocketAddr>,
    pub backend: Backend,
    pub database_max_connections: u32,
    pub log_format: LogFormat,
    pub shutdown_timeout: Duration,
    pub request_timeout: Duration,
    pub concurrency_limit: usize,
    /// `CREDIT_QUEUE_LIMIT`: calls that may wait for one of the `concurrency_limit` slots;
    /// beyond it a call is shed at once with RESOURCE_EXHAUSTED (and a retry delay).
    pub queue_limit: usize,
    /// `CREDIT_RATE_LIMIT_PER_SECOND` / `CREDIT_RATE_LIMIT_BURST`: calls a second each person
    /// (all of their tokens together) may make; `None` (0) turns the limit off.
    pub rate_limit: Option<RateLimit>,
    /// `CREDIT_REFLECTION`: whether gRPC server reflection is served (grpcurl without proto
    /// files). On by default for a newcomer; production manifests turn it off.
    pub reflection: bool,
    pub readiness_interval: Duration,
    pub migrate_on_start: bool,
    /// Currency of approval authorities and portfolio figures.
    pub base_currency: Currency,
    pub peers: PeerUrls,
    /// `CREDIT_CLASSIFICATION_RULES`: collections' five-level classification as
    /// `min days:rate %` per class, NORMAL to LOSS; checked by collections at start.
    pub classification_rules: Option<String>,
    /// `CREDIT_CREDIT_NOTE_FOUR_EYES_ABOVE`: credit notes above this amount of the base
    /// currency need a second person; checked by collections at start (10000 when unset).
    pub credit_note_four_eyes_above: Option<String>,
    /// How the event pipeline retries and takes over (`CREDIT_EVENTS_MAX_ATTEMPTS`,
    /// `CREDIT_EVENTS_CLAIM_IDLE_MS`).
    pub delivery: crate::events::DeliveryPolicy,
    /// `CREDIT_EXPOSURE_RECONCILE_INTERVAL_SECS`: how often limits compares its cached
    /// exposure with the ledger and repairs what differs; `None` (0) turns it off.
    pub exposure_reconcile_interval: Option<Duration>,
    /// `CREDIT_IDEMPOTENCY_RETENTION_HOURS`: how long a request_id is remembered; a retry
    /// within it gets the first answer, after it the same id is new work (24 by default).
    pub idempotency_retention: Duration,
    /// TLS of the gRPC port, of the calls to peers, and of Redis (`CREDIT_TLS_*`,
    /// `CREDIT_REDIS_CA_FILE`); PostgreSQL's is in `CREDIT_DATABASE_URL` (`sslmode`).
    pub tls: TlsSettings,
}

/// A person's call budget: `per_second` sustained, `burst` at once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimit {
    pub per_second: u32,
    pub burst: u32,
}

/// Per person, far above what a clerk or an ERP's order stream needs, low enough that one
/// runaway client cannot take a process for itself.
pub const DEFAULT_RATE_LIMIT_PER_SECOND: u32 = 2_000;

pub const DEFAULT_LISTEN_ADDR: &str = "127.0.0.1:50051";
pub const DEFAULT_METRICS_ADDR: &str = "127.0.0.1:9464";
pub const DEFAULT_DATA_DIR: &str = "data";
/// Every five minutes: a reservation orphaned by a crash overstates exposure (refusing credit
/// that is free) for at most this long.
pub const DEFAULT_EXPOSURE_RECONCILE_INTERVAL_SECS: u64 = 300;
/// A day: longer than any client's retry loop, short enough that the keys stay a small table.
pub const DEFAULT_IDEMPOTENCY_RETENTION_HOURS: u64 = 24;

impl Settings {
    /// Reads the layers: defaults, `config_file` if given, then `CREDIT_*` variables.
    pub fn load(config_file: Option<&Path>) -> Result<Self, ConfigError> {
        let mut figment = Figment::from(Serialized::defaults(RawSettings::default()));
        if let Some(path) = config_file {
            if !path.is_file() {
                return Err(ConfigError::new(
                    "--config (CREDIT_CONFIG)",
                    format!("no such file: {}", path.display()),
                ));
            }
            figment = figment.merge(Toml::file(path));
        }
        // `CREDIT_CONFIG` names the file itself and is not a setting.
        figment = figment.merge(Env::prefixed("CREDIT_").ignore(&["CONFIG", "SERVICES"]));
        let raw: RawSettings = figment.extract().map_err(|error| {
            ConfigError::new("configuration file", error.to_string().replace('\n', " "))
        })?;
        Self::from_raw(raw)
    }

    fn from_raw(raw: RawSettings) -> Result<Self, ConfigError> {
        let listen_addr = parse_addr(
            "CREDIT_LISTEN_ADDR",
            raw.listen_addr.as_deref().unwrap_or(DEFAULT_LISTEN_ADDR),
        )?;
        let metrics_addr = match raw.metrics_addr.as_deref().map(str::trim) {
            Some("off" | "") => None,
            Some(text) => Some(parse_addr("CREDIT_METRICS_ADDR", text)?),
            None => Some(parse_addr("CREDIT_METRICS_ADDR", DEFAULT_METRICS_ADDR)?),
        };
        let backend = parse_backend(&raw)?;
        let log_format = match raw.log_format.as_deref().map(str::trim) {
            None | Some("pretty" | "text") => LogFormat::Pretty,
            Some("json") => LogFormat::Json,
            Some(other) => {
                return Err(ConfigError::new(
                    "CREDIT_LOG_FORMAT",
                    format!("'{other}' is not a log format; expected pretty or json"),
                ));
            }
        };
        let base_currency = Currency::parse(raw.base_currency.as_deref().unwrap_or("CNY"))
            .map_err(|error| ConfigError::new("CREDIT_BASE_CURRENCY", error.to_string()))?;
        let tls = parse_tls(&raw, &backend)?;
        Ok(Self {
            listen_addr,
            metrics_addr,
            backend,
            database_max_connections: parse_number(
                "CREDIT_DATABASE_MAX_CONNECTIONS",
                raw.database_max_connections,
                8,
                1..=1000,
            )?,
            log_format,
            shutdown_timeout: Duration::from_secs(parse_number(
                "CREDIT_SHUTDOWN_TIMEOUT_SECS",
                raw.shutdown_timeout_secs,
                20,
                1..=3600,
            )?),
            request_timeout: Duration::from_millis(parse_number(
                "CREDIT_REQUEST_TIMEOUT_MS",
                raw.request_timeout_ms,
                10_000,
                1..=3_600_000,
            )?),
            concurrency_limit: parse_number(
                "CREDIT_CONCURRENCY_LIMIT",
                raw.concurrency_limit,
                1024,
                1..=1_000_000,
            )?,
            queue_limit: parse_number("CREDIT_QUEUE_LIMIT", raw.queue_limit, 1024, 0..=1_000_000)?,
            rate_limit: parse_rate_limit(raw.rate_limit_per_second, raw.rate_limit_burst)?,
            reflection: parse_bool("CREDIT_REFLECTION", raw.reflection.as_deref(), true)?,
            readiness_interval: Duration::from_millis(parse_number(
                "CREDIT_READINESS_INTERVAL_MS",
                raw.readiness_interval_ms,
                2_000,
                50..=600_000,
            )?),
            migrate_on_start: parse_bool(
                "CREDIT_MIGRATE_ON_START",
                raw.migrate_on_start.as_deref(),
                true,
            )?,
            base_currency,
            peers: PeerUrls {
                intake: parse_peer("CREDIT_INTAKE_URL", raw.intake_url)?,
                rating: parse_peer("CREDIT_RATING_URL", raw.rating_url)?,
                limits: parse_peer("CREDIT_LIMITS_URL", raw.limits_url)?,
                collections: parse_peer("CREDIT_COLLECTIONS_URL", raw.collections_url)?,
                service_token: raw
                    .service_token
                    .filter(|token| !token.trim().is_empty())
                    .map(|Scalar(token)| SecretString::from(token.trim().to_owned())),
            },
            classification_rules: raw
                .classification_rules
                .map(|Scalar(rules)| rules.trim().to_owned())
                .filter(|rules| !rules.is_empty()),
            credit_note_four_eyes_above: raw
                .credit_note_four_eyes_above
                .map(|Scalar(amount)| amount.trim().to_owned())
                .filter(|amount| !amount.is_empty()),
            delivery: crate::events::DeliveryPolicy {
                max_attempts: parse_number(
                    "CREDIT_EVENTS_MAX_ATTEMPTS",
                    raw.events_max_attempts,
                    crate::events::DeliveryPolicy::default().max_attempts,
                    1..=100,
                )?,
                claim_idle: Duration::from_millis(parse_number(
                    "CREDIT_EVENTS_CLAIM_IDLE_MS",
                    raw.events_claim_idle_ms,
                    30_000,
                    100..=86_400_000,
                )?),
                ..crate::events::DeliveryPolicy::default()
            },
            exposure_reconcile_interval: match parse_number(
                "CREDIT_EXPOSURE_RECONCILE_INTERVAL_SECS",
                raw.exposure_reconcile_interval_secs,
                DEFAULT_EXPOSURE_RECONCILE_INTERVAL_SECS,
                0..=86_400,
            )? {
                0 => None,
                secs => Some(Duration::from_secs(secs)),
            },
            idempotency_retention: Duration::from_secs(
                3_600
                    * parse_number(
                        "CREDIT_IDEMPOTENCY_RETENTION_HOURS",
                        raw.idempotency_retention_hours,
                        DEFAULT_IDEMPOTENCY_RETENTION_HOURS,
                        1..=8_760,
                    )?,
            ),
            tls,
        })
    }

    /// Settings for a process started by a test: free ports, embedded storage in `data_dir`.
    pub fn for_tests(data_dir: PathBuf) -> Self {
        Self {
            listen_addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            metrics_addr: Some(SocketAddr::from(([127, 0, 0, 1], 0))),
            backend: Backend::Embedded { data_dir },
            database_max_connections: 2,
            log_format: LogFormat::Pretty,
            shutdown_timeout: Duration::from_secs(5),
            request_timeout: Duration::from_secs(30),
            concurrency_limit: 256,
            queue_limit: 1024,
            rate_limit: None,
            reflection: true,
            readiness_interval: Duration::from_millis(100),
            migrate_on_start: true,
            base_currency: Currency::parse("CNY")
                .unwrap_or_else(|_| unreachable!("CNY is ISO 4217")),
            peers: PeerUrls::default(),
            classification_rules: None,
            credit_note_four_eyes_above: None,
            delivery: crate::events::DeliveryPolicy::default(),
            // Tests that want it turn it on: a repair in the middle of a test's own
            // comparison would make its figures depend on timing.
            exposure_reconcile_interval: None,
            idempotency_retention: Duration::from_secs(3_600 * DEFAULT_IDEMPOTENCY_RETENTION_HOURS),
            tls: TlsSettings::default(),
        }
    }
}

fn parse_tls(raw: &RawSettings, backend: &Backend) -> Result<TlsSettings, ConfigError> {
    let redis_ca_set = raw
        .redis_ca_file
        .as_deref()
        .is_some_and(|path| !path.trim().is_empty());
    let rediss = match backend {
        Backend::Production { redis_url, .. } => {
            url::Url::parse(redis_url.expose_secret()).is_ok_and(|url| url.scheme() == "rediss")
        }
        Backend::Embedded { .. } => false,
    };
    if redis_ca_set && !rediss {
        return Err(ConfigError::new(
            crate::tls::REDIS_CA_FILE,
            "is used only with a rediss:// CREDIT_REDIS_URL (Redis over TLS)",
        ));
    }
    TlsSettings::parse(&|name| {
        match name {
            crate::tls::CERT_FILE => raw.tls_cert_file.as_ref(),
            crate::tls::KEY_FILE => raw.tls_key_file.as_ref(),
            crate::tls::CLIENT_CA_FILE => raw.tls_client_ca_file.as_ref(),
            crate::tls::CA_FILE => raw.tls_ca_file.as_ref(),
            crate::tls::CLIENT_CERT_FILE => raw.tls_client_cert_file.as_ref(),
            crate::tls::CLIENT_KEY_FILE => raw.tls_client_key_file.as_ref(),
            crate::tls::REDIS_CA_FILE => raw.redis_ca_file.as_ref(),
            _ => None,
        }
        .map(|Scalar(text)| text.clone())
    })
}

fn parse_addr(setting: &str, text: &str) -> Result<SocketAddr, ConfigError> {
    text.trim().parse().map_err(|_| {
        ConfigError::new(
            setting,
            format!("'{text}' is not a socket address such as 127.0.0.1:50051"),
        )
    })
}

fn parse_number<T>(
    setting: &str,
    text: Option<Scalar>,
    default: T,
    range: std::ops::RangeInclusive<T>,
) -> Result<T, ConfigError>
where
    T: std::str::FromStr + PartialOrd + fmt::Display + Copy,
{
    let Some(text) = text else { return Ok(default) };
    let value: T = text
        .trim()
        .parse()
        .map_err(|_| ConfigError::new(setting, format!("'{}' is not a whole number", &*text)))?;
    if !range.contains(&value) {
        return Err(ConfigError::new(
            setting,
            format!("{value} is outside {}..={}", range.start(), range.end()),
        ));
    }
    Ok(value)
}

fn parse_rate_limit(
    per_second: Option<Scalar>,
    burst: Option<Scalar>,
) -> Result<Option<RateLimit>, ConfigError> {
    let per_second: u32 = parse_number(
        "CREDIT_RATE_LIMIT_PER_SECOND",
        per_second,
        DEFAULT_RATE_LIMIT_PER_SECOND,
        0..=10_000_000,
    )?;
    if per_second == 0 {
        return Ok(None);
    }
    let burst: u32 = parse_number(
        "CREDIT_RATE_LIMIT_BURST",
        burst,
        per_second.saturating_mul(2),
        1..=u32::MAX,
    )?;
    Ok(Some(RateLimit { per_second, burst }))
}

fn parse_bool(setting: &str, text: Option<&str>, default: bool) -> Result<bool, ConfigError> {
    match text.map(|text| text.trim().to_ascii_lowercase()).as_deref() {
        None => Ok(default),
        Some("true" | "1" | "yes" | "on") => Ok(true),
        Some("false" | "0" | "no" | "off") => Ok(false),
        Some(other) => Err(ConfigError::new(
            setting,
            format!("'{other}' is not true or false"),
        )),
    }
}

fn parse_peer(setting: &str, text: Option<Scalar>) -> Result<Option<String>, ConfigError> {
    let Some(Scalar(text)) = text.filter(|text| !text.trim().is_empty()) else {
        return Ok(None);
    };
    let parsed = url::Url::parse(text.trim())
        .map_err(|error| ConfigError::new(setting, format!("'{text}' is not a URL ({error})")))?;
    if !matches!(parsed.scheme(), "http" | "https") || parsed.host_str().is_none() {
        return Err(ConfigError::new(
            setting,
            format!("'{text}' must be an http:// or https:// address such as http://intake:50051"),
        ));
    }
    Ok(Some(text.trim().to_owned()))
}

fn parse_backend(raw: &RawSettings) -> Result<Backend, ConfigError> {
    let database_url = raw
        .database_url
        .as_deref()
        .map(str::trim)
        .filter(|url| !url.is_empty());
    let redis_url = raw
        .redis_url
        .as_deref()
        .map(str::trim)
        .filter(|url| !url.is_empty());
    match (database_url, redis_url) {
        (None, None) => Ok(Backend::Embedded {
            data_dir: PathBuf::from(raw.data_dir.as_deref().unwrap_or(DEFAULT_DATA_DIR)),
        }),
        (Some(_), None) => Err(ConfigError::new(
            "CREDIT_REDIS_URL",
            "is required when CREDIT_DATABASE_URL is set (PostgreSQL mode caches exposure in Redis)",
        )),
        (None, Some(_)) => Err(ConfigError::new(
            "CREDIT_DATABASE_URL",
            "is required when CREDIT_REDIS_URL is set (Redis is only a cache of the PostgreSQL ledger)",
        )),
        (Some(database_url), Some(redis_url)) => {
            check_url(
                "CREDIT_DATABASE_URL",
                database_url,
                &["postgres", "postgresql"],
            )?;
            check_url("CREDIT_REDIS_URL", redis_url, &["redis", "rediss"])?;
            Ok(Backend::Production {
                database_url: SecretString::from(database_url.to_owned()),
                redis_url: SecretString::from(redis_url.to_owned()),
                redis_key_prefix: raw
                    .redis_key_prefix
                    .as_deref()
                    .unwrap_or("credit:")
                    .to_owned(),
            })
        }
    }
}

/// Checks the shape of a connection URL without echoing it: it may hold a password.
fn check_url(setting: &str, text: &str, schemes: &[&str]) -> Result<(), ConfigError> {
    let parsed = url::Url::parse(text)
        .map_err(|error| ConfigError::new(setting, format!("not a URL ({error})")))?;
    if !schemes.contains(&parsed.scheme()) {
        return Err(ConfigError::new(
            setting,
            format!(
                "scheme '{}' is not one of {}",
                parsed.scheme(),
                schemes.join(", ")
            ),
        ));
    }
    if parsed.host_str().is_none_or(str::is_empty) {
        return Err(ConfigError::new(setting, "the URL names no host"));
    }
    Ok(())
}

/// A connection URL with its password replaced, for log lines and error messages.
pub fn redact_url(secret: &SecretString) -> String {
    match url::Url::parse(secret.expose_secret()) {
        Ok(mut parsed) => {
            if parsed.password().is_some() {
                let _ = parsed.set_password(Some("***"));
            }
            parsed.to_string()
        }
        Err(_) => "[unparseable URL]".to_owned(),
    }
}

#[cfg(test)]
#[allow(
    clippy::result_large_err,
    reason = "figment's Jail closure returns figment::Error"
)]
mod tests {
    use super::*;

    fn load_with(vars: &[(&str, &str)]) -> Result<Settings, ConfigError> {
        let mut result = None;
        figment::Jail::expect_with(|jail| {
            for (name, value) in vars {
                jail.set_env(name, value);
            }
            result = Some(Settings::load(None));
            Ok(())
        });
        result.unwrap_or_else(|| unreachable!())
    }

    #[test]
    fn defaults_run_embedded_on_the_documented_address() {
        let settings = load_with(&[]).unwrap();
        assert_eq!(settings.listen_addr.to_string(), DEFAULT_LISTEN_ADDR);
        assert!(settings.backend.is_embedded());
        assert_eq!(settings.base_currency.code(), "CNY");
    }

    #[test]
    fn environment_overrides_defaults() {
        let settings = load_with(&[
            ("CREDIT_LISTEN_ADDR", "0.0.0.0:6000"),
            (
                "CREDIT_DATABASE_URL",
                "postgres://app:hunter2@db:5432/credit",
            ),
            ("CREDIT_REDIS_URL", "redis://cache:6379/0"),
            ("CREDIT_METRICS_ADDR", "off"),
        ])
        .unwrap();
        assert_eq!(settings.listen_addr.port(), 6000);
        assert!(settings.metrics_addr.is_none());
        assert!(!settings.backend.is_embedded());
        // The password never shows in debug output.
        assert!(!format!("{settings:?}").contains("hunter2"));
    }

    #[test]
    fn bad_values_name_the_setting_on_one_line() {
        let error = load_with(&[("CREDIT_LISTEN_ADDR", "localhost")]).unwrap_err();
        assert_eq!(error.setting, "CREDIT_LISTEN_ADDR");
        let error = load_with(&[
            ("CREDIT_DATABASE_URL", "not a url"),
            ("CREDIT_REDIS_URL", "redis://x"),
        ])
        .unwrap_err();
        assert_eq!(error.setting, "CREDIT_DATABASE_URL");
        assert!(!error.to_string().contains('\n'));
        let error = load_with(&[
            ("CREDIT_DATABASE_URL", "mysql://db/x"),
            ("CREDIT_REDIS_URL", "redis://x"),
        ])
        .unwrap_err();
        assert_eq!(error.setting, "CREDIT_DATABASE_URL");
        let error = load_with(&[("CREDIT_DATABASE_URL", "postgres://db/x")]).unwrap_err();
        assert_eq!(error.setting, "CREDIT_REDIS_URL");
        let error = load_with(&[("CREDIT_SHUTDOWN_TIMEOUT_SECS", "soon")]).unwrap_err();
        assert_eq!(error.setting, "CREDIT_SHUTDOWN_TIMEOUT_SECS");
        let error = load_with(&[("CREDIT_INTAKE_URL", "intake:50051")]).unwrap_err();
        assert_eq!(error.setting, "CREDIT_INTAKE_URL");
    }

    #[test]
    fn tls_files_come_in_pairs_and_are_checked_at_load() {
        let error = load_with(&[("CREDIT_TLS_CERT_FILE", "server.pem")]).unwrap_err();
        assert_eq!(error.setting, "CREDIT_TLS_KEY_FILE");
        let error = load_with(&[("CREDIT_TLS_KEY_FILE", "server.key")]).unwrap_err();
        assert_eq!(error.setting, "CREDIT_TLS_CERT_FILE");
        let error = load_with(&[("CREDIT_TLS_CLIENT_CERT_FILE", "client.pem")]).unwrap_err();
        assert_eq!(error.setting, "CREDIT_TLS_CLIENT_KEY_FILE");
        let error = load_with(&[("CREDIT_TLS_CLIENT_CA_FILE", "ca.pem")]).unwrap_err();
        assert_eq!(error.setting, "CREDIT_TLS_CLIENT_CA_FILE");
        // Named files must exist: the process must not start and then fail every handshake.
        let error = load_with(&[
            ("CREDIT_TLS_CERT_FILE", "no-such-server.pem"),
            ("CREDIT_TLS_KEY_FILE", "no-such-server.key"),
        ])
        .unwrap_err();
        assert_eq!(error.setting, "CREDIT_TLS_CERT_FILE");
        assert!(!error.to_string().contains('\n'));
        let error = load_with(&[("CREDIT_TLS_CA_FILE", "no-such-ca.pem")]).unwrap_err();
        assert_eq!(error.setting, "CREDIT_TLS_CA_FILE");
        // A Redis CA needs Redis over TLS.
        let error = load_with(&[
            ("CREDIT_DATABASE_URL", "postgres://db/credit"),
            ("CREDIT_REDIS_URL", "redis://cache:6379/0"),
            ("CREDIT_REDIS_CA_FILE", "ca.pem"),
        ])
        .unwrap_err();
        assert_eq!(error.setting, "CREDIT_REDIS_CA_FILE");
        assert!(error.problem.contains("rediss://"), "{error}");
        assert_eq!(load_with(&[]).unwrap().tls, TlsSettings::default());
    }

    #[test]
    fn file_layer_sits_between_defaults_and_environment() {
        figment::Jail::expect_with(|jail| {
            jail.create_file(
                "credit.toml",
                "listen_addr = \"127.0.0.1:7000\"\nlog_format = \"json\"\ndatabase_max_connections = 4\n",
            )?;
            jail.set_env("CREDIT_LOG_FORMAT", "pretty");
            let settings = Settings::load(Some(Path::new("credit.toml"))).unwrap();
            assert_eq!(settings.listen_addr.port(), 7000);
            assert_eq!(settings.log_format, LogFormat::Pretty);
            assert_eq!(settings.database_max_connections, 4);
            Ok(())
        });
    }

    #[test]
    fn redacts_passwords() {
        let secret = SecretString::from("postgres://app:hunter2@db:5432/credit".to_owned());
        assert_eq!(redact_url(&secret), "postgres://app:***@db:5432/credit");
    }
}
