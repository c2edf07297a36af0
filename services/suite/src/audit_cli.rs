//! `credit-suite audit verify`: recomputes every service's audit chain and compares intake's
//! customer audit rows with it, on the stores the settings name (the same as `serve`).
//!
//! Exit code 0: every chain intact; 1: an entry was edited, deleted or inserted out of turn
//! (each named on a line); 2: the check could not be made.

use std::io::Write;
use std::process::ExitCode;

use clap::Subcommand;
use credit_runtime::audit::verify_chain;
use credit_runtime::{Database, Settings};

use crate::ServiceKind;

#[derive(Debug, Subcommand)]
pub enum AuditCommand {
    /// Recompute every service's audit chain and report the first entry that was edited,
    /// deleted or inserted out of turn.
    Verify,
}

/// What `audit verify` found: a line per finding, and whether any is tampering.
#[derive(Debug, Clone, Default)]
pub struct AuditVerdict {
    pub lines: Vec<String>,
    pub tampered: bool,
}

/// Verifies the audit trail of every service's store.
pub async fn verify(settings: &Settings) -> Result<AuditVerdict, Box<dyn std::error::Error>> {
    let mut verdict = AuditVerdict::default();
    for kind in ServiceKind::ALL {
        let name = kind.as_str();
        let database = Database::open(
            &settings.backend,
            kind.store(),
            1,
            settings.migrate_on_start,
        )
        .await?;
        let report = verify_chain(&database).await?;
        match &report.problem {
            None => verdict
                .lines
                .push(format!("{name}: {} entries, chain intact", report.entries)),
            Some(problem) => {
                verdict.tampered = true;
                verdict.lines.push(format!(
                    "{name}: TAMPERED: {problem} (after {} intact entries)",
                    report.entries
                ));
            }
        }
        if kind == ServiceKind::Intake {
            let comparison = credit_intake::store::audit::compare_customer_audit(&database).await?;
            verdict.lines.push(format!(
                "{name}: {} customer audit rows compared with the chain ({} written before it)",
                comparison.checked, comparison.unchained
            ));
            for problem in comparison.problems {
                verdict.tampered = true;
                verdict.lines.push(format!("{name}: TAMPERED: {problem}"));
            }
        }
        database.close().await;
    }
    Ok(verdict)
}

/// Carries out one `audit` command; the exit code says what it found.
pub async fn run(
    settings: Settings,
    command: AuditCommand,
) -> Result<ExitCode, Box<dyn std::error::Error>> {
    let AuditCommand::Verify = command;
    let verdict = verify(&settings).await?;
    let mut out = std::io::stdout().lock();
    for line in &verdict.lines {
        writeln!(out, "{line}")?;
    }
    Ok(if verdict.tampered {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}
