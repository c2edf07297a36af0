//! Channels to the other services of the suite. Queries cross services over gRPC (state
//! changes cross as events): rating asks intake for a customer's credit file and collections
//! for its payment behaviour.
//!
//! A peer call goes through the callee's whole stack — authentication, access policy,
//! deadlines, metrics — whether the peer runs in this process or in another one, so both
//! deployments behave alike. Each call carries the caller's service credential and the W3C
//! trace context of the current span, so one trace spans both services.

use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};
use tonic::metadata::{Ascii, MetadataValue};
use tonic::service::Interceptor;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::Channel;

use crate::config::ConfigError;
use crate::telemetry::TraceContextInterceptor;
use crate::tls::ClientTls;

/// How long to wait for a peer's connection before the call fails with UNAVAILABLE.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);

/// A channel to a peer service: clone it freely (one connection pool per peer and process).
pub type PeerChannel = InterceptedService<Channel, PeerCredentials>;

/// Adds the service credential and the trace context to every outgoing call.
#[derive(Clone)]
pub struct PeerCredentials {
    authorization: MetadataValue<Ascii>,
}

impl std::fmt::Debug for PeerCredentials {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.write_str("PeerCredentials([redacted])")
    }
}

impl Interceptor for PeerCredentials {
    fn call(
        &mut self,
        mut request: tonic::Request<()>,
    ) -> Result<tonic::Request<()>, tonic::Status> {
        request
            .metadata_mut()
            .insert("authorization", self.authorization.clone());
        TraceContextInterceptor.call(request)
    }
}

/// A lazily connected channel to the peer at `url` (`http://intake:50051`, or `https://` with
/// `tls`), calling with `token`; each call gives up after `timeout`. Nothing is dialled until
/// the first call, so the suite starts even while a peer is still starting; what TLS needs
/// (certificates, roots) is loaded here, so a problem with it stops start-up instead.
pub fn connect_lazy(
    setting: &str,
    url: &str,
    token: &SecretString,
    timeout: Duration,
    tls: &ClientTls,
) -> Result<PeerChannel, ConfigError> {
    let endpoint = tls
        .endpoint(setting, url)?
        .connect_timeout(CONNECT_TIMEOUT)
        .timeout(timeout)
        .tcp_nodelay(true);
    let mut authorization: MetadataValue<Ascii> = format!("Bearer {}", token.expose_secret())
        .parse()
        .map_err(|_| {
            ConfigError::new(
                "CREDIT_SERVICE_TOKEN",
                "holds characters a header cannot carry",
            )
        })?;
    authorization.set_sensitive(true);
    Ok(InterceptedService::new(
        endpoint.connect_lazy(),
        PeerCredentials { authorization },
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_credential_is_sent_as_a_bearer_token_and_never_printed() {
        let token = SecretString::from("cst_example".to_owned());
        let channel = connect_lazy(
            "CREDIT_INTAKE_URL",
            "http://127.0.0.1:1",
            &token,
            Duration::from_secs(1),
            &ClientTls::default(),
        )
        .unwrap_or_else(|error| panic!("{error}"));
        let mut credentials = PeerCredentials {
            authorization: "Bearer cst_example"
                .parse()
                .unwrap_or_else(|_| unreachable!()),
        };
        let request = credentials
            .call(tonic::Request::new(()))
            .unwrap_or_else(|status| panic!("{status}"));
        assert_eq!(
            request
                .metadata()
                .get("authorization")
                .and_then(|value| value.to_str().ok()),
            Some("Bearer cst_example")
        );
        assert!(!format!("{channel:?}").contains("cst_example"));
    }

    #[test]
    fn a_url_that_is_no_url_names_the_setting() {
        let error = connect_lazy(
            "CREDIT_INTAKE_URL",
            "not a url",
            &SecretString::from("cst_x".to_owned()),
            Duration::from_secs(1),
            &ClientTls::default(),
        )
        .err()
        .map(|error| error.setting);
        assert_eq!(error.as_deref(), Some("CREDIT_INTAKE_URL"));
    }
}
