//! `credit-suite import customers.csv`: registers customers from a CSV file through
//! `IntakeService.ImportCustomers` (client streaming), with a progress bar and a summary.
//!
//! The work is split so that everything but the network can be tested without a server:
//! [`parse_csv`] reads the header and maps each data row to a `credit.v1.Customer` (a row that
//! cannot even be mapped is kept with its problems and never sent), [`plan_calls`] splits the
//! rows into calls of at most [`MAX_ROWS_PER_CALL`] rows and messages of `batch_size` rows,
//! and [`build_report`] merges the server's per-row results with the rows refused locally.
//! [`run_import`] does all of it against a running suite.
//!
//! Personal data (national ids, phones, e-mails, names of individuals) is never printed: local
//! problems name the column and never echo a cell, and the server's violations name fields.

use std::io::IsTerminal;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use credit_core::error::ErrorChain;
use credit_proto::v1::intake_service_client::IntakeServiceClient;
use credit_proto::v1::{ImportCustomerRowResult, ImportCustomersResponse};
use credit_runtime::config::{
    Backend, ConfigError, DEFAULT_DATA_DIR, DEFAULT_LISTEN_ADDR, Settings, TlsSettings,
};
use credit_runtime::tls::ClientTls;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use secrecy::{ExposeSecret, SecretString};
use tokio_stream::StreamExt;
use tonic::metadata::{Ascii, MetadataValue};
use tonic::transport::Channel;
use tonic::{Code, Status};

use crate::ADMIN_TOKEN_FILE;

mod csv_rows;
mod report;

pub use csv_rows::{
    COLUMN_NAMES, Column, FormatError, Header, ParsedFile, ParsedRow, Problem, map_row, parse_csv,
    parse_iso_date,
};
pub use report::{
    ImportReport, ImportSummary, PlannedCall, RowOutcome, RowReport, build_report, check_import_id,
    derive_import_id, part_import_id, plan_calls,
};

/// Most rows one `ImportCustomers` call may carry (the contract's limit). A bigger file is
/// imported in several calls: rows 1..=50,000 in the first, 50,001..=100,000 in the second, …
pub const MAX_ROWS_PER_CALL: i64 = 50_000;

/// Rows per stream message unless `--batch-size` says otherwise.
pub const DEFAULT_BATCH_SIZE: usize = 500;

/// Largest `--batch-size`: a message of 5,000 rows stays well below gRPC's default 4 MiB
/// message limit on the server.
pub const MAX_BATCH_SIZE: usize = 5_000;

/// Problem rows listed in the printed summary; `--results` has all of them.
pub const LISTED_PROBLEM_ROWS: usize = 20;

/// The response carries one result per row (50,000 at most per call): allow more than
/// tonic's default 4 MiB.
const MAX_RESPONSE_BYTES: usize = 128 * 1024 * 1024;

const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

// ---------------------------------------------------------------------------------------------
// Columns and the header
// ---------------------------------------------------------------------------------------------

/// What [`run_import`] needs. Build with [`ImportOptions::new`], then set fields.
#[derive(Debug, Clone)]
pub struct ImportOptions {
    /// The CSV file.
    pub file: PathBuf,
    /// `http://host:port` or `https://host:port` of the suite (IntakeService).
    pub addr: String,
    /// What an `https://` address is trusted with and shown (`CREDIT_TLS_CA_FILE`, the client
    /// certificate); the system's roots by default.
    pub tls: ClientTls,
    /// Bearer token of a principal with ANALYST or ADMIN.
    pub token: SecretString,
    /// Where the token came from, for error messages ("CREDIT_TOKEN", a file path); never the
    /// token itself.
    pub token_source: String,
    /// Base import id; `None` derives it from the file's SHA-256 ([`derive_import_id`]).
    pub import_id: Option<String>,
    /// Rows per stream message, 1..=[`MAX_BATCH_SIZE`].
    pub batch_size: usize,
    /// Validate and check for duplicates only; nothing is written.
    pub validate_only: bool,
    /// Write every row's result as CSV to this file.
    pub results_path: Option<PathBuf>,
    /// Draw a progress bar on stderr (only ever when stderr is a terminal).
    pub show_progress: bool,
}

