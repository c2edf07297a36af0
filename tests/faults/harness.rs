//! Servers of the faults suite's own: the `credit-suite` binary as a child process, a
//! redis-server and a PostgreSQL cluster that a scenario may kill and restart without
//! disturbing any other test.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use credit_e2e_tests::own_servers::{as_postgres, is_root, postgres_bin_dir};
use tonic::transport::Channel;
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;

/// Scenarios start several processes and servers each: one at a time, so that two do not
/// fight over the two cores and time each other out.
pub static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// The `credit-suite` binary of this build (target/<profile>/credit-suite, beside the
/// directory of this test binary).
pub fn suite_binary() -> PathBuf {
    let test_binary = std::env::current_exe().unwrap();
    let profile_dir = test_binary
        .parent()
        .and_then(Path::parent)
        .expect("the test binary lives in target/<profile>/deps");
    let binary = profile_dir.join("credit-suite");
    assert!(
        binary.is_file(),
        "{} is missing: build it first (cargo build -p credit-suite; scripts/test.sh does)",
        binary.display()
    );
    binary
}

pub use credit_e2e_tests::own_servers::free_port;

/// A PostgreSQL cluster of the test's own, in a temporary folder, on a port of its own.
#[derive(Debug)]
pub struct OwnPostgres {
    folder: tempfile::TempDir,
    bin: PathBuf,
    pub port: u16,
}

impl OwnPostgres {
    pub fn start() -> Self {
        let folder = tempfile::tempdir().unwrap();
        let bin = postgres_bin_dir();
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
        let cluster = Self {
            folder,
            bin,
            port: free_port(),
        };
        cluster.start_server();
        cluster
    }

    fn pg_ctl(&self) -> Command {
        let mut command = as_postgres(&self.bin.join("pg_ctl"));
        command.arg("-D").arg(self.folder.path().join("data"));
        command
    }

    /// Starts (again) the server, and waits until it accepts connections.
    pub fn start_server(&self) {
        let options = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=100",
            self.port,
            self.folder.path().display()
        );
        let output = self
            .pg_ctl()
            .args(["-w", "-t", "60", "-o", &options, "-l"])
            .arg(self.folder.path().join("server.log"))
            .arg("start")
            .output()
            .unwrap();
        assert!(
            output.status.success(),
            "pg_ctl start failed: {}",
            String::from_utf8_lossy(&output.stdout)
        );
    }

    /// Stops the server the way a crash does: no shutdown checkpoint, connections cut.
    pub fn crash(&self) {
        let _ = self
            .pg_ctl()
            .args(["-w", "-m", "immediate", "stop"])
            .output();
    }

    /// `postgres://` URL of the server's default database.
    pub fn admin_url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }
}

impl Drop for OwnPostgres {
    fn drop(&mut self) {
        self.crash();
    }
}

/// A redis-server of the test's own on a port of its own (nothing kept on disk).
#[derive(Debug)]
pub struct OwnRedis {
    child: Option<Child>,
    pub port: u16,
}

impl OwnRedis {
    pub async fn start() -> Self {
        let mut redis = Self {
            child: None,
            port: free_port(),
        };
        redis.start_server().await;
        redis
    }

    pub async fn start_server(&mut self) {
        let child = Command::new("redis-server")
            .args([
                "--port",
                &self.port.to_string(),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
            ])
            .stdout(Stdio::null())
            .spawn()
            .expect("redis-server must be installed for this test");
        self.child = Some(child);
        for _ in 0..200 {
            if tokio::net::TcpStream::connect(("127.0.0.1", self.port))
                .await
                .is_ok()
            {
                return;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        panic!("redis-server did not start on port {}", self.port);
    }

    /// Kills the server: everything it held is gone (nothing is kept on disk).
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/0", self.port)
    }

    pub async fn flushall(&self) {
        let client = redis::Client::open(self.url()).unwrap();
        let mut connection = client.get_multiplexed_async_connection().await.unwrap();
        let _: () = redis::cmd("FLUSHALL")
            .query_async(&mut connection)
            .await
            .unwrap();
    }
}

impl Drop for OwnRedis {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Where a suite process keeps its records.
#[derive(Debug, Clone)]
pub enum Storage {
    /// PostgreSQL + Redis, under a key prefix of the scenario's own.
    Production {
        database_url: String,
        redis_url: String,
        key_prefix: String,
    },
    /// SQLite files in this folder, in-process cache and bus.
    Embedded { data_dir: PathBuf },
}

impl Storage {
    /// The settings every `credit-suite` command of the scenario runs with.
    pub fn env(&self) -> Vec<(&'static str, String)> {
        match self {
            Storage::Production {
                database_url,
                redis_url,
                key_prefix,
            } => vec![
                ("CREDIT_DATABASE_URL", database_url.clone()),
                ("CREDIT_REDIS_URL", redis_url.clone()),
                ("CREDIT_REDIS_KEY_PREFIX", key_prefix.clone()),
            ],
            Storage::Embedded { data_dir } => {
                vec![("CREDIT_DATA_DIR", data_dir.display().to_string())]
            }
        }
    }
}

/// `credit-suite serve` as a child process.
#[derive(Debug)]
pub struct SuiteProcess {
    child: Option<Child>,
    pub addr: SocketAddr,
    pub channel: Channel,
    /// Where its log goes (read when a scenario fails).
    pub log: PathBuf,
    storage: Storage,
    name: String,
    services: String,
    _log_folder: tempfile::TempDir,
}

/// How long a suite process may take to serve (migrations included) on a loaded machine.
const START_DEADLINE: Duration = Duration::from_secs(90);

impl SuiteProcess {
    /// Starts `credit-suite serve --services <services>` as pod `name` (its consumer names),
    /// and waits until every service it runs is SERVING.
    pub async fn start(storage: &Storage, name: &str, services: &str) -> Self {
        let log_folder = tempfile::tempdir().unwrap();
        let addr: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
        let mut process = Self {
            child: None,
            addr,
            channel: Channel::from_shared(format!("http://{addr}"))
                .unwrap()
                .connect_lazy(),
            log: log_folder.path().join(format!("{name}.log")),
            storage: storage.clone(),
            name: name.to_owned(),
            services: services.to_owned(),
            _log_folder: log_folder,
        };
        process.spawn();
        process.wait_serving().await;
        process
    }

