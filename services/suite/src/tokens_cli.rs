//! `credit-suite token create | list | revoke | rotate`: the lifecycle of bearer tokens, run
//! by an operator against the identity store (the same settings as `serve`).
//!
//! A token belongs to a person, named by `--name`: a second token under a known name is that
//! person's second token, and four-eyes checks treat both as one person.

use std::io::Write;

use chrono::{DateTime, Duration, Utc};
use clap::{Args, Subcommand};
use credit_core::{Money, Role};
use credit_runtime::identity::{
    self, DEFAULT_TOKEN_LIFETIME_DAYS, IdentityError, MAX_TOKEN_LIFETIME_DAYS, NewPrincipal,
    TokenRecord, TokenStore,
};
use credit_runtime::{ConfigError, Settings};
use secrecy::ExposeSecret;

#[derive(Debug, Subcommand)]
pub enum TokenCommand {
    /// Issue a token and print it once; only its hash is stored. The id printed on standard
    /// error is what `revoke` and `rotate` take.
    Create(CreateToken),
    /// List every token: its id, person, roles, authority, expiry, last use and state.
    List,
    /// Revoke a token at once (within 30 seconds on processes that have seen it).
    Revoke {
        /// The token's id (`prn_…`), as `create` and `list` show it.
        token_id: String,
    },
    /// Replace a token with a new one for the same person, roles and authority, valid as long
    /// as the old one was given. The new token is printed once.
    Rotate {
        /// The token's id (`prn_…`).
        token_id: String,
        /// How long the old token keeps working, so a system can redeploy with the new one;
        /// 0 revokes it at once.
        #[arg(long, default_value_t = 60)]
        grace_minutes: i64,
    },
}

#[derive(Debug, Args)]
pub struct CreateToken {
    /// Who holds the token, as audit trails show it ("alice", "erp-orders"). A name is one
    /// person: a token under a name already known is another token of that person.
    #[arg(long)]
    name: String,
    /// A role: ORDER_ENTRY, ANALYST, CREDIT_MANAGER, COLLECTOR, SALES, FINANCE, RISK,
    /// GENERAL_MANAGER, BOARD or ADMIN. Repeat for several.
    #[arg(long = "role", required = true)]
    roles: Vec<String>,
    /// Largest amount the holder may approve, in CREDIT_BASE_CURRENCY unless --currency.
    #[arg(long)]
    authority: Option<String>,
    /// Currency of --authority.
    #[arg(long)]
    currency: Option<String>,
    /// Days until the token stops working (1 to 3650).
    #[arg(long, default_value_t = DEFAULT_TOKEN_LIFETIME_DAYS)]
    expires_in_days: i64,
}

type CommandResult = Result<(), Box<dyn std::error::Error>>;

/// Carries out one `token` command.
pub async fn run(settings: Settings, command: TokenCommand) -> CommandResult {
    let store = crate::open_token_store(&settings).await?;
    let mut out = std::io::stdout().lock();
    match command {
        TokenCommand::Create(request) => {
            let principal = new_principal(&settings, request)?;
            let issued = identity::issue_token(store.as_ref(), &principal).await?;
            eprintln!(
                "issued token {} to '{}' (person {}), expiring {}; it is shown only once:",
                issued.principal_id,
                principal.name,
                issued.person_id,
                moment(issued.expires_at)
            );
            writeln!(out, "{}", issued.token.expose_secret())?;
        }
        TokenCommand::List => list(store.as_ref(), &mut out).await?,
        TokenCommand::Revoke { token_id } => {
            if !store.revoke(token_id.trim(), Utc::now()).await? {
                let known = store.get(token_id.trim()).await?;
                return Err(Box::new(match known {
                    Some(_) => IdentityError::TokenNotActive(token_id),
                    None => IdentityError::UnknownToken(token_id),
                }));
            }
            writeln!(out, "revoked {}", token_id.trim())?;
        }
        TokenCommand::Rotate {
            token_id,
            grace_minutes,
        } => {
            if !(0..=7 * 24 * 60).contains(&grace_minutes) {
                return Err(Box::new(ConfigError::new(
                    "--grace-minutes",
                    "must be from 0 to 10080 (a week)",
                )));
            }
            let issued = identity::rotate_token(
                store.as_ref(),
                token_id.trim(),
                Duration::minutes(grace_minutes),
            )
            .await?;
            eprintln!(
                "issued token {} (person {}), expiring {}, to replace {}, which works for {} \
                 more minutes; the new token is shown only once:",
                issued.principal_id,
                issued.person_id,
                moment(issued.expires_at),
                token_id.trim(),
                grace_minutes
            );
            writeln!(out, "{}", issued.token.expose_secret())?;
        }
    }
    Ok(())
}

