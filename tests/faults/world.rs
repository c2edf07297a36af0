//! The scenario's world, made through the generated clients as an ERP and credit staff would:
//! customers with limits, orders from 32 concurrent callers, invoices and payments against
//! approved orders, and the bank-style check every scenario ends with.

use std::collections::BTreeMap;
use std::str::FromStr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use credit_e2e_tests::{Authed, Bearer, uscc};
use credit_proto::v1 as pb;
use credit_proto::v1::collections_service_client::CollectionsServiceClient;
use credit_proto::v1::intake_service_client::IntakeServiceClient;
use credit_proto::v1::limit_service_client::LimitServiceClient;
use rust_decimal::Decimal;
use tonic::Code;
use tonic::transport::Channel;

use crate::harness::{Storage, issue_token};

/// Each customer's limit, CNY.
pub const LIMIT: &str = "200000.00";

pub fn cny(amount: Decimal) -> Option<pb::Money> {
    Some(pb::Money {
        amount: amount.round_dp(2).to_string(),
        currency: "CNY".into(),
    })
}

pub fn decimal(money: Option<&pb::Money>) -> Decimal {
    Decimal::from_str(&money.expect("an amount").amount).unwrap()
}

fn bearer(token: &str) -> Bearer {
    Bearer::new(token)
}

/// The people and systems of the scenario, each with a token issued by the CLI.
#[derive(Debug, Clone)]
pub struct Tokens {
    pub admin: String,
    pub clerk: String,
    pub maker: String,
    pub checker: String,
    pub erp: String,
}

impl Tokens {
    pub fn issue(storage: &Storage) -> Self {
        Self {
            admin: issue_token(storage, "faults-admin", &["ADMIN"], None),
            clerk: issue_token(
                storage,
                "faults-clerk",
                &["ANALYST", "CREDIT_MANAGER"],
                None,
            ),
            maker: issue_token(storage, "faults-maker", &["ANALYST"], None),
            checker: issue_token(
                storage,
                "faults-checker",
                &["CREDIT_MANAGER"],
                Some("100000000"),
            ),
            erp: issue_token(storage, "faults-erp", &["ORDER_ENTRY"], None),
        }
    }
}

pub fn limits(channel: &Channel, token: &str) -> LimitServiceClient<Authed> {
    LimitServiceClient::with_interceptor(channel.clone(), bearer(token))
}

pub fn collections(channel: &Channel, token: &str) -> CollectionsServiceClient<Authed> {
    CollectionsServiceClient::with_interceptor(channel.clone(), bearer(token))
}

fn intake(channel: &Channel, token: &str) -> IntakeServiceClient<Authed> {
    IntakeServiceClient::with_interceptor(channel.clone(), bearer(token))
}

fn customer_scope(customer_id: &str) -> Option<pb::LimitScope> {
    Some(pb::LimitScope {
        scope: Some(pb::limit_scope::Scope::CustomerId(customer_id.into())),
    })
}

/// Where the scenario reaches the services: intake, rating and collections at `front`, limits
/// at `limits` (the same process, or another one).
#[derive(Debug, Clone)]
pub struct Endpoints {
    pub front: Channel,
    pub limits: Channel,
}

impl Endpoints {
    pub fn one(channel: &Channel) -> Self {
        Self {
            front: channel.clone(),
            limits: channel.clone(),
        }
    }
}

