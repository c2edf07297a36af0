//! A CA and a server certificate for 127.0.0.1 made at start, so `--tls` measures the suite
//! over TLS without certificate files to provide.

use anyhow::Result;
use credit_runtime::config::{IdentityFiles, TlsSettings};

/// The PEM files of one run, in a folder removed with it.
#[derive(Debug)]
pub struct RunCertificates {
    _folder: tempfile::TempDir,
    /// The server's TLS settings: its certificate and key, and the CA a client trusts.
    pub settings: TlsSettings,
}

impl RunCertificates {
    pub fn generate() -> Result<Self> {
        let folder = tempfile::tempdir()?;
        let write = |name: &str, contents: &str| -> Result<std::path::PathBuf> {
            let path = folder.path().join(name);
            std::fs::write(&path, contents)?;
            Ok(path)
        };
        let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new())?;
        ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        ca_params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "credit-loadgen CA");
        ca_params.key_usages = vec![
            rcgen::KeyUsagePurpose::KeyCertSign,
            rcgen::KeyUsagePurpose::CrlSign,
        ];
        let ca = rcgen::CertifiedIssuer::self_signed(ca_params, rcgen::KeyPair::generate()?)?;
        let key = rcgen::KeyPair::generate()?;
        let mut params =
            rcgen::CertificateParams::new(vec!["localhost".to_owned(), "127.0.0.1".to_owned()])?;
        params.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ServerAuth];
        let certificate = params.signed_by(&key, &ca)?;
        let settings = TlsSettings {
            server: Some(IdentityFiles {
                cert_file: write("server.pem", &certificate.pem())?,
                key_file: write("server.key", &key.serialize_pem())?,
            }),
            ca_file: Some(write("ca.pem", &ca.pem())?),
            ..TlsSettings::default()
        };
        Ok(Self {
            _folder: folder,
            settings,
        })
    }
}