impl ImportOptions {
    /// Defaults: import id from the file's SHA-256, 500 rows a message, no results file, no
    /// progress bar.
    pub fn new(
        file: impl Into<PathBuf>,
        addr: impl Into<String>,
        token: impl Into<String>,
    ) -> Self {
        Self {
            file: file.into(),
            addr: addr.into(),
            tls: ClientTls::default(),
            token: SecretString::from(token.into()),
            token_source: "the import options".to_owned(),
            import_id: None,
            batch_size: DEFAULT_BATCH_SIZE,
            validate_only: false,
            results_path: None,
            show_progress: false,
        }
    }
}

/// Why an import could not be done (the exit code 2 cases). Never holds personal data or the
/// token.
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    #[error(transparent)]
    Usage(#[from] ConfigError),
    #[error("cannot read {path}")]
    ReadFile {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: {source}")]
    Format {
        path: String,
        #[source]
        source: FormatError,
    },
    #[error(
        "no token: set CREDIT_TOKEN, pass --token-file, or start the suite once so that it writes {default_path}"
    )]
    MissingToken { default_path: String },
    #[error("cannot read the token file {path}")]
    TokenFile {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot connect to {addr}")]
    Connect {
        addr: String,
        #[source]
        source: tonic::transport::Error,
    },
    #[error("{addr} refused the token from {token_source}: {code}: {message}")]
    Auth {
        addr: String,
        token_source: String,
        code: &'static str,
        message: String,
    },
    #[error(
        "ImportCustomers call {call} of {calls} (import id {import_id}) failed: {code}: {message}{hint}"
    )]
    Call {
        call: usize,
        calls: usize,
        import_id: String,
        code: &'static str,
        message: String,
        /// What to do: raise the server's deadline, run again when earlier calls went through.
        hint: String,
    },
    #[error("cannot start the async runtime")]
    Runtime(#[source] std::io::Error),
    #[error("cannot write the results to {path}")]
    WriteResults {
        path: String,
        #[source]
        source: csv::Error,
    },
}

/// Reads, maps and sends `options.file`, and returns every row's result. Rows the client cannot
/// map are not sent and come back INVALID; the others are streamed in calls of at most
/// [`MAX_ROWS_PER_CALL`] rows. Writes `options.results_path` when set. Errors are whole-import
/// failures (file, token, connection, a refused or failed call); row problems are in the
/// report.
pub async fn run_import(options: &ImportOptions) -> Result<ImportReport, ImportError> {
    if !(1..=MAX_BATCH_SIZE).contains(&options.batch_size) {
        return Err(
            ConfigError::new("--batch-size", format!("must be 1..={MAX_BATCH_SIZE}")).into(),
        );
    }
    if let Some(import_id) = &options.import_id {
        check_import_id(import_id)?;
    }
    let path = options.file.display().to_string();
    let bytes = tokio::fs::read(&options.file)
        .await
        .map_err(|source| ImportError::ReadFile {
            path: path.clone(),
            source,
        })?;
    let import_id = options
        .import_id
        .clone()
        .unwrap_or_else(|| derive_import_id(&bytes));
    let parsed = parse_csv(&bytes).map_err(|source| ImportError::Format {
        path: path.clone(),
        source,
    })?;
    drop(bytes);

    let calls = plan_calls(
        &import_id,
        options.validate_only,
        &parsed.rows,
        options.batch_size,
    );
    let call_import_ids: Vec<String> = calls.iter().map(|call| call.import_id.clone()).collect();
    let server_results = if calls.is_empty() {
        Vec::new()
    } else {
        send_calls(options, calls).await?
    };
    let report = build_report(
        &import_id,
        call_import_ids,
        options.validate_only,
        &parsed.rows,
        server_results,
    );
    if let Some(results_path) = &options.results_path {
        write_results_file(&report, results_path)?;
    }
    Ok(report)
}

fn write_results_file(report: &ImportReport, path: &Path) -> Result<(), ImportError> {
    let to_error = |source: csv::Error| ImportError::WriteResults {
        path: path.display().to_string(),
        source,
    };
    let file = std::fs::File::create(path).map_err(|error| to_error(csv::Error::from(error)))?;
    report
        .write_results_csv(std::io::BufWriter::new(file))
        .map_err(to_error)
}

