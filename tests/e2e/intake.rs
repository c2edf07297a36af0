//! IntakeService through the generated client, on both backends.

use credit_core::Role;
use credit_e2e_tests::{Authed, TestSuite, uscc};
use credit_proto::v1 as pb;
use credit_proto::v1::intake_service_client::IntakeServiceClient;
use rust_decimal::Decimal;
use tonic::Code;
use tonic_types::StatusExt;

type Intake = IntakeServiceClient<Authed>;

fn money(amount: &str) -> Option<pb::Money> {
    Some(pb::Money {
        amount: amount.into(),
        currency: "CNY".into(),
    })
}

pub fn enterprise(name: &str, registration_number: &str) -> pb::Customer {
    pb::Customer {
        kind: pb::CustomerKind::Enterprise as i32,
        country: "CN".into(),
        details: Some(pb::customer::Details::Enterprise(pb::EnterpriseDetails {
            legal_name: name.into(),
            registration_number: registration_number.into(),
            registered_capital: money("5000000.00"),
            legal_representative: "Chen Wei".into(),
            industry_code: "F51".into(),
            founding_date: Some(pb::Date {
                year: 2009,
                month: 4,
                day: 1,
            }),
        })),
        contacts: vec![pb::Contact {
            name: "Lin Fang".into(),
            role: "finance".into(),
            phone: "+86 592 555 0100".into(),
            email: "lin.fang@example.cn".into(),
            primary: true,
            ..Default::default()
        }],
        ..Default::default()
    }
}

pub fn individual(name: &str, national_id: &str) -> pb::Customer {
    pb::Customer {
        kind: pb::CustomerKind::Individual as i32,
        country: "CN".into(),
        details: Some(pb::customer::Details::Individual(pb::IndividualDetails {
            full_name: name.into(),
            national_id: national_id.into(),
            birth_date: Some(pb::Date {
                year: 1980,
                month: 5,
                day: 17,
            }),
            occupation: "shop owner".into(),
            annual_income: money("380000.00"),
            ..Default::default()
        })),
        ..Default::default()
    }
}

pub async fn create(
    intake: &mut Intake,
    request_id: &str,
    customer: pb::Customer,
) -> Result<pb::Customer, tonic::Status> {
    let response = intake
        .create_customer(pb::CreateCustomerRequest {
            request_id: request_id.into(),
            customer: Some(customer),
        })
        .await?;
    Ok(response.into_inner().customer.unwrap())
}

fn reason(status: &tonic::Status) -> String {
    status
        .get_error_details()
        .error_info()
        .map(|info| info.reason.clone())
        .unwrap_or_default()
}

pub(crate) fn violated_fields(status: &tonic::Status) -> Vec<String> {
    assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
    status
        .get_error_details()
        .bad_request()
        .map(|bad_request| {
            bad_request
                .field_violations
                .iter()
                .map(|violation| violation.field.clone())
                .collect()
        })
        .unwrap_or_default()
}

async fn count_customers(intake: &mut Intake, filter: pb::ListCustomersRequest) -> usize {
    intake
        .list_customers(filter)
        .await
        .unwrap()
        .into_inner()
        .customers
        .len()
}

fn national_id_of(customer: &pb::Customer) -> String {
    match &customer.details {
        Some(pb::customer::Details::Individual(person)) => person.national_id.clone(),
        _ => panic!("not an individual"),
    }
}

/// A request_id is its sender's own: another principal sending the same id does its own work
/// instead of getting the first sender's customer (or a "reused" refusal), and each retry
/// replays its own sender's answer.
pub async fn request_ids_are_the_callers_own(suite: &TestSuite) {
    let mut ana = suite.intake(&suite.issue_token("ana", &[Role::Analyst]).await);
    let mut bob = suite.intake(&suite.issue_token("bob", &[Role::Analyst]).await);
    let anas = create(
        &mut ana,
        "batch-7",
        enterprise("Ana's Trading", &uscc(1101)),
    )
    .await
    .unwrap();
    let bobs = create(
        &mut bob,
        "batch-7",
        enterprise("Bob's Trading", &uscc(1102)),
    )
    .await
    .unwrap();
    assert_ne!(anas.customer_id, bobs.customer_id);
    assert_eq!(bobs.display_name, "Bob's Trading");

    let ana_again = create(
        &mut ana,
        "batch-7",
        enterprise("Ana's Trading", &uscc(1101)),
    )
    .await
    .unwrap();
    assert_eq!(ana_again.customer_id, anas.customer_id);
    let bob_again = create(
        &mut bob,
        "batch-7",
        enterprise("Bob's Trading", &uscc(1102)),
    )
    .await
    .unwrap();
    assert_eq!(bob_again.customer_id, bobs.customer_id);
    // Within one sender, other content under the same id is still refused.
    let reused = create(&mut bob, "batch-7", enterprise("Bob's Other", &uscc(1103)))
        .await
        .unwrap_err();
    assert_eq!(reason(&reused), "IDEMPOTENCY_KEY_REUSED");
}

pub async fn registers_and_refuses_duplicates(suite: &TestSuite) {
    let mut intake = suite.intake(&suite.issue_token("ana", &[Role::Analyst]).await);
    let code = uscc(1001);
    let first = create(
        &mut intake,
        "req-1",
        enterprise("Xiamen Harbour Trading", &code),
    )
    .await
    .unwrap();
    assert!(first.customer_id.starts_with("cus_"));
    assert_eq!(first.status(), pb::CustomerStatus::Prospect);
    assert_eq!(first.display_name, "Xiamen Harbour Trading");
    assert_eq!(
        first
            .audit
            .as_ref()
            .unwrap()
            .created_by
            .as_ref()
            .unwrap()
            .principal,
        "ana"
    );

    let fetched = intake
        .get_customer(pb::GetCustomerRequest {
            customer_id: first.customer_id.clone(),
        })
        .await
        .unwrap()
        .into_inner()
        .customer
        .unwrap();
    assert_eq!(fetched, first);

    // A retry with the same request id returns the first customer and writes nothing.
    let retried = create(
        &mut intake,
        "req-1",
        enterprise("Xiamen Harbour Trading", &code),
    )
    .await
    .unwrap();
    assert_eq!(retried.customer_id, first.customer_id);
    // The same request id with other content is refused.
    let reused = create(&mut intake, "req-1", enterprise("Another Name", &code))
        .await
        .unwrap_err();
    assert_eq!(reused.code(), Code::AlreadyExists);
    assert_eq!(reason(&reused), "IDEMPOTENCY_KEY_REUSED");

    // A second enterprise with the same registration number is refused, naming the first.
    let duplicate = create(
        &mut intake,
        "req-2",
        enterprise("Harbour Copy Ltd", &code.to_lowercase()),
    )
    .await
    .unwrap_err();
    assert_eq!(duplicate.code(), Code::AlreadyExists);
    assert_eq!(reason(&duplicate), "CUSTOMER_ALREADY_REGISTERED");
    let info = duplicate.get_error_details().error_info().cloned().unwrap();
    assert_eq!(
        info.metadata.get("existing_customer_id"),
        Some(&first.customer_id)
    );
    assert!(duplicate.message().contains(&first.customer_id));

    let same_registration = pb::ListCustomersRequest {
        registration_number: code.clone(),
        ..Default::default()
    };
    assert_eq!(count_customers(&mut intake, same_registration).await, 1);
    assert_eq!(
        suite.outbox_event_types(&credit_intake::STORE).await,
        ["CustomerRegistered"],
        "one registration, one event"
    );
}

