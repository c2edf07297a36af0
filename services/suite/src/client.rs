//! A connection to a running suite with a bearer token, for the commands that are its clients
//! (`reconcile`, `events`).

use std::time::Duration;

use credit_runtime::config::ConfigError;
use secrecy::ExposeSecret;
use tonic::metadata::{Ascii, MetadataValue};
use tonic::transport::Channel;

use crate::import::SuiteTarget;

const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// Why the suite could not be reached. Never holds the token.
#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    #[error(transparent)]
    Usage(#[from] ConfigError),
    #[error("cannot connect to {addr}")]
    Connect {
        addr: String,
        #[source]
        source: tonic::transport::Error,
    },
}

/// A channel to the suite and the token every call carries.
#[derive(Debug, Clone)]
pub struct SuiteConnection {
    pub channel: Channel,
    authorization: MetadataValue<Ascii>,
}

impl SuiteConnection {
    pub async fn open(target: &SuiteTarget) -> Result<Self, ConnectError> {
        let authorization = format!("Bearer {}", target.token.expose_secret())
            .parse()
            .map_err(|_| {
                ConfigError::new(
                    target.token_source.clone(),
                    "the token holds characters that cannot be sent in a header",
                )
            })?;
        let endpoint = target
            .tls
            .endpoint("--addr (CREDIT_ADDR)", &target.addr)?
            .connect_timeout(CONNECT_TIMEOUT)
            .tcp_nodelay(true);
        let channel = endpoint
            .connect()
            .await
            .map_err(|source| ConnectError::Connect {
                addr: target.addr.clone(),
                source,
            })?;
        Ok(Self {
            channel,
            authorization,
        })
    }

    /// `message` as a call that carries the token.
    pub fn call<T>(&self, message: T) -> tonic::Request<T> {
        let mut request = tonic::Request::new(message);
        request
            .metadata_mut()
            .insert("authorization", self.authorization.clone());
        request
    }
}
