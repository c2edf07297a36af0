//! `credit-suite reconcile`: asks a running suite to compare the exposure cached for each
//! customer and group with the ledger (`LimitService.ReconcileExposure`), prints every
//! difference and a summary, and exits 0 (no differences), 1 (differences found, repaired or
//! not) or 2 (the check could not be made).
//!
//! The suite is found and authenticated as `credit-suite import` does it
//! ([`crate::import::resolve_target`]). Rendering the answer is a pure function,
//! [`render_report`], tested without a server.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use credit_core::error::ErrorChain;
use credit_proto::v1::limit_scope::Scope;
use credit_proto::v1::limit_service_client::LimitServiceClient;
use credit_proto::v1::{
    ExposureDifference, LimitScope, Money, ReconcileExposureRequest, ReconcileExposureResponse,
};
use tonic::Code;

use crate::client::{ConnectError, SuiteConnection};
use crate::import::{ImportError, SuiteTarget, code_name, resolve_target};

/// Every difference of a whole portfolio comes in one answer: allow more than tonic's default
/// 4 MiB (a difference is about a hundred bytes).
const MAX_RESPONSE_BYTES: usize = 64 * 1024 * 1024;

/// Exit code when no difference was found.
pub const EXIT_NO_DIFFERENCES: u8 = 0;
/// Exit code when differences were found, whether they were repaired or not.
pub const EXIT_DIFFERENCES: u8 = 1;
/// Exit code when the check could not be made.
pub const EXIT_ERROR: u8 = 2;

/// `credit-suite reconcile`: the arguments, as parsed by clap.
#[derive(Debug, Clone, clap::Args)]
pub struct ReconcileArgs {
    /// Report the differences only; repair nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Check only this customer (and its group). Repeat for several, at most 1000; an unknown
    /// id ends the run before anything is checked [default: every customer].
    #[arg(long = "customer", value_name = "ID")]
    pub customers: Vec<String>,
    /// Address of the suite, http:// or https:// [default: http:// (https:// with
    /// CREDIT_TLS_CERT_FILE) + CREDIT_LISTEN_ADDR, 127.0.0.1:50051].
    #[arg(long, env = "CREDIT_ADDR")]
    pub addr: Option<String>,
    /// File holding the bearer token of an ADMIN, when CREDIT_TOKEN is not set
    /// [default: CREDIT_DATA_DIR/admin.token].
    #[arg(long)]
    pub token_file: Option<PathBuf>,
}

