//! `credit-suite demo`: a scripted order-to-cash story against a running suite, printed step
//! by step. A customer is registered and rated, gets a limit through four eyes, orders are
//! approved, referred (and released) and declined, invoiced and partly paid; an overdue
//! invoice blocks new credit, dunning is attempted, and paying the rest unblocks it.
//!
//! **Four eyes.** Limit approval and referral release refuse self-approval (even the bootstrap
//! ADMIN is never its own checker), so the story needs at least two people. [`DemoCast`] holds
//! the tokens of the cast: either issued for the run straight into the suite's identity store
//! (as `credit-suite token create` does: "demo-analyst" makes, "demo-manager" checks,
//! "demo-erp" enters and bills orders, "demo-collector" chases, "demo-finance" verifies and
//! "demo-gm" decides an order beyond the credit terms) and revoked when it ends, or two tokens
//! given by the caller (a maker, typically the ADMIN token, and a checker holding
//! CREDIT_MANAGER with enough authority; a step of an approval chain that needs somebody else
//! is then left waiting).
//!
//! Limits and rating apply the other services' events a moment later: every step that depends
//! on one polls with a short pause until a deadline, never sleeps blindly. Names, ids and keys
//! carry a run id, so the demo can run any number of times against the same suite.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::str::FromStr;
use std::time::{Duration, Instant};

use chrono::{Days, NaiveDate, Utc};
use credit_core::Role;
use credit_core::error::ErrorChain;
use credit_proto::time::to_date;
use credit_proto::v1 as pb;
use credit_proto::v1::collections_service_client::CollectionsServiceClient;
use credit_proto::v1::intake_service_client::IntakeServiceClient;
use credit_proto::v1::limit_service_client::LimitServiceClient;
use credit_proto::v1::rating_service_client::RatingServiceClient;
use credit_runtime::config::{Backend, ConfigError, Settings};
use credit_runtime::identity::{self, IdentityError, NewPrincipal, TokenStore};
use credit_runtime::tls::ClientTls;
use rust_decimal::Decimal;
use secrecy::{ExposeSecret, SecretString};
use tonic::metadata::{Ascii, MetadataValue};
use tonic::service::interceptor::InterceptedService;
use tonic::transport::Channel;

use crate::import::{ImportError, client_tls_settings, code_name, resolve_target};
use crate::{ADMIN_TOKEN_FILE, StartupError};

mod cash;
mod credit_file;
mod governance;
mod orders;

/// Currency of every amount in the story (and of the issued checker's authority).
/// The checklist the demo investigates its customer on (published again each run, as a new
/// version).
const DEMO_CHECKLIST: &str = "demo-enterprise";
pub const DEMO_CURRENCY: &str = "CNY";
/// Approval authority of the issued "demo-manager": covers any limit the story proposes.
pub const DEMO_MANAGER_AUTHORITY: &str = "100000000";
/// How long a step waits for another service's event before it gives up.
pub const EVENT_DEADLINE: Duration = Duration::from_secs(30);
const POLL_INTERVAL: Duration = Duration::from_millis(50);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Days past due of the invoice that goes overdue: beyond every grade's tolerance (at most 30).
const OVERDUE_DAYS: u64 = 45;

/// Exit code when the story completed.
pub const EXIT_COMPLETED: u8 = 0;
/// Exit code when a step failed or the demo could not start.
pub const EXIT_FAILED: u8 = 1;

/// `credit-suite demo`: the arguments, as parsed by clap.
#[derive(Debug, Clone, clap::Args)]
pub struct DemoArgs {
    /// Address of the suite, http:// or https:// [default: http:// (https:// with
    /// CREDIT_TLS_CERT_FILE) + CREDIT_LISTEN_ADDR, http://127.0.0.1:50051].
    #[arg(long, visible_alias = "addr", env = "CREDIT_ADDR")]
    pub endpoint: Option<String>,
    /// The checker's token (CREDIT_MANAGER with approval authority covering the proposed limit
    /// and the referred order). With it, the maker's token (--token, CREDIT_TOKEN or the admin
    /// token) does everything else, and nothing is issued.
    #[arg(long, env = "CREDIT_CHECKER_TOKEN", hide_env_values = true)]
    pub checker_token: Option<String>,
    /// The maker's token, with --checker-token [default: CREDIT_TOKEN, else --token-file, else
    /// CREDIT_DATA_DIR/admin.token].
    #[arg(long, env = "CREDIT_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
    /// File holding the maker's token, with --checker-token.
    #[arg(long)]
    pub token_file: Option<PathBuf>,
}

