//! `credit-loadgen collections`: does the cost of PostInvoice, RecordPayment and one page of
//! GetAging depend on how many open invoices the customer carries (issue #19)?
//!
//! Two customers registered through the real API, one given `--small` open invoices and the
//! other `--large`, posted through `PostInvoice` itself (many callers, unmeasured). Then, on
//! each customer in turn and with the same shape of work, measured through the gRPC API:
//!
//! - GetAging, one page of 50 lines as of today, one caller;
//! - RecordPayment without allocations (oldest due first), one caller;
//! - PostInvoice, `--callers` callers on the one customer (the issue's 8), closed loop.
//!
//! The open invoices were issued over the last 60 days with 30 days' terms, so about half
//! are overdue, as on a real ledger. Payments are small (1.00 CNY): each reduces the oldest
//! invoice, a few close one; the work per payment is the same on both customers.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use chrono::{Days, Utc};
use credit_proto::v1 as pb;
use credit_proto::v1::collections_service_client::CollectionsServiceClient;
use hdrhistogram::Histogram;
use tonic::metadata::{Ascii, MetadataValue};
use tonic::transport::Channel;

use crate::world::{self, BenchDatabase, Suite, Tokens, authed, cny};

/// What the collections benchmark is told.
#[derive(Debug, Clone)]
pub struct CollectionsArgs {
    pub small: u64,
    pub large: u64,
    pub callers: usize,
    pub aging_calls: u64,
    pub payments: u64,
    pub invoices: u64,
    pub grpc_connections: usize,
    pub suite_connections: u32,
}

/// One operation measured on one customer.
#[derive(Debug)]
struct Measured {
    operation: &'static str,
    open_before: u64,
    callers: usize,
    calls: u64,
    errors: u64,
    elapsed: Duration,
    latency: Histogram<u64>,
}

impl Measured {
    fn rate(&self) -> f64 {
        self.calls as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }
}

fn pb_date(date: chrono::NaiveDate) -> pb::Date {
    use chrono::Datelike;
    pb::Date {
        year: date.year(),
        month: i32::try_from(date.month()).unwrap_or(1),
        day: i32::try_from(date.day()).unwrap_or(1),
    }
}

/// The `index`-th invoice of a customer: issued over the last 60 days, due 30 days later,
/// 100.00 to 160.00 CNY.
fn invoice(customer_id: &str, prefix: &str, index: u64) -> pb::PostInvoiceRequest {
    let today = Utc::now().date_naive();
    let issued = today - Days::new(index % 60);
    pb::PostInvoiceRequest {
        customer_id: customer_id.to_owned(),
        invoice_number: format!("{prefix}-{index:07}"),
        order_id: String::new(),
        hold_id: String::new(),
        amount: cny(crate::amount_minor(index)),
        issue_date: Some(pb_date(issued)),
        due: Some(pb::post_invoice_request::Due::DueDate(pb_date(
            issued + Days::new(30),
        ))),
    }
}

/// Runs `calls` calls of `call` on `callers` tasks, closed loop (each caller sends its next
/// call when the previous one answered); latency per call in microseconds.
async fn closed_loop<F, Fut>(
    callers: usize,
    calls: u64,
    call: F,
) -> Result<(Duration, Histogram<u64>, u64)>
where
    F: Fn(u64) -> Fut + Clone + Send + Sync + 'static,
    Fut: std::future::Future<Output = Result<(), tonic::Status>> + Send + 'static,
{
    let next = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..callers.max(1) {
        let next = next.clone();
        let call = call.clone();
        tasks.push(tokio::spawn(async move {
            let mut latency = Histogram::<u64>::new_with_bounds(1, 600_000_000, 3)?;
            let mut errors = 0_u64;
            loop {
                let index = next.fetch_add(1, Ordering::Relaxed);
                if index >= calls {
                    break;
                }
                let sent = Instant::now();
                if let Err(status) = call(index).await {
                    if errors == 0 {
                        eprintln!("   first error: {status}");
                    }
                    errors += 1;
                }
                let micros = u64::try_from(sent.elapsed().as_micros()).unwrap_or(u64::MAX);
                latency.saturating_record(micros.max(1));
            }
            anyhow::Ok((latency, errors))
        }));
    }
    let mut latency = Histogram::<u64>::new_with_bounds(1, 600_000_000, 3)?;
    let mut errors = 0;
    for task in tasks {
        let (own, own_errors) = task.await??;
        latency.add(own)?;
        errors += own_errors;
    }
    Ok((started.elapsed(), latency, errors))
}

#[derive(Clone)]
struct Client {
    collections: CollectionsServiceClient<Channel>,
    token: MetadataValue<Ascii>,
}

impl Client {
    async fn post(&self, request: pb::PostInvoiceRequest) -> Result<(), tonic::Status> {
        self.collections
            .clone()
            .post_invoice(authed(request, &self.token))
            .await
            .map(drop)
    }

    async fn pay(&self, customer_id: &str, reference: String) -> Result<(), tonic::Status> {
        self.collections
            .clone()
            .record_payment(authed(
                pb::RecordPaymentRequest {
                    customer_id: customer_id.to_owned(),
                    amount: cny(100),
                    value_date: Some(pb_date(Utc::now().date_naive())),
                    reference,
                    allocations: Vec::new(),
                },
                &self.token,
            ))
            .await
            .map(drop)
    }

    async fn aging_page(&self, customer_id: &str) -> Result<(), tonic::Status> {
        let page = self
            .collections
            .clone()
            .get_aging(authed(
                pb::GetAgingRequest {
                    scope: Some(pb::get_aging_request::Scope::CustomerId(
                        customer_id.to_owned(),
                    )),
                    page_size: 50,
                    ..Default::default()
                },
                &self.token,
            ))
            .await?
            .into_inner();
        if page.invoices.is_empty() {
            return Err(tonic::Status::internal("an aging page without lines"));
        }
        Ok(())
    }
}

