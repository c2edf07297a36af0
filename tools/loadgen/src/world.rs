//! The benchmark's own world: a PostgreSQL database of its own, a Redis key prefix of its own,
//! the suite served in this process, tokens, and customers prepared through the real API.

use std::net::SocketAddr;
use std::str::FromStr;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use credit_core::Role;
use credit_proto::v1 as pb;
use credit_proto::v1::intake_service_client::IntakeServiceClient;
use credit_proto::v1::limit_service_client::LimitServiceClient;
use credit_runtime::Settings;
use credit_runtime::config::{Backend, LogFormat};
use credit_runtime::identity::{self, NewPrincipal};
use credit_runtime::tls::ClientTls;
use credit_suite::{Application, ServiceSelection};
use rust_decimal::Decimal;
use secrecy::{ExposeSecret, SecretString};
use sqlx::Connection;
use sqlx::postgres::PgConnection;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tonic::Code;
use tonic::metadata::{Ascii, MetadataValue};
use tonic::transport::Channel;

use crate::certificates::RunCertificates;
use crate::load::{Outcome, Target};

/// A database created for this run, dropped at the end.
#[derive(Debug)]
pub struct BenchDatabase {
    admin_url: String,
    pub name: String,
    pub url: String,
}

impl BenchDatabase {
    pub async fn create(admin_url: &str) -> Result<Self> {
        let name = format!("credit_bench_{}", uuid::Uuid::new_v4().simple());
        let mut connection = PgConnection::connect(admin_url)
            .await
            .with_context(|| format!("connecting to PostgreSQL at {admin_url}"))?;
        sqlx::query(&format!("CREATE DATABASE \"{name}\""))
            .execute(&mut connection)
            .await
            .with_context(|| format!("creating database {name}"))?;
        let _ = connection.close().await;
        let Some((server, _)) = admin_url.rsplit_once('/') else {
            bail!("the database URL {admin_url} has no database part");
        };
        Ok(Self {
            admin_url: admin_url.to_owned(),
            url: format!("{server}/{name}"),
            name,
        })
    }

    /// Vacuums and analyzes this database and checkpoints, so that a system does not pay for
    /// the writes of the one measured before it (autovacuum and a checkpoint would otherwise
    /// run during its measurement), and the planner knows the tables as they are after a bulk
    /// fill (as autovacuum's analyze would tell it a minute later).
    pub async fn settle(&self) -> Result<()> {
        let mut connection = PgConnection::connect(&self.url).await?;
        sqlx::query("VACUUM ANALYZE")
            .execute(&mut connection)
            .await?;
        sqlx::query("CHECKPOINT").execute(&mut connection).await?;
        let _ = connection.close().await;
        Ok(())
    }

    pub async fn drop_database(&self) -> Result<()> {
        let mut connection = PgConnection::connect(&self.admin_url).await?;
        sqlx::query(&format!(
            "DROP DATABASE IF EXISTS \"{}\" WITH (FORCE)",
            self.name
        ))
        .execute(&mut connection)
        .await?;
        let _ = connection.close().await;
        Ok(())
    }
}

/// Deletes every Redis key under `prefix`.
pub async fn delete_redis_prefix(redis_url: &str, prefix: &str) -> Result<u64> {
    let client = redis::Client::open(redis_url)?;
    let mut connection = client.get_multiplexed_async_connection().await?;
    let mut cursor = 0u64;
    let mut deleted = 0u64;
    loop {
        let (next, keys): (u64, Vec<String>) = redis::cmd("SCAN")
            .arg(cursor)
            .arg("MATCH")
            .arg(format!("{prefix}*"))
            .arg("COUNT")
            .arg(1000)
            .query_async(&mut connection)
            .await?;
        if !keys.is_empty() {
            let removed: u64 = redis::cmd("UNLINK")
                .arg(&keys)
                .query_async(&mut connection)
                .await?;
            deleted += removed;
        }
        if next == 0 {
            return Ok(deleted);
        }
        cursor = next;
    }
}

