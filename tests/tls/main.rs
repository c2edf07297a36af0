//! TLS end to end, with certificates generated for each test (rcgen): a CA, a server
//! certificate for localhost and 127.0.0.1, a client certificate from that CA and one from a CA
//! nobody trusts.
//!
//! The gRPC port under TLS answers generated clients over https and refuses plain text; under
//! mutual TLS it refuses clients without a certificate from its CA; the services of one process
//! still call each other (RateCustomer reads the credit file from intake over gRPC). The last
//! test runs the suite on a PostgreSQL that accepts only TLS, with `sslmode=verify-full`, and on
//! a Redis that listens only on a TLS port, both started by the test on ports of their own.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "tests"
)]

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use credit_core::Role;
use credit_e2e_tests::own_servers::{as_postgres, free_port, is_root, postgres_bin_dir};
use credit_e2e_tests::{Bearer, SERVICE_NAMES, TestSuite, uscc};
use credit_proto::v1 as pb;
use credit_proto::v1::intake_service_client::IntakeServiceClient;
use credit_proto::v1::rating_service_client::RatingServiceClient;
use credit_runtime::Settings;
use credit_runtime::config::{Backend, IdentityFiles, TlsSettings};
use credit_runtime::tls::ClientTls;
use credit_suite::import::{ImportOptions, run_import};
use credit_suite::{Application, ServiceSelection};
use secrecy::SecretString;
use tonic::transport::Channel;
use tonic_health::pb::health_check_response::ServingStatus;

/// The certificates of one test, as PEM files in a folder of its own.
struct Pki {
    /// Holds the files; removed with the test.
    _folder: tempfile::TempDir,
    ca: PathBuf,
    /// For localhost and 127.0.0.1, signed by `ca`.
    server: IdentityFiles,
    /// Signed by `ca`.
    client: IdentityFiles,
    /// Signed by a CA the suite does not know.
    stranger: IdentityFiles,
    /// The CA that signed `stranger`.
    other_ca: PathBuf,
}

impl Pki {
    fn generate() -> Self {
        let folder = tempfile::tempdir().unwrap();
        let write = |name: &str, contents: &str| {
            let path = folder.path().join(name);
            std::fs::write(&path, contents).unwrap();
            path
        };
        let (ca, ca_pem) = certificate_authority("credit test CA");
        let (other_ca, other_ca_pem) = certificate_authority("a CA nobody trusts");
        let identity = |name: &str, (cert, key): (String, String)| IdentityFiles {
            cert_file: write(&format!("{name}.pem"), &cert),
            key_file: write(&format!("{name}.key"), &key),
        };
        let server = identity(
            "server",
            leaf(
                &ca,
                &["localhost", "127.0.0.1"],
                rcgen::ExtendedKeyUsagePurpose::ServerAuth,
            ),
        );
        let client = identity(
            "client",
            leaf(
                &ca,
                &["credit-suite"],
                rcgen::ExtendedKeyUsagePurpose::ClientAuth,
            ),
        );
        let stranger = identity(
            "stranger",
            leaf(
                &other_ca,
                &["credit-suite"],
                rcgen::ExtendedKeyUsagePurpose::ClientAuth,
            ),
        );
        Self {
            ca: write("ca.pem", &ca_pem),
            other_ca: write("other-ca.pem", &other_ca_pem),
            server,
            client,
            stranger,
            _folder: folder,
        }
    }

    /// A client that trusts this CA and presents `identity`, if any.
    fn client_tls(&self, identity: Option<&IdentityFiles>) -> ClientTls {
        ClientTls::load(&TlsSettings {
            ca_file: Some(self.ca.clone()),
            client: identity.cloned(),
            ..TlsSettings::default()
        })
        .unwrap()
    }
}

type Issuer = rcgen::CertifiedIssuer<'static, rcgen::KeyPair>;

fn certificate_authority(name: &str) -> (Issuer, String) {
    let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, name);
    params.key_usages = vec![
        rcgen::KeyUsagePurpose::KeyCertSign,
        rcgen::KeyUsagePurpose::CrlSign,
    ];
    let issuer =
        rcgen::CertifiedIssuer::self_signed(params, rcgen::KeyPair::generate().unwrap()).unwrap();
    let pem = issuer.pem();
    (issuer, pem)
}