/// Why the story stopped. One line (with its causes), never a token.
#[derive(Debug, thiserror::Error)]
pub enum DemoError {
    #[error(transparent)]
    Usage(#[from] ConfigError),
    #[error(transparent)]
    Target(#[from] ImportError),
    #[error(transparent)]
    Startup(#[from] StartupError),
    #[error("cannot connect to {endpoint}")]
    Connect {
        endpoint: String,
        #[source]
        source: tonic::transport::Error,
    },
    #[error(
        "no suite data in {data_dir} (no {ADMIN_TOKEN_FILE}): run the demo with the suite's CREDIT_DATA_DIR, or pass --checker-token"
    )]
    NoSuiteData { data_dir: String },
    #[error("cannot issue or revoke the demo's principals in the identity store")]
    Identity(#[source] IdentityError),
    #[error("step {step} ({what}): {rpc} failed: {code}: {message}")]
    Call {
        step: u32,
        what: &'static str,
        rpc: &'static str,
        code: &'static str,
        message: String,
    },
    #[error("step {step} ({what}): {detail}")]
    Unexpected {
        step: u32,
        what: &'static str,
        detail: String,
    },
    #[error(
        "step {step} ({what}): waited {seconds} s for {waiting_for}, in vain; last seen: {last}"
    )]
    Timeout {
        step: u32,
        what: &'static str,
        seconds: u64,
        waiting_for: &'static str,
        last: String,
    },
    #[error("cannot write the story")]
    Output(#[from] std::io::Error),
    #[error("cannot start the async runtime")]
    Runtime(#[source] std::io::Error),
}

/// Someone in the story: a name for the printout and a bearer token.
#[derive(Debug, Clone)]
pub struct Actor {
    pub name: String,
    token: SecretString,
}

impl Actor {
    pub fn new(name: impl Into<String>, token: SecretString) -> Self {
        Self {
            name: name.into(),
            token,
        }
    }
}

/// Who plays which part. The checker is never the maker: four eyes are kept.
#[derive(Debug, Clone)]
pub struct DemoCast {
    /// Registers, collects the credit file, rates, proposes and requests the limit.
    pub analyst: Actor,
    /// Activates the customer, approves the limit, releases and rejects referrals.
    pub manager: Actor,
    /// Authorizes orders, posts invoices and payments (the ERP).
    pub order_entry: Actor,
    /// Detects overdue invoices and runs dunning.
    pub collector: Actor,
    /// Finance: verifies the figures of an order beyond the credit terms (step 7.2). Only in
    /// a cast issued for the run.
    pub finance: Option<Actor>,
    /// The general manager: decides whether to keep trading (step 7.2). Only in a cast issued
    /// for the run.
    pub general_manager: Option<Actor>,
    /// Principal ids issued for this run, revoked by [`DemoCast::revoke`].
    issued: Vec<String>,
}

impl DemoCast {
    /// A maker's token (usually the ADMIN token) for everything but the checker's decisions,
    /// and a checker's token (CREDIT_MANAGER with authority) for those.
    pub fn from_tokens(maker: SecretString, checker: SecretString) -> Self {
        let maker_actor = Actor::new("the --token holder", maker);
        Self {
            analyst: maker_actor.clone(),
            manager: Actor::new("the --checker-token holder", checker),
            order_entry: maker_actor.clone(),
            collector: maker_actor,
            finance: None,
            general_manager: None,
            issued: Vec::new(),
        }
    }

    /// Issues the four demo principals straight into the identity store, as `credit-suite
    /// token create` does. The tokens live in memory only; [`DemoCast::revoke`] ends them, and
    /// they expire within the hour in any case.
    pub async fn issue(store: &dyn TokenStore) -> Result<Self, DemoError> {
        let authority = credit_core::Money::parse(DEMO_MANAGER_AUTHORITY, DEMO_CURRENCY)
            .map_err(|error| ConfigError::new("demo-manager authority", error.to_string()))?;
        let mut issued = Vec::new();
        let mut actors = Vec::new();
        for (name, role, approval_authority) in [
            ("demo-analyst", Role::Analyst, None),
            ("demo-manager", Role::CreditManager, Some(authority)),
            ("demo-erp", Role::OrderEntry, None),
            ("demo-collector", Role::Collector, None),
            ("demo-finance", Role::Finance, None),
            ("demo-gm", Role::GeneralManager, Some(authority)),
        ] {
            // An hour is ample for the demo; should it stop before revoking, its tokens
            // (the manager's carries authority) do not outlive it by long.
            let principal = NewPrincipal::new(name, [role])
                .with_authority(approval_authority)
                .expiring_at(Some(Utc::now() + chrono::Duration::hours(1)));
            let token = identity::issue_token(store, &principal)
                .await
                .map_err(DemoError::Identity)?;
            issued.push(token.principal_id);
            actors.push(Actor::new(name, token.token));
        }
        let mut actors = actors.into_iter();
        let mut next = || {
            actors.next().ok_or_else(|| DemoError::Unexpected {
                step: 0,
                what: "cast",
                detail: "a principal was not issued".into(),
            })
        };
        Ok(Self {
            analyst: next()?,
            manager: next()?,
            order_entry: next()?,
            collector: next()?,
            finance: Some(next()?),
            general_manager: Some(next()?),
            issued,
        })
    }

    /// Revokes the principals [`DemoCast::issue`] made (a no-op for given tokens).
    pub async fn revoke(&self, store: &dyn TokenStore) -> Result<(), DemoError> {
        for principal_id in &self.issued {
            store
                .revoke(principal_id, Utc::now())
                .await
                .map_err(DemoError::Identity)?;
        }
        Ok(())
    }
}

/// One order and what became of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrderOutcome {
    pub order_id: String,
    pub amount: Decimal,
    pub decision: pb::AuthorizationDecision,
    /// Reason codes, in the order the suite gave them.
    pub reasons: Vec<String>,
    /// A referral released by the checker (the order got its hold).
    pub released: bool,
}

/// What dunning did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DunningOutcome {
    /// RunDunning answered UNIMPLEMENTED: this version has no dunning yet.
    NotAvailable,
    /// RunDunning ran and created this many actions.
    Ran { actions: usize },
}