/// Where callers reach the suite at `addr`: https trusting the run's CA, or plain text.
fn endpoint_of(addr: SocketAddr, tls: Option<&ClientTls>) -> Result<tonic::transport::Endpoint> {
    Ok(match tls {
        Some(tls) => tls.endpoint("the load generator", &format!("https://{addr}"))?,
        None => tonic::transport::Endpoint::from_shared(format!("http://{addr}"))?,
    })
}

/// The suite serving in this process on PostgreSQL + Redis.
#[derive(Debug)]
pub struct Suite {
    pub addr: SocketAddr,
    pub settings: Settings,
    pub channel: Channel,
    /// How callers reach it: plain text, or TLS trusting the run's own CA.
    client_tls: Option<ClientTls>,
    /// Kept for the run: the files the server's TLS settings name.
    _certificates: Option<RunCertificates>,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<Result<()>>>,
}

impl Suite {
    /// A channel over `count` connections to the suite, balanced per call.
    pub fn connections(&self, count: usize) -> Channel {
        let endpoints = (0..count.max(1)).filter_map(|_| self.endpoint().ok());
        Channel::balance_list(endpoints)
    }

    fn endpoint(&self) -> Result<tonic::transport::Endpoint> {
        endpoint_of(self.addr, self.client_tls.as_ref())
    }

    pub async fn start(
        database_url: &str,
        redis_url: &str,
        redis_key_prefix: &str,
        max_connections: u32,
        tls: bool,
    ) -> Result<Self> {
        let mut settings = Settings::for_tests(std::env::temp_dir());
        let certificates = if tls {
            let certificates = RunCertificates::generate()?;
            settings.tls = certificates.settings.clone();
            Some(certificates)
        } else {
            None
        };
        let client_tls = match &certificates {
            Some(certificates) => Some(ClientTls::load(&certificates.settings)?),
            None => None,
        };
        settings.backend = Backend::Production {
            database_url: SecretString::from(database_url.to_owned()),
            redis_url: SecretString::from(redis_url.to_owned()),
            redis_key_prefix: redis_key_prefix.to_owned(),
        };
        settings.database_max_connections = max_connections;
        settings.log_format = LogFormat::Json;
        settings.metrics_addr = None;
        let application = Application::build(&settings, &ServiceSelection::all())
            .await
            .context("starting the suite")?;
        let addr = application.local_addr()?;
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            application
                .run_until_stopped(async {
                    let _ = stopped.await;
                })
                .await
                .context("serving the suite")
        });
        let channel = endpoint_of(addr, client_tls.as_ref())?
            .connect()
            .await
            .context("connecting to the suite")?;
        Ok(Self {
            addr,
            settings,
            channel,
            client_tls,
            _certificates: certificates,
            stop: Some(stop),
            task: Some(task),
        })
    }

    pub async fn stop(mut self) -> Result<()> {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            task.await??;
        }
        Ok(())
    }

    /// Issues tokens straight into the identity store, as `credit-suite token create` does.
    pub async fn tokens(&self) -> Result<Tokens> {
        let store = credit_suite::open_token_store(&self.settings).await?;
        let issue = async |name: &str, roles: &[Role], authority: Option<&str>| {
            let principal =
                NewPrincipal::new(name, roles.iter().copied()).with_authority(match authority {
                    Some(amount) => Some(credit_core::Money::parse(amount, "CNY")?),
                    None => None,
                });
            let issued = identity::issue_token(store.as_ref(), &principal).await?;
            let value: MetadataValue<Ascii> =
                format!("Bearer {}", issued.token.expose_secret()).parse()?;
            anyhow::Ok(value)
        };
        Ok(Tokens {
            clerk: issue("bench-clerk", &[Role::Analyst, Role::CreditManager], None).await?,
            maker: issue("bench-maker", &[Role::Analyst], None).await?,
            checker: issue(
                "bench-checker",
                &[Role::CreditManager],
                Some("100000000000"),
            )
            .await?,
            order_entry: issue("bench-erp", &[Role::OrderEntry], None).await?,
            finance: issue("bench-finance", &[Role::Finance], None).await?,
            risk: issue("bench-risk", &[Role::Risk], None).await?,
            general_manager: issue("bench-gm", &[Role::GeneralManager], Some("100000000000"))
                .await?,
        })
    }
}