/// Gives `customer_id` `count` open invoices through PostInvoice, 16 callers at a time.
async fn fill(client: &Client, customer_id: &str, count: u64) -> Result<()> {
    let started = Instant::now();
    let customer = customer_id.to_owned();
    let filler = client.clone();
    let (_, _, errors) = closed_loop(16, count, move |index| {
        let filler = filler.clone();
        let request = invoice(&customer, "OPEN", index);
        async move { filler.post(request).await }
    })
    .await?;
    anyhow::ensure!(errors == 0, "{errors} invoices were not posted");
    eprintln!(
        "   {count} open invoices posted in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

/// Waits until limits has applied every event of `customer_id` (its exposure stops moving),
/// so that the measured runs do not share the CPU with the backlog of the fill.
async fn wait_until_quiet(suite: &Suite, tokens: &Tokens, customer_id: &str) -> Result<()> {
    let started = Instant::now();
    let mut last = world::position(suite, tokens, customer_id)
        .await?
        .exposure_minor;
    while started.elapsed() < Duration::from_secs(120) {
        tokio::time::sleep(Duration::from_secs(2)).await;
        let now = world::position(suite, tokens, customer_id)
            .await?
            .exposure_minor;
        if now == last {
            return Ok(());
        }
        last = now;
    }
    eprintln!("   warning: exposure of {customer_id} still moving after 120 s");
    Ok(())
}

async fn measure_customer(
    args: &CollectionsArgs,
    client: &Client,
    database: &BenchDatabase,
    customer_id: &str,
    open: u64,
) -> Result<Vec<Measured>> {
    let mut rows = Vec::new();
    database.settle().await?;

    let aging = client.clone();
    let customer = customer_id.to_owned();
    let (elapsed, latency, errors) = closed_loop(1, args.aging_calls, move |_| {
        let aging = aging.clone();
        let customer = customer.clone();
        async move { aging.aging_page(&customer).await }
    })
    .await?;
    rows.push(Measured {
        operation: "GetAging (one page of 50)",
        open_before: open,
        callers: 1,
        calls: args.aging_calls,
        errors,
        elapsed,
        latency,
    });

    let payer = client.clone();
    let customer = customer_id.to_owned();
    let (elapsed, latency, errors) = closed_loop(1, args.payments, move |index| {
        let payer = payer.clone();
        let customer = customer.clone();
        async move { payer.pay(&customer, format!("PAY-{index:07}")).await }
    })
    .await?;
    rows.push(Measured {
        operation: "RecordPayment (oldest due first)",
        open_before: open,
        callers: 1,
        calls: args.payments,
        errors,
        elapsed,
        latency,
    });

    let poster = client.clone();
    let customer = customer_id.to_owned();
    let (elapsed, latency, errors) = closed_loop(args.callers, args.invoices, move |index| {
        let poster = poster.clone();
        let request = invoice(&customer, "NEW", index);
        async move { poster.post(request).await }
    })
    .await?;
    rows.push(Measured {
        operation: "PostInvoice",
        open_before: open,
        callers: args.callers,
        calls: args.invoices,
        errors,
        elapsed,
        latency,
    });
    Ok(rows)
}

fn ms(micros: u64) -> String {
    format!("{:.2}", micros as f64 / 1000.0)
}

/// The benchmark; prints a markdown table. Returns the number of calls that failed.
pub async fn run(
    args: &CollectionsArgs,
    database: &BenchDatabase,
    redis_url: &str,
    prefix: &str,
) -> Result<u64> {
    let suite = Suite::start(
        &database.url,
        redis_url,
        prefix,
        args.suite_connections,
        false,
    )
    .await?;
    eprintln!("== suite serving on {}", suite.addr);
    let tokens: Tokens = suite.tokens().await?;
    let client = Client {
        collections: CollectionsServiceClient::new(suite.connections(args.grpc_connections)),
        token: tokens.clerk.clone(),
    };
    let small = world::prepare_customer(&suite, &tokens, 11, 10_000_000_000)
        .await
        .context("registering the small customer")?;
    let large = world::prepare_customer(&suite, &tokens, 12, 10_000_000_000)
        .await
        .context("registering the large customer")?;
    let mut rows = Vec::new();
    for (customer_id, open) in [(&small, args.small), (&large, args.large)] {
        eprintln!("== customer {customer_id}: {open} open invoices");
        fill(&client, customer_id, open).await?;
        wait_until_quiet(&suite, &tokens, customer_id).await?;
        rows.extend(measure_customer(args, &client, database, customer_id, open).await?);
    }
    suite.stop().await?;

    println!();
    println!(
        "Through the gRPC API, suite on PostgreSQL + Redis in this process; latency per call from send to answer, ms."
    );
    println!();
    println!(
        "| operation | open invoices on the customer | callers | calls | errors | calls/s | p50 | p90 | p99 | max |"
    );
    println!("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    let mut failed = 0;
    for row in &rows {
        failed += row.errors;
        println!(
            "| {} | {} | {} | {} | {} | {:.0} | {} | {} | {} | {} |",
            row.operation,
            row.open_before,
            row.callers,
            row.calls,
            row.errors,
            row.rate(),
            ms(row.latency.value_at_quantile(0.5)),
            ms(row.latency.value_at_quantile(0.9)),
            ms(row.latency.value_at_quantile(0.99)),
            ms(row.latency.max()),
        );
    }
    Ok(failed)
}
