//! `credit-suite events`: the operator's commands for the event pipeline's dead letters, as a
//! client of a running suite (`OperationsService`, ADMIN token).
//!
//! - `list-dead` prints the dead letters waiting for an operator, one line each;
//! - `show ID` prints one with its history;
//! - `replay ID` asks its consumer to apply it again and waits for the outcome;
//! - `drop ID --reason TEXT` closes it without applying it.
//!
//! Exit codes: 0 done (for `replay`: applied); 1 `replay` failed again or was not taken up
//! in time; 2 the command could not be carried out (address, token, connection, a refused
//! call). Rendering is pure ([`render_list`], [`render_letter`]) and tested without a server.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use credit_core::error::ErrorChain;
use credit_proto::v1::operations_service_client::OperationsServiceClient;
use credit_proto::v1::{
    DeadLetter, DeadLetterStatus, DropDeadLetterRequest, GetDeadLetterRequest,
    ListDeadLettersRequest, ListDeadLettersResponse, ReplayDeadLetterRequest,
};
use tonic::transport::Channel;

use crate::client::{ConnectError, SuiteConnection};
use crate::import::{ImportError, SuiteTarget, code_name, resolve_target};
/// How often `replay` asks whether the consumer has taken the replay yet.
const REPLAY_POLL: Duration = Duration::from_millis(250);

pub const EXIT_DONE: u8 = 0;
pub const EXIT_NOT_APPLIED: u8 = 1;
pub const EXIT_ERROR: u8 = 2;

/// `credit-suite events`: the arguments, as parsed by clap.
#[derive(Debug, Clone, clap::Args)]
pub struct EventsArgs {
    #[command(subcommand)]
    pub command: EventsCommand,
    /// Address of the suite, http:// or https:// [default: http:// (https:// with
    /// CREDIT_TLS_CERT_FILE) + CREDIT_LISTEN_ADDR, 127.0.0.1:50051].
    #[arg(long, env = "CREDIT_ADDR", global = true)]
    pub addr: Option<String>,
    /// File holding the bearer token of an ADMIN, when CREDIT_TOKEN is not set
    /// [default: CREDIT_DATA_DIR/admin.token].
    #[arg(long, global = true)]
    pub token_file: Option<PathBuf>,
}

#[derive(Debug, Clone, clap::Subcommand)]
pub enum EventsCommand {
    /// List dead letters waiting for an operator, newest first.
    ListDead {
        /// Only this consumer group's (limits, limits-receivables, rating, collections,
        /// outbox-relay).
        #[arg(long)]
        consumer: Option<String>,
        /// Also list the replayed and dropped ones.
        #[arg(long)]
        all: bool,
        /// At most this many lines.
        #[arg(long, default_value_t = 100)]
        limit: u32,
    },
    /// Show one dead letter with its history.
    Show {
        /// The dead letter's id.
        id: String,
    },
    /// Ask the dead letter's consumer to apply it again, and wait for the outcome.
    Replay {
        /// The dead letter's id.
        id: String,
        /// Why, kept in its history.
        #[arg(long, default_value = "")]
        reason: String,
        /// Seconds to wait for the outcome; 0 returns at once.
        #[arg(long, default_value_t = 30)]
        wait: u64,
    },
    /// Close a dead letter without applying it (kept, with who and why).
    Drop {
        /// The dead letter's id.
        id: String,
        /// Why it is dropped (required).
        #[arg(long)]
        reason: String,
    },
}

