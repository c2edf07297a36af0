//! TLS of the gRPC port and of the calls this process makes (to its peers, and from the
//! command-line clients): rustls with the ring provider, certificates and keys read from the PEM
//! files the `CREDIT_TLS_*` settings name (README, "TLS").
//!
//! Every file is read and checked when the settings load ([`check`]), so a wrong path, a file
//! without a certificate, or a key that is not the certificate's stops start-up on one line that
//! names the setting, instead of failing the first handshake.

use std::fmt;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use credit_core::error::ErrorChain;
use rustls::RootCertStore;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::server::WebPkiClientVerifier;
use rustls::sign::CertifiedKey;
use tonic::transport::{Certificate, ClientTlsConfig, Endpoint, Identity, ServerTlsConfig};

use crate::config::{ConfigError, IdentityFiles, TlsSettings};

/// A client that opens a connection and then sends nothing holds a handshake task; after this
/// long the server drops it. A client gives up on a server that does not finish as soon.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

pub const CERT_FILE: &str = "CREDIT_TLS_CERT_FILE";
pub const KEY_FILE: &str = "CREDIT_TLS_KEY_FILE";
pub const CLIENT_CA_FILE: &str = "CREDIT_TLS_CLIENT_CA_FILE";
pub const CA_FILE: &str = "CREDIT_TLS_CA_FILE";
pub const CLIENT_CERT_FILE: &str = "CREDIT_TLS_CLIENT_CERT_FILE";
pub const CLIENT_KEY_FILE: &str = "CREDIT_TLS_CLIENT_KEY_FILE";
pub const REDIS_CA_FILE: &str = "CREDIT_REDIS_CA_FILE";

/// The one cryptography provider of the process: ring (aws-lc-rs would need cmake and a long C
/// build, and two providers in one process make rustls refuse to pick either). tonic and sqlx
/// use the same one.
#[allow(
    deprecated,
    reason = "rustls 0.23.48 deprecates ring's provider for lacking post-quantum key exchange; \
              aws-lc-rs, which has it, is the C build this project avoids"
)]
fn ring_provider() -> CryptoProvider {
    rustls::crypto::ring::default_provider()
}

fn provider() -> Arc<CryptoProvider> {
    Arc::new(ring_provider())
}

/// Makes ring the process's default rustls provider, for the libraries that take the default
/// rather than one given to them (redis). Harmless when a default is already set.
pub fn install_crypto_provider() {
    let _ = ring_provider().install_default();
}

/// Checks every file `settings` names: readable, PEM, the right content, keys matching their
/// certificates. What the process builds from them later cannot fail on their content.
pub fn check(settings: &TlsSettings) -> Result<(), ConfigError> {
    if settings.server.is_some() {
        server_config(settings)?;
    }
    ClientTls::load(settings)?;
    if let Some(path) = &settings.redis_ca_file {
        trust_anchors(REDIS_CA_FILE, path)?;
    }
    Ok(())
}

/// What the gRPC port serves with when `CREDIT_TLS_CERT_FILE` is set: its certificate chain and
/// key, and with `CREDIT_TLS_CLIENT_CA_FILE` a required client certificate signed by that CA.
/// `None` when TLS is off.
pub fn server_config(settings: &TlsSettings) -> Result<Option<ServerTlsConfig>, ConfigError> {
    let Some(files) = &settings.server else {
        return Ok(None);
    };
    let (cert_pem, key_pem) = identity(CERT_FILE, KEY_FILE, files)?;
    let mut config = ServerTlsConfig::new()
        .identity(Identity::from_pem(cert_pem, key_pem))
        .timeout(HANDSHAKE_TIMEOUT);
    if let Some(path) = &settings.client_ca_file {
        let (pem, _) = trust_anchors(CLIENT_CA_FILE, path)?;
        // Required, not optional: a client without a certificate is refused in the handshake.
        config = config
            .client_ca_root(Certificate::from_pem(pem))
            .client_auth_optional(false);
    }
    // tonic builds the rustls configuration only when a server is given it: build it once
    // now, so that nothing about it can fail when the server starts serving.
    tonic::transport::Server::builder()
        .tls_config(config.clone())
        .map_err(|error| {
            ConfigError::new(
                CERT_FILE,
                format!("cannot serve TLS with it: {}", ErrorChain(&error)),
            )
        })?;
    Ok(Some(config))
}

/// What this process trusts and presents when it calls an `https://` address. An `http://`
/// address is called in plain text, whatever this holds.
#[derive(Clone, Default)]
pub struct ClientTls {
    /// The CA certificates of `CREDIT_TLS_CA_FILE`; `None`: the system's roots.
    ca: Option<Certificate>,
    /// `CREDIT_TLS_CLIENT_CERT_FILE` / `CREDIT_TLS_CLIENT_KEY_FILE`, for servers that require
    /// a client certificate.
    identity: Option<Identity>,
    /// Set for the calls a process makes to itself: only its own server certificate is
    /// accepted, whatever names it holds and whoever signed it.
    own_certificate: Option<Arc<OwnCertificate>>,
}

