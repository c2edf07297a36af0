//! `credit-suite demo`: a scripted order-to-cash story against a running suite, printed step
//! by step. A customer is registered and rated, gets a limit through four eyes, orders are
//! approved, referred (and released) and declined, invoiced and partly paid; an overdue
//! invoice blocks new credit, dunning is attempted, and paying the rest unblocks it.
//!
//! **Four eyes.** Limit approval and referral release refuse self-approval (even the bootstrap
//! ADMIN is never its own checker), so the story needs at least two people. [`DemoCast`] holds
//! the tokens of the cast: either issued for the run straight into the suite's identity store
//! (as `credit-suite token create` does: "demo-analyst" makes, "demo-manager" checks,
//! "demo-erp" enters and bills orders, "demo-collector" chases) and revoked when it ends, or
//! two tokens given by the caller (a maker, typically the ADMIN token, and a checker holding
//! CREDIT_MANAGER with enough authority).
//!
//! Limits and rating apply the other services' events a moment later: every step that depends
//! on one polls with a short pause until a deadline, never sleeps blindly. Names, ids and keys
//! carry a run id, so the demo can run any number of times against the same suite.

use std::collections::BTreeSet;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::str::FromStr;
use std::time::{Duration, Instant};

use chrono::{Datelike, Days, NaiveDate, Utc};
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
use rust_decimal::Decimal;
use secrecy::{ExposeSecret, SecretString};
use tonic::Code;
use tonic::metadata::{Ascii, MetadataValue};
use tonic::service::interceptor::InterceptedService;
use tonic::transport::{Channel, Endpoint};

use crate::import::{ImportError, code_name, resolve_target};
use crate::{ADMIN_TOKEN_FILE, StartupError};