async fn send_calls(
    options: &ImportOptions,
    calls: Vec<PlannedCall>,
) -> Result<Vec<ImportCustomerRowResult>, ImportError> {
    let authorization: MetadataValue<Ascii> = format!("Bearer {}", options.token.expose_secret())
        .parse()
        .map_err(|_| {
            ConfigError::new(
                options.token_source.clone(),
                "the token holds characters that cannot be sent in a header",
            )
        })?;
    let client = connect(&options.addr, &options.tls).await?;
    let total_rows: usize = calls.iter().map(PlannedCall::row_count).sum();
    let progress = progress_bar(options.show_progress, total_rows as u64);
    let call_count = calls.len();
    let mut results = Vec::with_capacity(total_rows);
    for (index, call) in calls.into_iter().enumerate() {
        let import_id = call.import_id.clone();
        match send_call(client.clone(), &authorization, call, &progress).await {
            Ok(response) => results.extend(response.results),
            Err(status) => {
                progress.finish_and_clear();
                return Err(call_error(
                    options,
                    &status,
                    index + 1,
                    call_count,
                    import_id,
                ));
            }
        }
    }
    progress.finish_and_clear();
    Ok(results)
}

async fn connect(addr: &str, tls: &ClientTls) -> Result<IntakeServiceClient<Channel>, ImportError> {
    let endpoint = tls
        .endpoint("--addr (CREDIT_ADDR)", addr)?
        .connect_timeout(CONNECT_TIMEOUT)
        .tcp_nodelay(true);
    let channel = endpoint
        .connect()
        .await
        .map_err(|source| ImportError::Connect {
            addr: addr.to_owned(),
            source,
        })?;
    Ok(IntakeServiceClient::new(channel).max_decoding_message_size(MAX_RESPONSE_BYTES))
}

async fn send_call(
    mut client: IntakeServiceClient<Channel>,
    authorization: &MetadataValue<Ascii>,
    call: PlannedCall,
    progress: &ProgressBar,
) -> Result<ImportCustomersResponse, Status> {
    let bar = progress.clone();
    let last_message = call.messages.len();
    // Counted as each message is handed to the transport: "rows sent".
    let stream =
        tokio_stream::iter(call.messages.into_iter().enumerate()).map(move |(index, message)| {
            bar.inc(message.rows.len() as u64);
            if index + 1 == last_message {
                bar.set_message("waiting for the results");
            }
            message
        });
    let mut request = tonic::Request::new(stream);
    request
        .metadata_mut()
        .insert("authorization", authorization.clone());
    let response = client.import_customers(request).await?.into_inner();
    progress.set_message("");
    Ok(response)
}

fn call_error(
    options: &ImportOptions,
    status: &Status,
    call: usize,
    calls: usize,
    import_id: String,
) -> ImportError {
    let code = code_name(status.code());
    let message = status.message().to_owned();
    match status.code() {
        Code::Unauthenticated | Code::PermissionDenied => ImportError::Auth {
            addr: options.addr.clone(),
            token_source: options.token_source.clone(),
            code,
            message: if status.code() == Code::PermissionDenied {
                format!("{message} (ImportCustomers needs the ANALYST or ADMIN role)")
            } else {
                message
            },
        },
        _ => ImportError::Call {
            call,
            calls,
            import_id,
            code,
            message,
            hint: call_hint(status.code(), call),
        },
    }
}

fn call_hint(code: Code, call: usize) -> String {
    let mut hint = String::new();
    if matches!(code, Code::Cancelled | Code::DeadlineExceeded) {
        hint.push_str(
            "; the server's per-call deadline (CREDIT_REQUEST_TIMEOUT_MS) may be too short for \
             this many rows",
        );
    }
    if call > 1 {
        hint.push_str(&format!("; calls 1..{} went through", call - 1));
    }
    if !hint.is_empty() {
        hint.push_str(
            "; rows stored so far are not created twice when the same command runs again",
        );
    }
    hint
}