#[derive(Debug, Clone)]
pub struct Tokens {
    pub clerk: MetadataValue<Ascii>,
    maker: MetadataValue<Ascii>,
    checker: MetadataValue<Ascii>,
    pub order_entry: MetadataValue<Ascii>,
    /// The steps of a large limit's approval chain (finance, risk, the general manager).
    finance: MetadataValue<Ascii>,
    risk: MetadataValue<Ascii>,
    general_manager: MetadataValue<Ascii>,
}

impl Tokens {
    /// Who decides a step naming `roles` (the contract's ints): the checker for a credit
    /// manager's step, else the person of the step's first role.
    fn decider_for(&self, roles: &[i32]) -> &MetadataValue<Ascii> {
        let holds = |role: pb::Role| roles.contains(&(role as i32));
        if holds(pb::Role::CreditManager) {
            &self.checker
        } else if holds(pb::Role::Finance) {
            &self.finance
        } else if holds(pb::Role::Risk) {
            &self.risk
        } else if holds(pb::Role::GeneralManager) {
            &self.general_manager
        } else {
            &self.checker
        }
    }
}

pub fn authed<T>(message: T, token: &MetadataValue<Ascii>) -> tonic::Request<T> {
    let mut request = tonic::Request::new(message);
    request
        .metadata_mut()
        .insert("authorization", token.clone());
    request
}

pub fn cny(minor: i64) -> Option<pb::Money> {
    Some(pb::Money {
        amount: Decimal::new(minor, 2).to_string(),
        currency: "CNY".into(),
    })
}

/// An amount in minor units, parsed from the wire.
pub fn minor(money: Option<&pb::Money>) -> Result<i64> {
    let Some(money) = money else { return Ok(0) };
    let amount =
        Decimal::from_str(&money.amount).with_context(|| format!("amount {:?}", money.amount))?;
    let scaled = (amount * Decimal::from(100)).trunc();
    i64::try_from(scaled).context("amount out of range")
}

/// A unified social credit code (GB 32100-2015) made from `seed`, with its check character.
fn uscc(seed: u64) -> Result<String> {
    let body = format!("91350100{:09}", seed % 1_000_000_000);
    let check =
        credit_intake::domain::uscc::check_character(&body).context("no uscc check character")?;
    Ok(format!("{body}{check}"))
}

fn enterprise(name: &str, registration_number: &str) -> pb::Customer {
    pb::Customer {
        kind: pb::CustomerKind::Enterprise as i32,
        country: "CN".into(),
        details: Some(pb::customer::Details::Enterprise(pb::EnterpriseDetails {
            legal_name: name.into(),
            registration_number: registration_number.into(),
            registered_capital: Some(pb::Money {
                amount: "5000000.00".into(),
                currency: "CNY".into(),
            }),
            legal_representative: "Chen Wei".into(),
            industry_code: "F51".into(),
            founding_date: Some(pb::Date {
                year: 2009,
                month: 4,
                day: 1,
            }),
        })),
        contacts: vec![pb::Contact {
            name: "Lin Fang".into(),
            role: "finance".into(),
            phone: "+86 592 555 0100".into(),
            email: "lin.fang@example.cn".into(),
            primary: true,
            ..Default::default()
        }],
        ..Default::default()
    }
}

