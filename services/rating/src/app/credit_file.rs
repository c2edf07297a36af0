//! A customer's credit file, read from the services that own it: intake (customer, statements,
//! bureau reports, trade references) and collections (payment behaviour). Rating never reads
//! another service's tables; it asks over gRPC with its service credential.
//!
//! [`CreditFiles`] is the port the handlers use; [`PeerCreditFiles`] is the gRPC adapter.

use std::collections::BTreeMap;
use std::str::FromStr;

use async_trait::async_trait;
use chrono::NaiveDate;
use credit_core::ServiceError;
use credit_proto::v1 as pb;
use credit_proto::v1::collections_service_client::CollectionsServiceClient;
use credit_proto::v1::intake_service_client::IntakeServiceClient;
use credit_runtime::peers::PeerChannel;
use rust_decimal::Decimal;
use tonic::Code;

use crate::api::convert;
use crate::domain::data_points::{DataPointCatalog, DataPointSpec};
use crate::domain::freshness::{DocumentDates, FileDates};
use crate::domain::inputs::{
    BureauFacts, CreditFacts, DataPointFact, DataPointReading, PaymentExperience, PaymentFacts,
    StatementFacts, TradeReferenceFacts,
};
use crate::domain::model::ValueType;
pub use credit_proto::time::{from_date, to_date};

/// Statements a report shows: the latest versions of the three most recent periods.
pub const REPORT_STATEMENTS: usize = 3;
/// Trade references read per customer (the newest).
const MAX_TRADE_REFERENCES: i32 = 100;

/// What the owning services know of a customer, as they answered.
#[derive(Debug, Clone, Default)]
pub struct CreditFile {
    pub customer: pb::Customer,
    /// The group's name when the customer belongs to one.
    pub group_name: String,
    /// Latest version of each of the most recent periods, newest first (at most three).
    pub statements: Vec<pb::FinancialStatement>,
    pub bureau_report: Option<pb::BureauReport>,
    pub trade_references: Vec<pb::TradeReference>,
    /// `None` when collections keeps no history of the customer or does not run.
    pub payment_behaviour: Option<pb::PaymentBehaviour>,
    /// The current value of each data point the customer has.
    pub data_points: Vec<pb::DataPoint>,
    /// The customer's newest documents (at most [`MAX_DOCUMENTS`]), newest first.
    pub documents: Vec<pb::CreditDocument>,
}

/// Documents read per customer (the newest): freshness looks at the latest of each type.
pub const MAX_DOCUMENTS: i32 = 200;

/// Where handlers get credit files from.
#[async_trait]
pub trait CreditFiles: Send + Sync + std::fmt::Debug {
    /// NOT_FOUND when intake does not know the customer, UNAVAILABLE when a peer does not
    /// answer.
    async fn credit_file(
        &self,
        customer_id: &str,
        as_of: NaiveDate,
    ) -> Result<CreditFile, ServiceError>;

    /// The data points the company has defined, as scorecards read them. UNAVAILABLE when
    /// intake does not answer.
    async fn data_point_catalog(&self) -> Result<DataPointCatalog, ServiceError>;
}

/// Reads credit files from intake and collections over gRPC.
#[derive(Debug, Clone)]
pub struct PeerCreditFiles {
    intake: IntakeServiceClient<PeerChannel>,
    /// `None` when no collections service is reachable from this process.
    collections: Option<CollectionsServiceClient<PeerChannel>>,
}

impl PeerCreditFiles {
    pub fn new(intake: PeerChannel, collections: Option<PeerChannel>) -> Self {
        Self {
            intake: IntakeServiceClient::new(intake),
            collections: collections.map(CollectionsServiceClient::new),
        }
    }

    async fn payment_behaviour(
        &self,
        customer_id: &str,
        as_of: NaiveDate,
    ) -> Result<Option<pb::PaymentBehaviour>, ServiceError> {
        let Some(mut collections) = self.collections.clone() else {
            return Ok(None);
        };
        let request = pb::GetPaymentBehaviourRequest {
            customer_id: customer_id.to_owned(),
            as_of_date: Some(to_date(as_of)),
        };
        match collections.get_payment_behaviour(request).await {
            Ok(response) => Ok(response.into_inner().behaviour),
            // No invoices yet, or a collections service that does not keep behaviour: the
            // payment characteristics score as missing, which is what the model defines.
            Err(status) if matches!(status.code(), Code::NotFound | Code::Unimplemented) => {
                Ok(None)
            }
            Err(status) => Err(peer_failure("collections", status)),
        }
    }
}

