//! The rows the limits store's queries read, one `FromRow` type per shape. Most records are
//! kept whole as JSON documents; the customer profile and statement projections are kept in
//! columns, because the events they come from are small and their fields are queried.

use chrono::NaiveDate;
use credit_core::{Currency, Money};
use rust_decimal::Decimal;

use crate::domain::profile::{CustomerFacts, RatingFacts};
use crate::domain::proposal::LatestStatement;

use super::{StoreError, StoreResult};

/// `SELECT customer_id, status, group_id, rating_id, grade, next_review_date, pd,
/// oldest_overdue_days FROM customer_profiles ...`: everything the projection keeps.
#[derive(Debug, sqlx::FromRow)]
pub(super) struct CustomerRow {
    customer_id: String,
    status: String,
    group_id: Option<String>,
    rating_id: Option<String>,
    grade: Option<String>,
    /// `YYYY-MM-DD` text on both backends.
    next_review_date: Option<String>,
    /// The grade's probability of default, a fraction as text ("0.0125").
    pd: Option<String>,
    oldest_overdue_days: i32,
}

impl CustomerRow {
    pub(super) fn into_facts(self) -> CustomerFacts {
        let next_review_date = self.next_review_date;
        let pd = self.pd.and_then(|pd| pd.parse::<Decimal>().ok());
        CustomerFacts {
            oldest_overdue_days: u32::try_from(self.oldest_overdue_days).unwrap_or(0),
            customer_id: self.customer_id,
            status: self.status,
            group_id: self.group_id,
            // A rating is known only with both its id and grade; a review date that does
            // not parse reads as none.
            rating: self
                .rating_id
                .zip(self.grade)
                .map(|(rating_id, grade)| RatingFacts {
                    rating_id,
                    grade,
                    next_review_date: next_review_date
                        .and_then(|date| NaiveDate::parse_from_str(&date, "%Y-%m-%d").ok()),
                    pd,
                }),
        }
    }
}

/// `SELECT customer_id, status, group_id FROM customer_profiles ...`: the columns
/// reconciliation pages through.
#[derive(Debug, sqlx::FromRow)]
pub(super) struct CustomerIdsRow {
    customer_id: String,
    status: String,
    group_id: Option<String>,
}

impl CustomerIdsRow {
    pub(super) fn into_facts(self) -> CustomerFacts {
        CustomerFacts {
            customer_id: self.customer_id,
            status: self.status,
            group_id: self.group_id,
            // Reconciliation needs only ids and groups.
            rating: None,
            oldest_overdue_days: 0,
        }
    }
}

/// `SELECT statement_id, period_end_date, period_months, currency, equity, revenue FROM
/// customer_statements ...`: dates and amounts are text, so both backends store them exactly.
#[derive(Debug, sqlx::FromRow)]
pub(super) struct StatementRow {
    statement_id: String,
    period_end_date: String,
    period_months: i32,
    currency: String,
    equity: String,
    revenue: String,
}

impl StatementRow {
    /// The customer's latest statement; a column that does not parse is `Corrupt`.
    pub(super) fn into_statement(self, customer_id: &str) -> StoreResult<LatestStatement> {
        let statement_id = self.statement_id;
        let corrupt = || StoreError::Corrupt(format!("statement {statement_id} of {customer_id}"));
        let currency = Currency::parse(&self.currency).map_err(|_| corrupt())?;
        let amount = |text: &str| {
            Decimal::from_str_exact(text)
                .map(|amount| Money::new(amount, currency))
                .map_err(|_| corrupt())
        };
        Ok(LatestStatement {
            period_end: NaiveDate::parse_from_str(&self.period_end_date, "%Y-%m-%d")
                .map_err(|_| corrupt())?,
            period_months: u32::try_from(self.period_months).map_err(|_| corrupt())?,
            equity: amount(&self.equity)?,
            revenue: amount(&self.revenue)?,
            statement_id,
        })
    }
}