pub async fn bad_input_is_refused_with_field_violations_and_nothing_written(suite: &TestSuite) {
    let mut intake = suite.intake(&suite.issue_token("ana", &[Role::Analyst]).await);
    let mut code = uscc(2002);
    let check = code.pop().unwrap();
    code.push(if check == '0' { '1' } else { '0' });
    let wrong_check = create(&mut intake, "bad-1", enterprise("Wrong Check Co", &code))
        .await
        .unwrap_err();
    assert_eq!(
        violated_fields(&wrong_check),
        ["customer.enterprise.registration_number"]
    );

    let mut incomplete = enterprise("", &uscc(2003));
    incomplete.contacts[0].email = "lin.fang-at-example".into();
    let refused = create(&mut intake, "bad-2", incomplete).await.unwrap_err();
    let fields = violated_fields(&refused);
    assert!(
        fields.contains(&"customer.enterprise.legal_name".to_owned()),
        "{fields:?}"
    );
    assert!(
        fields.contains(&"customer.contacts[0].email".to_owned()),
        "{fields:?}"
    );

    let missing = intake
        .create_customer(pb::CreateCustomerRequest {
            request_id: "bad-3".into(),
            customer: None,
        })
        .await
        .unwrap_err();
    assert_eq!(violated_fields(&missing), ["customer"]);
    let no_request_id = create(&mut intake, "", enterprise("No Key Co", &uscc(2004)))
        .await
        .unwrap_err();
    assert_eq!(violated_fields(&no_request_id), ["request_id"]);

    assert_eq!(
        count_customers(&mut intake, pb::ListCustomersRequest::default()).await,
        0
    );
    assert!(
        suite
            .outbox_event_types(&credit_intake::STORE)
            .await
            .is_empty()
    );
}

pub async fn national_ids_are_masked_for_roles_that_may_not_see_them(suite: &TestSuite) {
    let mut analyst = suite.intake(&suite.issue_token("ana", &[Role::Analyst]).await);
    let mut order_entry = suite.intake(&suite.issue_token("erp", &[Role::OrderEntry]).await);
    let mut collector = suite.intake(&suite.issue_token("col", &[Role::Collector]).await);
    let mut wang = individual("Wang Lei", "350203198005170036");
    wang.contacts = vec![pb::Contact {
        name: "Wang Lei".into(),
        phone: "+86 138 0013 8000".into(),
        email: "wang.lei@example.cn".into(),
        primary: true,
        ..Default::default()
    }];
    let created = create(&mut analyst, "ind-1", wang).await.unwrap();
    assert_eq!(national_id_of(&created), "350203198005170036");
    let contact_of = |customer: &pb::Customer| {
        let contact = &customer.contacts[0];
        (contact.phone.clone(), contact.email.clone())
    };
    let get = pb::GetCustomerRequest {
        customer_id: created.customer_id.clone(),
    };
    let seen_by_orders = order_entry
        .get_customer(get.clone())
        .await
        .unwrap()
        .into_inner()
        .customer
        .unwrap();
    assert_eq!(national_id_of(&seen_by_orders), "**************0036");
    // Phone and e-mail are personal data too: masked where the national id is.
    assert_eq!(
        contact_of(&seen_by_orders),
        ("*************8000".to_owned(), "w***@example.cn".to_owned())
    );
    let listed = collector
        .list_customers(pb::ListCustomersRequest::default())
        .await
        .unwrap()
        .into_inner()
        .customers;
    assert_eq!(national_id_of(&listed[0]), "**************0036");
    assert_eq!(contact_of(&listed[0]).1, "w***@example.cn");
    let seen_by_analyst = analyst
        .get_customer(get)
        .await
        .unwrap()
        .into_inner()
        .customer
        .unwrap();
    assert_eq!(national_id_of(&seen_by_analyst), "350203198005170036");
    assert_eq!(
        contact_of(&seen_by_analyst),
        (
            "+86 138 0013 8000".to_owned(),
            "wang.lei@example.cn".to_owned()
        )
    );
}