fn new_principal(settings: &Settings, request: CreateToken) -> Result<NewPrincipal, ConfigError> {
    let name = request.name.trim();
    if name.is_empty() || name.len() > 200 {
        return Err(ConfigError::new(
            "--name",
            "is required, at most 200 characters",
        ));
    }
    let roles = request
        .roles
        .iter()
        .map(|role| role.parse::<Role>())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|error| ConfigError::new("--role", error.to_string()))?;
    let approval_authority = match &request.authority {
        Some(amount) => {
            let currency = request
                .currency
                .clone()
                .unwrap_or_else(|| settings.base_currency.code().to_owned());
            let money = Money::parse(amount, &currency)
                .and_then(Money::non_negative)
                .map_err(|error| ConfigError::new("--authority", error.to_string()))?;
            Some(money)
        }
        None => None,
    };
    if !(1..=MAX_TOKEN_LIFETIME_DAYS).contains(&request.expires_in_days) {
        return Err(ConfigError::new(
            "--expires-in-days",
            format!("must be from 1 to {MAX_TOKEN_LIFETIME_DAYS}"),
        ));
    }
    Ok(NewPrincipal::new(name, roles)
        .with_authority(approval_authority)
        .expiring_at(Some(Utc::now() + Duration::days(request.expires_in_days))))
}

async fn list(store: &dyn TokenStore, out: &mut impl Write) -> CommandResult {
    let now = Utc::now();
    let tokens = store.list().await?;
    writeln!(
        out,
        "{:<36}  {:<36}  {:<20}  {:<28}  {:<22}  {:<17}  {:<17}  {:<17}  STATE",
        "TOKEN", "PERSON", "NAME", "ROLES", "AUTHORITY", "CREATED", "EXPIRES", "LAST USED"
    )?;
    for token in &tokens {
        writeln!(out, "{}", row(token, now))?;
    }
    writeln!(
        out,
        "{} tokens, {} active",
        tokens.len(),
        tokens.iter().filter(|token| token.is_active(now)).count()
    )?;
    Ok(())
}

fn row(token: &TokenRecord, now: DateTime<Utc>) -> String {
    let roles = token
        .roles
        .iter()
        .map(Role::as_str)
        .collect::<Vec<_>>()
        .join(",");
    let authority = token
        .approval_authority
        .map(|money| money.to_string())
        .unwrap_or_else(|| "-".to_owned());
    format!(
        "{:<36}  {:<36}  {:<20}  {:<28}  {:<22}  {:<17}  {:<17}  {:<17}  {}",
        token.id,
        token.person_id,
        token.name,
        roles,
        authority,
        moment(Some(token.created_at)),
        moment(token.expires_at),
        token
            .last_used_at
            .map(|at| moment(Some(at)))
            .unwrap_or_else(|| "never".to_owned()),
        token.state(now)
    )
}

/// A time as the list shows it, to the minute in UTC; `never` for none.
fn moment(at: Option<DateTime<Utc>>) -> String {
    at.map(|at| at.format("%Y-%m-%d %H:%MZ").to_string())
        .unwrap_or_else(|| "never".to_owned())
}
