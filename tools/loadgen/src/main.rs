//! `credit-loadgen`: the Authorize benchmark (issue #4), and with `--bench collections` the
//! collections benchmark of issue #19 (see [`collections`]).
//!
//! In one run: the suite on PostgreSQL + Redis, served in this process, and a baseline that
//! keeps exposure in a PostgreSQL row under `SELECT … FOR UPDATE`, both driven by the same
//! open-loop generator in two scenarios (one caller; 64 callers on one customer). Prints a
//! markdown table and exits non-zero when any run approved beyond a limit.

/// mimalloc instead of glibc's malloc: the request path allocates a great deal (protobuf,
/// HTTP/2, JSON documents) across threads, and glibc's allocator was about a tenth of the CPU
/// in a profile under load.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

mod baseline;
mod certificates;
mod collections;
mod load;
mod machine;
mod world;

use std::time::Duration;

use anyhow::{Context, Result};
use clap::Parser;
use credit_proto::v1::limit_service_client::LimitServiceClient;

use crate::load::{Plan, Report};
use crate::world::{BenchDatabase, Suite};

/// Order amounts cycle through 100.00 … 160.00 CNY.
pub fn amount_minor(index: u64) -> i64 {
    10_000 + i64::try_from(index % 7).unwrap_or(0) * 1_000
}

