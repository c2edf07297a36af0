//! Use cases of the rest of a customer's file: financial statements (each submission a new
//! version of its period), bureau reports and trade references.

use chrono::Utc;
use credit_core::{Actor, ServiceError};
use credit_runtime::sql::{IdempotencyKey, Page};

use super::{Intake, audit_entry, finish_keyed, new_id, required_id};
use crate::api::convert::events;
use crate::domain::customer::{Customer, FieldChange};
use crate::domain::records::{
    AuditAction, BureauReport, NewBureauReport, NewTradeReference, StatementRecord, TradeReference,
};
use crate::domain::statement::{NewStatement, PeriodType};
use crate::store::{bureau_report_list_key, statement_list_key};

impl Intake {
    /// Stores a checked statement as the next version of its period for the customer.
    pub async fn submit_financial_statement(
        &self,
        customer_id: &str,
        statement: NewStatement,
        key: IdempotencyKey,
        actor: &Actor,
    ) -> Result<StatementRecord, ServiceError> {
        let customer = self.load_customer(customer_id).await?;
        let record = StatementRecord {
            id: new_id("fst"),
            customer_id: customer.id.clone(),
            period: statement.period,
            audited: statement.audited,
            figures: statement.figures,
            version: 0,
            superseded: false,
            submitted_at: Utc::now(),
            submitted_by: actor.clone(),
        };
        let change = FieldChange {
            field: "financial_statement".into(),
            old_value: String::new(),
            new_value: format!("{} {}", record.period_key(), record.id),
        };
        let audit = audit_entry(
            &customer.id,
            AuditAction::StatementSubmitted,
            actor,
            vec![change],
            "",
            &key.request_id,
        );
        let make_event = |stored: &StatementRecord| {
            events::financial_statement_submitted(&customer, stored, actor, &key.request_id)
        };
        Ok(self
            .store
            .add_statement(&record, &key, &audit, &make_event)
            .await
            .map_err(ServiceError::from)?
            .into_inner())
    }

    pub async fn get_financial_statement(
        &self,
        statement_id: &str,
    ) -> Result<StatementRecord, ServiceError> {
        let statement_id = required_id(statement_id, "statement_id")?;
        self.store
            .get_statement(&statement_id)
            .await
            .map_err(ServiceError::from)?
            .ok_or_else(|| ServiceError::not_found("financial statement", statement_id))
    }

    /// One page of `customer`'s statements, newest period first, and the next page's token.
    pub async fn list_financial_statements(
        &self,
        customer: &Customer,
        include_superseded: bool,
        period_type: Option<PeriodType>,
        page: &Page,
    ) -> Result<(Vec<StatementRecord>, String), ServiceError> {
        let statements = self
            .store
            .list_statements(&customer.id, include_superseded, period_type, page)
            .await
            .map_err(ServiceError::from)?;
        Ok(finish_keyed(page, statements, statement_list_key))
    }

    pub async fn record_bureau_report(
        &self,
        customer_id: &str,
        report: NewBureauReport,
        key: IdempotencyKey,
        actor: &Actor,
    ) -> Result<BureauReport, ServiceError> {
        let customer = self.load_customer(customer_id).await?;
        let report = BureauReport {
            id: new_id("bur"),
            customer_id: customer.id.clone(),
            agency: report.agency,
            report_date: report.report_date,
            score: report.score,
            agency_rating: report.agency_rating,
            lawsuits_count: report.lawsuits_count,
            tax_compliance: report.tax_compliance,
            summary: report.summary,
            external_reference: report.external_reference,
            created_at: Utc::now(),
            created_by: actor.clone(),
        };
        let change = FieldChange {
            field: "bureau_report".into(),
            old_value: String::new(),
            new_value: format!("{} {} {}", report.agency, report.report_date, report.id),
        };
        let audit = audit_entry(
            &customer.id,
            AuditAction::BureauReportRecorded,
            actor,
            vec![change],
            "",
            &key.request_id,
        );
        let event = events::bureau_report_recorded(&customer, &report, actor, &key.request_id);
        Ok(self
            .store
            .add_bureau_report(&report, &key, &audit, &event)
            .await
            .map_err(ServiceError::from)?
            .into_inner())
    }

    /// One page of a customer's bureau reports, newest first, and the next page's token.
    pub async fn list_bureau_reports(
        &self,
        customer_id: &str,
        page: &Page,
    ) -> Result<(Vec<BureauReport>, String), ServiceError> {
        let customer = self.load_customer(customer_id).await?;
        let reports = self
            .store
            .list_bureau_reports(&customer.id, page)
            .await
            .map_err(ServiceError::from)?;
        Ok(finish_keyed(page, reports, bureau_report_list_key))
    }

    pub async fn add_trade_reference(
        &self,
        customer_id: &str,
        reference: NewTradeReference,
        key: IdempotencyKey,
        actor: &Actor,
    ) -> Result<TradeReference, ServiceError> {
        let customer = self.load_customer(customer_id).await?;
        let reference = TradeReference {
            id: new_id("trf"),
            customer_id: customer.id.clone(),
            supplier_name: reference.supplier_name,
            relationship_months: reference.relationship_months,
            typical_credit_line: reference.typical_credit_line,
            payment_experience: reference.payment_experience,
            days_beyond_terms: reference.days_beyond_terms,
            reference_date: reference.reference_date,
            notes: reference.notes,
            created_at: Utc::now(),
            created_by: actor.clone(),
        };
        let change = FieldChange {
            field: "trade_reference".into(),
            old_value: String::new(),
            new_value: format!("{} {}", reference.supplier_name, reference.id),
        };
        let audit = audit_entry(
            &customer.id,
            AuditAction::TradeReferenceAdded,
            actor,
            vec![change],
            "",
            &key.request_id,
        );
        Ok(self
            .store
            .add_trade_reference(&reference, &key, &audit)
            .await
            .map_err(ServiceError::from)?
            .into_inner())
    }

    /// One page of a customer's trade references, newest first, and the next page's token.
    pub async fn list_trade_references(
        &self,
        customer_id: &str,
        page: &Page,
    ) -> Result<(Vec<TradeReference>, String), ServiceError> {
        let customer = self.load_customer(customer_id).await?;
        let mut references = self
            .store
            .list_trade_references(&customer.id, page)
            .await
            .map_err(ServiceError::from)?;
        let next_page_token = page.finish(&mut references, |reference| reference.id.as_str());
        Ok((references, next_page_token))
    }
}