/// A certificate for `names` signed by `ca`, and its key: (certificate PEM, key PEM).
fn leaf(ca: &Issuer, names: &[&str], usage: rcgen::ExtendedKeyUsagePurpose) -> (String, String) {
    let key = rcgen::KeyPair::generate().unwrap();
    let mut params = rcgen::CertificateParams::new(
        names
            .iter()
            .map(|name| (*name).to_owned())
            .collect::<Vec<_>>(),
    )
    .unwrap();
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, names[0]);
    params.extended_key_usages = vec![usage];
    let certificate = params.signed_by(&key, ca).unwrap();
    (certificate.pem(), key.serialize_pem())
}

fn channel(tls: &ClientTls, url: &str) -> Channel {
    tls.endpoint("the test", url).unwrap().connect_lazy()
}

/// Lists customers with `token` through the generated client on `channel`.
async fn list_customers(channel: Channel, token: &str) -> Result<(), tonic::Status> {
    IntakeServiceClient::with_interceptor(channel, Bearer::new(token))
        .list_customers(pb::ListCustomersRequest::default())
        .await
        .map(drop)
}

/// Registers an enterprise, makes it active, and rates it: RateCustomer reads the credit file
/// from intake over gRPC, through the process's own port. Returns the customer's id.
async fn rate_a_new_customer(suite: &TestSuite, seed: u64) -> String {
    let token = suite
        .issue_token("tls-analyst", &[Role::Analyst, Role::CreditManager])
        .await;
    let mut intake = suite.intake(&token);
    let customer = intake
        .create_customer(pb::CreateCustomerRequest {
            request_id: format!("tls-{seed}"),
            customer: Some(pb::Customer {
                kind: pb::CustomerKind::Enterprise as i32,
                country: "CN".into(),
                details: Some(pb::customer::Details::Enterprise(pb::EnterpriseDetails {
                    legal_name: format!("Encrypted Trading {seed} Co"),
                    registration_number: uscc(seed),
                    legal_representative: "Chen Wei".into(),
                    industry_code: "F51".into(),
                    ..Default::default()
                })),
                ..Default::default()
            }),
        })
        .await
        .unwrap()
        .into_inner()
        .customer
        .unwrap();
    intake
        .set_customer_status(pb::SetCustomerStatusRequest {
            customer_id: customer.customer_id.clone(),
            status: pb::CustomerStatus::Active as i32,
            reason: "approved for credit".into(),
            etag: String::new(),
        })
        .await
        .unwrap();
    let rated = suite
        .rating(&token)
        .rate_customer(pb::RateCustomerRequest {
            request_id: format!("tls-rate-{seed}"),
            customer_id: customer.customer_id.clone(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .rating
        .unwrap();
    assert!(!rated.grade.is_empty());
    customer.customer_id
}

/// The call never reached a service: the connection was refused. A failed handshake is
/// UNAVAILABLE when the client sees it while connecting, or UNKNOWN ("transport error") when
/// the server's alert arrives after the request went out (TLS 1.3 checks the client's
/// certificate after the client has finished). A refusal by the suite itself would carry the
/// suite's own code (UNAUTHENTICATED, PERMISSION_DENIED, ...).
fn assert_refused(result: Result<(), tonic::Status>, who: &str) {
    let status = result.expect_err(who);
    assert!(
        matches!(
            status.code(),
            tonic::Code::Unavailable | tonic::Code::Unknown
        ) && status.metadata().is_empty(),
        "{who}: {status}"
    );
}

/// The status code of a minimal HTTP/1.0 GET.
async fn http_status(addr: std::net::SocketAddr, path: &str) -> u16 {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    stream
        .write_all(format!("GET {path} HTTP/1.0\r\nHost: localhost\r\n\r\n").as_bytes())
        .await
        .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).await.unwrap();
    response
        .split(' ')
        .nth(1)
        .and_then(|code| code.parse().ok())
        .unwrap_or_else(|| panic!("not an HTTP response: {response}"))
}

async fn wait_until_serving(suite: &TestSuite) {
    for service in SERVICE_NAMES {
        suite.wait_for_health(service, ServingStatus::Serving).await;
    }
}

#[tokio::test]
async fn the_grpc_port_speaks_tls_and_refuses_plain_text() {
    let pki = Pki::generate();
    let server = pki.server.clone();
    let suite = TestSuite::embedded_with(|settings| settings.tls.server = Some(server)).await;
    wait_until_serving(&suite).await;
    let port = suite.addr.port();

    // The handshake verifies the server's certificate against the CA, by name and by address.
    for host in ["localhost", "127.0.0.1"] {
        let over_tls = channel(&pki.client_tls(None), &format!("https://{host}:{port}"));
        list_customers(over_tls, &suite.admin_token)
            .await
            .unwrap_or_else(|status| panic!("https://{host}: {status}"));
    }

    // Plain text is refused: the port speaks only TLS.
    let plain = Channel::from_shared(format!("http://127.0.0.1:{port}"))
        .unwrap()
        .connect_lazy();
    assert_refused(
        list_customers(plain, &suite.admin_token).await,
        "a plain-text client",
    );

    // A client that trusts only the system's roots does not trust this server.
    let untrusting = channel(&ClientTls::default(), &format!("https://localhost:{port}"));
    assert_refused(
        list_customers(untrusting, &suite.admin_token).await,
        "a client that does not trust the CA",
    );

    // Probes that cannot speak gRPC over TLS (the kubelet's) ask the plain metrics port.
    let metrics = suite.metrics_addr.unwrap();
    assert_eq!(http_status(metrics, "/health").await, 200);
    assert_eq!(
        http_status(metrics, "/health/credit.v1.IntakeService").await,
        200
    );
    assert_eq!(
        http_status(metrics, "/health/credit.v1.NoSuchService").await,
        404
    );

    // The services of the process call each other through its TLS port.
    rate_a_new_customer(&suite, 71_001).await;
    suite.stop().await;
}

#[tokio::test]
async fn mutual_tls_serves_only_clients_with_a_certificate_from_its_ca() {
    let pki = Pki::generate();
    let (server, ca, client) = (pki.server.clone(), pki.ca.clone(), pki.client.clone());
    let suite = TestSuite::embedded_with(|settings| {
        settings.tls.server = Some(server);
        settings.tls.client_ca_file = Some(ca);
        // The process's own calls between its services need a client certificate too.
        settings.tls.client = Some(client);
    })
    .await;
    wait_until_serving(&suite).await;
    let url = format!("https://localhost:{}", suite.addr.port());

    let without_certificate = channel(&pki.client_tls(None), &url);
    assert_refused(
        list_customers(without_certificate, &suite.admin_token).await,
        "a client without a certificate",
    );

    let from_another_ca = channel(&pki.client_tls(Some(&pki.stranger)), &url);
    assert_refused(
        list_customers(from_another_ca, &suite.admin_token).await,
        "a client with another CA's certificate",
    );

    let with_certificate = channel(&pki.client_tls(Some(&pki.client)), &url);
    list_customers(with_certificate.clone(), &suite.admin_token)
        .await
        .unwrap();
    // The certificate opens the connection; the bearer token still decides the call.
    let refused = RatingServiceClient::new(with_certificate)
        .list_models(pb::ListModelsRequest::default())
        .await
        .unwrap_err();
    assert_eq!(refused.code(), tonic::Code::Unauthenticated, "{refused}");

    // The command-line clients' connection (here `credit-suite import`) over https, with the
    // client certificate.
    let folder = tempfile::tempdir().unwrap();
    let file = folder.path().join("customers.csv");
    std::fs::write(
        &file,
        format!(
            "kind,country,legal_name,registration_number,founding_date\n\
             ENTERPRISE,CN,Imported Over TLS Co,{},2015-06-30\n",
            uscc(71_012)
        ),
    )
    .unwrap();
    let mut import = ImportOptions::new(&file, url.clone(), suite.admin_token.clone());
    import.tls = pki.client_tls(Some(&pki.client));
    let report = run_import(&import).await.unwrap();
    assert_eq!(report.summary.created, 1);
    import.tls = pki.client_tls(None);
    assert!(run_import(&import).await.is_err(), "no client certificate");

    // Rating calls intake through the process's own port, with the client certificate.
    rate_a_new_customer(&suite, 71_002).await;
    suite.stop().await;
}

#[tokio::test]
async fn mutual_tls_in_one_process_needs_its_own_client_certificate() {
    let pki = Pki::generate();
    let data = tempfile::tempdir().unwrap();
    let mut settings = Settings::for_tests(data.path().to_owned());
    settings.tls.server = Some(pki.server.clone());
    settings.tls.client_ca_file = Some(pki.ca.clone());
    let error = Application::build(&settings, &ServiceSelection::all())
        .await
        .unwrap_err()
        .to_string();
    assert!(error.contains("CREDIT_TLS_CLIENT_CERT_FILE"), "{error}");
    assert!(!error.contains('\n'), "{error}");

    // A client certificate the port itself would refuse is refused at start too.
    settings.tls.client = Some(pki.stranger.clone());
    let error = Application::build(&settings, &ServiceSelection::all())
        .await
        .unwrap_err()
        .to_string();
    assert!(error.contains("CREDIT_TLS_CLIENT_CERT_FILE"), "{error}");
}

#[tokio::test]
async fn postgres_and_redis_are_reached_over_verified_tls() {
    let pki = Pki::generate();
    let postgres = TlsPostgres::start(&pki);
    let redis = TlsRedis::start(&pki).await;
    let data = tempfile::tempdir().unwrap();
    let settings_with = |database_url: String| {
        let mut settings = Settings::for_tests(data.path().to_owned());
        settings.backend = Backend::Production {
            database_url: SecretString::from(database_url),
            redis_url: SecretString::from(format!("rediss://127.0.0.1:{}/0", redis.port)),
            redis_key_prefix: "tls-test:".into(),
        };
        settings.tls.redis_ca_file = Some(pki.ca.clone());
        settings
    };
    let url = |query: &str| {
        format!(
            "postgres://postgres@127.0.0.1:{}/postgres?{query}",
            postgres.port
        )
    };

    // The server takes no plain-text connection (pg_hba: hostssl only) ...
    let error = Application::build(
        &settings_with(url("sslmode=disable")),
        &ServiceSelection::all(),
    )
    .await
    .unwrap_err()
    .to_string();
    assert!(error.contains("CREDIT_DATABASE_URL"), "{error}");
    // ... and verify-full refuses a server whose certificate the given CA did not sign.
    let error = Application::build(
        &settings_with(url(&format!(
            "sslmode=verify-full&sslrootcert={}",
            pki.other_ca.display()
        ))),
        &ServiceSelection::all(),
    )
    .await
    .unwrap_err()
    .to_string();
    assert!(error.contains("CREDIT_DATABASE_URL"), "{error}");

    let settings = settings_with(url(&format!(
        "sslmode=verify-full&sslrootcert={}",
        pki.ca.display()
    )));
    let suite = TestSuite::on_backend(settings, ServiceSelection::all()).await;
    // Readiness probes PostgreSQL and Redis (which listens on its TLS port only).
    wait_until_serving(&suite).await;
    // Writes to PostgreSQL, their events through Redis Streams, rating's call to intake.
    let customer_id = rate_a_new_customer(&suite, 71_003).await;
    // An order decided by the Redis script and written by the ledger's own connection, once
    // limits has heard of the customer (intake's event, through Redis Streams).
    let mut limits = suite.limits(&suite.issue_token("tls-erp", &[Role::OrderEntry]).await);
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    let decided = loop {
        let answer = limits
            .authorize(pb::AuthorizeRequest {
                customer_id: customer_id.clone(),
                order_id: "SO-TLS-1".into(),
                amount: Some(pb::Money {
                    amount: "100.00".into(),
                    currency: "CNY".into(),
                }),
                idempotency_key: "SO-TLS-1".into(),
                hold_ttl: None,
            })
            .await;
        match answer {
            Ok(response) => break response.into_inner(),
            Err(status) if std::time::Instant::now() < deadline => {
                tracing::debug!(%status, "limits has not heard of the customer yet");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Err(status) => panic!("Authorize: {status}"),
        }
    };
    assert_ne!(
        decided.decision,
        pb::AuthorizationDecision::Unspecified as i32
    );
    suite.stop().await;
}

/// A PostgreSQL cluster of the test's own (initdb in a temporary folder) with ssl=on, the
/// server certificate of `Pki`, and a pg_hba.conf that accepts TCP connections over TLS only.
struct TlsPostgres {
    folder: tempfile::TempDir,
    bin: PathBuf,
    port: u16,
}

impl TlsPostgres {
    fn start(pki: &Pki) -> Self {
        let folder = tempfile::tempdir().unwrap();
        let bin = postgres_bin_dir();
        // The server reads its key as its own user and refuses a key others can read.
        let cert = folder.path().join("server.pem");
        let key = folder.path().join("server.key");
        std::fs::copy(&pki.server.cert_file, &cert).unwrap();
        std::fs::copy(&pki.server.key_file, &key).unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)).unwrap();
        if is_root() {
            let status = Command::new("chown")
                .args(["-R", "postgres:postgres"])
                .arg(folder.path())
                .status()
                .unwrap();
            assert!(status.success(), "chown of the cluster folder failed");
        }
        let data = folder.path().join("data");
        let output = as_postgres(&bin.join("initdb"))
            .args(["-U", "postgres", "-A", "trust", "--no-sync", "-D"])
            .arg(&data)
            .output()
            .unwrap();
        assert!(
            output.status.success(),
            "initdb failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        // Written as root into the postgres-owned data folder: the server only reads it.
        std::fs::write(
            data.join("pg_hba.conf"),
            "local all all trust\nhostssl all all 127.0.0.1/32 trust\n",
        )
        .unwrap();
        let cluster = Self {
            folder,
            bin,
            port: free_port(),
        };
        let options = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1 -c fsync=off -c ssl=on \
             -c ssl_cert_file={} -c ssl_key_file={}",
            cluster.port,
            cluster.folder.path().display(),
            cert.display(),
            key.display(),
        );
        let output = cluster
            .pg_ctl()
            .args(["-w", "-t", "60", "-o", &options, "-l"])
            .arg(cluster.folder.path().join("server.log"))
            .arg("start")
            .output()
            .unwrap();
        assert!(
            output.status.success(),
            "pg_ctl start failed: {} {}",
            String::from_utf8_lossy(&output.stdout),
            std::fs::read_to_string(cluster.folder.path().join("server.log")).unwrap_or_default()
        );
        cluster
    }

    fn pg_ctl(&self) -> Command {
        let mut command = as_postgres(&self.bin.join("pg_ctl"));
        command.arg("-D").arg(self.folder.path().join("data"));
        command
    }
}

impl Drop for TlsPostgres {
    fn drop(&mut self) {
        let _ = self
            .pg_ctl()
            .args(["-w", "-m", "immediate", "stop"])
            .output();
    }
}

/// A redis-server of the test's own that listens on a TLS port only (`--port 0`), with the
/// server certificate of `Pki`; clients are not asked for a certificate.
struct TlsRedis {
    child: Child,
    port: u16,
}

impl TlsRedis {
    async fn start(pki: &Pki) -> Self {
        let port = free_port();
        let child = Command::new("redis-server")
            .args(["--port", "0", "--tls-port", &port.to_string()])
            .args(["--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
            .arg("--tls-cert-file")
            .arg(&pki.server.cert_file)
            .arg("--tls-key-file")
            .arg(&pki.server.key_file)
            .arg("--tls-ca-cert-file")
            .arg(&pki.ca)
            .args(["--tls-auth-clients", "no"])
            .stdout(Stdio::null())
            .spawn()
            .expect("redis-server must be installed for this test");
        // Owned first: a test that fails below still kills the server (Drop).
        let redis = Self { child, port };
        for _ in 0..400 {
            if tokio::net::TcpStream::connect(("127.0.0.1", port))
                .await
                .is_ok()
            {
                return redis;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        panic!("redis-server did not open its TLS port {port}");
    }
}

impl Drop for TlsRedis {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
