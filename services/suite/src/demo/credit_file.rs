//! The story's first chapters: the customer registered, its credit file collected, rated, and a
//! limit proposed by policy and granted through four eyes.

use std::io::Write;
use std::time::Instant;

use chrono::Datelike;
use credit_proto::v1 as pb;
use rust_decimal::Decimal;
use tonic::Code;

use crate::import::code_name;

use super::{
    DEMO_CHECKLIST, DEMO_CURRENCY, DemoError, DemoSummary, EVENT_DEADLINE, Story, approval_status,
    customer_scope, customer_status, percent, show,
};

impl<W: Write> Story<'_, W> {
    pub(super) async fn tell(&mut self, seed: u64) -> Result<DemoSummary, DemoError> {
        let customer_id = self.register(seed).await?;
        self.collect_credit_file(&customer_id).await?;
        self.investigate(&customer_id).await?;
        let rating = self.rate(&customer_id).await?;
        let (limit, currency) = self.propose_and_grant(&customer_id).await?;
        let [approved, referred, far_beyond] = self.authorize_three(&customer_id, limit).await?;
        let receivables = self
            .invoice_and_pay_partly(&customer_id, &approved, &referred)
            .await?;
        let (oldest_overdue_days, blocked_order) =
            self.go_overdue(&customer_id, limit, receivables).await?;
        let dunning = self.dun(&customer_id).await?;
        let (final_order, position, released_by_system) =
            self.pay_the_rest(&customer_id, limit).await?;
        self.review_an_override(&customer_id).await?;
        self.review_the_policy().await?;
        writeln!(
            self.out,
            "story complete: {customer_id} graded {} with a limit of {} {currency}; exposure {} = holds {} + receivables {}",
            rating.grade, limit, position.exposure, position.holds, position.receivables
        )?;
        Ok(DemoSummary {
            run_id: self.run_id.clone(),
            customer_id,
            grade: rating.grade,
            pd: rating.pd,
            currency,
            limit,
            orders: vec![approved.outcome, referred.outcome, far_beyond.outcome],
            oldest_overdue_days,
            blocked_order,
            dunning,
            final_order,
            open_holds: position.holds,
            open_receivables: position.receivables,
            exposure: position.exposure,
            available: position.available,
            released_by_system,
        })
    }

    pub(super) async fn register(&mut self, seed: u64) -> Result<String, DemoError> {
        self.begin("register customer");
        let body = format!("91350100{seed:09}");
        let check = credit_intake::domain::uscc::check_character(&body)
            .ok_or_else(|| self.unexpected("no check character for the registration number"))?;
        let legal_name = format!("Demo Trading Co. {}", self.run_id);
        let customer = pb::Customer {
            kind: pb::CustomerKind::Enterprise.into(),
            country: "CN".into(),
            details: Some(pb::customer::Details::Enterprise(pb::EnterpriseDetails {
                legal_name: legal_name.clone(),
                registration_number: format!("{body}{check}"),
                registered_capital: self.money(Decimal::new(5_000_000, 0)),
                legal_representative: "Chen Wei".into(),
                industry_code: "F51".into(),
                founding_date: Some(pb::Date {
                    year: 2009,
                    month: 4,
                    day: 1,
                }),
            })),
            contacts: vec![pb::Contact {
                name: "Accounts payable".into(),
                role: "finance".into(),
                email: "ap@demo-trading.example".into(),
                primary: true,
                ..Default::default()
            }],
            ..Default::default()
        };
        let request_id = self.key("customer");
        let result = self
            .analyst_intake
            .create_customer(pb::CreateCustomerRequest {
                request_id,
                customer: Some(customer),
            })
            .await;
        let created = self
            .failed("CreateCustomer", result)?
            .customer
            .ok_or_else(|| self.unexpected("CreateCustomer answered no customer"))?;
        let customer_id = created.customer_id.clone();
        let status = customer_status(created.status);
        let result = self
            .manager_intake
            .set_customer_status(pb::SetCustomerStatusRequest {
                customer_id: customer_id.clone(),
                status: pb::CustomerStatus::Active.into(),
                reason: "demo: approved for trade credit".into(),
                etag: String::new(),
            })
            .await;
        let active = self
            .failed("SetCustomerStatus", result)?
            .customer
            .map(|customer| customer.status)
            .unwrap_or_default();
        let active = customer_status(active);
        let by = self.cast.manager.name.clone();
        self.line(&format!(
            "{customer_id} \"{legal_name}\" (enterprise, wholesale F51): {status} -> {active} by {by}"
        ))?;
        Ok(customer_id)
    }

    pub(super) async fn collect_credit_file(&mut self, customer_id: &str) -> Result<(), DemoError> {
        self.begin("financial statement");
        let fiscal_year = self.today.year() - 1;
        let thousands = |amount: i64| self.money(Decimal::new(amount * 1_000, 0));
        let statement = pb::FinancialStatement {
            period_type: pb::FiscalPeriodType::Annual.into(),
            fiscal_year,
            period_end_date: Some(pb::Date {
                year: fiscal_year,
                month: 12,
                day: 31,
            }),
            currency: DEMO_CURRENCY.into(),
            audited: true,
            balance_sheet: Some(pb::BalanceSheet {
                cash: thousands(900),
                current_assets: thousands(4_500),
                total_assets: thousands(8_000),
                current_liabilities: thousands(2_500),
                total_liabilities: thousands(5_500),
                retained_earnings: thousands(1_500),
                equity: thousands(2_500),
            }),
            income_statement: Some(pb::IncomeStatement {
                revenue: thousands(24_000),
                gross_profit: thousands(4_800),
                ebit: thousands(2_200),
                interest_expense: thousands(300),
                net_income: thousands(1_440),
            }),
            cash_flow_statement: Some(pb::CashFlowStatement {
                operating_cash_flow: thousands(1_800),
            }),
            ..Default::default()
        };
        let request_id = self.key("statement");
        let result = self
            .analyst_intake
            .submit_financial_statement(pb::SubmitFinancialStatementRequest {
                request_id,
                customer_id: customer_id.into(),
                statement: Some(statement),
            })
            .await;
        let stored = self
            .failed("SubmitFinancialStatement", result)?
            .statement
            .ok_or_else(|| self.unexpected("SubmitFinancialStatement answered no statement"))?;
        let ratios = stored.ratios.unwrap_or_default();
        let ratio = |value: &Option<String>| value.clone().unwrap_or_else(|| "n/a".into());
        let zone = pb::AltmanZone::try_from(ratios.altman_zone)
            .map(|zone| zone.as_str_name().trim_start_matches("ALTMAN_ZONE_"))
            .unwrap_or("UNSPECIFIED");
        self.line(&format!(
            "{} FY{fiscal_year}: revenue 24000000.00, equity 2500000.00 {DEMO_CURRENCY}; current ratio {}, debt/assets {}, net margin {}, Altman Z'' {} ({zone})",
            stored.statement_id,
            ratio(&ratios.current_ratio),
            ratio(&ratios.debt_to_assets),
            ratio(&ratios.net_margin),
            ratio(&ratios.altman_z_score),
        ))?;

        self.begin("bureau and trade ref");
        let request_id = self.key("bureau");
        let result = self
            .analyst_intake
            .record_bureau_report(pb::RecordBureauReportRequest {
                request_id,
                customer_id: customer_id.into(),
                report: Some(pb::BureauReport {
                    agency: "Demo Credit Bureau".into(),
                    report_date: Some(self.date(3)),
                    score: "76".into(),
                    agency_rating: "A".into(),
                    tax_compliance_status: pb::TaxComplianceStatus::Compliant.into(),
                    ..Default::default()
                }),
            })
            .await;
        let report = self
            .failed("RecordBureauReport", result)?
            .report
            .ok_or_else(|| self.unexpected("RecordBureauReport answered no report"))?;
        let request_id = self.key("trade-reference");
        let result = self
            .analyst_intake
            .add_trade_reference(pb::AddTradeReferenceRequest {
                request_id,
                customer_id: customer_id.into(),
                reference: Some(pb::TradeReference {
                    supplier_name: "Xiamen Packaging Supply".into(),
                    relationship_months: 48,
                    typical_credit_line: self.money(Decimal::new(400_000, 0)),
                    payment_experience: pb::PaymentExperience::Prompt.into(),
                    days_beyond_terms: 0,
                    reference_date: Some(self.date(10)),
                    ..Default::default()
                }),
            })
            .await;
        let reference = self
            .failed("AddTradeReference", result)?
            .reference
            .ok_or_else(|| self.unexpected("AddTradeReference answered no reference"))?;
        self.line(&format!(
            "bureau report {} score 76 (tax compliant); trade reference {} pays PROMPT, 48 months",
            report.report_id, reference.reference_id
        ))?;
        Ok(())
    }

    /// The credit investigation (信用调查) on the demo's checklist: the business licence
    /// collected, the main customers asked about, the site visited, then completed.
    pub(super) async fn investigate(&mut self, customer_id: &str) -> Result<(), DemoError> {
        use pb::record_investigation_item_request::Outcome;
        self.begin("investigation");
        let item = |code: &str, kind: pb::ChecklistItemKind, label: &str| pb::ChecklistItem {
            code: code.into(),
            kind: kind.into(),
            label_zh: label.into(),
            required: true,
            document_type: if kind == pb::ChecklistItemKind::Document {
                code.into()
            } else {
                String::new()
            },
            ..Default::default()
        };
        // Named when the investigation is opened, and claiming only its own industry prefix,
        // the demo's checklist never stands in the way of a company's own.
        let result = self
            .manager_intake
            .publish_checklist(pb::PublishChecklistRequest {
                request_id: self.key("checklist"),
                checklist: Some(pb::InvestigationChecklist {
                    checklist_id: DEMO_CHECKLIST.into(),
                    display_name: "客户信用调查表 (demo)".into(),
                    customer_kind: pb::CustomerKind::Enterprise.into(),
                    industry_codes: vec!["DEMO".into()],
                    items: vec![
                        item(
                            "business_licence",
                            pb::ChecklistItemKind::Document,
                            "营业执照",
                        ),
                        item(
                            "main_customers",
                            pb::ChecklistItemKind::Question,
                            "主要客户",
                        ),
                        item("site_visit", pb::ChecklistItemKind::Visit, "现场尽职调查"),
                    ],
                    change_note: "demo run".into(),
                    ..Default::default()
                }),
            })
            .await;
        let checklist = self
            .failed("PublishChecklist", result)?
            .checklist
            .ok_or_else(|| self.unexpected("PublishChecklist answered no checklist"))?;
        let result = self
            .analyst_intake
            .record_document(pb::RecordDocumentRequest {
                request_id: self.key("licence"),
                customer_id: customer_id.into(),
                document: Some(pb::CreditDocument {
                    document_type: "business_licence".into(),
                    title: "营业执照".into(),
                    issued_on: Some(self.date(400)),
                    valid_until: Some(self.date_ahead(3_200)),
                    storage_uri: format!("dms://demo/{customer_id}/business-licence.pdf"),
                    ..Default::default()
                }),
            })
            .await;
        let licence = self
            .failed("RecordDocument", result)?
            .document
            .ok_or_else(|| self.unexpected("RecordDocument answered no document"))?;
        let result = self
            .analyst_intake
            .open_investigation(pb::OpenInvestigationRequest {
                customer_id: customer_id.into(),
                checklist_id: DEMO_CHECKLIST.into(),
                request_id: self.key("investigation"),
            })
            .await;
        let mut investigation = self
            .failed("OpenInvestigation", result)?
            .investigation
            .ok_or_else(|| self.unexpected("OpenInvestigation answered no investigation"))?;
        let result = self
            .analyst_intake
            .record_visit_report(pb::RecordVisitReportRequest {
                investigation_id: investigation.investigation_id.clone(),
                report: Some(pb::VisitReport {
                    visited_on: Some(self.date(1)),
                    visitors: vec![self.cast.analyst.name.clone()],
                    location: "Haicang plant".into(),
                    met_with: "CFO".into(),
                    findings: "Two lines running; stock matches the books".into(),
                    ..Default::default()
                }),
            })
            .await;
        let visited = self.failed("RecordVisitReport", result)?;
        let report_id = visited
            .report
            .map(|report| report.visit_report_id)
            .ok_or_else(|| self.unexpected("RecordVisitReport answered no report"))?;
        for (code, outcome) in [
            (
                "business_licence",
                Outcome::DocumentId(licence.document_id.clone()),
            ),
            (
                "main_customers",
                Outcome::Answer("three distributors in Fujian, none above 30 % of sales".into()),
            ),
            ("site_visit", Outcome::VisitReportId(report_id.clone())),
        ] {
            let result = self
                .analyst_intake
                .record_investigation_item(pb::RecordInvestigationItemRequest {
                    investigation_id: investigation.investigation_id.clone(),
                    item_code: code.into(),
                    outcome: Some(outcome),
                    ..Default::default()
                })
                .await;
            investigation = self
                .failed("RecordInvestigationItem", result)?
                .investigation
                .ok_or_else(|| self.unexpected("RecordInvestigationItem answered nothing"))?;
        }
        let result = self
            .analyst_intake
            .complete_investigation(pb::CompleteInvestigationRequest {
                investigation_id: investigation.investigation_id.clone(),
                note: "no concerns".into(),
                cancel: false,
            })
            .await;
        let completed = self
            .failed("CompleteInvestigation", result)?
            .investigation
            .ok_or_else(|| self.unexpected("CompleteInvestigation answered nothing"))?;
        self.line(&format!(
            "{} on checklist {} v{}: licence {}, main customers answered, visit report {}",
            completed.investigation_id,
            checklist.checklist_id,
            checklist.version,
            licence.document_id,
            report_id
        ))?;
        self.detail(&format!(
            "{} of {} items done; investigation {}",
            completed
                .items
                .iter()
                .filter(|item| item.status == i32::from(pb::InvestigationItemStatus::Done))
                .count(),
            completed.items.len(),
            pb::InvestigationStatus::try_from(completed.status).map_or("UNKNOWN", |status| status
                .as_str_name()
                .trim_start_matches("INVESTIGATION_STATUS_"))
        ))?;
        Ok(())
    }

    pub(super) async fn rate(&mut self, customer_id: &str) -> Result<pb::Rating, DemoError> {
        self.begin("rate");
        let request_id = self.key("rating");
        let result = self
            .rating
            .rate_customer(pb::RateCustomerRequest {
                request_id,
                customer_id: customer_id.into(),
                qualitative_inputs: [
                    ("management_quality".to_owned(), 4),
                    ("market_position".to_owned(), 4),
                    ("industry_outlook".to_owned(), 3),
                ]
                .into_iter()
                .collect(),
                note: "demo: first rating".into(),
                ..Default::default()
            })
            .await;
        let rating = self
            .failed("RateCustomer", result)?
            .rating
            .ok_or_else(|| self.unexpected("RateCustomer answered no rating"))?;
        let reasons: Vec<&str> = rating
            .reasons
            .iter()
            .map(|reason| reason.code.as_str())
            .collect();
        self.line(&format!(
            "{}: grade {} (model grade {}), score {}, PD {}, model {} v{}; qualitative: management 4, market 4, outlook 3",
            rating.rating_id,
            rating.grade,
            rating.model_grade,
            rating.score,
            percent(&rating.pd),
            rating.model_id,
            rating.model_version,
        ))?;
        self.detail(&format!(
            "points lost most on: {}",
            if reasons.is_empty() {
                "nothing".to_owned()
            } else {
                reasons.join(", ")
            }
        ))?;
        Ok(rating)
    }

    pub(super) async fn propose_and_grant(
        &mut self,
        customer_id: &str,
    ) -> Result<(Decimal, String), DemoError> {
        self.begin("propose limit");
        // Limits learns of the rating (RatingChanged) and of the statement
        // (FinancialStatementSubmitted) from events: wait for both.
        let deadline = Instant::now() + EVENT_DEADLINE;
        let proposal = loop {
            let attempt = self
                .maker
                .propose_limit(pb::ProposeLimitRequest {
                    customer_id: customer_id.into(),
                    currency: DEMO_CURRENCY.into(),
                })
                .await;
            let last = match attempt {
                Ok(response) => {
                    let proposal = response.into_inner();
                    if !proposal.statement_id.is_empty() && proposal.proposed_amount.is_some() {
                        break proposal;
                    }
                    "a proposal without the statement".to_owned()
                }
                Err(status)
                    if matches!(status.code(), Code::FailedPrecondition | Code::NotFound) =>
                {
                    format!("{}: {}", code_name(status.code()), status.message())
                }
                Err(status) => return Err(self.call_error("ProposeLimit", &status)),
            };
            self.pause(
                deadline,
                "limits to learn of the rating and the statement",
                || last,
            )
            .await?;
        };
        let proposed = self.amount_of("proposed_amount", proposal.proposed_amount.as_ref())?;
        let currency = proposal
            .proposed_amount
            .as_ref()
            .map(|money| money.currency.clone())
            .unwrap_or_else(|| DEMO_CURRENCY.into());
        self.line(&format!(
            "{proposed} {currency} for grade {}, the smallest of:",
            proposal.grade
        ))?;
        for component in &proposal.components {
            let kind = pb::LimitProposalComponentType::try_from(component.component_type)
                .map(|kind| {
                    kind.as_str_name()
                        .trim_start_matches("LIMIT_PROPOSAL_COMPONENT_TYPE_")
                        .to_lowercase()
                        .replace('_', " ")
                })
                .unwrap_or_else(|_| "component".into());
            let binding = if component.binding { " (binding)" } else { "" };
            self.detail(&format!(
                "{kind}: {}{binding} - {}",
                show(component.amount.as_ref()),
                component.explanation
            ))?;
        }

        self.begin("limit request");
        let deadline = Instant::now() + EVENT_DEADLINE;
        let request_id = self.key("limit");
        let requested = loop {
            let attempt = self
                .maker
                .request_limit_change(pb::RequestLimitChangeRequest {
                    request_id: request_id.clone(),
                    scope: customer_scope(customer_id),
                    amount: proposal.proposed_amount.clone(),
                    reason: "demo: the proposed limit".into(),
                    ..Default::default()
                })
                .await;
            match attempt {
                Ok(response) => break response.into_inner(),
                // Limits learns of the customer from intake's events, a moment later.
                Err(status) if status.code() == Code::NotFound => {
                    let last = status.message().to_owned();
                    self.pause(deadline, "limits to learn of the customer", || last)
                        .await?;
                }
                Err(status) => return Err(self.call_error("RequestLimitChange", &status)),
            }
        };
        let limit_request = requested
            .limit_request
            .ok_or_else(|| self.unexpected("RequestLimitChange answered no request"))?;
        let status = approval_status(limit_request.status);
        let maker = self.cast.analyst.name.clone();
        self.line(&format!(
            "{} for {proposed} {currency} by {maker}: {status}",
            limit_request.limit_request_id
        ))?;

        self.begin("limit approval");
        if limit_request.status() == pb::ApprovalStatus::Pending {
            let request_id = self.key("limit-decision");
            let result = self
                .checker
                .decide_limit_request(pb::DecideLimitRequestRequest {
                    request_id,
                    limit_request_id: limit_request.limit_request_id.clone(),
                    decision: pb::ApprovalDecision::Approve.into(),
                    reason: "demo: financials and rating support the proposal".into(),
                })
                .await;
            let decided = self
                .failed("DecideLimitRequest", result)?
                .limit_request
                .ok_or_else(|| self.unexpected("DecideLimitRequest answered no request"))?;
            if decided.status() != pb::ApprovalStatus::Approved {
                return Err(self.unexpected(format!(
                    "the limit request is {}",
                    approval_status(decided.status)
                )));
            }
            let checker = decided
                .decided_by
                .map(|actor| actor.principal)
                .unwrap_or_default();
            self.line(&format!(
                "approved by {checker} (the maker cannot approve their own request): limit {proposed} {currency} in force"
            ))?;
        } else {
            self.line(&format!(
                "approved without a checker by rule {}",
                limit_request.auto_approval_rule_id
            ))?;
        }
        Ok((proposed, currency))
    }
}
