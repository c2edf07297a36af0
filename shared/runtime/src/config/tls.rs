//! The TLS settings (`CREDIT_TLS_*`, `CREDIT_REDIS_CA_FILE`): which files, checked as they load.
//! What is done with them is `crate::tls`.

use std::path::PathBuf;

use super::ConfigError;

/// A certificate (PEM, the chain from the certificate itself up) and its private key (PEM).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdentityFiles {
    pub cert_file: PathBuf,
    pub key_file: PathBuf,
}

/// TLS of the gRPC port and of the connections this process opens (README, "TLS"). Every file
/// named here was read and checked when the settings loaded.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TlsSettings {
    /// `CREDIT_TLS_CERT_FILE` / `CREDIT_TLS_KEY_FILE`: the gRPC port speaks TLS, and only TLS.
    pub server: Option<IdentityFiles>,
    /// `CREDIT_TLS_CLIENT_CA_FILE`: mutual TLS; a client must present a certificate this CA
    /// signed, or the handshake fails.
    pub client_ca_file: Option<PathBuf>,
    /// `CREDIT_TLS_CA_FILE`: the CAs trusted on `https://` addresses (peers, the command-line
    /// clients) instead of the system's roots.
    pub ca_file: Option<PathBuf>,
    /// `CREDIT_TLS_CLIENT_CERT_FILE` / `CREDIT_TLS_CLIENT_KEY_FILE`: presented on `https://`
    /// addresses that ask for a client certificate, this process's own port included.
    pub client: Option<IdentityFiles>,
    /// `CREDIT_REDIS_CA_FILE`: the CAs trusted for a `rediss://` `CREDIT_REDIS_URL` instead of
    /// the system's roots.
    pub redis_ca_file: Option<PathBuf>,
}

impl TlsSettings {
    /// Reads the TLS settings through `value` (a setting's text by its name, such as
    /// `CREDIT_TLS_CERT_FILE`) and checks every file they name.
    pub fn parse(value: &dyn Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        use crate::tls::{
            CA_FILE, CERT_FILE, CLIENT_CA_FILE, CLIENT_CERT_FILE, CLIENT_KEY_FILE, KEY_FILE,
            REDIS_CA_FILE,
        };
        let path = |setting: &str| {
            value(setting)
                .map(|text| text.trim().to_owned())
                .filter(|text| !text.is_empty())
                .map(PathBuf::from)
        };
        let server = identity_files((CERT_FILE, path(CERT_FILE)), (KEY_FILE, path(KEY_FILE)))?;
        let client_ca_file = path(CLIENT_CA_FILE);
        if client_ca_file.is_some() && server.is_none() {
            return Err(ConfigError::new(
                CLIENT_CA_FILE,
                format!(
                    "needs {CERT_FILE} and {KEY_FILE}: client certificates are asked for in the \
                     TLS handshake"
                ),
            ));
        }
        let settings = Self {
            server,
            client_ca_file,
            ca_file: path(CA_FILE),
            client: identity_files(
                (CLIENT_CERT_FILE, path(CLIENT_CERT_FILE)),
                (CLIENT_KEY_FILE, path(CLIENT_KEY_FILE)),
            )?,
            redis_ca_file: path(REDIS_CA_FILE),
        };
        crate::tls::check(&settings)?;
        Ok(settings)
    }

    /// The TLS settings of the environment alone, for a client whose other settings do not
    /// load.
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::parse(&|name| std::env::var(name).ok())
    }

    /// Whether the gRPC port speaks TLS.
    pub fn serves_tls(&self) -> bool {
        self.server.is_some()
    }
}

/// A certificate and its key: both or neither.
fn identity_files(
    (cert_setting, cert_file): (&str, Option<PathBuf>),
    (key_setting, key_file): (&str, Option<PathBuf>),
) -> Result<Option<IdentityFiles>, ConfigError> {
    match (cert_file, key_file) {
        (None, None) => Ok(None),
        (Some(cert_file), Some(key_file)) => Ok(Some(IdentityFiles {
            cert_file,
            key_file,
        })),
        (Some(_), None) => Err(ConfigError::new(
            key_setting,
            format!("is required with {cert_setting} (a certificate needs its private key)"),
        )),
        (None, Some(_)) => Err(ConfigError::new(
            cert_setting,
            format!("is required with {key_setting} (a private key needs its certificate)"),
        )),
    }
}