impl fmt::Debug for ClientTls {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter
            .debug_struct("ClientTls")
            .field("custom_ca", &self.ca.is_some())
            .field("client_certificate", &self.identity.is_some())
            .field("own_certificate", &self.own_certificate.is_some())
            .finish()
    }
}

impl ClientTls {
    /// Trust `CREDIT_TLS_CA_FILE` (else the system's roots), present the client certificate
    /// when one is set: for peers in other processes and the command-line clients.
    pub fn load(settings: &TlsSettings) -> Result<Self, ConfigError> {
        let ca = match &settings.ca_file {
            Some(path) => Some(Certificate::from_pem(trust_anchors(CA_FILE, path)?.0)),
            None => None,
        };
        Ok(Self {
            ca,
            identity: client_identity(settings)?,
            own_certificate: None,
        })
    }

    /// For the services of one process calling each other through its own gRPC port: the
    /// server's own certificate is the only one trusted (it is the process itself at the other
    /// end, on a loopback address its certificate may not name), and under mutual TLS the
    /// client certificate is required and must be one the port accepts.
    pub fn for_own_server(settings: &TlsSettings) -> Result<Self, ConfigError> {
        let Some(files) = &settings.server else {
            return Ok(Self::default());
        };
        let (_, chain) = certificates(CERT_FILE, &files.cert_file)?;
        let certificate = chain.into_iter().next().ok_or_else(|| {
            ConfigError::new(CERT_FILE, "holds no certificate (PEM 'BEGIN CERTIFICATE')")
        })?;
        let identity = client_identity(settings)?;
        if let Some(ca_file) = &settings.client_ca_file {
            let Some(client) = &settings.client else {
                return Err(ConfigError::new(
                    CLIENT_CERT_FILE,
                    format!(
                        "and {CLIENT_KEY_FILE} are required with {CLIENT_CA_FILE}: the services \
                         of this process call each other through its TLS port, which asks them \
                         for a client certificate too"
                    ),
                ));
            };
            check_client_certificate(client, ca_file)?;
        }
        Ok(Self {
            ca: None,
            identity,
            own_certificate: Some(Arc::new(OwnCertificate {
                certificate,
                provider: provider(),
            })),
        })
    }

    /// An endpoint for `url` (named by `setting` in errors): TLS as configured for
    /// `https://`, plain text for `http://`.
    pub fn endpoint(&self, setting: &str, url: &str) -> Result<Endpoint, ConfigError> {
        let endpoint = Endpoint::from_shared(url.to_owned()).map_err(|error| {
            ConfigError::new(setting, format!("'{url}' is not a URL ({error})"))
        })?;
        if endpoint.uri().scheme_str() != Some("https") {
            return Ok(endpoint);
        }
        let mut config = ClientTlsConfig::new().timeout(HANDSHAKE_TIMEOUT);
        if let Some(identity) = &self.identity {
            config = config.identity(identity.clone());
        }
        let configured = match &self.own_certificate {
            Some(verifier) => endpoint.tls_config_with_verifier(config, verifier.clone()),
            None => endpoint.tls_config(match &self.ca {
                Some(ca) => config.ca_certificate(ca.clone()),
                None => config.with_native_roots(),
            }),
        };
        configured.map_err(|error| {
            let hint = if self.ca.is_none() && self.own_certificate.is_none() {
                format!(" (are the system's CA certificates installed? or set {CA_FILE})")
            } else {
                String::new()
            };
            ConfigError::new(
                setting,
                format!(
                    "cannot set up TLS for '{url}': {}{hint}",
                    ErrorChain(&error)
                ),
            )
        })
    }
}

/// Trusts exactly one certificate: the process's own server certificate. The handshake
/// signature is still checked, so the other end holds that certificate's key.
#[derive(Debug)]
struct OwnCertificate {
    certificate: CertificateDer<'static>,
    provider: Arc<CryptoProvider>,
}