#[derive(Debug, Parser)]
#[command(
    name = "credit-loadgen",
    about = "Open-loop benchmark of LimitService.Authorize (PostgreSQL + Redis) against a SELECT … FOR UPDATE baseline"
)]
struct Args {
    /// Admin URL of the PostgreSQL server; a database credit_bench_<random> is created on it
    /// and dropped at the end.
    #[arg(
        long,
        env = "CREDIT_BENCH_DATABASE_URL",
        default_value = "postgres://postgres@127.0.0.1:5432/postgres"
    )]
    database_url: String,
    /// Redis; the run uses a key prefix of its own and deletes its keys at the end.
    #[arg(
        long,
        env = "CREDIT_BENCH_REDIS_URL",
        default_value = "redis://127.0.0.1:6379/0"
    )]
    redis_url: String,
    /// Length of each measured run, seconds.
    #[arg(long, default_value_t = 10)]
    duration: u64,
    /// Length of the unmeasured warm-up before each system's runs, seconds.
    #[arg(long, default_value_t = 3)]
    warmup: u64,
    /// Offered rate of scenario A (one caller), requests per second.
    #[arg(long, default_value_t = 300)]
    single_rate: u32,
    /// Offered rate of scenario B (many callers on one customer), requests per second.
    #[arg(long, default_value_t = 5000)]
    contended_rate: u32,
    /// Callers of scenario B.
    #[arg(long, default_value_t = 64)]
    contended_callers: usize,
    /// Limit of scenario B's customer, CNY: orders of 100–160 CNY exhaust it part-way.
    #[arg(long, default_value_t = 300_000)]
    contended_limit: i64,
    /// gRPC connections the callers share (an order-entry system keeps a few open; one HTTP/2
    /// connection is handled by one task on each side, so one alone caps throughput at what
    /// one core frames).
    #[arg(long, default_value_t = 4)]
    grpc_connections: usize,
    /// Connections of each of the suite's five database pools.
    #[arg(long, default_value_t = 12)]
    suite_connections: u32,
    /// Connections of the baseline's pool (one per caller up to this).
    #[arg(long, default_value_t = 64)]
    baseline_connections: u32,
    /// Run only the suite or only the baseline.
    #[arg(long, value_enum, default_value_t = Only::Both)]
    only: Only,
    /// Serve the suite over TLS (a CA and server certificate made for the run) and call it
    /// over https, to measure what TLS costs Authorize.
    #[arg(long)]
    tls: bool,
    /// Which benchmark: Authorize (issue #4) or collections (issue #19).
    #[arg(long, value_enum, default_value_t = Bench::Authorize)]
    bench: Bench,
    /// Collections: open invoices of the small customer.
    #[arg(long, default_value_t = 100)]
    small: u64,
    /// Collections: open invoices of the large customer.
    #[arg(long, default_value_t = 20_000)]
    large: u64,
    /// Collections: callers posting invoices on one customer.
    #[arg(long, default_value_t = 8)]
    invoice_callers: usize,
    /// Collections: invoices posted in the measured PostInvoice run of each customer.
    #[arg(long, default_value_t = 2_000)]
    invoices: u64,
    /// Collections: payments recorded (one caller) on each customer.
    #[arg(long, default_value_t = 300)]
    payments: u64,
    /// Collections: aging pages read (one caller) on each customer.
    #[arg(long, default_value_t = 500)]
    aging_calls: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum Bench {
    Authorize,
    Collections,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum Only {
    Both,
    Suite,
    Baseline,
}

/// A measured run with the check of its customer's ledger afterwards.
#[derive(Debug)]
struct Row {
    system: &'static str,
    scenario: &'static str,
    report: Report,
    limit_minor: i64,
    /// Approved holds in the system's ledger afterwards.
    ledger_minor: i64,
}

impl Row {
    fn within_limit(&self) -> bool {
        self.ledger_minor <= self.limit_minor
    }

    /// The ledger holds exactly what the generator saw approved (only checkable without
    /// errors: an errored call may or may not have reserved).
    fn ledger_matches(&self) -> bool {
        self.report.errors > 0 || self.ledger_minor == self.report.approved_minor
    }
}

const HUGE_LIMIT_MINOR: i64 = 10_000_000_000; // 100,000,000.00 CNY
/// The secured customer's own limit, 1,000.00 CNY: its orders use the security beyond it.
const SECURED_LIMIT_MINOR: i64 = 100_000;

fn main() -> Result<()> {
    let args = Args::parse();
    // The servers' runtime: the suite runs in this process.
    let runtime = credit_runtime::server::runtime().context("building the tokio runtime")?;
    if args.bench == Bench::Collections {
        let failed = runtime.block_on(run_collections(&args))?;
        if failed > 0 {
            eprintln!("FAILED: {failed} call(s) were refused or failed");
            std::process::exit(2);
        }
        return Ok(());
    }
    let rows = runtime.block_on(run(&args))?;
    let violations = print(&args, &rows);
    if violations > 0 {
        eprintln!("FAILED: {violations} run(s) approved beyond a limit or lost an approval");
        std::process::exit(2);
    }
    Ok(())
}

async fn run(args: &Args) -> Result<Vec<Row>> {
    let database = BenchDatabase::create(&args.database_url).await?;
    let prefix = format!("bench:{}:", database.name);
    eprintln!(
        "== database {} on {}, Redis prefix {prefix}",
        database.name, args.database_url
    );
    let result = measure(args, &database, &prefix).await;
    if let Err(error) = database.drop_database().await {
        eprintln!("warning: could not drop {}: {error:#}", database.name);
    }
    match world::delete_redis_prefix(&args.redis_url, &prefix).await {
        Ok(deleted) => eprintln!("== cleaned up: database dropped, {deleted} Redis keys deleted"),
        Err(error) => eprintln!("warning: could not delete Redis keys {prefix}*: {error:#}"),
    }
    result
}

/// The collections benchmark in a database and Redis prefix of its own, cleaned up after.
async fn run_collections(args: &Args) -> Result<u64> {
    let database = BenchDatabase::create(&args.database_url).await?;
    let prefix = format!("bench:{}:", database.name);
    eprintln!(
        "== database {} on {}, Redis prefix {prefix}",
        database.name, args.database_url
    );
    let settings = collections::CollectionsArgs {
        small: args.small,
        large: args.large,
        callers: args.invoice_callers,
        aging_calls: args.aging_calls,
        payments: args.payments,
        invoices: args.invoices,
        grpc_connections: args.grpc_connections,
        suite_connections: args.suite_connections,
    };
    let result = collections::run(&settings, &database, &args.redis_url, &prefix).await;
    if let Err(error) = database.drop_database().await {
        eprintln!("warning: could not drop {}: {error:#}", database.name);
    }
    if let Err(error) = world::delete_redis_prefix(&args.redis_url, &prefix).await {
        eprintln!("warning: could not delete Redis keys {prefix}*: {error:#}");
    }
    result
}

fn plan(rate: u32, callers: usize, seconds: u64) -> Plan {
    Plan {
        rate,
        duration: Duration::from_secs(seconds),
        callers,
    }
}

async fn measure(args: &Args, database: &BenchDatabase, prefix: &str) -> Result<Vec<Row>> {
    let mut rows = Vec::new();
    let warm_rate = (args.contended_rate / 4).max(args.single_rate);
    let contended_limit_minor = args.contended_limit * 100;

    if args.only != Only::Baseline {
        let suite = Suite::start(
            &database.url,
            &args.redis_url,
            prefix,
            args.suite_connections,
            args.tls,
        )
        .await?;
        eprintln!(
            "== suite serving on {}{}",
            suite.addr,
            if args.tls { " over TLS" } else { "" }
        );
        let tokens = suite.tokens().await?;
        let orders_channel = suite.connections(args.grpc_connections);
        let warm = world::prepare_customer(&suite, &tokens, 1, HUGE_LIMIT_MINOR).await?;
        let single = world::prepare_customer(&suite, &tokens, 2, HUGE_LIMIT_MINOR).await?;
        let contended = world::prepare_customer(&suite, &tokens, 3, contended_limit_minor).await?;
        // A small limit and security far beyond it: every order is decided on the capacity.
        let secured = world::prepare_customer(&suite, &tokens, 4, SECURED_LIMIT_MINOR).await?;
        world::secure_customer(&suite, &tokens, &secured, 4, HUGE_LIMIT_MINOR).await?;
        let target = |customer_id: &str, run: &str| world::Authorize {
            client: LimitServiceClient::new(orders_channel.clone()),
            token: tokens.order_entry.clone(),
            customer_id: customer_id.to_owned(),
            run: run.to_owned(),
        };

        database.settle().await?;
        eprintln!("== suite: warm-up {} s", args.warmup);
        let warmup = load::run(
            plan(warm_rate, args.contended_callers, args.warmup),
            target(&warm, "warm"),
        )
        .await?;
        eprintln!("   {}", summary(&warmup));

        for (scenario, customer_id, rate, callers) in [
            ("A: one caller", &single, args.single_rate, 1),
            (
                "A2: one caller, secured customer",
                &secured,
                args.single_rate,
                1,
            ),
            (
                "B: many callers, one customer",
                &contended,
                args.contended_rate,
                args.contended_callers,
            ),
        ] {
            eprintln!("== suite: {scenario}");
            let report = load::run(
                plan(rate, callers, args.duration),
                target(customer_id, scenario),
            )
            .await?;
            eprintln!("   {}", summary(&report));
            let position = world::position(&suite, &tokens, customer_id).await?;
            eprintln!("   ledger: {position:?}");
            rows.push(Row {
                system: "suite (Redis + PostgreSQL)",
                scenario,
                report,
                limit_minor: position.limit_minor,
                ledger_minor: position.open_holds_minor.max(position.exposure_minor),
            });
        }
        suite.stop().await?;
    }

    if args.only != Only::Suite {
        let connections = args
            .baseline_connections
            .min(u32::try_from(args.contended_callers).unwrap_or(u32::MAX))
            .max(1);
        let pool = baseline::connect(&database.url, connections).await?;
        baseline::create_schema(&pool).await?;
        for (customer_id, limit_minor) in [
            ("warm", HUGE_LIMIT_MINOR),
            ("single", HUGE_LIMIT_MINOR),
            ("contended", contended_limit_minor),
        ] {
            baseline::add_customer(&pool, customer_id, limit_minor).await?;
        }
        let target = |customer_id: &str, run: &str| baseline::Baseline {
            pool: pool.clone(),
            customer_id: customer_id.to_owned(),
            run: run.to_owned(),
        };
        database.settle().await?;
        eprintln!(
            "== baseline ({connections} connections): warm-up {} s",
            args.warmup
        );
        let warmup = load::run(
            plan(warm_rate, args.contended_callers, args.warmup),
            target("warm", "warm"),
        )
        .await?;
        eprintln!("   {}", summary(&warmup));
        for (scenario, customer_id, rate, callers) in [
            ("A: one caller", "single", args.single_rate, 1),
            (
                "B: many callers, one customer",
                "contended",
                args.contended_rate,
                args.contended_callers,
            ),
        ] {
            eprintln!("== baseline: {scenario}");
            let report = load::run(
                plan(rate, callers, args.duration),
                target(customer_id, scenario),
            )
            .await?;
            eprintln!("   {}", summary(&report));
            let position = baseline::position(&pool, customer_id).await?;
            eprintln!("   ledger: {position:?}");
            rows.push(Row {
                system: "baseline (PostgreSQL row, FOR UPDATE)",
                scenario,
                report,
                limit_minor: position.limit_minor,
                ledger_minor: position.holds_minor.max(position.exposure_minor),
            });
        }
        pool.close().await;
    }
    Ok(rows)
}

fn ms(micros: u64) -> String {
    format!("{:.2}", micros as f64 / 1000.0)
}

fn cny(minor: i64) -> String {
    format!("{}.{:02}", minor / 100, minor % 100)
}

fn summary(report: &Report) -> String {
    format!(
        "offered {}/s, accepted {:.0}/s, {} answered ({} approved, {} referred, {} declined), {} errors{}, backlog {}, p50 {} ms, p99 {} ms, max {} ms",
        report.plan.rate,
        report.accepted_rate(),
        report.answered(),
        report.approved,
        report.referred,
        report.declined,
        report.errors,
        report
            .first_error
            .as_deref()
            .map(|error| format!(" (first: {error})"))
            .unwrap_or_default(),
        report.released - report.started,
        ms(report.latency.value_at_quantile(0.5)),
        ms(report.latency.value_at_quantile(0.99)),
        ms(report.latency.max()),
    )
}

/// Prints the results and the targets; returns the number of runs that broke an invariant.
fn print(args: &Args, rows: &[Row]) -> usize {
    println!();
    println!(
        "Open loop, {} s per run (after a {} s warm-up), latency from the scheduled start (coordinated omission corrected), ms.",
        args.duration, args.warmup
    );
    println!();
    println!(
        "| system | scenario | callers | offered/s | accepted/s | answered | approved / referred / declined | errors | backlog | p50 | p90 | p99 | p99.9 | max | p50 service | machine CPU µs / answer | steal % | approved holds / limit (CNY) | within limit |"
    );
    println!(
        "|---|---|---:|---:|---:|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|---|"
    );
    let mut violations = 0;
    for row in rows {
        let report = &row.report;
        let latency = &report.latency;
        let ok = row.within_limit() && row.ledger_matches();
        if !ok {
            violations += 1;
        }
        println!(
            "| {} | {} | {} | {} | {:.0} | {} | {} / {} / {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} / {} | {} |",
            row.system,
            row.scenario,
            report.plan.callers,
            report.plan.rate,
            report.accepted_rate(),
            report.answered(),
            report.approved,
            report.referred,
            report.declined,
            report.errors,
            report.released - report.started,
            ms(latency.value_at_quantile(0.5)),
            ms(latency.value_at_quantile(0.9)),
            ms(latency.value_at_quantile(0.99)),
            ms(latency.value_at_quantile(0.999)),
            ms(latency.max()),
            ms(report.service.value_at_quantile(0.5)),
            report.machine.map_or_else(
                || "n/a".to_owned(),
                |used| format!("{:.0}", used.busy_micros_per_answer)
            ),
            report.machine.map_or_else(
                || "n/a".to_owned(),
                |used| format!("{:.1}", used.steal_percent)
            ),
            cny(row.ledger_minor),
            cny(row.limit_minor),
            match (row.within_limit(), row.ledger_matches()) {
                (true, true) => "yes (ledger = approvals seen)",
                (true, false) => "yes, but ledger ≠ approvals seen",
                (false, _) => "NO",
            },
        );
    }
    println!();
    let find = |system: &str, scenario: &str| {
        rows.iter()
            .find(|row| row.system.starts_with(system) && row.scenario.starts_with(scenario))
    };
    if let Some(single) = find("suite", "A") {
        let p50 = single.report.latency.value_at_quantile(0.5);
        let p99 = single.report.latency.value_at_quantile(0.99);
        println!(
            "- target one caller p50 <= 1.5 ms: {} ms → {}",
            ms(p50),
            met(p50 <= 1_500)
        );
        println!(
            "- target one caller p99 <= 5 ms: {} ms → {}",
            ms(p99),
            met(p99 <= 5_000)
        );
    }
    if let (Some(suite), Some(baseline)) = (find("suite", "B"), find("baseline", "B")) {
        let ratio = suite.report.accepted_rate() / baseline.report.accepted_rate().max(1e-9);
        println!(
            "- target {} callers on one customer >= 5x baseline throughput: {:.0}/s vs {:.0}/s = {ratio:.1}x → {}",
            suite.report.plan.callers,
            suite.report.accepted_rate(),
            baseline.report.accepted_rate(),
            met(ratio >= 5.0)
        );
    }
    println!(
        "- target no approval beyond a limit in any run: {}",
        met(rows.iter().all(Row::within_limit))
    );
    violations
}

fn met(ok: bool) -> &'static str {
    if ok { "met" } else { "NOT met" }
}
