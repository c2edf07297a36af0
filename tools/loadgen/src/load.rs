//! The open-loop generator: a fixed offered rate, a pool of callers, latency measured from the
//! *scheduled* start of each request (coordinated omission corrected), an HDR histogram.
//!
//! A dispatcher OS thread (not a tokio timer, whose resolution is 1 ms) releases request `i` at
//! `t0 + i / rate` into a queue; `callers` tokio tasks take the next released request when they
//! are free. When every caller is busy, released requests wait in the queue and the wait counts
//! in their latency, as it would for a clerk whose order was due at that moment. After the
//! duration no new request is started; requests released but never started are reported as
//! backlog, and the rate actually accepted is reported beside the offered one.

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use hdrhistogram::Histogram;
use tokio::sync::{Mutex, mpsc};

use crate::machine::{self, MachineUse};

/// What one call decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Approved { amount_minor: i64 },
    Referred,
    Declined,
}

/// Something to call: a clone per caller.
pub trait Target: Clone + Send + 'static {
    fn call(&mut self, index: u64) -> impl Future<Output = Result<Outcome>> + Send;
}

#[derive(Debug, Clone, Copy)]
pub struct Plan {
    pub rate: u32,
    pub duration: Duration,
    pub callers: usize,
}

/// One run's numbers.
#[derive(Debug)]
pub struct Report {
    pub plan: Plan,
    /// Requests the schedule released during the duration.
    pub released: u64,
    /// Requests started (the others were still queued when the duration ended).
    pub started: u64,
    pub approved: u64,
    pub referred: u64,
    pub declined: u64,
    pub errors: u64,
    pub first_error: Option<String>,
    pub approved_minor: i64,
    /// From the first scheduled start to the last answer.
    pub elapsed: Duration,
    /// Latency from the scheduled start (coordinated omission corrected), microseconds.
    pub latency: Histogram<u64>,
    /// Latency from the actual send (service time only), microseconds.
    pub service: Histogram<u64>,
    /// The whole machine's CPU per answer and steal over the run, where Linux tells.
    pub machine: Option<MachineUse>,
}

impl Report {
    pub fn answered(&self) -> u64 {
        self.approved + self.referred + self.declined
    }

    /// Answers (errors excluded) per second of the run.
    pub fn accepted_rate(&self) -> f64 {
        let seconds = self.elapsed.as_secs_f64();
        if seconds > 0.0 {
            self.answered() as f64 / seconds
        } else {
            0.0
        }
    }
}

fn histogram() -> Result<Histogram<u64>> {
    Histogram::new_with_bounds(1, 600_000_000, 3).context("histogram bounds")
}

fn micros(duration: Duration) -> u64 {
    u64::try_from(duration.as_micros())
        .unwrap_or(u64::MAX)
        .max(1)
}

struct CallerTally {
    approved: u64,
    referred: u64,
    declined: u64,
    errors: u64,
    first_error: Option<String>,
    approved_minor: i64,
    started: u64,
    last_answer: Option<Instant>,
    latency: Histogram<u64>,
    service: Histogram<u64>,
}

/// The dispatcher sleeps at least this long between releases; below 4,000/s (scenario A) it
/// sleeps to each request's time exactly.
const RELEASE_STEP: Duration = Duration::from_micros(250);