impl ServerCertVerifier for OwnCertificate {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        if end_entity.as_ref() == self.certificate.as_ref() {
            Ok(ServerCertVerified::assertion())
        } else {
            Err(rustls::Error::InvalidCertificate(
                rustls::CertificateError::ApplicationVerificationFailure,
            ))
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

/// The client identity of `CREDIT_TLS_CLIENT_CERT_FILE` / `CREDIT_TLS_CLIENT_KEY_FILE`.
fn client_identity(settings: &TlsSettings) -> Result<Option<Identity>, ConfigError> {
    let Some(files) = &settings.client else {
        return Ok(None);
    };
    let (cert_pem, key_pem) = identity(CLIENT_CERT_FILE, CLIENT_KEY_FILE, files)?;
    Ok(Some(Identity::from_pem(cert_pem, key_pem)))
}

/// Refuses a client certificate that the process's own port would refuse: its services could
/// not call each other, and every call that crosses services would fail.
fn check_client_certificate(client: &IdentityFiles, ca_file: &Path) -> Result<(), ConfigError> {
    let (_, roots) = trust_anchors(CLIENT_CA_FILE, ca_file)?;
    let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider())
        .build()
        .map_err(|error| ConfigError::new(CLIENT_CA_FILE, error.to_string()))?;
    let (_, chain) = certificates(CLIENT_CERT_FILE, &client.cert_file)?;
    let Some((end_entity, intermediates)) = chain.split_first() else {
        return Err(ConfigError::new(CLIENT_CERT_FILE, "holds no certificate"));
    };
    verifier
        .verify_client_cert(end_entity, intermediates, UnixTime::now())
        .map(drop)
        .map_err(|error| {
            ConfigError::new(
                CLIENT_CERT_FILE,
                format!(
                    "is not accepted by {CLIENT_CA_FILE} ({error}): the services of this process \
                     could not call each other"
                ),
            )
        })
}

/// The PEM of a certificate chain and of its key, checked: the chain parses, the key parses
/// and is the key of the chain's first certificate.
fn identity(
    cert_setting: &str,
    key_setting: &str,
    files: &IdentityFiles,
) -> Result<(Vec<u8>, Vec<u8>), ConfigError> {
    let (cert_pem, chain) = certificates(cert_setting, &files.cert_file)?;
    let key_pem = read(key_setting, &files.key_file)?;
    let key = PrivateKeyDer::from_pem_slice(&key_pem).map_err(|error| {
        ConfigError::new(
            key_setting,
            format!(
                "{} holds no private key in PEM ({error})",
                files.key_file.display()
            ),
        )
    })?;
    CertifiedKey::from_der(chain, key, &provider()).map_err(|error| {
        let problem = match error {
            rustls::Error::InconsistentKeys(_) => format!(
                "{} is not the key of the certificate in {cert_setting}",
                files.key_file.display()
            ),
            other => format!("{}: {other}", files.key_file.display()),
        };
        ConfigError::new(key_setting, problem)
    })?;
    Ok((cert_pem, key_pem))
}

/// The PEM of a CA file and its certificates as trust anchors; every certificate must be one.
fn trust_anchors(setting: &str, path: &Path) -> Result<(Vec<u8>, RootCertStore), ConfigError> {
    let (pem, certificates) = certificates(setting, path)?;
    let mut roots = RootCertStore::empty();
    for certificate in certificates {
        roots.add(certificate).map_err(|error| {
            ConfigError::new(
                setting,
                format!("{}: not a usable CA certificate ({error})", path.display()),
            )
        })?;
    }
    Ok((pem, roots))
}

/// The file's bytes and the certificates in it; at least one.
fn certificates(
    setting: &str,
    path: &Path,
) -> Result<(Vec<u8>, Vec<CertificateDer<'static>>), ConfigError> {
    let pem = read(setting, path)?;
    let certificates = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|error| {
            ConfigError::new(
                setting,
                format!("{}: not PEM certificates ({error})", path.display()),
            )
        })?;
    if certificates.is_empty() {
        return Err(ConfigError::new(
            setting,
            format!(
                "{} holds no certificate (PEM 'BEGIN CERTIFICATE')",
                path.display()
            ),
        ));
    }
    Ok((pem, certificates))
}