/// The figures of a completed story.
#[derive(Debug, Clone)]
pub struct DemoSummary {
    pub run_id: String,
    pub customer_id: String,
    pub grade: String,
    pub pd: String,
    pub currency: String,
    pub limit: Decimal,
    /// Within the limit, over it within the band (then released), far beyond it (declined, or
    /// referred to step 7.2 where the customer's grade says so).
    pub orders: Vec<OrderOutcome>,
    /// Oldest overdue days announced by overdue detection.
    pub oldest_overdue_days: i32,
    /// The order tried while the customer was blocked.
    pub blocked_order: OrderOutcome,
    pub dunning: DunningOutcome,
    /// The order tried after everything was paid.
    pub final_order: OrderOutcome,
    pub open_holds: Decimal,
    pub open_receivables: Decimal,
    pub exposure: Decimal,
    pub available: Option<Decimal>,
    /// What the system released of the referrals the cast could not decide (a cast of two
    /// given tokens has nobody for finance's or the general manager's step) once the payment
    /// cleared their cause; nothing with a cast issued for the run.
    pub released_by_system: Decimal,
}

/// Puts a bearer token on every call of a client.
#[derive(Debug, Clone)]
pub struct Bearer(MetadataValue<Ascii>);

impl tonic::service::Interceptor for Bearer {
    fn call(
        &mut self,
        mut request: tonic::Request<()>,
    ) -> Result<tonic::Request<()>, tonic::Status> {
        request
            .metadata_mut()
            .insert("authorization", self.0.clone());
        Ok(request)
    }
}

type Authed = InterceptedService<Channel, Bearer>;

