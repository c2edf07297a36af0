//! The `credit-suite` command: `serve`, `migrate`, `token create|list|revoke|rotate`,
//! `import`, `reconcile`, `demo` and `events`.

/// mimalloc instead of glibc's malloc: the request path allocates a great deal (protobuf,
/// HTTP/2, JSON documents) across threads, and glibc's allocator was about a tenth of the CPU
/// in a profile under load.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use credit_runtime::telemetry::init_telemetry;
use credit_runtime::{Backend, Settings};
use credit_suite::audit_cli::AuditCommand;
use credit_suite::demo::DemoArgs;
use credit_suite::events_cli::EventsArgs;
use credit_suite::import::ImportArgs;
use credit_suite::reconcile::ReconcileArgs;
use credit_suite::tokens_cli::TokenCommand;
use credit_suite::{Application, ServiceSelection};

#[derive(Debug, Parser)]
#[command(
    name = "credit-suite",
    version,
    about = "Credit decisions for companies that sell on credit"
)]
struct Cli {
    /// A TOML file of settings; `CREDIT_*` environment variables override it.
    #[arg(long, global = true, env = "CREDIT_CONFIG")]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Serve the four services (or those named by --services) until SIGTERM or Ctrl-C.
    Serve {
        /// Comma-separated subset: intake,rating,limits,collections (needs PostgreSQL + Redis).
        #[arg(long, env = "CREDIT_SERVICES", default_value = "all")]
        services: String,
    },
    /// Apply the database migrations of every store, then exit.
    Migrate,
    /// Manage bearer tokens.
    #[command(subcommand)]
    Token(TokenCommand),
    /// Check the tamper-evident audit trail of every service.
    ///
    /// `audit verify` recomputes each service's audit chain (every entry hashed over the one
    /// before it) and compares intake's customer audit rows with what the chain recorded.
    /// Exit code 0: intact; 1: an entry was edited, deleted or inserted out of turn (each named
    /// on a line); 2: the check could not be made.
    #[command(subcommand)]
    Audit(AuditCommand),
    /// Register the customers of a CSV file through IntakeService.ImportCustomers
    /// (see docs/import.md). Exit code 0: every row imported; 1: some rows invalid or failed;
    /// 2: nothing could be imported.
    Import(ImportArgs),
    /// Compare the cached exposure with the ledger and repair every difference
    /// (LimitService.ReconcileExposure on a running suite; needs an ADMIN token).
    ///
    /// Checks every customer (or those named by --customer) and their groups in the exposure
    /// cache (Redis; in-process on the embedded default). A cached figure that differs from
    /// the ledger, and still differs a moment later, is printed on one line and repaired by
    /// rebuilding the entry from the ledger, as a cold customer is rebuilt; --dry-run only
    /// prints. A customer that is not cached is not a difference: it is rebuilt before its next
    /// decision. A summary line ends the output. The token comes from CREDIT_TOKEN, else
    /// --token-file, else CREDIT_DATA_DIR/admin.token.
    ///
    /// Exit code 0: no differences; 1: differences found (repaired or not); 2: the check could
    /// not be made (address, token, connection, or the call failed).
    Reconcile(ReconcileArgs),
    /// Run a scripted order-to-cash story against a running suite and print each step.
    ///
    /// Registers an enterprise customer, submits a statement, a bureau report and a trade
    /// reference, rates it, proposes a limit that a maker requests and a checker approves,
    /// authorizes three orders (approved; referred and released by the checker; far beyond the
    /// limit, walked through step 7.2: finance verifies, the general manager decides), invoices
    /// and partly pays them, posts an invoice already overdue, detects it (new orders are
    /// referred: CREDIT_BLOCK, OVERDUE), tries dunning, pays the rest and shows orders approved
    /// again with the exposure, and ends with the people side: a grade override the analyst
    /// proposes, walked through the approval matrix's chain and turned down by the credit
    /// manager, and a credit policy change proposed by the credit manager and turned down by the
    /// general manager (the policy in force does not change).
    /// Every name and key carries a run id: run it as often as you like.
    ///
    /// Four eyes are kept: nobody approves their own limit request or releases their own
    /// referral, not even the ADMIN. By default the demo issues its own cast for the run in the
    /// suite's identity store, as `token create` does (demo-analyst: ANALYST, the maker;
    /// demo-manager: CREDIT_MANAGER with authority 100,000,000 CNY, the checker; demo-erp:
    /// ORDER_ENTRY; demo-collector: COLLECTOR; demo-finance: FINANCE; demo-gm:
    /// GENERAL_MANAGER), and revokes them when it ends; this needs the
    /// suite's settings (the same CREDIT_DATA_DIR on the embedded default, or
    /// CREDIT_DATABASE_URL). Against a suite whose identity store it cannot reach, pass
    /// --checker-token: the maker's token (--token, CREDIT_TOKEN, --token-file or
    /// CREDIT_DATA_DIR/admin.token) then does everything but the checker's decisions.
    ///
    /// Exit code 0: the story completed; 1: a step failed (one line says which and why).
    Demo(DemoArgs),
    /// Operate the event pipeline: list, show, replay or drop dead letters (events a consumer
    /// could not apply; see docs/operations.md). A client of a running suite, with an ADMIN
    /// token from CREDIT_TOKEN, else --token-file, else CREDIT_DATA_DIR/admin.token.
    ///
    /// Exit code 0: done (replay: the event was applied); 1: a replay failed again or was not
    /// finished in time; 2: the command could not be carried out.
    Events(EventsArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    // `import` and `reconcile` are clients of a running suite: they need an address and a
    // token, not the server's settings, so they are dispatched before those are loaded.
    let command = match cli.command {
        Command::Import(arguments) => {
            return credit_suite::import::run_command(arguments, cli.config.as_deref());
        }
        Command::Reconcile(arguments) => {
            return credit_suite::reconcile::run_command(arguments, cli.config.as_deref());
        }
        Command::Demo(arguments) => {
            return credit_suite::demo::run_command(arguments, cli.config.as_deref());
        }
        Command::Events(arguments) => {
            return credit_suite::events_cli::run_command(arguments, cli.config.as_deref());
        }
        command => command,
    };
    let settings = match Settings::load(cli.config.as_deref()) {
        Ok(settings) => settings,
        Err(error) => return fail(&error),
    };
    let runtime = match credit_runtime::server::runtime() {
        Ok(runtime) => runtime,
        Err(error) => return fail(&error),
    };
    let result = runtime.block_on(async {
        match command {
            Command::Serve { services } => {
                serve(settings, &services).await.map(|()| ExitCode::SUCCESS)
            }
            Command::Migrate => migrate(settings).await.map(|()| ExitCode::SUCCESS),
            Command::Token(command) => credit_suite::tokens_cli::run(settings, command)
                .await
                .map(|()| ExitCode::SUCCESS),
            Command::Audit(command) => credit_suite::audit_cli::run(settings, command).await,
            // Dispatched above, before the settings are loaded.
            Command::Import(_) | Command::Reconcile(_) | Command::Demo(_) | Command::Events(_) => {
                Ok(ExitCode::SUCCESS)
            }
        }
    });
    match result {
        Ok(code) => code,
        // The reader went away (`credit-suite token list | head`): nothing more to say.
        Err(error)
            if error
                .downcast_ref::<std::io::Error>()
                .is_some_and(|error| error.kind() == std::io::ErrorKind::BrokenPipe) =>
        {
            ExitCode::SUCCESS
        }
        Err(error) => fail(&*error),
    }
}

/// Prints the error and its causes on one line and exits non-zero.
fn fail(error: &(dyn std::error::Error + 'static)) -> ExitCode {
    eprintln!(
        "credit-suite: error: {}",
        credit_core::error::ErrorChain(error)
    );
    ExitCode::from(2)
}

type CommandResult = Result<(), Box<dyn std::error::Error>>;

async fn serve(settings: Settings, services: &str) -> CommandResult {
    let selection: ServiceSelection = services.parse()?;
    let _telemetry = init_telemetry("credit-suite", settings.log_format)?;
    let application = Application::build(&settings, &selection).await?;
    tracing::info!(
        addr = %application.local_addr()?,
        metrics = ?application.metrics_addr(),
        services = ?selection.iter().map(|kind| kind.as_str()).collect::<Vec<_>>(),
        backend = if settings.backend.is_embedded() { "embedded" } else { "postgres+redis" },
        "credit-suite listening"
    );
    if let Backend::Embedded { data_dir } = &settings.backend {
        tracing::info!(data_dir = %data_dir.display(), "embedded default: SQLite files and in-process cache");
    }
    application.run_until_stopped(shutdown_signal()).await?;
    tracing::info!("stopped");
    Ok(())
}

async fn migrate(settings: Settings) -> CommandResult {
    let _telemetry = init_telemetry("credit-suite", settings.log_format)?;
    let migrated = credit_suite::migrate(&settings).await?;
    println!("migrated stores: {}", migrated.join(", "));
    Ok(())
}

/// Resolves on SIGTERM (Kubernetes) or Ctrl-C (a terminal).
async fn shutdown_signal() {
    let interrupt = async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = interrupt => {}
        () = terminate => {}
    }
}