#[async_trait]
impl CreditFiles for PeerCreditFiles {
    async fn credit_file(
        &self,
        customer_id: &str,
        as_of: NaiveDate,
    ) -> Result<CreditFile, ServiceError> {
        let mut intake = self.intake.clone();
        let customer = intake
            .get_customer(pb::GetCustomerRequest {
                customer_id: customer_id.to_owned(),
            })
            .await
            .map_err(|status| match status.code() {
                Code::NotFound => ServiceError::not_found("customer", customer_id),
                _ => peer_failure("intake", status),
            })?
            .into_inner()
            .customer
            .unwrap_or_default();
        let statements = intake.list_financial_statements(pb::ListFinancialStatementsRequest {
            customer_id: customer_id.to_owned(),
            page_size: REPORT_STATEMENTS as i32,
            ..Default::default()
        });
        let mut bureau_client = self.intake.clone();
        let bureau = bureau_client.list_bureau_reports(pb::ListBureauReportsRequest {
            customer_id: customer_id.to_owned(),
            page_size: 1,
            ..Default::default()
        });
        let mut references_client = self.intake.clone();
        let references = references_client.list_trade_references(pb::ListTradeReferencesRequest {
            customer_id: customer_id.to_owned(),
            page_size: MAX_TRADE_REFERENCES,
            ..Default::default()
        });
        let behaviour = self.payment_behaviour(customer_id, as_of);
        let group = self.group_name(&customer.group_id);
        let mut data_points_client = self.intake.clone();
        let data_points = data_points_client.list_data_points(pb::ListDataPointsRequest {
            customer_id: customer_id.to_owned(),
        });
        let mut documents_client = self.intake.clone();
        let documents = documents_client.list_documents(pb::ListDocumentsRequest {
            customer_id: customer_id.to_owned(),
            page_size: MAX_DOCUMENTS,
            ..Default::default()
        });
        let (statements, bureau, references, behaviour, group_name, data_points, documents) = tokio::join!(
            statements,
            bureau,
            references,
            behaviour,
            group,
            data_points,
            documents
        );
        let intake_failure = |status| peer_failure("intake", status);
        Ok(CreditFile {
            statements: statements.map_err(intake_failure)?.into_inner().statements,
            bureau_report: bureau
                .map_err(intake_failure)?
                .into_inner()
                .reports
                .into_iter()
                .next(),
            trade_references: references.map_err(intake_failure)?.into_inner().references,
            payment_behaviour: behaviour?,
            data_points: data_points
                .map_err(intake_failure)?
                .into_inner()
                .data_points,
            documents: documents.map_err(intake_failure)?.into_inner().documents,
            group_name,
            customer,
        })
    }

    async fn data_point_catalog(&self) -> Result<DataPointCatalog, ServiceError> {
        self.read_catalog().await
    }
}

/// Pages of data point definitions read at most: intake's cap of 1,000 at 500 a page, and one
/// to spare.
const MAX_CATALOG_PAGES: usize = 3;

/// A definition as scorecards read it; `None` for a type this build does not know.
fn data_point_spec(definition: &pb::DataPointDefinition) -> Option<(String, DataPointSpec)> {
    let value_type = match pb::DataPointType::try_from(definition.r#type).ok()? {
        pb::DataPointType::Number | pb::DataPointType::Money | pb::DataPointType::Date => {
            ValueType::Numeric
        }
        pb::DataPointType::Category | pb::DataPointType::YesNo => ValueType::Categorical,
        pb::DataPointType::Unspecified => return None,
    };
    Some((
        definition.code.clone(),
        DataPointSpec {
            value_type,
            customer_kind: convert::customer_kind_from_proto(definition.customer_kind),
        },
    ))
}

impl PeerCreditFiles {
    /// Every page of intake's data point definitions.
    async fn read_catalog(&self) -> Result<DataPointCatalog, ServiceError> {
        let mut intake = self.intake.clone();
        let mut specs = Vec::new();
        let mut page_token = String::new();
        // Bounded: intake keeps at most 1,000 definitions, 500 a page.
        for _ in 0..MAX_CATALOG_PAGES {
            let page = intake
                .list_data_point_definitions(pb::ListDataPointDefinitionsRequest {
                    page_size: 500,
                    page_token: page_token.clone(),
                    ..Default::default()
                })
                .await
                .map_err(|status| peer_failure("intake", status))?
                .into_inner();
            specs.extend(page.definitions.iter().filter_map(data_point_spec));
            if page.next_page_token.is_empty() {
                break;
            }
            page_token = page.next_page_token;
        }
        Ok(DataPointCatalog::new(specs))
    }

