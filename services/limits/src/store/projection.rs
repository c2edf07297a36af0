//! The projection of other services' events into what limits knows of a customer: status,
//! group, rating, overdue days and the latest financial statement, each event applied once.

use chrono::{DateTime, Utc};
use credit_core::Currency;
use credit_proto::v1::Event;
use credit_proto::v1::event::Payload;
use credit_runtime::on_database;
use rust_decimal::Decimal;

use super::StoreResult;

use super::sql::SqlLimitStore;

/// The time of a change not yet seen: any real event is newer.
const NEVER: DateTime<Utc> = DateTime::UNIX_EPOCH;

fn occurred_at(event: &Event) -> DateTime<Utc> {
    event
        .occurred_at
        .as_ref()
        .and_then(|time| {
            DateTime::from_timestamp(time.seconds, u32::try_from(time.nanos).unwrap_or(0))
        })
        .unwrap_or_else(Utc::now)
}

/// A FinancialStatementSubmitted as `customer_statements` keeps it.
#[derive(Debug)]
struct StatementRow {
    statement_id: String,
    fiscal_year: i32,
    fiscal_quarter: i32,
    version: i32,
    period_end_date: String,
    period_months: i32,
    currency: Currency,
    equity: Decimal,
    revenue: Decimal,
}

/// The statement's figures, checked; `Err` says why limits cannot propose from them (an
/// event published before intake sent its figures has no currency).
fn statement_row(
    submitted: &credit_proto::v1::FinancialStatementSubmitted,
) -> Result<StatementRow, String> {
    let currency =
        Currency::parse(&submitted.currency).map_err(|error| format!("currency: {error}"))?;
    let figure = |name: &str, wire: Option<&credit_proto::v1::Money>| {
        let money = wire
            .ok_or_else(|| format!("{name} is missing"))
            .and_then(|wire| {
                credit_core::Money::try_from(wire).map_err(|error| format!("{name}: {error}"))
            })?;
        if money.currency() != currency {
            return Err(format!(
                "{name} is in {}, the statement in {currency}",
                money.currency()
            ));
        }
        Ok(money.amount())
    };
    let equity = figure("equity", submitted.equity.as_ref())?;
    let revenue = figure("revenue", submitted.revenue.as_ref())?;
    if submitted.period_months <= 0 {
        return Err("period_months is not positive".to_owned());
    }
    let period_end = submitted
        .period_end_date
        .as_ref()
        .and_then(|date| {
            chrono::NaiveDate::from_ymd_opt(
                date.year,
                u32::try_from(date.month).ok()?,
                u32::try_from(date.day).ok()?,
            )
        })
        .ok_or_else(|| "period_end_date is not a calendar date".to_owned())?;
    Ok(StatementRow {
        statement_id: submitted.statement_id.clone(),
        fiscal_year: submitted.fiscal_year,
        fiscal_quarter: submitted.fiscal_quarter,
        version: submitted.version,
        period_end_date: period_end.format("%Y-%m-%d").to_string(),
        period_months: submitted.period_months,
        currency,
        equity,
        revenue,
    })
}

/// Keeps a customer's latest statement: a newer version of the row's period replaces it;
/// another period only when it ends later, or on the same day covers more months (a year's
/// revenue averages out a season). So the row ends up the same whatever order the events
/// arrive in.
const UPSERT_LATEST_STATEMENT: &str = "\
INSERT INTO customer_statements (customer_id, statement_id, fiscal_year, fiscal_quarter, version, \
    period_end_date, period_months, currency, equity, revenue, submitted_at) \
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) \
ON CONFLICT (customer_id) DO UPDATE SET \
    statement_id = excluded.statement_id, fiscal_year = excluded.fiscal_year, \
    fiscal_quarter = excluded.fiscal_quarter, version = excluded.version, \
    period_end_date = excluded.period_end_date, period_months = excluded.period_months, \
    currency = excluded.currency, equity = excluded.equity, revenue = excluded.revenue, \
    submitted_at = excluded.submitted_at \
WHERE (customer_statements.fiscal_year = excluded.fiscal_year \
        AND customer_statements.fiscal_quarter = excluded.fiscal_quarter \
        AND customer_statements.version < excluded.version) \
    OR ((customer_statements.fiscal_year <> excluded.fiscal_year \
            OR customer_statements.fiscal_quarter <> excluded.fiscal_quarter) \
        AND (customer_statements.period_end_date < excluded.period_end_date \
            OR (customer_statements.period_end_date = excluded.period_end_date \
                AND customer_statements.period_months < excluded.period_months)))";

fn status_name(status: i32) -> String {
    credit_proto::v1::CustomerStatus::try_from(status)
        .map(|status| {
            status
                .as_str_name()
                .trim_start_matches("CUSTOMER_STATUS_")
                .to_owned()
        })
        .unwrap_or_else(|_| "UNSPECIFIED".to_owned())
}