/// Why the command could not be carried out (exit code 2). Never holds the token.
#[derive(Debug, thiserror::Error)]
pub enum EventsError {
    #[error(transparent)]
    Target(#[from] ImportError),
    #[error(transparent)]
    Connect(#[from] ConnectError),
    #[error("{call} failed: {code}: {message}")]
    Call {
        call: &'static str,
        code: &'static str,
        message: String,
    },
    #[error("cannot start the async runtime")]
    Runtime(#[source] std::io::Error),
}

/// An authenticated client of the suite's `OperationsService`.
struct Operations {
    client: OperationsServiceClient<Channel>,
    connection: SuiteConnection,
}

impl Operations {
    async fn connect(target: &SuiteTarget) -> Result<Self, EventsError> {
        let connection = SuiteConnection::open(target).await?;
        Ok(Self {
            client: OperationsServiceClient::new(connection.channel.clone()),
            connection,
        })
    }

    fn call<T>(&self, message: T) -> tonic::Request<T> {
        self.connection.call(message)
    }
}

fn call_error(call: &'static str) -> impl Fn(tonic::Status) -> EventsError {
    move |status| EventsError::Call {
        call,
        code: code_name(status.code()),
        message: status.message().to_owned(),
    }
}

/// Carries out `command`: the text to print, and the exit code.
async fn run(target: &SuiteTarget, command: EventsCommand) -> Result<(String, u8), EventsError> {
    let mut operations = Operations::connect(target).await?;
    match command {
        EventsCommand::ListDead {
            consumer,
            all,
            limit,
        } => {
            let request = ListDeadLettersRequest {
                consumer: consumer.unwrap_or_default(),
                include_closed: all,
                page_size: i32::try_from(limit.clamp(1, 1000)).unwrap_or(1000),
                page_token: String::new(),
            };
            let response = operations
                .client
                .list_dead_letters(operations.call(request))
                .await
                .map_err(call_error("ListDeadLetters"))?
                .into_inner();
            Ok((render_list(&response), EXIT_DONE))
        }
        EventsCommand::Show { id } => {
            let letter = get(&mut operations, &id).await?;
            Ok((render_letter(&letter), EXIT_DONE))
        }
        EventsCommand::Replay { id, reason, wait } => {
            operations
                .client
                .replay_dead_letter(operations.call(ReplayDeadLetterRequest {
                    dead_letter_id: id.clone(),
                    reason,
                }))
                .await
                .map_err(call_error("ReplayDeadLetter"))?;
            let deadline = tokio::time::Instant::now() + Duration::from_secs(wait);
            loop {
                let letter = get(&mut operations, &id).await?;
                let status = DeadLetterStatus::try_from(letter.status)
                    .unwrap_or(DeadLetterStatus::Unspecified);
                match status {
                    DeadLetterStatus::Replayed => {
                        return Ok((
                            format!("{id}: replayed: the event was applied\n"),
                            EXIT_DONE,
                        ));
                    }
                    DeadLetterStatus::Dead => {
                        return Ok((
                            format!("{id}: replayed and failed again: {}\n", letter.error),
                            EXIT_NOT_APPLIED,
                        ));
                    }
                    _ if tokio::time::Instant::now() >= deadline => {
                        return Ok((
                            format!(
                                "{id}: replay requested; its consumer ({}) has not finished it yet \
                                 (is a process running it?); see `credit-suite events show {id}`\n",
                                letter.consumer
                            ),
                            if wait == 0 {
                                EXIT_DONE
                            } else {
                                EXIT_NOT_APPLIED
                            },
                        ));
                    }
                    _ => tokio::time::sleep(REPLAY_POLL).await,
                }
            }
        }
        EventsCommand::Drop { id, reason } => {
            let response = operations
                .client
                .drop_dead_letter(operations.call(DropDeadLetterRequest {
                    dead_letter_id: id.clone(),
                    reason,
                }))
                .await
                .map_err(call_error("DropDeadLetter"))?
                .into_inner();
            let letter = response.dead_letter.unwrap_or_default();
            Ok((
                format!(
                    "{id}: dropped ({} {} of {}); kept with your reason, see `credit-suite events show {id}`\n",
                    letter.event_type,
                    shown(&letter.event_id),
                    letter.consumer,
                ),
                EXIT_DONE,
            ))
        }
    }
}

async fn get(operations: &mut Operations, id: &str) -> Result<DeadLetter, EventsError> {
    let request = operations.call(GetDeadLetterRequest {
        dead_letter_id: id.to_owned(),
    });
    Ok(operations
        .client
        .get_dead_letter(request)
        .await
        .map_err(call_error("GetDeadLetter"))?
        .into_inner()
        .dead_letter
        .unwrap_or_default())
}

fn shown(text: &str) -> &str {
    if text.is_empty() { "-" } else { text }
}

fn status_name(status: i32) -> &'static str {
    match DeadLetterStatus::try_from(status).unwrap_or(DeadLetterStatus::Unspecified) {
        DeadLetterStatus::Dead => "DEAD",
        DeadLetterStatus::ReplayRequested => "REPLAY_REQUESTED",
        DeadLetterStatus::Replayed => "REPLAYED",
        DeadLetterStatus::Dropped => "DROPPED",
        DeadLetterStatus::Unspecified => "UNKNOWN",
    }
}

fn time(timestamp: Option<&prost_types::Timestamp>) -> String {
    timestamp
        .and_then(credit_proto::time::from_timestamp)
        .map_or_else(
            || "-".to_owned(),
            |time| time.format("%Y-%m-%d %H:%M:%SZ").to_string(),
        )
}

/// One line per dead letter, then the count of open ones:
///
/// ```text
/// 0193a0c4-...  limits-receivables  InvoicePosted  event 0193a0c3-...  DEAD  attempts 1  since 2026-12-07 04:30:01Z  error: ...
/// 1 open dead letter
/// ```
pub fn render_list(response: &ListDeadLettersResponse) -> String {
    let mut text = String::new();
    for letter in &response.dead_letters {
        let _ = writeln!(
            text,
            "{}  {}  {}  event {}  {}  attempts {}  since {}  error: {}",
            letter.dead_letter_id,
            letter.consumer,
            letter.event_type,
            shown(&letter.event_id),
            status_name(letter.status),
            letter.attempts,
            time(letter.dead_lettered_at.as_ref()),
            letter.error,
        );
    }
    let open = response.open_count;
    let _ = writeln!(
        text,
        "{open} open dead letter{}",
        if open == 1 { "" } else { "s" }
    );
    text
}

/// A dead letter and its history, one field a line.
pub fn render_letter(letter: &DeadLetter) -> String {
    let mut text = String::new();
    let _ = writeln!(text, "dead letter  {}", letter.dead_letter_id);
    let _ = writeln!(text, "status       {}", status_name(letter.status));
    let _ = writeln!(text, "consumer     {}", letter.consumer);
    let _ = writeln!(text, "producer     {}", letter.producer);
    let _ = writeln!(
        text,
        "event        {} {}",
        letter.event_type,
        shown(&letter.event_id)
    );
    let _ = writeln!(text, "source       {}", letter.source);
    let _ = writeln!(text, "attempts     {}", letter.attempts);
    let _ = writeln!(text, "error        {}", letter.error);
    let _ = writeln!(text, "size         {} bytes", letter.payload_size_bytes);
    let _ = writeln!(text, "history");
    for action in &letter.history {
        let _ = writeln!(
            text,
            "  {}  {}  by {}{}",
            time(action.at.as_ref()),
            action.action,
            action.actor,
            if action.detail.is_empty() {
                String::new()
            } else {
                format!(": {}", action.detail)
            }
        );
    }
    text
}

/// Runs `credit-suite events`: prints what it did on stdout and returns its exit code, or
/// prints one line `credit-suite: error: ...` on stderr and returns 2.
pub fn run_command(args: EventsArgs, config_file: Option<&Path>) -> ExitCode {
    let outcome = resolve_target(
        args.addr.as_deref(),
        args.token_file.as_deref(),
        config_file,
    )
    .map_err(EventsError::from)
    .and_then(|target| {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(EventsError::Runtime)?;
        runtime.block_on(run(&target, args.command))
    });
    match outcome {
        Ok((text, code)) => {
            print!("{text}");
            ExitCode::from(code)
        }
        Err(error) => {
            eprintln!("credit-suite: error: {}", ErrorChain(&error));
            ExitCode::from(EXIT_ERROR)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use credit_proto::v1::DeadLetterAction;

    fn letter() -> DeadLetter {
        DeadLetter {
            dead_letter_id: "dl-1".into(),
            consumer: "limits-receivables".into(),
            producer: "credit.v1.CollectionsService".into(),
            event_id: "evt-9".into(),
            event_type: "InvoicePosted".into(),
            source: "1733560000000-0".into(),
            error: "the event cannot be applied: amount: is too large".into(),
            attempts: 1,
            status: DeadLetterStatus::Dead.into(),
            dead_lettered_at: Some(prost_types::Timestamp {
                seconds: 1_796_617_801,
                nanos: 0,
            }),
            ..Default::default()
        }
    }

    #[test]
    fn the_list_has_a_line_per_letter_and_the_open_count() {
        let response = ListDeadLettersResponse {
            dead_letters: vec![letter()],
            next_page_token: String::new(),
            open_count: 1,
        };
        assert_eq!(
            render_list(&response),
            "dl-1  limits-receivables  InvoicePosted  event evt-9  DEAD  attempts 1  \
             since 2026-12-07 04:30:01Z  error: the event cannot be applied: amount: is too large\n\
             1 open dead letter\n"
        );
        assert_eq!(
            render_list(&ListDeadLettersResponse::default()),
            "0 open dead letters\n"
        );
    }

    #[test]
    fn a_letter_shows_its_history_with_who_and_why() {
        let mut dropped = letter();
        dropped.status = DeadLetterStatus::Dropped.into();
        dropped.event_id = String::new();
        dropped.history = vec![
            DeadLetterAction {
                action: "DEAD_LETTERED".into(),
                actor: "limits-receivables".into(),
                detail: "boom".into(),
                at: dropped.dead_lettered_at,
            },
            DeadLetterAction {
                action: "DROPPED".into(),
                actor: "tok_admin".into(),
                detail: "duplicate of INV-7".into(),
                at: dropped.dead_lettered_at,
            },
        ];
        let text = render_letter(&dropped);
        assert!(text.contains("status       DROPPED\n"), "{text}");
        assert!(text.contains("event        InvoicePosted -\n"), "{text}");
        assert!(
            text.contains("2026-12-07 04:30:01Z  DROPPED  by tok_admin: duplicate of INV-7\n"),
            "{text}"
        );
    }
}