fn bearer(actor: &Actor) -> Result<Bearer, DemoError> {
    format!("Bearer {}", actor.token.expose_secret())
        .parse()
        .map(Bearer)
        .map_err(|_| {
            DemoError::Usage(ConfigError::new(
                format!("the token of {}", actor.name),
                "holds characters that cannot be sent in a header",
            ))
        })
}

/// Connects to `endpoint` (`http://host:port`, or `https://` with `tls`), failing fast when
/// nothing answers there.
pub async fn connect(endpoint: &str, tls: &ClientTls) -> Result<Channel, DemoError> {
    let parsed = tls
        .endpoint("--endpoint", endpoint)?
        .connect_timeout(CONNECT_TIMEOUT)
        .tcp_nodelay(true);
    parsed.connect().await.map_err(|source| DemoError::Connect {
        endpoint: endpoint.to_owned(),
        source,
    })
}

/// Runs the story on `channel` with `cast`, printing each step to `out`.
pub async fn run(
    channel: Channel,
    cast: &DemoCast,
    out: &mut impl Write,
) -> Result<DemoSummary, DemoError> {
    let now = Utc::now();
    let run_id = now.format("%Y%m%d-%H%M%S%3f").to_string();
    let seed = u64::try_from(now.timestamp_millis()).unwrap_or_default() % 1_000_000_000;
    let mut story = Story {
        out,
        step: 0,
        what: "",
        run_id: run_id.clone(),
        today: now.date_naive(),
        analyst_intake: IntakeServiceClient::with_interceptor(
            channel.clone(),
            bearer(&cast.analyst)?,
        ),
        manager_intake: IntakeServiceClient::with_interceptor(
            channel.clone(),
            bearer(&cast.manager)?,
        ),
        rating: RatingServiceClient::with_interceptor(channel.clone(), bearer(&cast.analyst)?),
        maker: LimitServiceClient::with_interceptor(channel.clone(), bearer(&cast.analyst)?),
        checker: LimitServiceClient::with_interceptor(channel.clone(), bearer(&cast.manager)?),
        orders: LimitServiceClient::with_interceptor(channel.clone(), bearer(&cast.order_entry)?),
        billing: CollectionsServiceClient::with_interceptor(
            channel.clone(),
            bearer(&cast.order_entry)?,
        ),
        collector: CollectionsServiceClient::with_interceptor(
            channel.clone(),
            bearer(&cast.collector)?,
        ),
        channel,
        cast,
    };
    writeln!(
        story.out,
        "credit-suite demo, run {run_id}: order to cash in {DEMO_CURRENCY}"
    )?;
    writeln!(
        story.out,
        "cast: maker {}; checker {}; orders and billing {}; collections {}",
        cast.analyst.name, cast.manager.name, cast.order_entry.name, cast.collector.name
    )?;
    story.tell(seed).await
}

struct Story<'a, W: Write> {
    out: &'a mut W,
    step: u32,
    what: &'static str,
    run_id: String,
    today: NaiveDate,
    cast: &'a DemoCast,
    analyst_intake: IntakeServiceClient<Authed>,
    manager_intake: IntakeServiceClient<Authed>,
    rating: RatingServiceClient<Authed>,
    maker: LimitServiceClient<Authed>,
    checker: LimitServiceClient<Authed>,
    orders: LimitServiceClient<Authed>,
    billing: CollectionsServiceClient<Authed>,
    collector: CollectionsServiceClient<Authed>,
    /// For the clients of the cast's other people (the approval desk of step 7.2).
    channel: Channel,
}

/// Open holds, open receivables, exposure, available, blocks.
#[derive(Debug, Clone, PartialEq)]
struct Position {
    holds: Decimal,
    receivables: Decimal,
    exposure: Decimal,
    available: Option<Decimal>,
    oldest_overdue_days: i32,
    blocks: Vec<String>,
    /// The grade limits decides with (rating's RatingChanged).
    grade: String,
}