impl SqlLimitStore {
    /// Applies one of intake's or rating's events to what limits knows of the customer
    /// (see `LimitStore::apply_customer_event`).
    pub(super) async fn project_customer_event(
        &self,
        consumer: &str,
        event: &Event,
    ) -> StoreResult<()> {
        // Most events on the stream are not about customers (every referral, hold and limit
        // change is one): they are skipped without a write.
        if !matches!(
            event.payload,
            Some(
                Payload::CustomerRegistered(_)
                    | Payload::CustomerStatusChanged(_)
                    | Payload::GroupMembershipChanged(_)
                    | Payload::RatingChanged(_)
                    | Payload::InvoiceOverdue(_)
                    | Payload::FinancialStatementSubmitted(_)
                    | Payload::InvestigationCompleted(_)
                    | Payload::RatingRecorded(_)
            )
        ) {
            return Ok(());
        }
        let at = occurred_at(event);
        on_database!(&self.database, |pool, sql, begin_write| {
            let mut tx = pool.begin_with(begin_write).await?;
            let first_time = sqlx::query(&sql(
                "INSERT INTO processed_events (consumer, event_id) VALUES ($1, $2) ON CONFLICT DO NOTHING",
            ))
            .bind(consumer)
            .bind(&event.event_id)
            .execute(&mut *tx)
            .await?
            .rows_affected()
                == 1;
            if !first_time {
                return Ok(());
            }
            // Each change is applied only when newer than what the row holds, so events of
            // one customer that arrive out of order still leave the newest state.
            match &event.payload {
                Some(Payload::CustomerRegistered(registered)) => {
                    sqlx::query(&sql(
                        "INSERT INTO customer_profiles (customer_id, status, status_changed_at, group_id, group_changed_at) \
                         VALUES ($1, $2, $3, NULL, $4) ON CONFLICT (customer_id) DO NOTHING",
                    ))
                    .bind(&registered.customer_id)
                    .bind(status_name(registered.status))
                    .bind(at)
                    .bind(NEVER)
                    .execute(&mut *tx)
                    .await?;
                }
                Some(Payload::CustomerStatusChanged(changed)) => {
                    sqlx::query(&sql(
                        "INSERT INTO customer_profiles (customer_id, status, status_changed_at, group_id, group_changed_at) \
                         VALUES ($1, $2, $3, NULL, $4) ON CONFLICT (customer_id) DO UPDATE \
                         SET status = excluded.status, status_changed_at = excluded.status_changed_at \
                         WHERE customer_profiles.status_changed_at <= excluded.status_changed_at",
                    ))
                    .bind(&changed.customer_id)
                    .bind(status_name(changed.status))
                    .bind(at)
                    .bind(NEVER)
                    .execute(&mut *tx)
                    .await?;
                }
                Some(Payload::GroupMembershipChanged(changed)) => {
                    let joined =
                        changed.change == credit_proto::v1::GroupMembershipChange::Added as i32;
                    let group_id = joined.then(|| changed.group_id.clone());
                    sqlx::query(&sql(
                        "INSERT INTO customer_profiles (customer_id, status, status_changed_at, group_id, group_changed_at) \
                         VALUES ($1, 'PROSPECT', $2, $3, $4) ON CONFLICT (customer_id) DO UPDATE \
                         SET group_id = excluded.group_id, group_changed_at = excluded.group_changed_at \
                         WHERE customer_profiles.group_changed_at <= excluded.group_changed_at",
                    ))
                    .bind(&changed.customer_id)
                    .bind(NEVER)
                    .bind(group_id)
                    .bind(at)
                    .execute(&mut *tx)
                    .await?;
                }
                Some(Payload::InvoiceOverdue(overdue)) => {
                    sqlx::query(&sql(
                        "INSERT INTO customer_profiles (customer_id, status, status_changed_at, group_id, group_changed_at, oldest_overdue_days, overdue_changed_at) \
                         VALUES ($1, 'PROSPECT', $2, NULL, $2, $3, $4) ON CONFLICT (customer_id) DO UPDATE \
                         SET oldest_overdue_days = excluded.oldest_overdue_days, overdue_changed_at = excluded.overdue_changed_at \
                         WHERE customer_profiles.overdue_changed_at <= excluded.overdue_changed_at",
                    ))
                    .bind(&overdue.customer_id)
                    .bind(NEVER)
                    .bind(overdue.oldest_overdue_days.max(0))
                    .bind(at)
                    .execute(&mut *tx)
                    .await?;
                }
                Some(Payload::RatingChanged(changed)) => {
                    let next_review_date = changed.next_review_date.as_ref().and_then(|date| {
                        chrono::NaiveDate::from_ymd_opt(
                            date.year,
                            u32::try_from(date.month).ok()?,
                            u32::try_from(date.day).ok()?,
                        )
                    });
                    sqlx::query(&sql(
                        "INSERT INTO customer_profiles (customer_id, status, status_changed_at, group_id, group_changed_at, rating_id, grade, next_review_date, rating_changed_at, pd) \
                         VALUES ($1, 'PROSPECT', $2, NULL, $2, $3, $4, $5, $6, $7) ON CONFLICT (customer_id) DO UPDATE \
                         SET rating_id = excluded.rating_id, grade = excluded.grade, \
                             next_review_date = excluded.next_review_date, rating_changed_at = excluded.rating_changed_at, \
                             pd = excluded.pd \
                         WHERE customer_profiles.rating_changed_at <= excluded.rating_changed_at",
                    ))
                    .bind(&changed.customer_id)
                    .bind(NEVER)
                    .bind(&changed.rating_id)
                    .bind(&changed.grade)
                    .bind(next_review_date.map(|date| date.format("%Y-%m-%d").to_string()))
                    .bind(at)
                    // A PD that is not a fraction from 0 to 1 is not kept (the policy's
                    // unrated PD applies instead).
                    .bind(
                        changed
                            .pd
                            .parse::<rust_decimal::Decimal>()
                            .ok()
                            .filter(|pd| {
                                *pd >= rust_decimal::Decimal::ZERO && *pd <= rust_decimal::Decimal::ONE
                            })
                            .map(|pd| pd.normalize().to_string()),
                    )
                    .execute(&mut *tx)
                    .await?;
                }
                Some(Payload::RatingRecorded(recorded)) => {
                    let stale: Vec<String> = recorded
                        .stale_inputs
                        .iter()
                        .map(|reason| {
                            let input = reason.metadata.get("input").map_or("", String::as_str);
                            format!("{} {input}", reason.code)
                        })
                        .collect();
                    let stale_on = recorded.inputs_stale_on.as_ref().and_then(|date| {
                        chrono::NaiveDate::from_ymd_opt(
                            date.year,
                            u32::try_from(date.month).ok()?,
                            u32::try_from(date.day).ok()?,
                        )
                    });
                    sqlx::query(&sql(
                        "INSERT INTO customer_freshness (customer_id, rating_id, stale_inputs, inputs_stale_on, recorded_at) \
                         VALUES ($1, $2, $3, $4, $5) ON CONFLICT (customer_id) DO UPDATE \
                         SET rating_id = excluded.rating_id, stale_inputs = excluded.stale_inputs, \
                             inputs_stale_on = excluded.inputs_stale_on, recorded_at = excluded.recorded_at \
                         WHERE customer_freshness.recorded_at <= excluded.recorded_at",
                    ))
                    .bind(&recorded.customer_id)
                    .bind(&recorded.rating_id)
                    .bind(stale.join(", "))
                    .bind(stale_on)
                    .bind(at)
                    .execute(&mut *tx)
                    .await?;
                }
                Some(Payload::InvestigationCompleted(completed)) => {
                    let completed_at = completed
                        .completed_at
                        .as_ref()
                        .and_then(|time| {
                            chrono::DateTime::from_timestamp(
                                time.seconds,
                                u32::try_from(time.nanos).unwrap_or(0),
                            )
                        })
                        .unwrap_or(at);
                    sqlx::query(&sql(
                        "INSERT INTO customer_investigations (customer_id, investigation_id, completed_at) \
                         VALUES ($1, $2, $3) ON CONFLICT (customer_id) DO UPDATE \
                         SET investigation_id = excluded.investigation_id, completed_at = excluded.completed_at \
                         WHERE customer_investigations.completed_at <= excluded.completed_at",
                    ))
                    .bind(&completed.customer_id)
                    .bind(&completed.investigation_id)
                    .bind(completed_at)
                    .execute(&mut *tx)
                    .await?;
                }
                Some(Payload::FinancialStatementSubmitted(submitted)) => {
                    match statement_row(submitted) {
                        Ok(row) => {
                            sqlx::query(&sql(UPSERT_LATEST_STATEMENT))
                                .bind(&submitted.customer_id)
                                .bind(&row.statement_id)
                                .bind(row.fiscal_year)
                                .bind(row.fiscal_quarter)
                                .bind(row.version)
                                .bind(&row.period_end_date)
                                .bind(row.period_months)
                                .bind(row.currency.code())
                                .bind(row.equity.to_string())
                                .bind(row.revenue.to_string())
                                .bind(at)
                                .execute(&mut *tx)
                                .await?;
                        }
                        // Retrying cannot make the figures readable: the event is recorded as
                        // processed and the customer's proposals go on without it.
                        Err(problem) => tracing::warn!(
                            customer_id = %submitted.customer_id,
                            statement_id = %submitted.statement_id,
                            %problem,
                            "a financial statement event without usable figures is not projected"
                        ),
                    }
                }
                _ => {}
            }
            tx.commit().await?;
            Ok(())
        })
    }
}