/// Why the check could not be made (exit code 2). Never holds the token.
#[derive(Debug, thiserror::Error)]
pub enum ReconcileError {
    /// The address or the token could not be resolved (as for `import`).
    #[error(transparent)]
    Target(#[from] ImportError),
    #[error(transparent)]
    Connect(#[from] ConnectError),
    #[error(
        "{addr} refused the token from {token_source}: {code}: {message} (ReconcileExposure needs the ADMIN role)"
    )]
    Auth {
        addr: String,
        token_source: String,
        code: &'static str,
        message: String,
    },
    #[error("ReconcileExposure failed: {code}: {message}")]
    Call { code: &'static str, message: String },
    #[error("cannot start the async runtime")]
    Runtime(#[source] std::io::Error),
}

/// Calls `ReconcileExposure` on the suite at `target`.
pub async fn run_reconcile(
    target: &SuiteTarget,
    request: ReconcileExposureRequest,
) -> Result<ReconcileExposureResponse, ReconcileError> {
    let connection = SuiteConnection::open(target).await?;
    let mut client = LimitServiceClient::new(connection.channel.clone())
        .max_decoding_message_size(MAX_RESPONSE_BYTES);
    let call = connection.call(request);
    match client.reconcile_exposure(call).await {
        Ok(response) => Ok(response.into_inner()),
        Err(status) => {
            let code = code_name(status.code());
            let message = status.message().to_owned();
            Err(match status.code() {
                Code::Unauthenticated | Code::PermissionDenied => ReconcileError::Auth {
                    addr: target.addr.clone(),
                    token_source: target.token_source.clone(),
                    code,
                    message,
                },
                _ => ReconcileError::Call { code, message },
            })
        }
    }
}

/// The exit code for an answer: 0 without differences, 1 with any (repaired or not).
pub fn exit_code(response: &ReconcileExposureResponse) -> u8 {
    if response.differences.is_empty() {
        EXIT_NO_DIFFERENCES
    } else {
        EXIT_DIFFERENCES
    }
}

/// One line per difference, then the summary line:
///
/// ```text
/// customer cus_1: exposure cached 1500.00 CNY, ledger 1000.00 CNY; repaired
/// checked 120 customers and 8 groups: 1 difference, 1 repaired
/// ```
pub fn render_report(response: &ReconcileExposureResponse, dry_run: bool) -> String {
    let mut text = String::new();
    for difference in &response.differences {
        let _ = writeln!(text, "{}", render_difference(difference, dry_run));
    }
    let checked = format!(
        "checked {} and {}",
        count(response.customers_checked, "customer", "customers"),
        count(response.groups_checked, "group", "groups"),
    );
    let found = i64::try_from(response.differences.len()).unwrap_or(i64::MAX);
    let outcome = if found == 0 {
        "no differences".to_owned()
    } else if dry_run {
        format!(
            "{}, none repaired (dry run)",
            count(found, "difference", "differences")
        )
    } else {
        format!(
            "{}, {} repaired",
            count(found, "difference", "differences"),
            response.repaired_count
        )
    };
    let _ = writeln!(text, "{checked}: {outcome}");
    text
}

fn render_difference(difference: &ExposureDifference, dry_run: bool) -> String {
    let cached = difference
        .cached
        .as_ref()
        .map_or_else(|| "unreadable".to_owned(), money);
    let ledger = difference
        .ledger
        .as_ref()
        .map_or_else(|| "unknown".to_owned(), money);
    let repair = if difference.repaired {
        "repaired"
    } else if dry_run {
        "not repaired (dry run)"
    } else {
        "NOT repaired: the rebuild failed, see the suite's log"
    };
    format!(
        "{}: {} cached {cached}, ledger {ledger}; {repair}",
        scope(difference.scope.as_ref()),
        difference.field,
    )
}

fn scope(scope: Option<&LimitScope>) -> String {
    match scope.and_then(|scope| scope.scope.as_ref()) {
        Some(Scope::CustomerId(id)) => format!("customer {id}"),
        Some(Scope::GroupId(id)) => format!("group {id}"),
        Some(Scope::Portfolio(_)) => "portfolio".to_owned(),
        None => "unknown scope".to_owned(),
    }
}

fn money(money: &Money) -> String {
    format!("{} {}", money.amount, money.currency)
}

fn count(number: i64, one: &str, many: &str) -> String {
    format!("{number} {}", if number == 1 { one } else { many })
}

/// Runs `credit-suite reconcile`: prints the report on stdout and returns its exit code, or
/// prints one line `credit-suite: error: ...` on stderr and returns 2.
pub fn run_command(args: ReconcileArgs, config_file: Option<&Path>) -> ExitCode {
    let dry_run = args.dry_run;
    let outcome = resolve_target(
        args.addr.as_deref(),
        args.token_file.as_deref(),
        config_file,
    )
    .map_err(ReconcileError::from)
    .and_then(|target| {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(ReconcileError::Runtime)?;
        runtime.block_on(run_reconcile(
            &target,
            ReconcileExposureRequest {
                customer_ids: args.customers,
                dry_run,
            },
        ))
    });
    match outcome {
        Ok(response) => {
            print!("{}", render_report(&response, dry_run));
            ExitCode::from(exit_code(&response))
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

    fn cny(amount: &str) -> Option<Money> {
        Some(Money {
            amount: amount.into(),
            currency: "CNY".into(),
        })
    }

    fn difference(scope: Scope, cached: Option<Money>, repaired: bool) -> ExposureDifference {
        ExposureDifference {
            scope: Some(LimitScope { scope: Some(scope) }),
            field: "exposure".into(),
            cached,
            ledger: cny("1000.00"),
            repaired,
        }
    }

    fn response(differences: Vec<ExposureDifference>) -> ReconcileExposureResponse {
        let repaired_count = differences.iter().filter(|found| found.repaired).count() as i64;
        ReconcileExposureResponse {
            customers_checked: 120,
            groups_checked: 1,
            differences,
            repaired_count,
            ..Default::default()
        }
    }

    #[test]
    fn a_clean_run_prints_only_the_summary_and_exits_zero() {
        let clean = response(Vec::new());
        assert_eq!(
            render_report(&clean, false),
            "checked 120 customers and 1 group: no differences\n"
        );
        assert_eq!(exit_code(&clean), EXIT_NO_DIFFERENCES);
    }

    #[test]
    fn each_difference_gets_a_line_and_the_run_exits_one_even_when_repaired() {
        let repaired = response(vec![
            difference(Scope::CustomerId("cus_1".into()), cny("1500.00"), true),
            difference(Scope::GroupId("grp_1".into()), None, true),
        ]);
        assert_eq!(
            render_report(&repaired, false),
            "customer cus_1: exposure cached 1500.00 CNY, ledger 1000.00 CNY; repaired\n\
             group grp_1: exposure cached unreadable, ledger 1000.00 CNY; repaired\n\
             checked 120 customers and 1 group: 2 differences, 2 repaired\n"
        );
        assert_eq!(exit_code(&repaired), EXIT_DIFFERENCES);
    }

    #[test]
    fn a_dry_run_says_nothing_was_repaired() {
        let found = response(vec![difference(
            Scope::CustomerId("cus_1".into()),
            cny("1500.00"),
            false,
        )]);
        assert_eq!(
            render_report(&found, true),
            "customer cus_1: exposure cached 1500.00 CNY, ledger 1000.00 CNY; not repaired (dry run)\n\
             checked 120 customers and 1 group: 1 difference, none repaired (dry run)\n"
        );
        assert_eq!(exit_code(&found), EXIT_DIFFERENCES);
    }

    #[test]
    fn a_failed_repair_is_called_out() {
        let failed = response(vec![difference(
            Scope::CustomerId("cus_1".into()),
            cny("1500.00"),
            false,
        )]);
        let report = render_report(&failed, false);
        assert!(
            report.contains("NOT repaired: the rebuild failed"),
            "{report}"
        );
        assert!(report.ends_with("1 difference, 0 repaired\n"), "{report}");
    }
}