/// The canonical name of a gRPC code, as grpcurl and the contract write it.
pub(crate) fn code_name(code: Code) -> &'static str {
    match code {
        Code::Ok => "OK",
        Code::Cancelled => "CANCELLED",
        Code::Unknown => "UNKNOWN",
        Code::InvalidArgument => "INVALID_ARGUMENT",
        Code::DeadlineExceeded => "DEADLINE_EXCEEDED",
        Code::NotFound => "NOT_FOUND",
        Code::AlreadyExists => "ALREADY_EXISTS",
        Code::PermissionDenied => "PERMISSION_DENIED",
        Code::ResourceExhausted => "RESOURCE_EXHAUSTED",
        Code::FailedPrecondition => "FAILED_PRECONDITION",
        Code::Aborted => "ABORTED",
        Code::OutOfRange => "OUT_OF_RANGE",
        Code::Unimplemented => "UNIMPLEMENTED",
        Code::Internal => "INTERNAL",
        Code::Unavailable => "UNAVAILABLE",
        Code::DataLoss => "DATA_LOSS",
        Code::Unauthenticated => "UNAUTHENTICATED",
    }
}

fn progress_bar(wanted: bool, total_rows: u64) -> ProgressBar {
    if !wanted || !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::with_draw_target(Some(total_rows), ProgressDrawTarget::stderr());
    if let Ok(style) =
        ProgressStyle::with_template("importing [{bar:40}] {pos}/{len} rows sent ({elapsed}) {msg}")
    {
        bar.set_style(style.progress_chars("=> "));
    }
    bar
}

// ---------------------------------------------------------------------------------------------
// The command line
// ---------------------------------------------------------------------------------------------

/// `credit-suite import FILE`: the arguments, as parsed by clap.
#[derive(Debug, Clone, clap::Args)]
pub struct ImportArgs {
    /// The CSV file: a header row naming the columns, then one customer a row (docs/import.md).
    pub file: PathBuf,
    /// Address of the suite, http:// or https:// [default: http:// (https:// with
    /// CREDIT_TLS_CERT_FILE) + CREDIT_LISTEN_ADDR, 127.0.0.1:50051].
    #[arg(long, env = "CREDIT_ADDR")]
    pub addr: Option<String>,
    /// File holding the bearer token (ANALYST or ADMIN), when CREDIT_TOKEN is not set
    /// [default: CREDIT_DATA_DIR/admin.token].
    #[arg(long)]
    pub token_file: Option<PathBuf>,
    /// Identifies the import across retries [default: the SHA-256 of the file]. Reuse it to
    /// re-send an edited file without creating its earlier rows again.
    #[arg(long)]
    pub import_id: Option<String>,
    /// Rows per stream message (1..=5000).
    #[arg(long, default_value_t = DEFAULT_BATCH_SIZE as u64,
          value_parser = clap::value_parser!(u64).range(1..=MAX_BATCH_SIZE as u64))]
    pub batch_size: u64,
    /// Validate and check for duplicates only; nothing is written.
    #[arg(long)]
    pub validate_only: bool,
    /// Write every row's result (row_number,outcome,customer_id,problems) as CSV to this file.
    #[arg(long, value_name = "PATH")]
    pub results: Option<PathBuf>,
}

impl ImportArgs {
    /// Resolves the defaults: the suite and the token as [`resolve_target`] finds them.
    pub fn into_options(self, config_file: Option<&Path>) -> Result<ImportOptions, ImportError> {
        let target = resolve_target(
            self.addr.as_deref(),
            self.token_file.as_deref(),
            config_file,
        )?;
        let batch_size = usize::try_from(self.batch_size).map_err(|_| {
            ConfigError::new("--batch-size", format!("must be 1..={MAX_BATCH_SIZE}"))
        })?;
        Ok(ImportOptions {
            file: self.file,
            addr: target.addr,
            tls: target.tls,
            token: target.token,
            token_source: target.token_source,
            import_id: self.import_id,
            batch_size,
            validate_only: self.validate_only,
            results_path: self.results,
            show_progress: true,
        })
    }
}