impl<W: Write> Story<'_, W> {
    /// Starts step `what`: the next number, printed as `NN. what`.
    fn begin(&mut self, what: &'static str) {
        self.step += 1;
        self.what = what;
    }

    fn line(&mut self, text: &str) -> Result<(), DemoError> {
        writeln!(self.out, "{:>2}. {:<22} {text}", self.step, self.what)?;
        Ok(())
    }

    fn detail(&mut self, text: &str) -> Result<(), DemoError> {
        writeln!(self.out, "    {:<22} {text}", "")?;
        Ok(())
    }

    fn failed<T>(
        &self,
        rpc: &'static str,
        result: Result<tonic::Response<T>, tonic::Status>,
    ) -> Result<T, DemoError> {
        result
            .map(tonic::Response::into_inner)
            .map_err(|status| self.call_error(rpc, &status))
    }

    fn call_error(&self, rpc: &'static str, status: &tonic::Status) -> DemoError {
        DemoError::Call {
            step: self.step,
            what: self.what,
            rpc,
            code: code_name(status.code()),
            message: status.message().to_owned(),
        }
    }

    fn unexpected(&self, detail: impl Into<String>) -> DemoError {
        DemoError::Unexpected {
            step: self.step,
            what: self.what,
            detail: detail.into(),
        }
    }

    /// Sleeps a moment before the next poll, or gives up once `deadline` has passed.
    async fn pause(
        &self,
        deadline: Instant,
        waiting_for: &'static str,
        last: impl FnOnce() -> String,
    ) -> Result<(), DemoError> {
        if Instant::now() >= deadline {
            return Err(DemoError::Timeout {
                step: self.step,
                what: self.what,
                seconds: EVENT_DEADLINE.as_secs(),
                waiting_for,
                last: last(),
            });
        }
        tokio::time::sleep(POLL_INTERVAL).await;
        Ok(())
    }

    fn money(&self, amount: Decimal) -> Option<pb::Money> {
        Some(pb::Money {
            amount: format!("{:.2}", amount.round_dp(2)),
            currency: DEMO_CURRENCY.into(),
        })
    }

    fn amount_of(
        &self,
        field: &'static str,
        money: Option<&pb::Money>,
    ) -> Result<Decimal, DemoError> {
        let money = money.ok_or_else(|| self.unexpected(format!("the answer has no {field}")))?;
        Decimal::from_str(&money.amount)
            .map_err(|_| self.unexpected(format!("{field} '{}' is not a decimal", money.amount)))
    }

    fn date(&self, days_ago: u64) -> pb::Date {
        to_date(self.today - Days::new(days_ago))
    }

    fn date_ahead(&self, days: u64) -> pb::Date {
        to_date(self.today + Days::new(days))
    }

    fn key(&self, what: &str) -> String {
        format!("demo-{}-{what}", self.run_id)
    }
}

/// An authorized order with the hold it got.
#[derive(Debug, Clone)]
struct Order {
    hold_id: String,
    outcome: OrderOutcome,
}

/// `percent` % of `amount`, to the cent.
fn share(amount: Decimal, percent: i64) -> Decimal {
    (amount * Decimal::new(percent, 2)).round_dp(2)
}

fn shown_date(date: Option<&pb::Date>) -> String {
    date.map_or_else(
        || "-".into(),
        |date| format!("{:04}-{:02}-{:02}", date.year, date.month, date.day),
    )
}

fn customer_scope(customer_id: &str) -> Option<pb::LimitScope> {
    Some(pb::LimitScope {
        scope: Some(pb::limit_scope::Scope::CustomerId(customer_id.into())),
    })
}

fn show(money: Option<&pb::Money>) -> String {
    money.map_or_else(
        || "none".into(),
        |money| format!("{} {}", money.amount, money.currency),
    )
}

fn optional(amount: Option<Decimal>) -> String {
    amount.map_or_else(|| "none".into(), |amount| amount.to_string())
}

/// "0.0025" as "0.25 %".
fn percent(fraction: &str) -> String {
    Decimal::from_str(fraction).map_or_else(
        |_| fraction.to_owned(),
        |value| format!("{} %", (value * Decimal::ONE_HUNDRED).normalize()),
    )
}

fn reason_codes(reasons: &[pb::Reason]) -> Vec<String> {
    reasons.iter().map(|reason| reason.code.clone()).collect()
}

/// A reason's figures, `key value` sorted by key, or its message when it has none.
fn figures(reason: &pb::Reason) -> String {
    if reason.metadata.is_empty() {
        return reason.message.clone();
    }
    let mut pairs: Vec<(&String, &String)> = reason.metadata.iter().collect();
    pairs.sort();
    pairs
        .iter()
        .map(|(key, value)| format!("{key} {value}"))
        .collect::<Vec<_>>()
        .join(", ")
}