/// Currency of every amount in the story (and of the issued checker's authority).
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
    /// Address of the suite [default: http:// + CREDIT_LISTEN_ADDR, http://127.0.0.1:50051].
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
            issued: Vec::new(),
        }
    }

    /// Issues the four demo principals straight into the identity store, as `credit-suite
    /// token create` does. The tokens live in memory only; [`DemoCast::revoke`] ends them.
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
        ] {
            let principal = NewPrincipal {
                name: name.to_owned(),
                roles: BTreeSet::from([role]),
                approval_authority,
            };
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
    /// Within the limit, over it within the band (then released), far beyond it.
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

/// Connects to `endpoint` (`http://host:port`), failing fast when nothing answers there.
pub async fn connect(endpoint: &str) -> Result<Channel, DemoError> {
    let parsed = Endpoint::from_shared(endpoint.to_owned())
        .map_err(|_| ConfigError::new("--endpoint", format!("'{endpoint}' is not a URL")))?
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
        collector: CollectionsServiceClient::with_interceptor(channel, bearer(&cast.collector)?),
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

    async fn tell(&mut self, seed: u64) -> Result<DemoSummary, DemoError> {
        let customer_id = self.register(seed).await?;
        self.collect_credit_file(&customer_id).await?;
        let rating = self.rate(&customer_id).await?;
        let (limit, currency) = self.propose_and_grant(&customer_id).await?;
        let [approved, referred, declined] = self.authorize_three(&customer_id, limit).await?;
        let receivables = self
            .invoice_and_pay_partly(&customer_id, &approved, &referred)
            .await?;
        let (oldest_overdue_days, blocked_order) =
            self.go_overdue(&customer_id, limit, receivables).await?;
        let dunning = self.dun(&customer_id).await?;
        let (final_order, position) = self.pay_the_rest(&customer_id, limit).await?;
        writeln!(
            self.out,
            "story complete: {customer_id} graded {} with a limit of {} {currency}; exposure {} = holds {} + receivables {}",
            rating.grade, limit, position.exposure, position.holds, position.receivables
        )?;
        Ok(DemoSummary {
            run_id: self.run_id.clone(),
            customer_id,
            grade: rating.grade,
            pd: rating.pd,
            currency,
            limit,
            orders: vec![approved.outcome, referred.outcome, declined.outcome],
            oldest_overdue_days,
            blocked_order,
            dunning,
            final_order,
            open_holds: position.holds,
            open_receivables: position.receivables,
            exposure: position.exposure,
            available: position.available,
        })
    }

    async fn register(&mut self, seed: u64) -> Result<String, DemoError> {
        self.begin("register customer");
        let body = format!("91350100{seed:09}");
        let check = credit_intake::domain::uscc::check_character(&body)
            .ok_or_else(|| self.unexpected("no check character for the registration number"))?;
        let legal_name = format!("Demo Trading Co. {}", self.run_id);
        let customer = pb::Customer {
            kind: pb::CustomerKind::Enterprise.into(),
            country: "CN".into(),
            details: Some(pb::customer::Details::Enterprise(pb::EnterpriseDetails {
                legal_name: legal_name.clone(),
                registration_number: format!("{body}{check}"),
                registered_capital: self.money(Decimal::new(5_000_000, 0)),
                legal_representative: "Chen Wei".into(),
                industry_code: "F51".into(),
                founding_date: Some(pb::Date {
                    year: 2009,
                    month: 4,
                    day: 1,
                }),
            })),
            contacts: vec![pb::Contact {
                name: "Accounts payable".into(),
                role: "finance".into(),
                email: "ap@demo-trading.example".into(),
                primary: true,
                ..Default::default()
            }],
            ..Default::default()
        };
        let request_id = self.key("customer");
        let result = self
            .analyst_intake
            .create_customer(pb::CreateCustomerRequest {
                request_id,
                customer: Some(customer),
            })
            .await;
        let created = self
            .failed("CreateCustomer", result)?
            .customer
            .ok_or_else(|| self.unexpected("CreateCustomer answered no customer"))?;
        let customer_id = created.customer_id.clone();
        let status = customer_status(created.status);
        let result = self
            .manager_intake
            .set_customer_status(pb::SetCustomerStatusRequest {
                customer_id: customer_id.clone(),
                status: pb::CustomerStatus::Active.into(),
                reason: "demo: approved for trade credit".into(),
                etag: String::new(),
            })
            .await;
        let active = self
            .failed("SetCustomerStatus", result)?
            .customer
            .map(|customer| customer.status)
            .unwrap_or_default();
        let active = customer_status(active);
        let by = self.cast.manager.name.clone();
        self.line(&format!(
            "{customer_id} \"{legal_name}\" (enterprise, wholesale F51): {status} -> {active} by {by}"
        ))?;
        Ok(customer_id)
    }

    async fn collect_credit_file(&mut self, customer_id: &str) -> Result<(), DemoError> {
        self.begin("financial statement");
        let fiscal_year = self.today.year() - 1;
        let thousands = |amount: i64| self.money(Decimal::new(amount * 1_000, 0));
        let statement = pb::FinancialStatement {
            period_type: pb::FiscalPeriodType::Annual.into(),
            fiscal_year,
            period_end_date: Some(pb::Date {
                year: fiscal_year,
                month: 12,
                day: 31,
            }),
            currency: DEMO_CURRENCY.into(),
            audited: true,
            balance_sheet: Some(pb::BalanceSheet {
                cash: thousands(900),
                current_assets: thousands(4_500),
                total_assets: thousands(8_000),
                current_liabilities: thousands(2_500),
                total_liabilities: thousands(5_500),
                retained_earnings: thousands(1_500),
                equity: thousands(2_500),
            }),
            income_statement: Some(pb::IncomeStatement {
                revenue: thousands(24_000),
                gross_profit: thousands(4_800),
                ebit: thousands(2_200),
                interest_expense: thousands(300),
                net_income: thousands(1_440),
            }),
            cash_flow_statement: Some(pb::CashFlowStatement {
                operating_cash_flow: thousands(1_800),
            }),
            ..Default::default()
        };
        let request_id = self.key("statement");
        let result = self
            .analyst_intake
            .submit_financial_statement(pb::SubmitFinancialStatementRequest {
                request_id,
                customer_id: customer_id.into(),
                statement: Some(statement),
            })
            .await;
        let stored = self
            .failed("SubmitFinancialStatement", result)?
            .statement
            .ok_or_else(|| self.unexpected("SubmitFinancialStatement answered no statement"))?;
        let ratios = stored.ratios.unwrap_or_default();
        let ratio = |value: &Option<String>| value.clone().unwrap_or_else(|| "n/a".into());
        let zone = pb::AltmanZone::try_from(ratios.altman_zone)
            .map(|zone| zone.as_str_name().trim_start_matches("ALTMAN_ZONE_"))
            .unwrap_or("UNSPECIFIED");
        self.line(&format!(
            "{} FY{fiscal_year}: revenue 24000000.00, equity 2500000.00 {DEMO_CURRENCY}; current ratio {}, debt/assets {}, net margin {}, Altman Z'' {} ({zone})",
            stored.statement_id,
            ratio(&ratios.current_ratio),
            ratio(&ratios.debt_to_assets),
            ratio(&ratios.net_margin),
            ratio(&ratios.altman_z_score),
        ))?;

        self.begin("bureau and trade ref");
        let request_id = self.key("bureau");
        let result = self
            .analyst_intake
            .record_bureau_report(pb::RecordBureauReportRequest {
                request_id,
                customer_id: customer_id.into(),
                report: Some(pb::BureauReport {
                    agency: "Demo Credit Bureau".into(),
                    report_date: Some(self.date(3)),
                    score: "76".into(),
                    agency_rating: "A".into(),
                    tax_compliance_status: pb::TaxComplianceStatus::Compliant.into(),
                    ..Default::default()
                }),
            })
            .await;
        let report = self
            .failed("RecordBureauReport", result)?
            .report
            .ok_or_else(|| self.unexpected("RecordBureauReport answered no report"))?;
        let request_id = self.key("trade-reference");
        let result = self
            .analyst_intake
            .add_trade_reference(pb::AddTradeReferenceRequest {
                request_id,
                customer_id: customer_id.into(),
                reference: Some(pb::TradeReference {
                    supplier_name: "Xiamen Packaging Supply".into(),
                    relationship_months: 48,
                    typical_credit_line: self.money(Decimal::new(400_000, 0)),
                    payment_experience: pb::PaymentExperience::Prompt.into(),
                    days_beyond_terms: 0,
                    reference_date: Some(self.date(10)),
                    ..Default::default()
                }),
            })
            .await;
        let reference = self
            .failed("AddTradeReference", result)?
            .reference
            .ok_or_else(|| self.unexpected("AddTradeReference answered no reference"))?;
        self.line(&format!(
            "bureau report {} score 76 (tax compliant); trade reference {} pays PROMPT, 48 months",
            report.report_id, reference.reference_id
        ))?;
        Ok(())
    }

    async fn rate(&mut self, customer_id: &str) -> Result<pb::Rating, DemoError> {
        self.begin("rate");
        let request_id = self.key("rating");
        let result = self
            .rating
            .rate_customer(pb::RateCustomerRequest {
                request_id,
                customer_id: customer_id.into(),
                qualitative_inputs: [
                    ("management_quality".to_owned(), 4),
                    ("market_position".to_owned(), 4),
                    ("industry_outlook".to_owned(), 3),
                ]
                .into_iter()
                .collect(),
                note: "demo: first rating".into(),
                ..Default::default()
            })
            .await;
        let rating = self
            .failed("RateCustomer", result)?
            .rating
            .ok_or_else(|| self.unexpected("RateCustomer answered no rating"))?;
        let reasons: Vec<&str> = rating
            .reasons
            .iter()
            .map(|reason| reason.code.as_str())
            .collect();
        self.line(&format!(
            "{}: grade {} (model grade {}), score {}, PD {}, model {} v{}; qualitative: management 4, market 4, outlook 3",
            rating.rating_id,
            rating.grade,
            rating.model_grade,
            rating.score,
            percent(&rating.pd),
            rating.model_id,
            rating.model_version,
        ))?;
        self.detail(&format!(
            "points lost most on: {}",
            if reasons.is_empty() {
                "nothing".to_owned()
            } else {
                reasons.join(", ")
            }
        ))?;
        Ok(rating)
    }

    async fn propose_and_grant(
        &mut self,
        customer_id: &str,
    ) -> Result<(Decimal, String), DemoError> {
        self.begin("propose limit");
        // Limits learns of the rating (RatingChanged) and of the statement
        // (FinancialStatementSubmitted) from events: wait for both.
        let deadline = Instant::now() + EVENT_DEADLINE;
        let proposal = loop {
            let attempt = self
                .maker
                .propose_limit(pb::ProposeLimitRequest {
                    customer_id: customer_id.into(),
                    currency: DEMO_CURRENCY.into(),
                })
                .await;
            let last = match attempt {
                Ok(response) => {
                    let proposal = response.into_inner();
                    if !proposal.statement_id.is_empty() && proposal.proposed_amount.is_some() {
                        break proposal;
                    }
                    "a proposal without the statement".to_owned()
                }
                Err(status)
                    if matches!(status.code(), Code::FailedPrecondition | Code::NotFound) =>
                {
                    format!("{}: {}", code_name(status.code()), status.message())
                }
                Err(status) => return Err(self.call_error("ProposeLimit", &status)),
            };
            self.pause(
                deadline,
                "limits to learn of the rating and the statement",
                || last,
            )
            .await?;
        };
        let proposed = self.amount_of("proposed_amount", proposal.proposed_amount.as_ref())?;
        let currency = proposal
            .proposed_amount
            .as_ref()
            .map(|money| money.currency.clone())
            .unwrap_or_else(|| DEMO_CURRENCY.into());
        self.line(&format!(
            "{proposed} {currency} for grade {}, the smallest of:",
            proposal.grade
        ))?;
        for component in &proposal.components {
            let kind = pb::LimitProposalComponentType::try_from(component.component_type)
                .map(|kind| {
                    kind.as_str_name()
                        .trim_start_matches("LIMIT_PROPOSAL_COMPONENT_TYPE_")
                        .to_lowercase()
                        .replace('_', " ")
                })
                .unwrap_or_else(|_| "component".into());
            let binding = if component.binding { " (binding)" } else { "" };
            self.detail(&format!(
                "{kind}: {}{binding} - {}",
                show(component.amount.as_ref()),
                component.explanation
            ))?;
        }

        self.begin("limit request");
        let deadline = Instant::now() + EVENT_DEADLINE;
        let request_id = self.key("limit");
        let requested = loop {
            let attempt = self
                .maker
                .request_limit_change(pb::RequestLimitChangeRequest {
                    request_id: request_id.clone(),
                    scope: customer_scope(customer_id),
                    amount: proposal.proposed_amount.clone(),
                    reason: "demo: the proposed limit".into(),
                    ..Default::default()
                })
                .await;
            match attempt {
                Ok(response) => break response.into_inner(),
                // Limits learns of the customer from intake's events, a moment later.
                Err(status) if status.code() == Code::NotFound => {
                    let last = status.message().to_owned();
                    self.pause(deadline, "limits to learn of the customer", || last)
                        .await?;
                }
                Err(status) => return Err(self.call_error("RequestLimitChange", &status)),
            }
        };
        let limit_request = requested
            .limit_request
            .ok_or_else(|| self.unexpected("RequestLimitChange answered no request"))?;
        let status = approval_status(limit_request.status);
        let maker = self.cast.analyst.name.clone();
        self.line(&format!(
            "{} for {proposed} {currency} by {maker}: {status}",
            limit_request.limit_request_id
        ))?;

        self.begin("limit approval");
        if limit_request.status() == pb::ApprovalStatus::Pending {
            let request_id = self.key("limit-decision");
            let result = self
                .checker
                .decide_limit_request(pb::DecideLimitRequestRequest {
                    request_id,
                    limit_request_id: limit_request.limit_request_id.clone(),
                    decision: pb::ApprovalDecision::Approve.into(),
                    reason: "demo: financials and rating support the proposal".into(),
                })
                .await;
            let decided = self
                .failed("DecideLimitRequest", result)?
                .limit_request
                .ok_or_else(|| self.unexpected("DecideLimitRequest answered no request"))?;
            if decided.status() != pb::ApprovalStatus::Approved {
                return Err(self.unexpected(format!(
                    "the limit request is {}",
                    approval_status(decided.status)
                )));
            }
            let checker = decided
                .decided_by
                .map(|actor| actor.principal)
                .unwrap_or_default();
            self.line(&format!(
                "approved by {checker} (the maker cannot approve their own request): limit {proposed} {currency} in force"
            ))?;
        } else {
            self.line(&format!(
                "approved without a checker by rule {}",
                limit_request.auto_approval_rule_id
            ))?;
        }
        Ok((proposed, currency))
    }

    async fn check(
        &mut self,
        customer_id: &str,
        amount: Decimal,
    ) -> Result<pb::CheckCreditResponse, tonic::Status> {
        self.orders
            .check_credit(pb::CheckCreditRequest {
                customer_id: customer_id.into(),
                amount: self.money(amount),
                order_id: "demo-what-if".into(),
            })
            .await
            .map(tonic::Response::into_inner)
    }

    /// Waits until CheckCredit for `amount` satisfies `ready` (reason codes of the answer).
    async fn wait_for_check(
        &mut self,
        customer_id: &str,
        amount: Decimal,
        waiting_for: &'static str,
        ready: impl Fn(pb::AuthorizationDecision, &[String]) -> bool,
    ) -> Result<pb::CheckCreditResponse, DemoError> {
        let deadline = Instant::now() + EVENT_DEADLINE;
        loop {
            let last = match self.check(customer_id, amount).await {
                Ok(answer) => {
                    let codes = reason_codes(&answer.reasons);
                    if ready(answer.decision(), &codes) {
                        return Ok(answer);
                    }
                    format!("{} {codes:?}", decision_name(answer.decision()))
                }
                Err(status) if status.code() == Code::NotFound => status.message().to_owned(),
                Err(status) => return Err(self.call_error("CheckCredit", &status)),
            };
            self.pause(deadline, waiting_for, || last).await?;
        }
    }

    async fn authorize(
        &mut self,
        customer_id: &str,
        number: u32,
        amount: Decimal,
    ) -> Result<(pb::AuthorizeResponse, OrderOutcome), DemoError> {
        let order_id = format!("SO-{}-{number}", self.run_id);
        let result = self
            .orders
            .authorize(pb::AuthorizeRequest {
                customer_id: customer_id.into(),
                order_id: order_id.clone(),
                amount: self.money(amount),
                idempotency_key: order_id.clone(),
                hold_ttl: None,
            })
            .await;
        let answer = self.failed("Authorize", result)?;
        let outcome = OrderOutcome {
            order_id: order_id.clone(),
            amount,
            decision: answer.decision(),
            reasons: reason_codes(&answer.reasons),
            released: false,
        };
        let mut text = format!(
            "{order_id} for {:.2} {DEMO_CURRENCY}: {}",
            amount,
            decision_name(answer.decision())
        );
        match answer.decision() {
            pb::AuthorizationDecision::Approved => {
                text.push_str(&format!(", hold {}", answer.hold_id));
            }
            pb::AuthorizationDecision::Referred => {
                text.push_str(&format!(", referral {}", answer.referral_id));
            }
            _ => {}
        }
        text.push_str(&format!(
            "; exposure {}, available {}",
            show(answer.exposure.as_ref()),
            show(answer.available.as_ref())
        ));
        self.line(&text)?;
        for reason in &answer.reasons {
            self.detail(&format!("{}: {}", reason.code, figures(reason)))?;
        }
        Ok((answer, outcome))
    }

    async fn authorize_three(
        &mut self,
        customer_id: &str,
        limit: Decimal,
    ) -> Result<[Order; 3], DemoError> {
        let within = share(limit, 60);
        let over_within_band = share(limit, 45);
        let far_beyond = share(limit, 50);

        self.begin("order within limit");
        // The customer's ACTIVE status reaches limits as intake's event.
        self.wait_for_check(
            customer_id,
            within,
            "limits to approve the first order",
            |decision, _| decision == pb::AuthorizationDecision::Approved,
        )
        .await?;
        let (answer, outcome) = self.authorize(customer_id, 1, within).await?;
        if outcome.decision != pb::AuthorizationDecision::Approved {
            return Err(self.unexpected(format!("expected APPROVED, got {:?}", outcome.reasons)));
        }
        let approved = Order {
            hold_id: answer.hold_id,
            outcome,
        };

        self.begin("order over limit");
        let (answer, mut outcome) = self.authorize(customer_id, 2, over_within_band).await?;
        if outcome.decision != pb::AuthorizationDecision::Referred {
            return Err(self.unexpected(format!(
                "expected REFERRED, got {} {:?}",
                decision_name(outcome.decision),
                outcome.reasons
            )));
        }
        self.begin("referral release");
        let request_id = self.key("referral-release");
        let result = self
            .checker
            .decide_referral(pb::DecideReferralRequest {
                request_id,
                referral_id: answer.referral_id.clone(),
                outcome: pb::ReferralOutcome::Release.into(),
                reason: "demo: long-standing customer, seasonal peak".into(),
                hold_ttl: None,
            })
            .await;
        let released = self.failed("DecideReferral", result)?;
        let hold = released
            .hold
            .ok_or_else(|| self.unexpected("DecideReferral RELEASE answered no hold"))?;
        let checker = released
            .referral
            .and_then(|referral| referral.decided_by)
            .map(|actor| actor.principal)
            .unwrap_or_default();
        outcome.released = true;
        let position = self.position(customer_id).await?;
        self.line(&format!(
            "{} released by {checker}: hold {} for {}, recorded as an override; exposure {}, available {}",
            answer.referral_id,
            hold.hold_id,
            show(hold.amount.as_ref()),
            position.exposure,
            optional(position.available),
        ))?;
        let referred = Order {
            hold_id: hold.hold_id,
            outcome,
        };

        self.begin("order far beyond");
        let (_, declined) = self.authorize(customer_id, 3, far_beyond).await?;
        if declined.decision != pb::AuthorizationDecision::Declined {
            return Err(self.unexpected(format!(
                "expected DECLINED, got {} {:?}",
                decision_name(declined.decision),
                declined.reasons
            )));
        }
        Ok([
            approved,
            referred,
            Order {
                hold_id: String::new(),
                outcome: declined,
            },
        ])
    }

    async fn position(&mut self, customer_id: &str) -> Result<Position, DemoError> {
        let result = self
            .orders
            .get_exposure(pb::GetExposureRequest {
                scope: customer_scope(customer_id),
            })
            .await;
        let exposure = self
            .failed("GetExposure", result)?
            .exposure
            .ok_or_else(|| self.unexpected("GetExposure answered no exposure"))?;
        Ok(Position {
            holds: self.amount_of("open_holds", exposure.open_holds.as_ref())?,
            receivables: self.amount_of("open_receivables", exposure.open_receivables.as_ref())?,
            exposure: self.amount_of("exposure", exposure.exposure.as_ref())?,
            available: match exposure.available.as_ref() {
                Some(money) => Some(self.amount_of("available", Some(money))?),
                None => None,
            },
            oldest_overdue_days: exposure.oldest_overdue_days,
            grade: exposure.grade.clone(),
            blocks: exposure
                .blocks
                .iter()
                .map(|block| {
                    pb::CreditBlockType::try_from(block.block_type)
                        .map(|kind| {
                            kind.as_str_name()
                                .trim_start_matches("CREDIT_BLOCK_TYPE_")
                                .to_owned()
                        })
                        .unwrap_or_else(|_| "UNKNOWN".into())
                })
                .collect(),
        })
    }

    /// Waits until limits shows `holds` and `receivables` (events from collections).
    async fn wait_for_position(
        &mut self,
        customer_id: &str,
        holds: Decimal,
        receivables: Decimal,
    ) -> Result<Position, DemoError> {
        let deadline = Instant::now() + EVENT_DEADLINE;
        loop {
            let position = self.position(customer_id).await?;
            if position.holds == holds && position.receivables == receivables {
                return Ok(position);
            }
            self.pause(deadline, "limits to apply collections' events", || {
                format!(
                    "holds {} and receivables {} (expected {holds} and {receivables})",
                    position.holds, position.receivables
                )
            })
            .await?;
        }
    }

    async fn post_invoice(
        &mut self,
        customer_id: &str,
        number: &str,
        amount: Decimal,
        hold_id: &str,
        issued: pb::Date,
        due: pb::Date,
    ) -> Result<pb::Invoice, DemoError> {
        let result = self
            .billing
            .post_invoice(pb::PostInvoiceRequest {
                customer_id: customer_id.into(),
                invoice_number: number.into(),
                order_id: String::new(),
                hold_id: hold_id.into(),
                amount: self.money(amount),
                issue_date: Some(issued),
                due: Some(pb::post_invoice_request::Due::DueDate(due)),
            })
            .await;
        self.failed("PostInvoice", result)?
            .invoice
            .ok_or_else(|| self.unexpected("PostInvoice answered no invoice"))
    }

    async fn invoice_and_pay_partly(
        &mut self,
        customer_id: &str,
        approved: &Order,
        referred: &Order,
    ) -> Result<Decimal, DemoError> {
        self.begin("invoice");
        let mut invoices = Vec::new();
        for (number, order) in [(1, approved), (2, referred)] {
            let invoice_number = format!("INV-{}-{number}", self.run_id);
            let invoice = self
                .post_invoice(
                    customer_id,
                    &invoice_number,
                    order.outcome.amount,
                    &order.hold_id,
                    self.date(0),
                    self.date_ahead(30),
                )
                .await?;
            let text = format!(
                "{} ({}) for {}, capturing hold {}, due {}",
                invoice.invoice_number,
                invoice.invoice_id,
                show(invoice.amount.as_ref()),
                order.hold_id,
                shown_date(invoice.due_date.as_ref()),
            );
            if number == 1 {
                self.line(&text)?;
            } else {
                self.detail(&text)?;
            }
            invoices.push(invoice);
        }
        let invoiced = approved.outcome.amount + referred.outcome.amount;
        let position = self
            .wait_for_position(customer_id, Decimal::ZERO, invoiced)
            .await?;
        self.detail(&format!(
            "holds became receivables: exposure {} = holds {} + receivables {}",
            position.exposure, position.holds, position.receivables
        ))?;

        self.begin("partial payment");
        let first = invoices
            .first()
            .cloned()
            .ok_or_else(|| self.unexpected("no invoice to pay"))?;
        let paid = self.amount_of("invoice amount", first.amount.as_ref())? * Decimal::new(2, 0)
            / Decimal::new(3, 0);
        let paid = paid.round_dp(2);
        let result = self
            .billing
            .record_payment(pb::RecordPaymentRequest {
                customer_id: customer_id.into(),
                amount: self.money(paid),
                value_date: Some(self.date(0)),
                reference: format!("BANK-{}-1", self.run_id),
                allocations: vec![pb::AllocationInstruction {
                    invoice_id: first.invoice_id.clone(),
                    amount: self.money(paid),
                }],
            })
            .await;
        let payment = self.failed("RecordPayment", result)?;
        let open = payment
            .invoices
            .iter()
            .find(|invoice| invoice.invoice_id == first.invoice_id)
            .map(|invoice| show(invoice.open_amount.as_ref()))
            .unwrap_or_else(|| "unknown".into());
        let position = self
            .wait_for_position(customer_id, Decimal::ZERO, invoiced - paid)
            .await?;
        self.line(&format!(
            "{paid:.2} {DEMO_CURRENCY} on {}: open amount {open}; exposure {}, available {}",
            first.invoice_number,
            position.exposure,
            optional(position.available)
        ))?;
        Ok(position.receivables)
    }

    async fn go_overdue(
        &mut self,
        customer_id: &str,
        limit: Decimal,
        receivables_before: Decimal,
    ) -> Result<(i32, OrderOutcome), DemoError> {
        self.begin("overdue invoice");
        let amount = share(limit, 10);
        let invoice_number = format!("INV-{}-0", self.run_id);
        let issued = self.date(OVERDUE_DAYS + 30);
        let due = self.date(OVERDUE_DAYS);
        let invoice = self
            .post_invoice(customer_id, &invoice_number, amount, "", issued, due)
            .await?;
        let position = self
            .wait_for_position(customer_id, Decimal::ZERO, receivables_before + amount)
            .await?;
        self.line(&format!(
            "{} ({}) for {:.2} {DEMO_CURRENCY}, an earlier delivery billed late: issued {}, due {} ({OVERDUE_DAYS} days ago)",
            invoice.invoice_number,
            invoice.invoice_id,
            amount,
            shown_date(invoice.issue_date.as_ref()),
            shown_date(invoice.due_date.as_ref()),
        ))?;
        self.detail(&format!(
            "no hold to capture, so receivables grow: exposure {}, available {}",
            position.exposure,
            optional(position.available)
        ))?;

        self.begin("overdue detection");
        let result = self
            .collector
            .detect_overdue(pb::DetectOverdueRequest {
                as_of_date: None,
                customer_ids: vec![customer_id.into()],
            })
            .await;
        let detected = self.failed("DetectOverdue", result)?;
        let change = detected
            .changed
            .iter()
            .find(|change| change.customer_id == customer_id)
            .cloned()
            .ok_or_else(|| self.unexpected("DetectOverdue announced no change for the customer"))?;
        let overdue: Vec<String> = change
            .overdue_amounts
            .iter()
            .map(|money| show(Some(money)))
            .collect();
        self.line(&format!(
            "oldest overdue {} days (was {}), overdue {}; announced as InvoiceOverdue",
            change.oldest_overdue_days,
            change.previous_oldest_overdue_days,
            overdue.join(", ")
        ))?;

        self.begin("blocked");
        let probe = share(limit, 2);
        self.wait_for_check(
            customer_id,
            probe,
            "limits to block the customer",
            |_, codes| codes.iter().any(|code| code == "OVERDUE"),
        )
        .await?;
        let position = self.position(customer_id).await?;
        self.line(&format!(
            "credit blocks: {} (oldest overdue {} days)",
            position.blocks.join(", "),
            position.oldest_overdue_days
        ))?;
        self.begin("order while blocked");
        let (answer, blocked) = self.authorize(customer_id, 4, probe).await?;
        if blocked.decision != pb::AuthorizationDecision::Referred {
            return Err(self.unexpected(format!(
                "expected REFERRED, got {} {:?}",
                decision_name(blocked.decision),
                blocked.reasons
            )));
        }
        let request_id = self.key("referral-reject");
        let result = self
            .checker
            .decide_referral(pb::DecideReferralRequest {
                request_id,
                referral_id: answer.referral_id.clone(),
                outcome: pb::ReferralOutcome::Reject.into(),
                reason: "demo: no new credit while invoices are overdue".into(),
                hold_ttl: None,
            })
            .await;
        self.failed("DecideReferral", result)?;
        let checker = self.cast.manager.name.clone();
        self.detail(&format!(
            "{} rejected by {checker}: no new credit while invoices are overdue",
            answer.referral_id
        ))?;
        Ok((change.oldest_overdue_days, blocked))
    }

    async fn dun(&mut self, customer_id: &str) -> Result<DunningOutcome, DemoError> {
        self.begin("dunning");
        let request_id = self.key("dunning");
        let attempt = self
            .collector
            .run_dunning(pb::RunDunningRequest {
                request_id,
                as_of_date: None,
                customer_ids: vec![customer_id.into()],
                dry_run: false,
            })
            .await;
        match attempt {
            Ok(response) => {
                let ran = response.into_inner();
                let levels: Vec<String> = ran
                    .actions
                    .iter()
                    .map(|action| {
                        let channel = pb::ContactChannel::try_from(action.channel)
                            .map(|channel| {
                                channel.as_str_name().trim_start_matches("CONTACT_CHANNEL_")
                            })
                            .unwrap_or("UNKNOWN");
                        format!(
                            "level {} by {channel} for {} ({} days past due, {})",
                            action.level,
                            action.invoice_number,
                            action.days_past_due,
                            show(action.amount.as_ref())
                        )
                    })
                    .collect();
                self.line(&format!("{} dunning actions created", ran.actions.len()))?;
                for action in levels {
                    self.detail(&action)?;
                }
                Ok(DunningOutcome::Ran {
                    actions: ran.actions.len(),
                })
            }
            Err(status) if status.code() == Code::Unimplemented => {
                self.line("dunning: not available in this version")?;
                Ok(DunningOutcome::NotAvailable)
            }
            Err(status) => Err(self.call_error("RunDunning", &status)),
        }
    }

    async fn pay_the_rest(
        &mut self,
        customer_id: &str,
        limit: Decimal,
    ) -> Result<(OrderOutcome, Position), DemoError> {
        self.begin("payment of the rest");
        // What collections says is owed (limits learns of it a moment later).
        let result = self
            .collector
            .get_customer_ledger(pb::GetCustomerLedgerRequest {
                customer_id: customer_id.into(),
                ..Default::default()
            })
            .await;
        let ledger = self.failed("GetCustomerLedger", result)?;
        let balance = ledger
            .balances
            .iter()
            .find(|balance| {
                balance
                    .open_receivables
                    .as_ref()
                    .is_some_and(|money| money.currency == DEMO_CURRENCY)
            })
            .ok_or_else(|| self.unexpected("the ledger has no balance in the demo's currency"))?;
        let rest = self.amount_of("open_receivables", balance.open_receivables.as_ref())?;
        let result = self
            .billing
            .record_payment(pb::RecordPaymentRequest {
                customer_id: customer_id.into(),
                amount: self.money(rest),
                value_date: Some(self.date(0)),
                reference: format!("BANK-{}-2", self.run_id),
                allocations: Vec::new(),
            })
            .await;
        let payment = self.failed("RecordPayment", result)?;
        let settled: Vec<String> = payment
            .invoices
            .iter()
            .map(|invoice| {
                format!(
                    "{} {}",
                    invoice.invoice_number,
                    pb::InvoiceStatus::try_from(invoice.status)
                        .map(|status| status.as_str_name().trim_start_matches("INVOICE_STATUS_"))
                        .unwrap_or("UNKNOWN")
                )
            })
            .collect();
        self.line(&format!(
            "{rest:.2} {DEMO_CURRENCY}, oldest due first: {}",
            settled.join(", ")
        ))?;
        let probe = share(limit, 2);
        self.wait_for_check(
            customer_id,
            probe,
            "limits to clear the block",
            |decision, codes| decision == pb::AuthorizationDecision::Approved && codes.is_empty(),
        )
        .await?;
        let position = self
            .wait_for_position(customer_id, Decimal::ZERO, Decimal::ZERO)
            .await?;
        self.detail(&format!(
            "unblocked: no credit blocks, oldest overdue {} days, exposure {}",
            position.oldest_overdue_days, position.exposure
        ))?;

        self.begin("order after payment");
        let (_, final_order) = self.authorize(customer_id, 5, probe).await?;
        if final_order.decision != pb::AuthorizationDecision::Approved {
            return Err(self.unexpected(format!(
                "expected APPROVED, got {} {:?}",
                decision_name(final_order.decision),
                final_order.reasons
            )));
        }
        let position = self.position(customer_id).await?;
        self.detail(&format!(
            "exposure {} = open holds {} + open receivables {}; available {}; grade in limits {}",
            position.exposure,
            position.holds,
            position.receivables,
            optional(position.available),
            if position.grade.is_empty() {
                "none"
            } else {
                position.grade.as_str()
            },
        ))?;
        Ok((final_order, position))
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
    let endpoint = endpoint.trim();
    let with_scheme = if endpoint.contains("://") {
        endpoint.to_owned()
    } else {
        format!("http://{endpoint}")
    };
    if !with_scheme.starts_with("http://") {
        return Err(ConfigError::new(
            "--endpoint (CREDIT_ADDR)",
            format!("'{endpoint}' must be an http:// address such as http://127.0.0.1:50051"),
        ));
    }
    Ok(with_scheme)
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
        let channel = connect(&target.addr).await?;
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
        None => crate::import::addr_for_listen_addr(settings.listen_addr),
    };
    let channel = connect(&endpoint).await?;
    let store = crate::open_token_store(&settings).await?;
    let cast = DemoCast::issue(store.as_ref()).await?;
    let outcome = run(channel, &cast, &mut stdout).await;
    let revoked = cast.revoke(store.as_ref()).await;
    let summary = outcome?;
    revoked?;
    Ok(summary)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shares_are_rounded_to_the_cent() {
        assert_eq!(
            share(Decimal::new(500_000, 0), 60),
            Decimal::new(300_000, 0)
        );
        assert_eq!(share(Decimal::new(33_333, 2), 45), Decimal::new(15_000, 2));
    }

    #[test]
    fn percent_shows_a_fraction_as_a_percentage() {
        assert_eq!(percent("0.0025"), "0.25 %");
        assert_eq!(percent("0.5000"), "50 %");
        assert_eq!(percent("n/a"), "n/a");
    }

    #[test]
    fn endpoints_get_a_scheme_and_https_is_refused() {
        assert_eq!(
            normalize_endpoint("127.0.0.1:50051").unwrap_or_default(),
            "http://127.0.0.1:50051"
        );
        assert!(normalize_endpoint("https://suite:443").is_err());
    }

    #[test]
    fn figures_are_sorted_by_key() {
        let reason = pb::Reason {
            code: "LIMIT_EXCEEDED".into(),
            message: "over".into(),
            metadata: [
                ("limit".to_owned(), "100".to_owned()),
                ("amount".to_owned(), "5".to_owned()),
            ]
            .into_iter()
            .collect(),
        };
        assert_eq!(figures(&reason), "amount 5, limit 100");
    }
}