/// Where a client command (`import`, `reconcile`) finds the suite, and the token it shows.
#[derive(Debug, Clone)]
pub struct SuiteTarget {
    /// `http://host:port`, or `https://host:port` for a suite that serves TLS.
    pub addr: String,
    /// What an `https://` address is trusted with and shown: `CREDIT_TLS_CA_FILE` (else the
    /// system's roots), the client certificate of `CREDIT_TLS_CLIENT_CERT_FILE`.
    pub tls: ClientTls,
    pub token: SecretString,
    /// Where the token came from, for error messages; never the token itself.
    pub token_source: String,
}

/// The address from `addr` (`--addr`/`CREDIT_ADDR`), else from the suite's settings
/// (`CREDIT_LISTEN_ADDR`, `--config`; `https://` when `CREDIT_TLS_CERT_FILE` is set); the token
/// from `CREDIT_TOKEN`, else `token_file` (`--token-file`), else `CREDIT_DATA_DIR/admin.token`;
/// TLS from the `CREDIT_TLS_*` client settings. Server settings a client does not use never
/// stop it: when they do not load, those it needs are read from the environment.
pub fn resolve_target(
    addr: Option<&str>,
    token_file: Option<&Path>,
    config_file: Option<&Path>,
) -> Result<SuiteTarget, ImportError> {
    let lookup = |name: &str| {
        std::env::var(name)
            .ok()
            .filter(|value| !value.trim().is_empty())
    };
    let addr = addr.map(str::trim).filter(|addr| !addr.is_empty());
    let needs_settings =
        addr.is_none() || (lookup("CREDIT_TOKEN").is_none() && token_file.is_none());
    let settings = if needs_settings {
        ClientSettings::load(config_file, &lookup)?
    } else {
        ClientSettings {
            tls: client_tls_settings(config_file)?,
            ..ClientSettings::default()
        }
    };
    let addr = match addr {
        Some(addr) => normalize_addr(addr)?,
        None => addr_for_listen_addr(settings.listen_addr, settings.tls.serves_tls()),
    };
    let (token, token_source) =
        resolve_token(lookup("CREDIT_TOKEN"), token_file, &settings.data_dir)?;
    Ok(SuiteTarget {
        addr,
        tls: ClientTls::load(&settings.tls)?,
        token,
        token_source,
    })
}

/// The TLS settings from the suite's settings, else (when those do not load for another
/// reason) from the environment alone.
pub(crate) fn client_tls_settings(config_file: Option<&Path>) -> Result<TlsSettings, ConfigError> {
    match Settings::load(config_file) {
        Ok(settings) => Ok(settings.tls),
        Err(_) => TlsSettings::from_env(),
    }
}

/// The server settings a client needs.
#[derive(Debug, Clone)]
struct ClientSettings {
    listen_addr: SocketAddr,
    data_dir: PathBuf,
    tls: TlsSettings,
}

impl Default for ClientSettings {
    fn default() -> Self {
        Self {
            listen_addr: SocketAddr::from(([127, 0, 0, 1], 50051)),
            data_dir: PathBuf::from(DEFAULT_DATA_DIR),
            tls: TlsSettings::default(),
        }
    }
}