fn decision_name(decision: pb::AuthorizationDecision) -> &'static str {
    decision
        .as_str_name()
        .trim_start_matches("AUTHORIZATION_DECISION_")
}

fn customer_status(status: i32) -> &'static str {
    pb::CustomerStatus::try_from(status)
        .map(|status| status.as_str_name().trim_start_matches("CUSTOMER_STATUS_"))
        .unwrap_or("UNKNOWN")
}

fn approval_status(status: i32) -> &'static str {
    pb::ApprovalStatus::try_from(status)
        .map(|status| status.as_str_name().trim_start_matches("APPROVAL_STATUS_"))
        .unwrap_or("UNKNOWN")
}

/// `host:port` gets `http://`.
fn normalize_endpoint(endpoint: &str) -> Result<String, ConfigError> {
    crate::import::normalize_url("--endpoint (CREDIT_ADDR)", endpoint)
}

/// Runs `credit-suite demo`: the story on stdout; exit code 0 when it completed, else one line
/// `credit-suite: error: ...` on stderr and exit code 1.
pub fn run_command(args: DemoArgs, config_file: Option<&Path>) -> ExitCode {
    let outcome = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(DemoError::Runtime)
        .and_then(|runtime| runtime.block_on(run_from_args(args, config_file)));
    match outcome {
        Ok(_) => ExitCode::from(EXIT_COMPLETED),
        Err(error) => {
            eprintln!("credit-suite: error: demo: {}", ErrorChain(&error));
            ExitCode::from(EXIT_FAILED)
        }
    }
}

async fn run_from_args(
    args: DemoArgs,
    config_file: Option<&Path>,
) -> Result<DemoSummary, DemoError> {
    let mut stdout = std::io::stdout().lock();
    if let Some(checker) = args.checker_token.filter(|token| !token.trim().is_empty()) {
        // Two tokens given: nothing is issued.
        let target = match args.token.filter(|token| !token.trim().is_empty()) {
            Some(token) => crate::import::SuiteTarget {
                addr: match args.endpoint.as_deref() {
                    Some(endpoint) => normalize_endpoint(endpoint)?,
                    None => resolve_target(None, args.token_file.as_deref(), config_file)?.addr,
                },
                tls: ClientTls::load(&client_tls_settings(config_file)?)?,
                token: SecretString::from(token.trim().to_owned()),
                token_source: "--token".into(),
            },
            None => {
                let mut target = resolve_target(
                    args.endpoint.as_deref(),
                    args.token_file.as_deref(),
                    config_file,
                )?;
                if let Some(endpoint) = args.endpoint.as_deref() {
                    target.addr = normalize_endpoint(endpoint)?;
                }
                target
            }
        };
        let cast =
            DemoCast::from_tokens(target.token, SecretString::from(checker.trim().to_owned()));
        let channel = connect(&target.addr, &target.tls).await?;
        return run(channel, &cast, &mut stdout).await;
    }
    // The demo's own principals, issued in the suite's identity store for this run.
    let settings = Settings::load(config_file)?;
    if let Backend::Embedded { data_dir } = &settings.backend
        && !data_dir.join(ADMIN_TOKEN_FILE).exists()
    {
        return Err(DemoError::NoSuiteData {
            data_dir: data_dir.display().to_string(),
        });
    }
    let endpoint = match args.endpoint.as_deref() {
        Some(endpoint) => normalize_endpoint(endpoint)?,
        None => {
            crate::import::addr_for_listen_addr(settings.listen_addr, settings.tls.serves_tls())
        }
    };
    let channel = connect(&endpoint, &ClientTls::load(&settings.tls)?).await?;
    let store = crate::open_token_store(&settings).await?;
    let cast = DemoCast::issue(store.as_ref()).await?;
    let outcome = run(channel, &cast, &mut stdout).await;
    let revoked = cast.revoke(store.as_ref()).await;
    let summary = outcome?;
    revoked?;
    Ok(summary)
}

#[cfg(test)]
mod tests;