/// Registers an ACTIVE customer with a limit of `limit_minor` CNY through the real API
/// (intake, then a maker and a checker in limits) and waits until Authorize can approve it.
pub async fn prepare_customer(
    suite: &Suite,
    tokens: &Tokens,
    seed: u64,
    limit_minor: i64,
) -> Result<String> {
    let mut intake = IntakeServiceClient::new(suite.channel.clone());
    let mut limits = LimitServiceClient::new(suite.channel.clone());
    let customer = intake
        .create_customer(authed(
            pb::CreateCustomerRequest {
                request_id: format!("bench-customer-{seed}"),
                customer: Some(enterprise(
                    &format!("Bench Trading Co {seed}"),
                    &uscc(seed)?,
                )),
            },
            &tokens.clerk,
        ))
        .await
        .context("CreateCustomer")?
        .into_inner()
        .customer
        .context("CreateCustomer answered no customer")?;
    let customer_id = customer.customer_id;
    intake
        .set_customer_status(authed(
            pb::SetCustomerStatusRequest {
                customer_id: customer_id.clone(),
                status: pb::CustomerStatus::Active as i32,
                reason: "approved for credit".into(),
                etag: String::new(),
            },
            &tokens.clerk,
        ))
        .await
        .context("SetCustomerStatus")?;

    // Limits learns of the customer from intake's events, a moment later.
    let deadline = Instant::now() + Duration::from_secs(30);
    let pending = loop {
        let attempt = limits
            .request_limit_change(authed(
                pb::RequestLimitChangeRequest {
                    request_id: format!("bench-limit-{seed}"),
                    scope: Some(pb::LimitScope {
                        scope: Some(pb::limit_scope::Scope::CustomerId(customer_id.clone())),
                    }),
                    amount: cny(limit_minor),
                    reason: "benchmark".into(),
                    ..Default::default()
                },
                &tokens.maker,
            ))
            .await;
        match attempt {
            Ok(response) => {
                break response
                    .into_inner()
                    .limit_request
                    .context("RequestLimitChange answered no request")?;
            }
            Err(status) if status.code() == Code::NotFound && Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(25)).await;
            }
            Err(status) => bail!("RequestLimitChange: {status:?}"),
        }
    };
    // Each step of the request's approval chain, by a person holding its role (a large limit
    // goes finance, risk, the general manager; a small one a credit manager).
    let mut request = pending;
    for step in 0..8 {
        if request.status() != pb::ApprovalStatus::Pending {
            break;
        }
        let roles = request
            .approval_chain
            .as_ref()
            .and_then(|chain| {
                let index = usize::try_from(chain.current_step_index?).ok()?;
                chain.steps.get(index)
            })
            .map(|step| step.roles.clone())
            .unwrap_or_default();
        request = limits
            .decide_limit_request(authed(
                pb::DecideLimitRequestRequest {
                    request_id: format!("bench-limit-{seed}-decision-{step}"),
                    limit_request_id: request.limit_request_id.clone(),
                    decision: pb::ApprovalDecision::Approve as i32,
                    reason: "approved".into(),
                },
                tokens.decider_for(&roles),
            ))
            .await
            .context("DecideLimitRequest")?
            .into_inner()
            .limit_request
            .context("DecideLimitRequest answered no request")?;
    }

    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let check = limits
            .check_credit(authed(
                pb::CheckCreditRequest {
                    customer_id: customer_id.clone(),
                    amount: cny(100),
                    order_id: "what-if".into(),
                },
                &tokens.order_entry,
            ))
            .await;
        if let Ok(response) = &check
            && response.get_ref().decision() == pb::AuthorizationDecision::Approved
        {
            return Ok(customer_id);
        }
        if Instant::now() >= deadline {
            bail!("{customer_id} never became approvable; last answer: {check:?}");
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

/// Puts up security for a customer through the real API: a cash deposit of `deposit_minor`
/// CNY and a credit insurance policy insuring as much (90 % covered), each registered by the
/// maker and approved by the checker. Every order beyond the customer's limit is then decided
/// on limit + security: the secured Authorize the benchmark measures beside the plain one.
pub async fn secure_customer(
    suite: &Suite,
    tokens: &Tokens,
    customer_id: &str,
    seed: u64,
    deposit_minor: i64,
) -> Result<()> {
    use chrono::Datelike;
    let mut limits = LimitServiceClient::new(suite.channel.clone());
    let mut approvals = credit_proto::v1::approval_service_client::ApprovalServiceClient::new(
        suite.channel.clone(),
    );
    let year_ahead = chrono::Utc::now().date_naive() + chrono::Duration::days(365);
    let securities = [
        pb::Security {
            customer_id: customer_id.to_owned(),
            kind: pb::SecurityKind::Deposit as i32,
            amount: cny(deposit_minor),
            provider: "benchmark cash deposit".into(),
            ..Default::default()
        },
        pb::Security {
            customer_id: customer_id.to_owned(),
            kind: pb::SecurityKind::CreditInsurance as i32,
            amount: cny(deposit_minor),
            share_covered_percent: "90".into(),
            provider: "benchmark insurer".into(),
            valid_until: Some(pb::Date {
                year: year_ahead.year(),
                month: i32::try_from(year_ahead.month()).unwrap_or(12),
                day: i32::try_from(year_ahead.day()).unwrap_or(1),
            }),
            ..Default::default()
        },
    ];
    for (index, security) in securities.into_iter().enumerate() {
        let registered = limits
            .register_security(authed(
                pb::RegisterSecurityRequest {
                    request_id: format!("bench-security-{seed}-{index}"),
                    security: Some(security),
                    reason: "benchmark".into(),
                },
                &tokens.maker,
            ))
            .await
            .context("RegisterSecurity")?
            .into_inner()
            .security
            .context("RegisterSecurity answered no security")?;
        approvals
            .decide_approval_step(authed(
                pb::DecideApprovalStepRequest {
                    request_id: format!("bench-security-{seed}-{index}-check"),
                    decision_kind: pb::DecisionKind::SecurityChange as i32,
                    record_id: registered.security_id,
                    step_index: 0,
                    verdict: pb::ApprovalVerdict::Approve as i32,
                    note: "benchmark".into(),
                    release_conditions: Vec::new(),
                },
                &tokens.checker,
            ))
            .await
            .context("DecideApprovalStep")?;
    }
    Ok(())
}

/// What the suite's ledger says of a customer afterwards.
#[derive(Debug)]
pub struct Position {
    /// What the customer may use: the limit, plus the security that extends it.
    pub limit_minor: i64,
    pub open_holds_minor: i64,
    pub exposure_minor: i64,
}

pub async fn position(suite: &Suite, tokens: &Tokens, customer_id: &str) -> Result<Position> {
    let exposure = LimitServiceClient::new(suite.channel.clone())
        .get_exposure(authed(
            pb::GetExposureRequest {
                scope: Some(pb::LimitScope {
                    scope: Some(pb::limit_scope::Scope::CustomerId(customer_id.to_owned())),
                }),
            },
            &tokens.order_entry,
        ))
        .await
        .context("GetExposure")?
        .into_inner()
        .exposure
        .context("GetExposure answered no exposure")?;
    let capacity = exposure
        .secured_position
        .as_ref()
        .and_then(|position| position.capacity.as_ref());
    Ok(Position {
        limit_minor: minor(capacity.or(exposure.limit.as_ref()))?,
        open_holds_minor: minor(exposure.open_holds.as_ref())?,
        exposure_minor: minor(exposure.exposure.as_ref())?,
    })
}

/// Authorize through the gRPC API.
#[derive(Debug, Clone)]
pub struct Authorize {
    pub client: LimitServiceClient<Channel>,
    pub token: MetadataValue<Ascii>,
    pub customer_id: String,
    /// Tells runs apart in the idempotency keys.
    pub run: String,
}

impl Target for Authorize {
    async fn call(&mut self, index: u64) -> Result<Outcome> {
        let amount_minor = crate::amount_minor(index);
        let key = format!("{}-{index}", self.run);
        let response = self
            .client
            .authorize(authed(
                pb::AuthorizeRequest {
                    customer_id: self.customer_id.clone(),
                    order_id: format!("order-{key}"),
                    amount: cny(amount_minor),
                    idempotency_key: key,
                    hold_ttl: None,
                },
                &self.token,
            ))
            .await
            .map_err(|status| anyhow::anyhow!("{:?}: {}", status.code(), status.message()))?
            .into_inner();
        Ok(match response.decision() {
            pb::AuthorizationDecision::Approved => Outcome::Approved { amount_minor },
            pb::AuthorizationDecision::Referred => Outcome::Referred,
            pb::AuthorizationDecision::Declined => Outcome::Declined,
            other => bail!("unexpected decision {other:?}"),
        })
    }
}