    /// The group's name for the report; a report is still useful without it.
    async fn group_name(&self, group_id: &str) -> String {
        if group_id.is_empty() {
            return String::new();
        }
        let mut intake = self.intake.clone();
        match intake
            .get_group(pb::GetGroupRequest {
                group_id: group_id.to_owned(),
            })
            .await
        {
            Ok(response) => response
                .into_inner()
                .group
                .map(|group| group.name)
                .unwrap_or_default(),
            Err(status) => {
                tracing::warn!(%group_id, code = ?status.code(), "group name not available for the report");
                String::new()
            }
        }
    }
}

/// A peer that failed: UNAVAILABLE for the caller (rating cannot rate without its inputs), the
/// peer's status in the log.
fn peer_failure(peer: &'static str, status: tonic::Status) -> ServiceError {
    let message = match peer {
        "intake" => "intake did not answer; the customer cannot be rated now",
        _ => "collections did not answer; the customer cannot be rated now",
    };
    tracing::warn!(peer, code = ?status.code(), "peer call failed");
    ServiceError::unavailable(message, status)
}

impl CreditFile {
    /// The facts the rating inputs are gathered from. INTERNAL when intake answered with a
    /// customer this build cannot read (a new kind).
    pub fn facts(&self) -> Result<CreditFacts, ServiceError> {
        let customer = &self.customer;
        let kind = convert::customer_kind_from_proto(customer.kind).ok_or_else(|| {
            ServiceError::internal(format!("customer kind {} is not known", customer.kind))
        })?;
        let (industry_code, founding_date, birth_date, annual_income) = match &customer.details {
            Some(pb::customer::Details::Enterprise(enterprise)) => (
                enterprise.industry_code.clone(),
                enterprise.founding_date.as_ref().and_then(from_date),
                None,
                None,
            ),
            Some(pb::customer::Details::Individual(individual)) => (
                String::new(),
                None,
                individual.birth_date.as_ref().and_then(from_date),
                individual.annual_income.as_ref().and_then(money_amount),
            ),
            None => (String::new(), None, None, None),
        };
        Ok(CreditFacts {
            kind,
            industry_code,
            country: customer.country.clone(),
            founding_date,
            birth_date,
            annual_income,
            statement: self.statements.first().map(statement_facts),
            bureau_report: self.bureau_report.as_ref().map(bureau_facts),
            trade_references: self
                .trade_references
                .iter()
                .map(|reference| TradeReferenceFacts {
                    days_beyond_terms: u32::try_from(reference.days_beyond_terms).unwrap_or(0),
                    experience: match pb::PaymentExperience::try_from(reference.payment_experience)
                    {
                        Ok(pb::PaymentExperience::Prompt) => Some(PaymentExperience::Prompt),
                        Ok(pb::PaymentExperience::Slow) => Some(PaymentExperience::Slow),
                        Ok(pb::PaymentExperience::VerySlow) => Some(PaymentExperience::VerySlow),
                        _ => None,
                    },
                })
                .collect(),
            payment_behaviour: self.payment_behaviour.as_ref().and_then(payment_facts),
            data_points: self
                .data_points
                .iter()
                .filter_map(data_point_fact)
                .collect(),
        })
    }
}

impl CreditFile {
    /// The dates freshness looks at: the latest statement's period end, the latest bureau
    /// report's date, the documents and the data points' validity.
    pub fn dates(&self) -> FileDates {
        let day = |time: &prost_types::Timestamp| {
            chrono::DateTime::from_timestamp(time.seconds, 0).map(|time| time.date_naive())
        };
        FileDates {
            statement: self.statements.first().and_then(|statement| {
                let period_end = statement.period_end_date.as_ref()?;
                Some((statement.statement_id.clone(), from_date(period_end)?))
            }),
            bureau_report: self.bureau_report.as_ref().and_then(|report| {
                Some((
                    report.report_id.clone(),
                    from_date(report.report_date.as_ref()?)?,
                ))
            }),
            documents: self
                .documents
                .iter()
                .filter_map(|document| {
                    Some(DocumentDates {
                        document_id: document.document_id.clone(),
                        document_type: document.document_type.clone(),
                        issued_on: from_date(document.issued_on.as_ref()?)?,
                        valid_until: document.valid_until.as_ref().and_then(from_date),
                    })
                })
                .collect(),
            data_points: self
                .data_points
                .iter()
                .map(|point| (point.code.clone(), point.valid_until.as_ref().and_then(day)))
                .collect(),
        }
    }
}