/// Runs `plan` against `target` and returns what it measured.
pub async fn run<T: Target>(plan: Plan, target: T) -> Result<Report> {
    anyhow::ensure!(
        plan.rate > 0 && plan.callers > 0,
        "rate and callers must be > 0"
    );
    let (release, released) = mpsc::unbounded_channel::<(u64, Instant)>();
    let released = Arc::new(Mutex::new(released));
    // A short lead so every caller is waiting when the first request is due.
    let t0 = Instant::now() + Duration::from_millis(50);
    let end = t0 + plan.duration;
    let total = u64::from(plan.rate) * plan.duration.as_secs().max(1);
    let interval_nanos = 1_000_000_000f64 / f64::from(plan.rate);

    let dispatcher = std::thread::Builder::new()
        .name("loadgen-dispatch".into())
        .spawn(move || {
            let mut count = 0u64;
            let mut next_wake = t0;
            for index in 0..total {
                let due = t0 + Duration::from_nanos((index as f64 * interval_nanos) as u64);
                if due >= end {
                    break;
                }
                let now = Instant::now();
                if due > now {
                    // At most one wake-up per RELEASE_STEP: at 20,000/s a wake-up per request
                    // would take CPU from the system measured. A request released late still
                    // counts its latency from `due`.
                    let wake = due.max(next_wake);
                    if wake > now {
                        std::thread::sleep(wake - now);
                    }
                    next_wake = Instant::now() + RELEASE_STEP;
                }
                if release.send((index, due)).is_err() {
                    break;
                }
                count += 1;
            }
            count
        })
        .context("starting the dispatcher thread")?;

    let cpu_before = machine::sample();
    let mut callers = Vec::with_capacity(plan.callers);
    for _ in 0..plan.callers {
        let released = released.clone();
        let mut target = target.clone();
        callers.push(tokio::spawn(async move {
            let mut tally = CallerTally {
                approved: 0,
                referred: 0,
                declined: 0,
                errors: 0,
                first_error: None,
                approved_minor: 0,
                started: 0,
                last_answer: None,
                latency: histogram()?,
                service: histogram()?,
            };
            loop {
                let next = released.lock().await.recv().await;
                let Some((index, due)) = next else { break };
                let sent = Instant::now();
                if sent >= end {
                    // Due within the run but not started before its end: backlog.
                    break;
                }
                tally.started += 1;
                let result = target.call(index).await;
                let answered = Instant::now();
                tally.last_answer = Some(answered);
                tally.latency.saturating_record(micros(answered - due));
                tally.service.saturating_record(micros(answered - sent));
                match result {
                    Ok(Outcome::Approved { amount_minor }) => {
                        tally.approved += 1;
                        tally.approved_minor += amount_minor;
                    }
                    Ok(Outcome::Referred) => tally.referred += 1,
                    Ok(Outcome::Declined) => tally.declined += 1,
                    Err(error) => {
                        tally.errors += 1;
                        if tally.first_error.is_none() {
                            tally.first_error = Some(format!("{error:#}"));
                        }
                    }
                }
            }
            anyhow::Ok(tally)
        }));
    }

    let mut report = Report {
        plan,
        released: 0,
        started: 0,
        approved: 0,
        referred: 0,
        declined: 0,
        errors: 0,
        first_error: None,
        approved_minor: 0,
        elapsed: Duration::ZERO,
        latency: histogram()?,
        service: histogram()?,
        machine: None,
    };
    let mut last_answer = t0;
    for caller in callers {
        let tally = caller.await.context("a caller task failed")??;
        report.started += tally.started;
        report.approved += tally.approved;
        report.referred += tally.referred;
        report.declined += tally.declined;
        report.errors += tally.errors;
        report.approved_minor += tally.approved_minor;
        if report.first_error.is_none() {
            report.first_error = tally.first_error;
        }
        if let Some(at) = tally.last_answer {
            last_answer = last_answer.max(at);
        }
        report
            .latency
            .add(&tally.latency)
            .context("merging histograms")?;
        report
            .service
            .add(&tally.service)
            .context("merging histograms")?;
    }
    report.released = tokio::task::spawn_blocking(move || dispatcher.join())
        .await
        .context("joining the dispatcher")?
        .map_err(|_| anyhow::anyhow!("the dispatcher thread panicked"))?;
    report.elapsed = last_answer.saturating_duration_since(t0);
    report.machine = cpu_before
        .zip(machine::sample())
        .and_then(|(before, after)| machine::between(before, after, report.answered()));
    Ok(report)
}