/// Registers `count` ACTIVE customers, grants each [`LIMIT`] through a maker and a checker,
/// and waits until orders can be approved.
pub async fn prepare_customers(
    endpoints: &Endpoints,
    tokens: &Tokens,
    run: &str,
    count: u64,
) -> Vec<String> {
    let channel = &endpoints.front;
    let mut customers = Vec::new();
    for seed in 0..count {
        let seed_number = uuid::Uuid::new_v4().as_u128() as u64 % 900_000_000 + seed;
        let mut intake = intake(channel, &tokens.clerk);
        let customer = intake
            .create_customer(pb::CreateCustomerRequest {
                request_id: format!("{run}-customer-{seed}"),
                customer: Some(pb::Customer {
                    kind: pb::CustomerKind::Enterprise as i32,
                    country: "CN".into(),
                    details: Some(pb::customer::Details::Enterprise(pb::EnterpriseDetails {
                        legal_name: format!("Faults Trading {run} {seed}"),
                        registration_number: uscc(seed_number),
                        registered_capital: cny(Decimal::from(5_000_000)),
                        legal_representative: "Chen Wei".into(),
                        industry_code: "F51".into(),
                        founding_date: Some(pb::Date {
                            year: 2009,
                            month: 4,
                            day: 1,
                        }),
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
        grant(&endpoints.limits, tokens, &customer.customer_id, run).await;
        customers.push(customer.customer_id);
    }
    for customer_id in &customers {
        wait_until_approvable(&endpoints.limits, tokens, customer_id).await;
    }
    customers
}

async fn grant(channel: &Channel, tokens: &Tokens, customer_id: &str, run: &str) {
    let mut maker = limits(channel, &tokens.maker);
    let mut checker = limits(channel, &tokens.checker);
    let deadline = Instant::now() + Duration::from_secs(60);
    let pending = loop {
        match maker
            .request_limit_change(pb::RequestLimitChangeRequest {
                request_id: format!("{run}-limit-{customer_id}"),
                scope: customer_scope(customer_id),
                amount: cny(Decimal::from_str(LIMIT).unwrap()),
                reason: "onboarding".into(),
                ..Default::default()
            })
            .await
        {
            Ok(response) => break response.into_inner().limit_request.unwrap(),
            // Limits learns of the customer from intake's events, a moment later.
            Err(status) if status.code() == Code::NotFound && Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            Err(status) => panic!("RequestLimitChange: {status:?}"),
        }
    };
    checker
        .decide_limit_request(pb::DecideLimitRequestRequest {
            request_id: format!("{run}-decision-{customer_id}"),
            limit_request_id: pending.limit_request_id,
            decision: pb::ApprovalDecision::Approve as i32,
            reason: "approved".into(),
        })
        .await
        .unwrap();
}

async fn wait_until_approvable(channel: &Channel, tokens: &Tokens, customer_id: &str) {
    let mut client = limits(channel, &tokens.erp);
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let answer = client
            .check_credit(pb::CheckCreditRequest {
                customer_id: customer_id.into(),
                amount: cny(Decimal::ONE_HUNDRED),
                order_id: "probe".into(),
            })
            .await;
        if let Ok(answer) = answer
            && answer.into_inner().decision == pb::AuthorizationDecision::Approved as i32
        {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{customer_id} never became approvable"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// What the callers saw: every approval with its amount, and how other calls ended.
#[derive(Debug, Default)]
pub struct Seen {
    /// hold id -> (customer, amount) of every APPROVED answer a caller received.
    pub approved: BTreeMap<String, (String, Decimal)>,
    pub referred_or_declined: u64,
    /// gRPC code -> count, for calls that failed.
    pub failures: BTreeMap<String, u64>,
    /// customer -> invoices posted (answered OK), CNY.
    pub invoiced: BTreeMap<String, Decimal>,
    /// customer -> payments recorded (answered OK), CNY.
    pub paid: BTreeMap<String, Decimal>,
    /// Holds already invoiced (captured), so an invoice is posted once per hold.
    pub invoiced_holds: Vec<String>,
}

impl Seen {
    pub fn approvals(&self) -> usize {
        self.approved.len()
    }

    fn failed(&mut self, status: &tonic::Status) {
        *self
            .failures
            .entry(format!("{:?}", status.code()))
            .or_default() += 1;
    }
}

pub type SharedSeen = Arc<Mutex<Seen>>;

/// `callers` concurrent order-entry callers on `channels` (round robin), ordering for
/// `customers` until `stop`; each order 500–8,000 CNY with a key of its own.
pub fn order_load(
    channels: Vec<Channel>,
    tokens: &Tokens,
    customers: Vec<String>,
    callers: usize,
    seen: SharedSeen,
    stop: tokio::sync::watch::Receiver<bool>,
) -> Vec<tokio::task::JoinHandle<()>> {
    (0..callers)
        .map(|caller| {
            let mut client = limits(&channels[caller % channels.len()], &tokens.erp);
            let customers = customers.clone();
            let seen = seen.clone();
            let stop = stop.clone();
            tokio::spawn(async move {
                let mut order = 0_u64;
                while !*stop.borrow() {
                    order += 1;
                    let customer_id = &customers[(caller + order as usize) % customers.len()];
                    let amount =
                        Decimal::from(500 + (order * 7919 + caller as u64 * 104_729) % 7_500);
                    let call = client.authorize(pb::AuthorizeRequest {
                        customer_id: customer_id.clone(),
                        order_id: format!("order-{caller}-{order}"),
                        amount: cny(amount),
                        idempotency_key: format!("key-{caller}-{order}-{}", uuid::Uuid::new_v4()),
                        hold_ttl: None,
                    });
                    let answer = tokio::time::timeout(Duration::from_secs(10), call).await;
                    let mut seen = seen.lock().unwrap();
                    match answer {
                        Ok(Ok(response)) => {
                            let response = response.into_inner();
                            if response.decision == pb::AuthorizationDecision::Approved as i32 {
                                seen.approved
                                    .insert(response.hold_id, (customer_id.clone(), amount));
                            } else {
                                seen.referred_or_declined += 1;
                            }
                        }
                        Ok(Err(status)) => seen.failed(&status),
                        Err(_) => {
                            *seen.failures.entry("timeout".into()).or_default() += 1;
                        }
                    }
                }
            })
        })
        .collect()
}

/// Billing: every so often, invoices an approved order (capturing its hold) and records a
/// payment of half of it, through collections. Calls that fail are simply not counted.
pub fn billing_load(
    channel: Channel,
    tokens: &Tokens,
    seen: SharedSeen,
    stop: tokio::sync::watch::Receiver<bool>,
) -> tokio::task::JoinHandle<()> {
    let mut client = collections(&channel, &tokens.clerk);
    tokio::spawn(async move {
        let mut number = 0_u64;
        while !*stop.borrow() {
            tokio::time::sleep(Duration::from_millis(40)).await;
            let next = {
                let seen = seen.lock().unwrap();
                seen.approved
                    .iter()
                    .find(|(hold_id, _)| !seen.invoiced_holds.contains(hold_id))
                    .map(|(hold_id, (customer_id, amount))| {
                        (hold_id.clone(), customer_id.clone(), *amount)
                    })
            };
            let Some((hold_id, customer_id, amount)) = next else {
                continue;
            };
            seen.lock().unwrap().invoiced_holds.push(hold_id.clone());
            number += 1;
            let posted = tokio::time::timeout(
                Duration::from_secs(10),
                client.post_invoice(pb::PostInvoiceRequest {
                    customer_id: customer_id.clone(),
                    invoice_number: format!("INV-{number}-{hold_id}"),
                    order_id: String::new(),
                    hold_id: hold_id.clone(),
                    amount: cny(amount),
                    issue_date: Some(pb::Date {
                        year: 2026,
                        month: 12,
                        day: 1,
                    }),
                    due: Some(pb::post_invoice_request::Due::DueDate(pb::Date {
                        year: 2027,
                        month: 1,
                        day: 30,
                    })),
                }),
            )
            .await;
            let Ok(Ok(posted)) = posted else {
                // Not counted: the test cannot tell whether an invoice whose answer was lost
                // was posted, so it asks collections at the end (see `settle_billing`).
                continue;
            };
            let invoice = posted.into_inner().invoice.unwrap();
            *seen
                .lock()
                .unwrap()
                .invoiced
                .entry(customer_id.clone())
                .or_default() += amount;
            let half = (amount / Decimal::TWO).round_dp(2);
            let paid = tokio::time::timeout(
                Duration::from_secs(10),
                client.record_payment(pb::RecordPaymentRequest {
                    customer_id: customer_id.clone(),
                    amount: cny(half),
                    value_date: Some(pb::Date {
                        year: 2026,
                        month: 12,
                        day: 5,
                    }),
                    reference: format!("PAY-{number}-{hold_id}"),
                    allocations: vec![pb::AllocationInstruction {
                        invoice_id: invoice.invoice_id,
                        amount: cny(half),
                    }],
                }),
            )
            .await;
            if let Ok(Ok(_)) = paid {
                *seen.lock().unwrap().paid.entry(customer_id).or_default() += half;
            }
        }
    })
}

/// Stops the load and waits for every caller to finish its call in flight.
pub async fn stop_load(
    stop: tokio::sync::watch::Sender<bool>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
) {
    let _ = stop.send(true);
    for task in tasks {
        let _ = task.await;
    }
}

/// Collections' own figure of a customer's open receivables (what limits must reflect): the
/// sum of open invoice amounts, read through the API. Calls whose answers were lost to a
/// fault may have been posted or not; this is the truth the bank check compares with.
pub async fn open_receivables(channel: &Channel, tokens: &Tokens, customer_id: &str) -> Decimal {
    let mut client = collections(channel, &tokens.admin);
    let mut total = Decimal::ZERO;
    let mut page_token = String::new();
    loop {
        let page = client
            .list_invoices(pb::ListInvoicesRequest {
                customer_id: customer_id.into(),
                page_size: 1000,
                page_token: page_token.clone(),
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner();
        for invoice in &page.invoices {
            total += decimal(invoice.open_amount.as_ref());
        }
        if page.next_page_token.is_empty() {
            return total;
        }
        page_token = page.next_page_token;
    }
}

/// The bank-style check every scenario ends with, once the faults are over:
/// - every approval a caller saw is a durable hold in the ledger;
/// - for every customer, the ledger's exposure (open holds + receivables) stays within its
///   limit, and its receivables equal collections' open invoices (every invoice and payment
///   reached limits, once);
/// - the cached exposure equals the ledger for every customer and group (ReconcileExposure,
///   dry run), once the background repair has had its turn.
pub async fn bank_check(endpoints: &Endpoints, tokens: &Tokens, customers: &[String], seen: &Seen) {
    eprintln!(
        "bank check: {} approvals seen, {} referred or declined, failures {:?}, {} invoices and {} payments answered",
        seen.approvals(),
        seen.referred_or_declined,
        seen.failures,
        seen.invoiced.len(),
        seen.paid.len(),
    );
    let mut reader = limits(&endpoints.limits, &tokens.admin);
    for (hold_id, (customer_id, amount)) in &seen.approved {
        let hold = reader
            .get_hold(pb::GetHoldRequest {
                hold_id: hold_id.clone(),
            })
            .await
            .unwrap_or_else(|status| {
                panic!(
                    "approval {hold_id} of {amount} CNY to {customer_id} is not durable: {status:?}"
                )
            })
            .into_inner()
            .hold
            .unwrap();
        assert_eq!(&hold.customer_id, customer_id);
    }
    let limit = Decimal::from_str(LIMIT).unwrap();
    for customer_id in customers {
        let expected = open_receivables(&endpoints.front, tokens, customer_id).await;
        let deadline = Instant::now() + Duration::from_secs(60);
        let exposure = loop {
            let exposure = reader
                .get_exposure(pb::GetExposureRequest {
                    scope: customer_scope(customer_id),
                })
                .await
                .unwrap()
                .into_inner()
                .exposure
                .unwrap();
            if decimal(exposure.open_receivables.as_ref()) == expected {
                break exposure;
            }
            assert!(
                Instant::now() < deadline,
                "{customer_id}: limits' receivables {} never reached collections' open invoices {expected}",
                decimal(exposure.open_receivables.as_ref())
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        };
        let total = decimal(exposure.exposure.as_ref());
        assert!(
            total <= limit,
            "{customer_id}: exposure {total} beyond the limit {limit}"
        );
    }
    let deadline = Instant::now() + Duration::from_secs(120);
    let mut reported = false;
    loop {
        let report = reader
            .reconcile_exposure(pb::ReconcileExposureRequest {
                customer_ids: customers.to_vec(),
                dry_run: true,
            })
            .await
            .unwrap()
            .into_inner();
        if report.differences.is_empty() {
            break;
        }
        if !reported {
            eprintln!(
                "bank check: the cache differs from the ledger, waiting for the repair: {:?}",
                report.differences
            );
            reported = true;
        }
        assert!(
            Instant::now() < deadline,
            "the cache still differs from the ledger: {:?}",
            report.differences
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}