/// A customer's data point as the rating reads it; `None` for a value this build cannot read
/// (it then scores as missing).
fn data_point_fact(data_point: &pb::DataPoint) -> Option<DataPointFact> {
    use pb::data_point_value::Value;
    let reading = match data_point.value.as_ref()?.value.as_ref()? {
        Value::Number(number) => DataPointReading::Number(Decimal::from_str(number.trim()).ok()?),
        Value::Money(money) => DataPointReading::Number(money_amount(money)?),
        Value::Category(category) => DataPointReading::Category(category.clone()),
        Value::YesNo(yes) => DataPointReading::Category(if *yes { "yes" } else { "no" }.to_owned()),
        Value::Date(date) => DataPointReading::Date(from_date(date)?),
        Value::Text(_) => return None,
    };
    Some(DataPointFact {
        code: data_point.code.clone(),
        reading,
        set_at: data_point
            .set_at
            .as_ref()
            .and_then(|time| chrono::DateTime::from_timestamp(time.seconds, 0))
            .map(|time| time.date_naive()),
        stale: data_point.stale,
    })
}

fn statement_facts(statement: &pb::FinancialStatement) -> StatementFacts {
    let mut figures = BTreeMap::new();
    let ratios = statement.ratios.clone().unwrap_or_default();
    let ratio_values: [(&'static str, &Option<String>); 11] = [
        ("current_ratio", &ratios.current_ratio),
        ("debt_to_assets", &ratios.debt_to_assets),
        ("net_margin", &ratios.net_margin),
        ("return_on_assets", &ratios.return_on_assets),
        ("interest_coverage", &ratios.interest_coverage),
        (
            "operating_cash_flow_to_total_liabilities",
            &ratios.operating_cash_flow_to_total_liabilities,
        ),
        (
            "working_capital_to_total_assets",
            &ratios.working_capital_to_total_assets,
        ),
        (
            "retained_earnings_to_total_assets",
            &ratios.retained_earnings_to_total_assets,
        ),
        ("ebit_to_total_assets", &ratios.ebit_to_total_assets),
        (
            "equity_to_total_liabilities",
            &ratios.equity_to_total_liabilities,
        ),
        ("altman_z_score", &ratios.altman_z_score),
    ];
    for (key, value) in ratio_values {
        if let Some(value) = value
            .as_deref()
            .and_then(|text| Decimal::from_str(text).ok())
        {
            figures.insert(key, value);
        }
    }
    let balance = statement.balance_sheet.as_ref();
    let amounts = [
        (
            "revenue",
            statement
                .income_statement
                .as_ref()
                .and_then(|income| income.revenue.as_ref()),
        ),
        ("equity", balance.and_then(|sheet| sheet.equity.as_ref())),
        (
            "total_assets",
            balance.and_then(|sheet| sheet.total_assets.as_ref()),
        ),
    ];
    for (key, money) in amounts {
        if let Some(amount) = money.and_then(money_amount) {
            figures.insert(key, amount);
        }
    }
    StatementFacts {
        statement_id: statement.statement_id.clone(),
        figures,
    }
}

fn bureau_facts(report: &pb::BureauReport) -> BureauFacts {
    BureauFacts {
        report_id: report.report_id.clone(),
        score: Decimal::from_str(report.score.trim()).ok(),
        lawsuits_count: u32::try_from(report.lawsuits_count).unwrap_or(0),
        agency_rating: report.agency_rating.trim().to_owned(),
        tax_compliance_status: match pb::TaxComplianceStatus::try_from(report.tax_compliance_status)
        {
            Ok(pb::TaxComplianceStatus::Compliant) => "COMPLIANT",
            Ok(pb::TaxComplianceStatus::MinorIssues) => "MINOR_ISSUES",
            Ok(pb::TaxComplianceStatus::NonCompliant) => "NON_COMPLIANT",
            _ => "UNKNOWN",
        },
    }
}

fn payment_facts(behaviour: &pb::PaymentBehaviour) -> Option<PaymentFacts> {
    let as_of = behaviour
        .window
        .as_ref()
        .and_then(|window| window.end_date.as_ref())
        .and_then(from_date)?;
    let decimal = |text: &Option<String>| {
        text.as_deref()
            .and_then(|text| Decimal::from_str(text.trim()).ok())
    };
    Some(PaymentFacts {
        as_of,
        max_days_overdue_12m: u32::try_from(behaviour.max_days_overdue_12m).unwrap_or(0),
        on_time_payment_ratio: decimal(&behaviour.on_time_payment_ratio),
        average_days_to_pay: decimal(&behaviour.average_days_to_pay),
        broken_promises_12m: u32::try_from(behaviour.broken_promises_12m).unwrap_or(0),
    })
}

fn money_amount(money: &pb::Money) -> Option<Decimal> {
    Decimal::from_str(money.amount.trim()).ok()
}