    fn spawn(&mut self) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .unwrap();
        let child = Command::new(suite_binary())
            .args(["serve", "--services", &self.services])
            .envs(self.storage.env())
            .env("CREDIT_LISTEN_ADDR", self.addr.to_string())
            .env("CREDIT_METRICS_ADDR", "off")
            .env("CREDIT_LOG_FORMAT", "json")
            .env("CREDIT_READINESS_INTERVAL_MS", "200")
            .env("CREDIT_SHUTDOWN_TIMEOUT_SECS", "5")
            .env("CREDIT_EVENTS_CLAIM_IDLE_MS", "1000")
            .env("CREDIT_EXPOSURE_RECONCILE_INTERVAL_SECS", "3")
            .env("CREDIT_DATABASE_MAX_CONNECTIONS", "4")
            .env("HOSTNAME", &self.name)
            .env("RUST_LOG", "info")
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("the credit-suite binary starts");
        self.child = Some(child);
    }

    /// Waits until the services this process runs are SERVING.
    pub async fn wait_serving(&self) {
        let deadline = Instant::now() + START_DEADLINE;
        let names = service_names(&self.services);
        loop {
            let mut all = true;
            for name in &names {
                let status = HealthClient::new(self.channel.clone())
                    .check(HealthCheckRequest {
                        service: (*name).to_owned(),
                    })
                    .await
                    .map(|response| response.into_inner().status());
                all &= matches!(status, Ok(ServingStatus::Serving));
            }
            if all {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "{} did not serve in time; its log:\n{}",
                self.name,
                self.log_tail()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// SIGKILL: the process dies at once, mid-call.
    pub fn kill9(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts the process again, with the same settings, address and name.
    pub async fn restart(&mut self) {
        self.kill9();
        self.spawn();
        self.wait_serving().await;
    }

    /// The last lines of the process's log.
    pub fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(60)..].join("\n")
    }
}

impl Drop for SuiteProcess {
    fn drop(&mut self) {
        self.kill9();
    }
}

fn service_names(services: &str) -> Vec<&'static str> {
    let all = [
        ("intake", credit_proto::service_names::INTAKE),
        ("rating", credit_proto::service_names::RATING),
        ("limits", credit_proto::service_names::LIMITS),
        ("collections", credit_proto::service_names::COLLECTIONS),
    ];
    all.iter()
        .filter(|(name, _)| services == "all" || services.split(',').any(|one| one.trim() == *name))
        .map(|(_, full)| *full)
        .collect()
}

/// Runs a `credit-suite` client command with the scenario's settings; its stdout, stderr and
/// exit code.
pub fn run_command(
    storage: &Storage,
    args: &[&str],
    extra_env: &[(&str, String)],
) -> std::process::Output {
    Command::new(suite_binary())
        .args(args)
        .envs(storage.env())
        .envs(
            extra_env
                .iter()
                .map(|(name, value)| (*name, value.as_str())),
        )
        .output()
        .unwrap()
}

/// Issues a token through `credit-suite token create`, as an operator does.
pub fn issue_token(
    storage: &Storage,
    name: &str,
    roles: &[&str],
    authority: Option<&str>,
) -> String {
    let mut args = vec!["token", "create", "--name", name];
    for role in roles {
        args.extend(["--role", role]);
    }
    if let Some(authority) = authority {
        args.extend(["--authority", authority]);
    }
    let output = run_command(storage, &args, &[]);
    assert!(
        output.status.success(),
        "token create failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let stdout = String::from_utf8_lossy(&output.stdout);
    stdout
        .split_whitespace()
        .find(|word| word.starts_with("cst_"))
        .unwrap_or_else(|| panic!("no token in: {stdout}"))
        .to_owned()
}