pub async fn updates_follow_the_mask_and_are_audited(suite: &TestSuite) {
    let mut intake = suite.intake(&suite.issue_token("ana", &[Role::Analyst]).await);
    let created = create(
        &mut intake,
        "upd-1",
        enterprise("Old Name Trading", &uscc(3001)),
    )
    .await
    .unwrap();
    let mut patch = enterprise("New Name Trading", "IGNORED");
    patch.customer_id = created.customer_id.clone();
    patch.etag = created.etag.clone();
    if let Some(pb::customer::Details::Enterprise(details)) = &mut patch.details {
        details.industry_code = "NOT-IN-MASK".into();
    }
    let updated = intake
        .update_customer(pb::UpdateCustomerRequest {
            customer: Some(patch.clone()),
            update_mask: Some(prost_types::FieldMask {
                paths: vec!["enterprise.legal_name".into()],
            }),
            reason: "renamed after merger".into(),
        })
        .await
        .unwrap()
        .into_inner()
        .customer
        .unwrap();
    assert_eq!(updated.display_name, "New Name Trading");
    assert_ne!(updated.etag, created.etag);
    let Some(pb::customer::Details::Enterprise(details)) = &updated.details else {
        unreachable!()
    };
    assert_eq!(details.industry_code, "F51");

    // The etag read before the update is stale now.
    let stale = intake
        .update_customer(pb::UpdateCustomerRequest {
            customer: Some(patch.clone()),
            update_mask: Some(prost_types::FieldMask {
                paths: vec!["external_reference".into()],
            }),
            reason: String::new(),
        })
        .await
        .unwrap_err();
    assert_eq!(stale.code(), Code::Aborted);

    patch.etag = String::new();
    let identity = intake
        .update_customer(pb::UpdateCustomerRequest {
            customer: Some(patch),
            update_mask: Some(prost_types::FieldMask {
                paths: vec!["enterprise.registration_number".into()],
            }),
            reason: String::new(),
        })
        .await
        .unwrap_err();
    assert_eq!(violated_fields(&identity), ["update_mask"]);

    let audit = intake
        .list_customer_audit(pb::ListCustomerAuditRequest {
            customer_id: created.customer_id.clone(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .entries;
    let actions: Vec<_> = audit.iter().map(|entry| entry.action()).collect();
    assert_eq!(
        actions,
        [
            pb::CustomerAuditAction::Created,
            pb::CustomerAuditAction::Updated
        ]
    );
    let update = &audit[1];
    assert_eq!(update.actor.as_ref().unwrap().principal, "ana");
    assert_eq!(update.reason, "renamed after merger");
    assert_eq!(
        update.changes,
        [pb::FieldChange {
            field: "enterprise.legal_name".into(),
            old_value: "Old Name Trading".into(),
            new_value: "New Name Trading".into(),
        }]
    );
}

pub async fn lists_filter_and_page_in_a_stable_order(suite: &TestSuite) {
    let token = suite
        .issue_token("mgr", &[Role::Analyst, Role::CreditManager])
        .await;
    let mut intake = suite.intake(&token);
    let mut created = Vec::new();
    for index in 0..5 {
        let name = if index % 2 == 0 {
            format!("Harbour Trading {index}")
        } else {
            format!("Mountain Foods {index}")
        };
        created.push(
            create(
                &mut intake,
                &format!("list-{index}"),
                enterprise(&name, &uscc(4000 + index)),
            )
            .await
            .unwrap(),
        );
    }
    for (index, national_id) in ["350203198005170036", "350203198005170052"]
        .iter()
        .enumerate()
    {
        created.push(
            create(
                &mut intake,
                &format!("list-ind-{index}"),
                individual("Wang Lei", national_id),
            )
            .await
            .unwrap(),
        );
    }

    let mut seen = Vec::new();
    let mut page_token = String::new();
    let mut pages = 0;
    loop {
        let page = intake
            .list_customers(pb::ListCustomersRequest {
                page_size: 3,
                page_token: page_token.clone(),
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner();
        assert!(page.customers.len() <= 3);
        seen.extend(
            page.customers
                .into_iter()
                .map(|customer| customer.customer_id),
        );
        pages += 1;
        if page.next_page_token.is_empty() {
            break;
        }
        page_token = page.next_page_token;
    }
    let expected: Vec<_> = created
        .iter()
        .map(|customer| customer.customer_id.clone())
        .collect();
    assert_eq!(seen, expected, "every customer once, in creation order");
    assert_eq!(pages, 3);

    let individuals = pb::ListCustomersRequest {
        kind: pb::CustomerKind::Individual as i32,
        ..Default::default()
    };
    assert_eq!(count_customers(&mut intake, individuals).await, 2);
    let harbour = pb::ListCustomersRequest {
        name_prefix: "HARBOUR".into(),
        ..Default::default()
    };
    assert_eq!(count_customers(&mut intake, harbour).await, 3);
    let in_industry = pb::ListCustomersRequest {
        industry_code: "f51".into(),
        country: "cn".into(),
        ..Default::default()
    };
    assert_eq!(count_customers(&mut intake, in_industry).await, 5);

    intake
        .set_customer_status(pb::SetCustomerStatusRequest {
            customer_id: created[0].customer_id.clone(),
            status: pb::CustomerStatus::Active as i32,
            reason: "approved".into(),
            etag: String::new(),
        })
        .await
        .unwrap();
    let active = pb::ListCustomersRequest {
        statuses: vec![pb::CustomerStatus::Active as i32],
        ..Default::default()
    };
    assert_eq!(count_customers(&mut intake, active).await, 1);
    let either = pb::ListCustomersRequest {
        statuses: vec![
            pb::CustomerStatus::Active as i32,
            pb::CustomerStatus::Prospect as i32,
        ],
        ..Default::default()
    };
    assert_eq!(count_customers(&mut intake, either).await, 7);
    let bad_token = intake
        .list_customers(pb::ListCustomersRequest {
            page_token: "not-a-token".into(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(violated_fields(&bad_token), ["page_token"]);
}

async fn set_status(
    intake: &mut Intake,
    customer_id: &str,
    status: pb::CustomerStatus,
    reason: &str,
) -> Result<pb::Customer, tonic::Status> {
    let response = intake
        .set_customer_status(pb::SetCustomerStatusRequest {
            customer_id: customer_id.into(),
            status: status as i32,
            reason: reason.into(),
            etag: String::new(),
        })
        .await?;
    Ok(response.into_inner().customer.unwrap())
}

pub async fn lifecycle_follows_the_allowed_transitions(suite: &TestSuite) {
    use pb::CustomerStatus::{Active, Closed, Prospect, Suspended};
    let mut intake = suite.intake(&suite.issue_token("mgr", &[Role::CreditManager]).await);
    let customer = create(
        &mut intake,
        "life-1",
        enterprise("Lifecycle Ltd", &uscc(5001)),
    )
    .await
    .unwrap();
    let id = customer.customer_id.as_str();

    let no_reason = set_status(&mut intake, id, Active, " ").await.unwrap_err();
    assert_eq!(violated_fields(&no_reason), ["reason"]);
    assert_eq!(
        set_status(&mut intake, id, Active, "credit file complete")
            .await
            .unwrap()
            .status(),
        Active
    );
    let backwards = set_status(&mut intake, id, Prospect, "oops")
        .await
        .unwrap_err();
    assert_eq!(backwards.code(), Code::FailedPrecondition);
    assert_eq!(reason(&backwards), "INVALID_STATUS_TRANSITION");
    assert_eq!(
        set_status(&mut intake, id, Suspended, "legal dispute")
            .await
            .unwrap()
            .status(),
        Suspended
    );
    assert_eq!(
        set_status(&mut intake, id, Active, "dispute settled")
            .await
            .unwrap()
            .status(),
        Active
    );
    let closed = set_status(&mut intake, id, Closed, "ceased trading")
        .await
        .unwrap();
    assert_eq!(closed.status(), Closed);
    assert_eq!(closed.status_reason, "ceased trading");
    let reopened = set_status(&mut intake, id, Active, "back")
        .await
        .unwrap_err();
    assert_eq!(reopened.code(), Code::FailedPrecondition);

    assert_eq!(
        suite.outbox_event_types(&credit_intake::STORE).await,
        [
            "CustomerRegistered",
            "CustomerStatusChanged",
            "CustomerStatusChanged",
            "CustomerStatusChanged",
            "CustomerStatusChanged"
        ]
    );
    let audit = intake
        .list_customer_audit(pb::ListCustomerAuditRequest {
            customer_id: id.into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .entries;
    let reasons: Vec<_> = audit
        .iter()
        .skip(1)
        .map(|entry| entry.reason.as_str())
        .collect();
    assert_eq!(
        reasons,
        [
            "credit file complete",
            "legal dispute",
            "dispute settled",
            "ceased trading"
        ]
    );
}

pub async fn groups_hold_each_customer_at_most_once(suite: &TestSuite) {
    let mut intake = suite.intake(&suite.issue_token("ana", &[Role::Analyst]).await);
    let parent = create(
        &mut intake,
        "grp-c1",
        enterprise("Harbour Holdings", &uscc(6001)),
    )
    .await
    .unwrap();
    let subsidiary = create(
        &mut intake,
        "grp-c2",
        enterprise("Harbour Logistics", &uscc(6002)),
    )
    .await
    .unwrap();
    let new_group = |request_id: &str, name: &str| pb::CreateGroupRequest {
        request_id: request_id.into(),
        group: Some(pb::CustomerGroup {
            name: name.into(),
            parent_customer_id: parent.customer_id.clone(),
            ..Default::default()
        }),
    };
    let harbour = intake
        .create_group(new_group("grp-1", "Harbour Group"))
        .await
        .unwrap()
        .into_inner()
        .group
        .unwrap();
    let other = intake
        .create_group(new_group("grp-2", "Other Group"))
        .await
        .unwrap()
        .into_inner()
        .group
        .unwrap();
    let again = intake
        .create_group(new_group("grp-1", "Harbour Group"))
        .await
        .unwrap()
        .into_inner()
        .group
        .unwrap();
    assert_eq!(
        again.group_id, harbour.group_id,
        "a retried create returns the first group"
    );

    let add = |group_id: &str, customer_id: &str| pb::AddGroupMemberRequest {
        group_id: group_id.into(),
        customer_id: customer_id.into(),
        reason: "ownership 100 %".into(),
    };
    intake
        .add_group_member(add(&harbour.group_id, &parent.customer_id))
        .await
        .unwrap();
    let group = intake
        .add_group_member(add(&harbour.group_id, &subsidiary.customer_id))
        .await
        .unwrap()
        .into_inner()
        .group
        .unwrap();
    let members: Vec<_> = group
        .members
        .iter()
        .map(|member| member.customer_id.clone())
        .collect();
    assert_eq!(
        members,
        [parent.customer_id.clone(), subsidiary.customer_id.clone()]
    );
    assert!(
        group
            .members
            .iter()
            .all(|member| member.joined_at.is_some())
    );

    let elsewhere = intake
        .add_group_member(add(&other.group_id, &parent.customer_id))
        .await
        .unwrap_err();
    assert_eq!(elsewhere.code(), Code::FailedPrecondition);
    assert_eq!(reason(&elsewhere), "CUSTOMER_IN_ANOTHER_GROUP");

    let after_removal = intake
        .remove_group_member(pb::RemoveGroupMemberRequest {
            group_id: harbour.group_id.clone(),
            customer_id: parent.customer_id.clone(),
            reason: "sold".into(),
        })
        .await
        .unwrap()
        .into_inner()
        .group
        .unwrap();
    assert_eq!(after_removal.members.len(), 1);
    intake
        .add_group_member(add(&other.group_id, &parent.customer_id))
        .await
        .unwrap();
    let parent_now = intake
        .get_customer(pb::GetCustomerRequest {
            customer_id: parent.customer_id.clone(),
        })
        .await
        .unwrap()
        .into_inner()
        .customer
        .unwrap();
    assert_eq!(parent_now.group_id, other.group_id);
    let missing = intake
        .add_group_member(add("grp_missing", &parent.customer_id))
        .await
        .unwrap_err();
    assert_eq!(missing.code(), Code::NotFound);

    let events = suite.outbox_event_types(&credit_intake::STORE).await;
    assert_eq!(
        events
            .iter()
            .filter(|event| *event == "GroupMembershipChanged")
            .count(),
        4
    );
}

fn statement(total_assets: &str, audited: bool) -> pb::FinancialStatement {
    pb::FinancialStatement {
        period_type: pb::FiscalPeriodType::Annual as i32,
        fiscal_year: 2025,
        period_end_date: Some(pb::Date {
            year: 2025,
            month: 12,
            day: 31,
        }),
        currency: "CNY".into(),
        audited,
        balance_sheet: Some(pb::BalanceSheet {
            cash: money("80000.00"),
            current_assets: money("500000.00"),
            total_assets: money(total_assets),
            current_liabilities: money("250000.00"),
            total_liabilities: money("700000.00"),
            retained_earnings: money("200000.00"),
            equity: money("500000.00"),
        }),
        income_statement: Some(pb::IncomeStatement {
            revenue: money("2000000.00"),
            gross_profit: money("600000.00"),
            ebit: money("150000.00"),
            interest_expense: money("30000.00"),
            net_income: money("90000.00"),
        }),
        cash_flow_statement: Some(pb::CashFlowStatement {
            operating_cash_flow: money("140000.00"),
        }),
        ..Default::default()
    }
}

fn ratio(value: &Option<String>) -> Decimal {
    value.as_deref().unwrap().parse().unwrap()
}

pub async fn statements_are_checked_versioned_and_give_ratios(suite: &TestSuite) {
    let mut intake = suite.intake(&suite.issue_token("ana", &[Role::Analyst]).await);
    let customer = create(&mut intake, "fs-c", enterprise("Statement Co", &uscc(7001)))
        .await
        .unwrap();
    let submit =
        |request_id: &str, statement: pb::FinancialStatement| pb::SubmitFinancialStatementRequest {
            request_id: request_id.into(),
            customer_id: customer.customer_id.clone(),
            statement: Some(statement),
        };
    let list = |include_superseded: bool| pb::ListFinancialStatementsRequest {
        customer_id: customer.customer_id.clone(),
        include_superseded,
        ..Default::default()
    };

    // Total assets 1,000,000 against liabilities 700,000 + equity 500,000: does not balance.
    let unbalanced = intake
        .submit_financial_statement(submit("fs-0", statement("1000000.00", false)))
        .await
        .unwrap_err();
    assert_eq!(violated_fields(&unbalanced), ["statement.balance_sheet"]);
    assert!(
        intake
            .list_financial_statements(list(true))
            .await
            .unwrap()
            .into_inner()
            .statements
            .is_empty()
    );

    let first = intake
        .submit_financial_statement(submit("fs-1", statement("1200000.00", false)))
        .await
        .unwrap()
        .into_inner()
        .statement
        .unwrap();
    assert_eq!(first.version, 1);
    // By hand: CA 500,000 / CL 250,000 = 2; TL 700,000 / TA 1,200,000 = 0.58333 → 0.5833;
    // NI 90,000 / revenue 2,000,000 = 0.045; NI / TA = 0.075; EBIT 150,000 / interest 30,000
    // = 5; OCF 140,000 / TL = 0.2. X1 = 250,000 / 1,200,000 = 0.208333…, X2 = 200,000 /
    // 1,200,000 = 0.166666…, X3 = 150,000 / 1,200,000 = 0.125, X4 = 500,000 / 700,000 =
    // 0.714285…; Z'' = 6.56·X1 + 3.26·X2 + 6.72·X3 + 1.05·X4 = 1.366667 + 0.543333 + 0.84
    // + 0.75 = 3.5: safe (> 2.60).
    let ratios = first.ratios.clone().unwrap();
    assert_eq!(ratio(&ratios.current_ratio), Decimal::new(2, 0));
    assert_eq!(ratio(&ratios.debt_to_assets), Decimal::new(5833, 4));
    assert_eq!(ratio(&ratios.net_margin), Decimal::new(45, 3));
    assert_eq!(ratio(&ratios.return_on_assets), Decimal::new(75, 3));
    assert_eq!(ratio(&ratios.interest_coverage), Decimal::new(5, 0));
    assert_eq!(
        ratio(&ratios.operating_cash_flow_to_total_liabilities),
        Decimal::new(2, 1)
    );
    assert_eq!(
        ratio(&ratios.working_capital_to_total_assets),
        Decimal::new(2083, 4)
    );
    assert_eq!(
        ratio(&ratios.retained_earnings_to_total_assets),
        Decimal::new(1667, 4)
    );
    assert_eq!(ratio(&ratios.ebit_to_total_assets), Decimal::new(1250, 4));
    assert_eq!(
        ratio(&ratios.equity_to_total_liabilities),
        Decimal::new(7143, 4)
    );
    assert_eq!(ratio(&ratios.altman_z_score), Decimal::new(35, 1));
    assert_eq!(ratios.altman_zone(), pb::AltmanZone::Safe);

    // The audited figures for the same year replace the first version, which is kept.
    let second = intake
        .submit_financial_statement(submit("fs-2", statement("1200000.00", true)))
        .await
        .unwrap()
        .into_inner()
        .statement
        .unwrap();
    assert_eq!(second.version, 2);
    let current = intake
        .list_financial_statements(list(false))
        .await
        .unwrap()
        .into_inner()
        .statements;
    assert_eq!(
        current
            .iter()
            .map(|statement| statement.version)
            .collect::<Vec<_>>(),
        [2]
    );
    let history = intake
        .list_financial_statements(list(true))
        .await
        .unwrap()
        .into_inner()
        .statements;
    assert_eq!(history.len(), 2);
    assert!(
        history
            .iter()
            .find(|statement| statement.version == 1)
            .unwrap()
            .superseded
    );
    let fetched = intake
        .get_financial_statement(pb::GetFinancialStatementRequest {
            statement_id: first.statement_id.clone(),
        })
        .await
        .unwrap()
        .into_inner()
        .statement
        .unwrap();
    assert!(fetched.superseded);

    let events = suite.outbox_event_types(&credit_intake::STORE).await;
    assert_eq!(
        events
            .iter()
            .filter(|event| *event == "FinancialStatementSubmitted")
            .count(),
        2
    );
}

pub async fn bureau_reports_and_trade_references_are_listed_on_the_customer(suite: &TestSuite) {
    let mut intake = suite.intake(&suite.issue_token("ana", &[Role::Analyst]).await);
    let customer = create(&mut intake, "bt-c", enterprise("Bureau Co", &uscc(8001)))
        .await
        .unwrap();
    let report = intake
        .record_bureau_report(pb::RecordBureauReportRequest {
            request_id: "bt-r1".into(),
            customer_id: customer.customer_id.clone(),
            report: Some(pb::BureauReport {
                agency: "PBOC Credit Reference Center".into(),
                report_date: Some(pb::Date {
                    year: 2026,
                    month: 10,
                    day: 2,
                }),
                score: "712".into(),
                agency_rating: "A".into(),
                lawsuits_count: 1,
                tax_compliance_status: pb::TaxComplianceStatus::Compliant as i32,
                summary: "one settled commercial lawsuit".into(),
                ..Default::default()
            }),
        })
        .await
        .unwrap()
        .into_inner()
        .report
        .unwrap();
    assert!(report.report_id.starts_with("bur_"));
    let future = intake
        .record_bureau_report(pb::RecordBureauReportRequest {
            request_id: "bt-r2".into(),
            customer_id: customer.customer_id.clone(),
            report: Some(pb::BureauReport {
                agency: "Some Agency".into(),
                report_date: Some(pb::Date {
                    year: 2999,
                    month: 1,
                    day: 1,
                }),
                ..Default::default()
            }),
        })
        .await
        .unwrap_err();
    assert_eq!(violated_fields(&future), ["report.report_date"]);

    let reference = pb::TradeReference {
        supplier_name: "Fujian Steel Supply".into(),
        relationship_months: 36,
        typical_credit_line: money("300000.00"),
        payment_experience: pb::PaymentExperience::Slow as i32,
        days_beyond_terms: 12,
        ..Default::default()
    };
    intake
        .add_trade_reference(pb::AddTradeReferenceRequest {
            request_id: "bt-t1".into(),
            customer_id: customer.customer_id.clone(),
            reference: Some(reference.clone()),
        })
        .await
        .unwrap();

    let reports = intake
        .list_bureau_reports(pb::ListBureauReportsRequest {
            customer_id: customer.customer_id.clone(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .reports;
    assert_eq!(reports.len(), 1);
    assert_eq!(reports[0].score, "712");
    assert_eq!(reports[0].lawsuits_count, 1);
    let references = intake
        .list_trade_references(pb::ListTradeReferencesRequest {
            customer_id: customer.customer_id.clone(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .references;
    assert_eq!(references.len(), 1);
    assert_eq!(
        references[0].payment_experience(),
        pb::PaymentExperience::Slow
    );
    assert_eq!(references[0].typical_credit_line, money("300000.00"));
    let unknown = intake
        .list_trade_references(pb::ListTradeReferencesRequest {
            customer_id: "cus_missing".into(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(unknown.code(), Code::NotFound);
    let events = suite.outbox_event_types(&credit_intake::STORE).await;
    assert_eq!(
        events
            .iter()
            .filter(|event| *event == "BureauReportRecorded")
            .count(),
        1
    );
}

/// `statement` for fiscal year `year`, ending on its 31 December.
pub(crate) fn statement_of_year(year: i32, audited: bool) -> pb::FinancialStatement {
    pb::FinancialStatement {
        fiscal_year: year,
        period_end_date: Some(pb::Date {
            year,
            month: 12,
            day: 31,
        }),
        ..statement("1200000.00", audited)
    }
}

/// Calls `fetch` with each page token in turn, from the first page to the last, and returns
/// the pages' items; each page but the last must be full.
async fn all_pages<T, F, Fut>(page_size: usize, mut fetch: F) -> Vec<Vec<T>>
where
    F: FnMut(String) -> Fut,
    Fut: std::future::Future<Output = (Vec<T>, String)>,
{
    let mut pages = Vec::new();
    let mut token = String::new();
    loop {
        let (items, next) = fetch(token).await;
        assert!(items.len() <= page_size);
        let last = next.is_empty();
        if !last {
            assert_eq!(items.len(), page_size, "a page before the last is full");
        }
        pages.push(items);
        if last {
            return pages;
        }
        assert!(pages.len() < 20, "paging does not end");
        token = next;
    }
}

/// The contract's orders: statements newest period first then highest version first, bureau
/// reports newest report date first, trade references newest first, and paging keeps them.
/// Everything is submitted out of order, so that creation order is not the answer.
pub async fn credit_file_lists_come_newest_first(suite: &TestSuite) {
    let mut intake = suite.intake(&suite.issue_token("ana", &[Role::Analyst]).await);
    let customer = create(&mut intake, "no-c", enterprise("Newest Co", &uscc(8101)))
        .await
        .unwrap();
    let customer_id = customer.customer_id.clone();

    for (request_id, year, audited) in [
        ("no-s1", 2023, false),
        ("no-s2", 2025, false),
        ("no-s3", 2024, false),
        ("no-s4", 2025, true),
    ] {
        intake
            .submit_financial_statement(pb::SubmitFinancialStatementRequest {
                request_id: request_id.into(),
                customer_id: customer_id.clone(),
                statement: Some(statement_of_year(year, audited)),
            })
            .await
            .unwrap();
    }
    let statements_page = |include_superseded: bool, page_size: i32, page_token: String| {
        let mut intake = intake.clone();
        let request = pb::ListFinancialStatementsRequest {
            customer_id: customer_id.clone(),
            include_superseded,
            page_size,
            page_token,
            ..Default::default()
        };
        async move {
            let response = intake
                .list_financial_statements(request)
                .await
                .unwrap()
                .into_inner();
            let statements = response
                .statements
                .iter()
                .map(|statement| (statement.fiscal_year, statement.version))
                .collect::<Vec<_>>();
            (statements, response.next_page_token)
        }
    };
    let (current, next) = statements_page(false, 0, String::new()).await;
    assert_eq!(current, [(2025, 2), (2024, 1), (2023, 1)]);
    assert_eq!(next, "");
    let (history, _) = statements_page(true, 0, String::new()).await;
    assert_eq!(history, [(2025, 2), (2025, 1), (2024, 1), (2023, 1)]);
    let paged = all_pages(1, |token| statements_page(true, 1, token)).await;
    assert_eq!(paged.concat(), history);
    assert_eq!(paged.len(), 4);
    let paged = all_pages(2, |token| statements_page(false, 2, token)).await;
    assert_eq!(paged, [vec![(2025, 2), (2024, 1)], vec![(2023, 1)]]);

    for (request_id, year, month, day) in [
        ("no-r1", 2026, 1, 5),
        ("no-r2", 2025, 6, 1),
        ("no-r3", 2026, 3, 1),
    ] {
        intake
            .record_bureau_report(pb::RecordBureauReportRequest {
                request_id: request_id.into(),
                customer_id: customer_id.clone(),
                report: Some(pb::BureauReport {
                    agency: "PBOC Credit Reference Center".into(),
                    report_date: Some(pb::Date { year, month, day }),
                    ..Default::default()
                }),
            })
            .await
            .unwrap();
    }
    let reports_page = |page_size: i32, page_token: String| {
        let mut intake = intake.clone();
        let request = pb::ListBureauReportsRequest {
            customer_id: customer_id.clone(),
            page_size,
            page_token,
        };
        async move {
            let response = intake
                .list_bureau_reports(request)
                .await
                .unwrap()
                .into_inner();
            let dates = response
                .reports
                .iter()
                .map(|report| {
                    let date = report.report_date.unwrap();
                    (date.year, date.month, date.day)
                })
                .collect::<Vec<_>>();
            (dates, response.next_page_token)
        }
    };
    let newest_date_first = [(2026, 3, 1), (2026, 1, 5), (2025, 6, 1)];
    assert_eq!(reports_page(0, String::new()).await.0, newest_date_first);
    let paged = all_pages(1, |token| reports_page(1, token)).await;
    assert_eq!(paged.concat(), newest_date_first);
    assert_eq!(paged.len(), 3);

    let mut added = Vec::new();
    for (request_id, supplier_name) in [
        ("no-t1", "First Supplier"),
        ("no-t2", "Second Supplier"),
        ("no-t3", "Third Supplier"),
    ] {
        let reference = intake
            .add_trade_reference(pb::AddTradeReferenceRequest {
                request_id: request_id.into(),
                customer_id: customer_id.clone(),
                reference: Some(pb::TradeReference {
                    supplier_name: supplier_name.into(),
                    relationship_months: 12,
                    payment_experience: pb::PaymentExperience::Prompt as i32,
                    ..Default::default()
                }),
            })
            .await
            .unwrap()
            .into_inner()
            .reference
            .unwrap();
        added.push(reference.reference_id);
    }
    let references_page = |page_size: i32, page_token: String| {
        let mut intake = intake.clone();
        let request = pb::ListTradeReferencesRequest {
            customer_id: customer_id.clone(),
            page_size,
            page_token,
        };
        async move {
            let response = intake
                .list_trade_references(request)
                .await
                .unwrap()
                .into_inner();
            let ids = response
                .references
                .into_iter()
                .map(|reference| reference.reference_id)
                .collect::<Vec<_>>();
            (ids, response.next_page_token)
        }
    };
    let newest_first = added.iter().rev().cloned().collect::<Vec<_>>();
    assert_eq!(references_page(0, String::new()).await.0, newest_first);
    let paged = all_pages(2, |token| references_page(2, token)).await;
    assert_eq!(paged.concat(), newest_first);
    assert_eq!(paged.len(), 2);
}

/// 200 rows: 5 with a wrong check character, 3 without a name, and rows 10 and 60 repeating
/// row 9's registration number; the other 190 are good and distinct.
fn import_rows() -> Vec<pb::ImportCustomerRow> {
    (1..=200_i64)
        .map(|row_number| {
            let seed = 9_000 + u64::try_from(row_number).unwrap();
            let customer = match row_number {
                1..=5 => {
                    let mut code = uscc(seed);
                    let check = code.pop().unwrap();
                    code.push(if check == '0' { '1' } else { '0' });
                    enterprise("Bad Check Co", &code)
                }
                6..=8 => enterprise("", &uscc(seed)),
                9 | 10 | 60 => enterprise(&format!("Repeat Co {row_number}"), &uscc(9_000 + 9)),
                _ => enterprise(&format!("Import Co {row_number}"), &uscc(seed)),
            };
            pb::ImportCustomerRow {
                row_number,
                request_id: String::new(),
                customer: Some(customer),
                data_points: Vec::new(),
            }
        })
        .collect()
}

async fn run_import(
    intake: &mut Intake,
    rows: Vec<pb::ImportCustomerRow>,
) -> pb::ImportCustomersResponse {
    let batches: Vec<_> = rows
        .chunks(64)
        .map(|chunk| pb::ImportCustomersRequest {
            import_id: "import-2026-11".into(),
            validate_only: false,
            rows: chunk.to_vec(),
        })
        .collect();
    intake
        .import_customers(tokio_stream::iter(batches))
        .await
        .unwrap()
        .into_inner()
}

pub async fn import_reports_each_row_and_creates_nothing_twice(suite: &TestSuite) {
    let mut intake = suite.intake(&suite.issue_token("ana", &[Role::Analyst]).await);
    let first = run_import(&mut intake, import_rows()).await;
    let summary = first.summary.unwrap();
    assert_eq!(
        (
            summary.rows_received,
            summary.created,
            summary.invalid,
            summary.duplicates,
            summary.failed
        ),
        (200, 190, 8, 2, 0)
    );
    assert_eq!(first.results.len(), 200);
    let row = |number: i64| {
        first
            .results
            .iter()
            .find(|result| result.row_number == number)
            .unwrap()
    };
    assert_eq!(row(3).outcome(), pb::ImportRowOutcome::Invalid);
    assert_eq!(
        row(3).violations[0].field,
        "customer.enterprise.registration_number"
    );
    assert_eq!(row(7).violations[0].field, "customer.enterprise.legal_name");
    // The first row with a registration number is stored; later ones point at it.
    assert_eq!(row(9).outcome(), pb::ImportRowOutcome::Created);
    for repeat in [10, 60] {
        assert_eq!(row(repeat).outcome(), pb::ImportRowOutcome::Duplicate);
        assert_eq!(row(repeat).customer_id, row(9).customer_id);
    }

    let again = run_import(&mut intake, import_rows()).await;
    let summary = again.summary.unwrap();
    assert_eq!(
        (
            summary.created,
            summary.already_imported,
            summary.invalid,
            summary.duplicates
        ),
        (0, 190, 8, 2)
    );
    assert_eq!(
        again
            .results
            .iter()
            .find(|result| result.row_number == 9)
            .unwrap()
            .customer_id,
        row(9).customer_id
    );
    let mut stored = 0;
    let mut page_token = String::new();
    loop {
        let page = intake
            .list_customers(pb::ListCustomersRequest {
                page_size: 500,
                page_token,
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner();
        stored += page.customers.len();
        if page.next_page_token.is_empty() {
            break;
        }
        page_token = page.next_page_token;
    }
    assert_eq!(stored, 190);
}

/// Personal data must not reach logs or traces. Every call below carries a national id, a
/// phone number or an email address — stored, read, listed, updated, refused, imported —
/// and none of them may appear in what the process logged.
pub async fn personal_data_never_reaches_the_logs(suite: &TestSuite) {
    let national_id = "51010819770411293X";
    let new_national_id = "510108197704112941";
    let phone = "+86 28 5550 7788";
    let email = "zhao.min@private-mail.example";
    let mut analyst = suite.intake(&suite.issue_token("ana", &[Role::Analyst]).await);
    let mut person = individual("Zhao Min", national_id);
    person.contacts = vec![pb::Contact {
        name: "Zhao Min".into(),
        phone: phone.into(),
        email: email.into(),
        ..Default::default()
    }];
    let created = create(&mut analyst, "pii-1", person.clone()).await.unwrap();
    analyst
        .get_customer(pb::GetCustomerRequest {
            customer_id: created.customer_id.clone(),
        })
        .await
        .unwrap();
    analyst
        .list_customers(pb::ListCustomersRequest::default())
        .await
        .unwrap();
    let mut patch = individual("Zhao Min", new_national_id);
    patch.customer_id = created.customer_id.clone();
    analyst
        .update_customer(pb::UpdateCustomerRequest {
            customer: Some(patch),
            update_mask: Some(prost_types::FieldMask {
                paths: vec!["individual.national_id".into()],
            }),
            reason: "id card renewed".into(),
        })
        .await
        .unwrap();
    // Refused calls: a malformed id next to a good one, and a duplicate key with other content.
    let mut bad = individual("Zhao Min", &format!("{national_id} !"));
    bad.contacts = person.contacts.clone();
    assert!(create(&mut analyst, "pii-2", bad).await.is_err());
    assert!(
        create(
            &mut analyst,
            "pii-1",
            individual("Someone Else", national_id)
        )
        .await
        .is_err()
    );
    let rows = vec![pb::ImportCustomerRow {
        row_number: 1,
        request_id: String::new(),
        customer: Some(person),
        data_points: Vec::new(),
    }];
    analyst
        .import_customers(tokio_stream::iter([pb::ImportCustomersRequest {
            import_id: "pii-import".into(),
            validate_only: false,
            rows,
        }]))
        .await
        .unwrap();

    let logs = credit_e2e_tests::captured_logs();
    assert!(
        logs.contains("IntakeService"),
        "the calls were logged at all: {}",
        &logs[..logs.len().min(3000)]
    );
    for secret in [
        national_id,
        new_national_id,
        phone,
        email,
        "28 5550 7788",
        "zhao.min@",
    ] {
        assert!(!logs.contains(secret), "'{secret}' appeared in the logs");
    }
}

/// Issue #19: UpdateCustomer compared masked values, so a new phone number, e-mail or
/// national id that kept the last four characters was answered as saved and dropped.
pub async fn a_change_that_keeps_the_last_four_characters_is_saved(suite: &TestSuite) {
    let mut intake = suite.intake(&suite.issue_token("ana", &[Role::Analyst]).await);
    let created = create(
        &mut intake,
        "last-four-1",
        enterprise("Last Four Trading", &uscc(3101)),
    )
    .await
    .unwrap();
    let update_contacts = |contacts: Vec<pb::Contact>, etag: String| pb::UpdateCustomerRequest {
        customer: Some(pb::Customer {
            customer_id: created.customer_id.clone(),
            etag,
            contacts,
            ..Default::default()
        }),
        update_mask: Some(prost_types::FieldMask {
            paths: vec!["contacts".into()],
        }),
        reason: "new office number".into(),
    };
    let mut contacts = created.contacts.clone();
    // Same length, same last four digits as "+86 592 555 0100".
    contacts[0].phone = "+86 593 555 0100".into();
    let updated = intake
        .update_customer(update_contacts(contacts.clone(), created.etag.clone()))
        .await
        .unwrap()
        .into_inner()
        .customer
        .unwrap();
    assert_ne!(updated.etag, created.etag, "the change was saved");

    let read_back = intake
        .get_customer(pb::GetCustomerRequest {
            customer_id: created.customer_id.clone(),
        })
        .await
        .unwrap()
        .into_inner()
        .customer
        .unwrap();
    assert_eq!(read_back.contacts[0].phone, "+86 593 555 0100");
    assert_eq!(read_back.etag, updated.etag);

    // The same contacts again change nothing: no new version, no audit entry.
    let again = intake
        .update_customer(update_contacts(contacts, String::new()))
        .await
        .unwrap()
        .into_inner()
        .customer
        .unwrap();
    assert_eq!(again.etag, updated.etag);

    let audit = intake
        .list_customer_audit(pb::ListCustomerAuditRequest {
            customer_id: created.customer_id.clone(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .entries;
    assert_eq!(audit.len(), 2, "created, then one update");
    let changes = &audit[1].changes;
    assert_eq!(changes.len(), 1);
    assert_eq!(changes[0].field, "contacts[0].phone");
    // The trail names the change without spreading the number.
    assert!(!changes[0].new_value.contains("593"), "{changes:?}");

    // A national id that keeps its last four characters is saved too.
    let person = create(
        &mut intake,
        "last-four-2",
        individual("Wu Hua", "350203198005170036"),
    )
    .await
    .unwrap();
    let mut patch = individual("Wu Hua", "350203199001010036");
    patch.customer_id = person.customer_id.clone();
    intake
        .update_customer(pb::UpdateCustomerRequest {
            customer: Some(patch),
            update_mask: Some(prost_types::FieldMask {
                paths: vec!["individual.national_id".into()],
            }),
            reason: "id card reissued".into(),
        })
        .await
        .unwrap();
    let person = intake
        .get_customer(pb::GetCustomerRequest {
            customer_id: person.customer_id.clone(),
        })
        .await
        .unwrap()
        .into_inner()
        .customer
        .unwrap();
    assert_eq!(national_id_of(&person), "350203199001010036");
}

fn import_message(import_id: &str, rows: Vec<pb::ImportCustomerRow>) -> pb::ImportCustomersRequest {
    pb::ImportCustomersRequest {
        import_id: import_id.into(),
        validate_only: false,
        rows,
    }
}

fn good_import_rows(numbers: std::ops::RangeInclusive<i64>) -> Vec<pb::ImportCustomerRow> {
    numbers
        .map(|row_number| pb::ImportCustomerRow {
            row_number,
            request_id: String::new(),
            customer: Some(enterprise(
                &format!("Capped Co {row_number}"),
                &uscc(20_000 + u64::try_from(row_number).unwrap()),
            )),
            data_points: Vec::new(),
        })
        .collect()
}

/// Issue #19: ImportCustomers writes rows as they arrive, so a call over its caps ends with
/// INVALID_ARGUMENT naming the cap and how many rows were settled; those stay written, and
/// sending the rows again under the same import id creates nothing twice.
pub async fn an_import_over_its_caps_keeps_what_it_settled_and_resumes(suite: &TestSuite) {
    let mut intake = suite.intake(&suite.issue_token("ana", &[Role::Analyst]).await);
    // 600 good rows, then rows without a customer (answered INVALID, nothing to write) up to
    // one more than the row cap.
    let mut messages = vec![import_message("capped", good_import_rows(1..=600))];
    let max_rows = i64::try_from(credit_intake::api::MAX_IMPORT_ROWS).unwrap();
    let mut next = 601;
    while next <= max_rows + 1 {
        let last = (next + 4_999).min(max_rows + 1);
        let rows = (next..=last)
            .map(|row_number| pb::ImportCustomerRow {
                row_number,
                ..Default::default()
            })
            .collect();
        messages.push(import_message("", rows));
        next = last + 1;
    }
    let refused = intake
        .import_customers(tokio_stream::iter(messages))
        .await
        .unwrap_err();
    assert_eq!(violated_fields(&refused), ["rows"]);
    assert!(
        refused.message().contains("at most 50000 rows"),
        "{}",
        refused.message()
    );
    // Everything before the message that crossed the cap was settled: the 600 good rows among them.
    assert!(
        refused.message().contains("the first 45500 rows"),
        "{}",
        refused.message()
    );
    let pages = all_pages(500, |page_token| {
        let mut intake = intake.clone();
        async move {
            let page = intake
                .list_customers(pb::ListCustomersRequest {
                    page_size: 500,
                    page_token,
                    ..Default::default()
                })
                .await
                .unwrap()
                .into_inner();
            (page.customers, page.next_page_token)
        }
    })
    .await;
    assert_eq!(pages.concat().len(), 600);

    // Resumed in a call of its own: the settled rows come back with their customers.
    let again = intake
        .import_customers(tokio_stream::iter([import_message(
            "capped",
            good_import_rows(1..=601),
        )]))
        .await
        .unwrap()
        .into_inner();
    let summary = again.summary.unwrap();
    assert_eq!((summary.already_imported, summary.created), (600, 1));

    // The byte cap: 17 messages of 4 MB rows (no customer, so nothing is written) pass 64 MiB.
    let huge_row = |row_number: i64| pb::ImportCustomerRow {
        row_number,
        request_id: "x".repeat(1_000_000),
        customer: None,
        data_points: Vec::new(),
    };
    let messages: Vec<_> = (0..17_i64)
        .map(|message| {
            import_message(
                "huge",
                (1..=4).map(|row| huge_row(message * 4 + row)).collect(),
            )
        })
        .collect();
    let refused = intake
        .import_customers(tokio_stream::iter(messages))
        .await
        .unwrap_err();
    assert_eq!(violated_fields(&refused), ["rows"]);
    assert!(
        refused.message().contains("64 MiB"),
        "{}",
        refused.message()
    );
    // A batch is full at 4 MiB as well as at 500 rows: the 64 rows of the 16 messages that
    // fit were settled before the 17th.
    assert!(
        refused.message().contains("the first 64 rows"),
        "{}",
        refused.message()
    );
}