fn read(setting: &str, path: &Path) -> Result<Vec<u8>, ConfigError> {
    std::fs::read(path).map_err(|error| {
        ConfigError::new(setting, format!("cannot read {}: {error}", path.display()))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    /// A CA, a server certificate for localhost signed by it, and a client certificate signed
    /// by it, written as PEM files in `folder`.
    struct Files {
        ca: PathBuf,
        server: IdentityFiles,
        client: IdentityFiles,
        other_key: PathBuf,
    }

    fn write_files(folder: &Path) -> Files {
        let ca_key = rcgen::KeyPair::generate().unwrap();
        let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        let ca = rcgen::CertifiedIssuer::self_signed(ca_params, ca_key).unwrap();
        let leaf = |name: &str, usage| {
            let key = rcgen::KeyPair::generate().unwrap();
            let mut params = rcgen::CertificateParams::new(vec![name.to_owned()]).unwrap();
            params.extended_key_usages = vec![usage];
            let certificate = params.signed_by(&key, &ca).unwrap();
            (certificate.pem(), key.serialize_pem())
        };
        let write = |name: &str, contents: &str| {
            let path = folder.join(name);
            std::fs::write(&path, contents).unwrap();
            path
        };
        let (server_cert, server_key) =
            leaf("localhost", rcgen::ExtendedKeyUsagePurpose::ServerAuth);
        let (client_cert, client_key) = leaf("suite", rcgen::ExtendedKeyUsagePurpose::ClientAuth);
        Files {
            ca: write("ca.pem", &ca.pem()),
            server: IdentityFiles {
                cert_file: write("server.pem", &server_cert),
                key_file: write("server.key", &server_key),
            },
            client: IdentityFiles {
                cert_file: write("client.pem", &client_cert),
                key_file: write("client.key", &client_key),
            },
            other_key: write(
                "other.key",
                &rcgen::KeyPair::generate().unwrap().serialize_pem(),
            ),
        }
    }

    #[test]
    fn good_files_load_for_the_server_and_its_clients() {
        let folder = tempfile::tempdir().unwrap();
        let files = write_files(folder.path());
        let settings = TlsSettings {
            server: Some(files.server.clone()),
            client_ca_file: Some(files.ca.clone()),
            ca_file: Some(files.ca.clone()),
            client: Some(files.client.clone()),
            redis_ca_file: Some(files.ca.clone()),
        };
        assert_eq!(check(&settings), Ok(()));
        assert!(server_config(&settings).unwrap().is_some());
        let own = ClientTls::for_own_server(&settings).unwrap();
        assert!(own.own_certificate.is_some() && own.identity.is_some());
    }

    #[test]
    fn bad_files_name_their_setting() {
        let folder = tempfile::tempdir().unwrap();
        let files = write_files(folder.path());
        let server = |cert_file: &Path, key_file: &Path| TlsSettings {
            server: Some(IdentityFiles {
                cert_file: cert_file.to_owned(),
                key_file: key_file.to_owned(),
            }),
            ..TlsSettings::default()
        };
        let missing = folder.path().join("missing.pem");
        let error = check(&server(&missing, &files.server.key_file)).unwrap_err();
        assert_eq!(error.setting, CERT_FILE);
        assert!(error.problem.contains("missing.pem"), "{error}");
        // A key is not a certificate.
        let error = check(&server(&files.server.key_file, &files.server.key_file)).unwrap_err();
        assert_eq!(error.setting, CERT_FILE);
        let error = check(&server(&files.server.cert_file, &files.other_key)).unwrap_err();
        assert_eq!(error.setting, KEY_FILE);
        assert!(error.problem.contains("is not the key"), "{error}");
        let error = check(&TlsSettings {
            ca_file: Some(files.server.key_file.clone()),
            ..TlsSettings::default()
        })
        .unwrap_err();
        assert_eq!(error.setting, CA_FILE);
        assert!(!error.to_string().contains('\n'));
    }

    #[test]
    fn mutual_tls_in_one_process_needs_a_client_certificate_the_port_accepts() {
        let folder = tempfile::tempdir().unwrap();
        let files = write_files(folder.path());
        let others = tempfile::tempdir().unwrap();
        let other_ca = write_files(others.path());
        let mut settings = TlsSettings {
            server: Some(files.server.clone()),
            client_ca_file: Some(files.ca.clone()),
            ..TlsSettings::default()
        };
        let error = ClientTls::for_own_server(&settings).unwrap_err();
        assert_eq!(error.setting, CLIENT_CERT_FILE);
        // A client certificate from another CA would be refused by the port itself.
        settings.client = Some(other_ca.client);
        let error = ClientTls::for_own_server(&settings).unwrap_err();
        assert_eq!(error.setting, CLIENT_CERT_FILE);
        assert!(error.problem.contains("not accepted"), "{error}");
        settings.client = Some(files.client);
        assert!(ClientTls::for_own_server(&settings).is_ok());
    }

    #[test]
    fn https_gets_tls_and_http_stays_plain() {
        let folder = tempfile::tempdir().unwrap();
        let files = write_files(folder.path());
        let tls = ClientTls::load(&TlsSettings {
            ca_file: Some(files.ca),
            ..TlsSettings::default()
        })
        .unwrap();
        assert!(
            tls.endpoint("CREDIT_INTAKE_URL", "https://intake:50051")
                .is_ok()
        );
        assert!(
            tls.endpoint("CREDIT_INTAKE_URL", "http://intake:50051")
                .is_ok()
        );
        let error = tls.endpoint("CREDIT_INTAKE_URL", "not a url").unwrap_err();
        assert_eq!(error.setting, "CREDIT_INTAKE_URL");
        // Nothing secret in its debug output.
        assert!(!format!("{tls:?}").contains("BEGIN"));
    }
}