impl ClientSettings {
    fn load(
        config_file: Option<&Path>,
        lookup: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Self, ConfigError> {
        let env_data_dir = || {
            PathBuf::from(lookup("CREDIT_DATA_DIR").unwrap_or_else(|| DEFAULT_DATA_DIR.to_owned()))
        };
        match Settings::load(config_file) {
            Ok(settings) => Ok(Self {
                listen_addr: settings.listen_addr,
                data_dir: match settings.backend {
                    Backend::Embedded { data_dir } => data_dir,
                    Backend::Production { .. } => env_data_dir(),
                },
                tls: settings.tls,
            }),
            Err(_) => {
                let text =
                    lookup("CREDIT_LISTEN_ADDR").unwrap_or_else(|| DEFAULT_LISTEN_ADDR.to_owned());
                let listen_addr = text.trim().parse().map_err(|_| {
                    ConfigError::new(
                        "CREDIT_LISTEN_ADDR",
                        format!(
                            "'{text}' is not an address such as 127.0.0.1:50051; or pass --addr"
                        ),
                    )
                })?;
                Ok(Self {
                    listen_addr,
                    data_dir: env_data_dir(),
                    tls: TlsSettings::from_env()?,
                })
            }
        }
    }
}

/// `http://` (`https://` for a suite that serves TLS) + the listen address; a server listening
/// on every interface (0.0.0.0, ::) is called on loopback, which its certificate must then name
/// (or pass `--addr https://<a name it holds>:50051`).
pub fn addr_for_listen_addr(listen_addr: SocketAddr, serves_tls: bool) -> String {
    let mut target = listen_addr;
    if target.ip().is_unspecified() {
        target.set_ip(match target {
            SocketAddr::V4(_) => std::net::Ipv4Addr::LOCALHOST.into(),
            SocketAddr::V6(_) => std::net::Ipv6Addr::LOCALHOST.into(),
        });
    }
    let scheme = if serves_tls { "https" } else { "http" };
    format!("{scheme}://{target}")
}

/// `host:port` gets `http://`; `http://` and `https://` addresses are kept, any other scheme
/// is refused.
fn normalize_addr(addr: &str) -> Result<String, ConfigError> {
    normalize_url("--addr (CREDIT_ADDR)", addr)
}

/// `host:port` gets `http://`; `http://` and `https://` (TLS) URLs are kept; anything else is
/// refused naming `setting`.
pub(crate) fn normalize_url(setting: &str, addr: &str) -> Result<String, ConfigError> {
    let addr = addr.trim();
    let with_scheme = if addr.contains("://") {
        addr.to_owned()
    } else {
        format!("http://{addr}")
    };
    if !(with_scheme.starts_with("http://") || with_scheme.starts_with("https://")) {
        return Err(ConfigError::new(
            setting,
            format!(
                "'{addr}' must be an http:// or https:// address such as http://127.0.0.1:50051"
            ),
        ));
    }
    if tonic::transport::Endpoint::from_shared(with_scheme.clone()).is_err() {
        return Err(ConfigError::new(setting, format!("'{addr}' is not a URL")));
    }
    Ok(with_scheme)
}

fn resolve_token(
    from_env: Option<String>,
    token_file: Option<&Path>,
    data_dir: &Path,
) -> Result<(SecretString, String), ImportError> {
    if let Some(token) = from_env {
        return Ok((
            SecretString::from(token.trim().to_owned()),
            "CREDIT_TOKEN".to_owned(),
        ));
    }
    let default_path = data_dir.join(ADMIN_TOKEN_FILE);
    let path = match token_file {
        Some(path) => path.to_path_buf(),
        None if default_path.is_file() => default_path,
        None => {
            return Err(ImportError::MissingToken {
                default_path: default_path.display().to_string(),
            });
        }
    };
    let text = std::fs::read_to_string(&path).map_err(|source| ImportError::TokenFile {
        path: path.display().to_string(),
        source,
    })?;
    let token = text.trim();
    if token.is_empty() {
        return Err(ImportError::TokenFile {
            path: path.display().to_string(),
            source: std::io::Error::new(std::io::ErrorKind::InvalidData, "the file is empty"),
        });
    }
    Ok((
        SecretString::from(token.to_owned()),
        path.display().to_string(),
    ))
}

/// Runs `credit-suite import`: prints the summary on stdout and returns exit code 0 (every row
/// created, already imported or a duplicate), 1 (some rows invalid or failed) or 2 (nothing
/// could be imported: usage, file, token, connection or call error, printed as one line
/// `credit-suite: error: ...` on stderr).
pub fn run_command(args: ImportArgs, config_file: Option<&Path>) -> ExitCode {
    let outcome = args.into_options(config_file).and_then(|options| {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(ImportError::Runtime)?;
        runtime.block_on(run_import(&options))
    });
    match outcome {
        Ok(report) => {
            print!("{}", report.render_summary());
            ExitCode::from(report.exit_code())
        }
        Err(error) => {
            eprintln!("credit-suite: error: {}", ErrorChain(&error));
            ExitCode::from(2)
        }
    }
}

#[cfg(test)]
mod tests;
