use super::*;
use credit_proto::v1::{
    Customer, CustomerKind, Date, FieldViolation, ImportCustomerRowResult, ImportRowOutcome, Money,
    PostalAddress, Reason, customer,
};

const FULL_HEADER: &str = "kind,country,external_reference,legal_name,registration_number,\
registered_capital,registered_capital_currency,legal_representative,industry_code,founding_date,\
full_name,national_id,birth_date,occupation,employer,annual_income,annual_income_currency,\
address_line1,address_line2,locality,region,postal_code,contact_name,contact_role,contact_phone,\
contact_email";

const ENTERPRISE_ROW: &str = "ENTERPRISE,CN,ERP-1001,Shanghai Example Trading Co. Ltd.,\
91310000MA1FL8TQ36,5000000.00,CNY,Li Wei,F5179,2015-06-01,,,,,,,,\
88 Century Avenue,Floor 12,Shanghai,Shanghai,200120,Zhang Min,CFO,+8613800138000,finance@example.cn";

const INDIVIDUAL_ROW: &str = "individual,CN,ERP-1002,,,,,,,,Wang Fang,110101199003074514,\
1990-03-07,Engineer,Example Tech,240000,CNY,,,,,,,,,";

fn parse(text: &str) -> ParsedFile {
    parse_csv(text.as_bytes()).unwrap()
}

fn file(rows: &[&str]) -> String {
    let mut text = FULL_HEADER.to_owned();
    for row in rows {
        text.push('\n');
        text.push_str(row);
    }
    text.push('\n');
    text
}

fn problems_of(row: &ParsedRow) -> &[Problem] {
    row.mapped.as_ref().unwrap_err()
}

#[test]
fn column_names_are_the_columns_in_order() {
    let names: Vec<&str> = Column::ALL.iter().map(|column| column.name()).collect();
    assert_eq!(names, COLUMN_NAMES);
    assert_eq!(COLUMN_NAMES.join(","), FULL_HEADER);
    for (index, column) in Column::ALL.into_iter().enumerate() {
        assert_eq!(column.index(), index);
    }
}

#[test]
fn an_enterprise_row_maps_to_enterprise_details_money_date_address_and_contact() {
    let parsed = parse(&file(&[ENTERPRISE_ROW]));
    assert_eq!(parsed.rows.len(), 1);
    assert_eq!(parsed.rows[0].row_number, 1);
    let customer = parsed.rows[0].mapped.clone().unwrap();
    assert_eq!(customer.kind, CustomerKind::Enterprise as i32);
    assert_eq!(customer.country, "CN");
    assert_eq!(customer.external_reference, "ERP-1001");
    let Some(customer::Details::Enterprise(enterprise)) = customer.details else {
        panic!("enterprise details expected");
    };
    assert_eq!(enterprise.legal_name, "Shanghai Example Trading Co. Ltd.");
    assert_eq!(enterprise.registration_number, "91310000MA1FL8TQ36");
    assert_eq!(
        enterprise.registered_capital,
        Some(Money {
            amount: "5000000.00".into(),
            currency: "CNY".into()
        })
    );
    assert_eq!(enterprise.legal_representative, "Li Wei");
    assert_eq!(enterprise.industry_code, "F5179");
    assert_eq!(
        enterprise.founding_date,
        Some(Date {
            year: 2015,
            month: 6,
            day: 1
        })
    );
    assert_eq!(
        customer.address,
        Some(PostalAddress {
            address_lines: vec!["88 Century Avenue".into(), "Floor 12".into()],
            locality: "Shanghai".into(),
            region: "Shanghai".into(),
            postal_code: "200120".into(),
            country: "CN".into(),
        })
    );
    assert_eq!(customer.contacts.len(), 1);
    let contact = &customer.contacts[0];
    assert_eq!(contact.name, "Zhang Min");
    assert_eq!(contact.role, "CFO");
    assert_eq!(contact.phone, "+8613800138000");
    assert_eq!(contact.email, "finance@example.cn");
    assert!(contact.primary);
    assert!(customer.customer_id.is_empty());
}

#[test]
fn an_individual_row_maps_to_individual_details_and_ignores_absent_parts() {
    let parsed = parse(&file(&[INDIVIDUAL_ROW]));
    let customer = parsed.rows[0].mapped.clone().unwrap();
    assert_eq!(customer.kind, CustomerKind::Individual as i32);
    let Some(customer::Details::Individual(individual)) = customer.details else {
        panic!("individual details expected");
    };
    assert_eq!(individual.full_name, "Wang Fang");
    assert_eq!(individual.national_id, "110101199003074514");
    assert_eq!(
        individual.birth_date,
        Some(Date {
            year: 1990,
            month: 3,
            day: 7
        })
    );
    assert_eq!(individual.occupation, "Engineer");
    assert_eq!(individual.employer, "Example Tech");
    assert_eq!(
        individual.annual_income,
        Some(Money {
            amount: "240000".into(),
            currency: "CNY".into()
        })
    );
    assert_eq!(customer.address, None, "no address cell is set");
    assert!(customer.contacts.is_empty(), "no contact cell is set");
}

#[test]
fn money_is_absent_when_the_amount_is_empty_and_kept_exact_otherwise() {
    let header =
        Header::parse(&["kind", "registered_capital", "registered_capital_currency"]).unwrap();
    let without = map_row(&header, &["ENTERPRISE", "", "CNY"]).unwrap();
    let Some(customer::Details::Enterprise(enterprise)) = without.details else {
        panic!("enterprise expected");
    };
    assert_eq!(enterprise.registered_capital, None);

    let with = map_row(&header, &["ENTERPRISE", "1250.10", ""]).unwrap();
    let Some(customer::Details::Enterprise(enterprise)) = with.details else {
        panic!("enterprise expected");
    };
    // Sent as written; the currency is the server's to require.
    assert_eq!(
        enterprise.registered_capital,
        Some(Money {
            amount: "1250.10".into(),
            currency: String::new()
        })
    );
}

#[test]
fn dates_must_be_calendar_dates_in_iso_form() {
    assert_eq!(
        parse_iso_date("2024-02-29"),
        Some(Date {
            year: 2024,
            month: 2,
            day: 29
        })
    );
    for bad in [
        "2023-02-29",
        "2024-13-01",
        "2024-1-5",
        "01/02/2024",
        "2024/01/02",
        "20240102",
        "0000-01-01",
        "+2024-01-0",
        "2024-01-01T00:00",
    ] {
        assert_eq!(parse_iso_date(bad), None, "{bad}");
    }
}

#[test]
fn a_bad_kind_is_reported_with_its_column_and_not_sent() {
    let parsed = parse(&file(&[
        ENTERPRISE_ROW,
        &INDIVIDUAL_ROW.replacen("individual", "COMPANY", 1),
    ]));
    assert!(parsed.rows[0].mapped.is_ok());
    let problems = problems_of(&parsed.rows[1]);
    assert_eq!(problems.len(), 1);
    assert_eq!(problems[0].field, "kind");
    assert_eq!(problems[0].reason, "INVALID_VALUE");
    assert!(!problems[0].description.contains("COMPANY"));

    let calls = plan_calls("id", false, &parsed.rows, 500);
    let sent: Vec<i64> = calls
        .iter()
        .flat_map(|call| call.messages.iter())
        .flat_map(|message| message.rows.iter().map(|row| row.row_number))
        .collect();
    assert_eq!(sent, [1]);

    let empty_kind = parse(&file(&[&INDIVIDUAL_ROW.replacen("individual", "", 1)]));
    assert_eq!(problems_of(&empty_kind.rows[0])[0].reason, "REQUIRED");
}

#[test]
fn a_bad_date_is_reported_with_its_column_without_echoing_the_cell() {
    let parsed = parse(&file(
        &[&INDIVIDUAL_ROW.replace("1990-03-07", "07/03/1990")],
    ));
    let problems = problems_of(&parsed.rows[0]);
    assert_eq!(problems.len(), 1);
    assert_eq!(problems[0].field, "birth_date");
    assert_eq!(problems[0].reason, "INVALID_FORMAT");
    let shown = problems[0].to_string();
    assert!(!shown.contains("1990"), "{shown}");
    assert!(plan_calls("id", false, &parsed.rows, 500).is_empty());

    let parsed = parse(&file(
        &[&ENTERPRISE_ROW.replace("2015-06-01", "2015-02-30")],
    ));
    assert_eq!(problems_of(&parsed.rows[0])[0].field, "founding_date");
}

#[test]
fn an_unknown_kind_reports_every_bad_date_at_once() {
    let header = Header::parse(&["kind", "founding_date", "birth_date"]).unwrap();
    let problems = map_row(&header, &["PERSON", "x", "y"]).unwrap_err();
    let fields: Vec<&str> = problems.iter().map(|p| p.field.as_str()).collect();
    assert_eq!(fields, ["kind", "founding_date", "birth_date"]);
    // An ENTERPRISE row does not read the individual's columns.
    let customer = map_row(&header, &["ENTERPRISE", "", "not a date"]).unwrap();
    assert_eq!(customer.kind, CustomerKind::Enterprise as i32);
}

#[test]
fn a_row_with_the_wrong_number_of_cells_is_invalid_and_the_next_rows_go_on() {
    let parsed = parse(&file(&["ENTERPRISE,CN", INDIVIDUAL_ROW]));
    let problems = problems_of(&parsed.rows[0]);
    assert_eq!(problems[0].field, "row");
    assert_eq!(problems[0].reason, "WRONG_COLUMN_COUNT");
    assert!(problems[0].description.contains("2 cells"));
    assert!(problems[0].description.contains("26 columns"));
    assert_eq!(parsed.rows[1].row_number, 2);
    assert!(parsed.rows[1].mapped.is_ok());
}

#[test]
fn a_cell_that_is_not_utf8_names_its_column() {
    let mut bytes = b"kind,legal_name\nENTERPRISE,".to_vec();
    bytes.extend_from_slice(&[0xff, 0xfe, b'x']);
    bytes.extend_from_slice(b"\nENTERPRISE,Good Ltd\n");
    let parsed = parse_csv(&bytes).unwrap();
    let problems = problems_of(&parsed.rows[0]);
    assert_eq!(problems[0].field, "legal_name");
    assert_eq!(problems[0].reason, "INVALID_ENCODING");
    assert!(parsed.rows[1].mapped.is_ok());
}

#[test]
fn the_header_may_reorder_or_omit_columns_but_must_name_kind_and_no_unknown_column() {
    let parsed =
        parse("\u{feff}Legal_Name , KIND\nAcme Ltd,enterprise\n\n , \nBeta Ltd,ENTERPRISE\n");
    assert_eq!(parsed.rows.len(), 2, "empty rows are skipped");
    // The empty line is ignored; the row of empty cells keeps number 2.
    assert_eq!(parsed.rows[1].row_number, 3);
    let Some(customer::Details::Enterprise(enterprise)) =
        parsed.rows[0].mapped.clone().unwrap().details
    else {
        panic!("enterprise expected");
    };
    assert_eq!(enterprise.legal_name, "Acme Ltd");

    let error = parse_csv(b"kind,legal name\n").unwrap_err();
    assert!(error.problem.contains("'legal name'"), "{error}");
    assert!(error.problem.contains("column 2"), "{error}");
    let error = parse_csv(b"kind,country,kind\n").unwrap_err();
    assert!(error.problem.contains("`kind` twice"), "{error}");
    let error = parse_csv(b"").unwrap_err();
    assert!(error.problem.contains("empty"), "{error}");
}

#[test]
fn a_missing_header_is_refused_without_echoing_the_data_line() {
    let error = parse_csv(INDIVIDUAL_ROW.as_bytes()).unwrap_err();
    assert!(error.problem.contains("header"), "{error}");
    assert!(!error.problem.contains("110101199003074514"), "{error}");
    assert!(!error.problem.contains("Wang"), "{error}");
    let error = Header::parse(&["kind", "+8613800138000"]).unwrap_err();
    assert!(!error.problem.contains("138"), "{error}");
}

fn good_rows(count: i64) -> Vec<ParsedRow> {
    (1..=count)
        .map(|row_number| ParsedRow {
            row_number,
            mapped: Ok(Customer {
                kind: CustomerKind::Enterprise as i32,
                ..Customer::default()
            }),
            data_points: Vec::new(),
        })
        .collect()
}

#[test]
fn batching_splits_rows_into_messages_of_batch_size() {
    let mut rows = good_rows(1_203);
    rows[9].mapped = Err(vec![Problem::new("kind", "INVALID_VALUE", "")]);
    let calls = plan_calls("abc", true, &rows, 500);
    assert_eq!(calls.len(), 1);
    let call = &calls[0];
    assert_eq!(call.import_id, "abc");
    let sizes: Vec<usize> = call.messages.iter().map(|m| m.rows.len()).collect();
    assert_eq!(sizes, [500, 500, 202]);
    assert_eq!(call.row_count(), 1_202);
    assert!(
        call.messages
            .iter()
            .all(|m| m.import_id == "abc" && m.validate_only)
    );
    let numbers: Vec<i64> = call
        .messages
        .iter()
        .flat_map(|m| m.rows.iter().map(|row| row.row_number))
        .collect();
    let expected: Vec<i64> = (1..=1_203).filter(|n| *n != 10).collect();
    assert_eq!(numbers, expected, "in order, the invalid row left out");
    assert!(
        call.messages[0]
            .rows
            .iter()
            .all(|row| row.request_id.is_empty())
    );
}

#[test]
fn more_than_fifty_thousand_rows_make_several_calls_with_global_row_numbers() {
    let mut rows = good_rows(100_001);
    // Every row of the second call is refused locally: that call is not made.
    for row in &mut rows[50_000..100_000] {
        row.mapped = Err(vec![Problem::new("kind", "INVALID_VALUE", "")]);
    }
    let calls = plan_calls("base", false, &rows, 5_000);
    let ids: Vec<&str> = calls.iter().map(|call| call.import_id.as_str()).collect();
    assert_eq!(ids, ["base", "base-part3"]);
    assert_eq!(calls[0].row_count(), 50_000);
    assert_eq!(calls[0].messages.len(), 10);
    assert_eq!(calls[1].row_count(), 1);
    assert_eq!(calls[1].messages[0].rows[0].row_number, 100_001);

    let calls = plan_calls("base", false, &good_rows(50_001), 500);
    assert_eq!(calls.len(), 2);
    assert_eq!(calls[0].row_count(), 50_000);
    assert_eq!(calls[1].import_id, "base-part2");
    assert_eq!(calls[1].messages[0].rows[0].row_number, 50_001);
}

#[test]
fn the_import_id_is_stable_for_the_same_content_and_differs_for_other_content() {
    let first = derive_import_id(file(&[ENTERPRISE_ROW]).as_bytes());
    let again = derive_import_id(file(&[ENTERPRISE_ROW]).as_bytes());
    let other = derive_import_id(file(&[INDIVIDUAL_ROW]).as_bytes());
    assert_eq!(first, again);
    assert_ne!(first, other);
    assert_eq!(first.len(), 64);
    assert!(first.chars().all(|c| c.is_ascii_hexdigit()));
    assert!(check_import_id(&first).is_ok());
    assert!(check_import_id("").is_err());
    assert!(check_import_id("has space").is_err());
    assert_eq!(part_import_id("x", 1), "x");
    assert_eq!(part_import_id("x", 2), "x-part2");
}

#[test]
fn the_report_merges_local_and_server_results_and_counts_them() {
    let mut rows = good_rows(6);
    rows[1].mapped = Err(vec![Problem::new(
        "birth_date",
        "INVALID_FORMAT",
        "must be a calendar date written YYYY-MM-DD",
    )]);
    let result = |row_number: i64, outcome: ImportRowOutcome, id: &str| ImportCustomerRowResult {
        row_number,
        outcome: outcome as i32,
        customer_id: id.to_owned(),
        ..ImportCustomerRowResult::default()
    };
    let mut invalid = result(4, ImportRowOutcome::Invalid, "");
    invalid.violations.push(FieldViolation {
        field: "customer.country".into(),
        reason: "REQUIRED".into(),
        description: "is required".into(),
    });
    let mut failed = result(5, ImportRowOutcome::Failed, "");
    failed.error = Some(Reason {
        code: "STORAGE_UNAVAILABLE".into(),
        message: "try again".into(),
        ..Reason::default()
    });
    let server_results = vec![
        result(3, ImportRowOutcome::Duplicate, "c-3"),
        result(1, ImportRowOutcome::Created, "c-1"),
        invalid,
        failed,
        // Row 6 has no result: FAILED with NO_RESULT.
    ];
    let report = build_report("id", vec!["id".into()], false, &rows, server_results);
    let outcomes: Vec<RowOutcome> = report.rows.iter().map(|row| row.outcome).collect();
    assert_eq!(
        outcomes,
        [
            RowOutcome::Created,
            RowOutcome::Invalid,
            RowOutcome::Duplicate,
            RowOutcome::Invalid,
            RowOutcome::Failed,
            RowOutcome::Failed
        ]
    );
    assert!(!report.rows[1].sent);
    assert_eq!(report.rows[5].problems[0].reason, "NO_RESULT");
    assert_eq!(
        report.summary,
        ImportSummary {
            rows_read: 6,
            created: 1,
            already_imported: 0,
            duplicates: 1,
            invalid_in_file: 1,
            invalid_on_server: 1,
            failed: 2,
        }
    );
    assert_eq!(report.exit_code(), 1);

    let summary = report.render_summary();
    assert!(summary.contains("rows read                6"), "{summary}");
    assert!(
        summary.contains("invalid                  2  (1 refused in the file"),
        "{summary}"
    );
    assert!(
        summary.contains("row 2: INVALID, not sent: birth_date: INVALID_FORMAT"),
        "{summary}"
    );
    assert!(
        summary.contains("row 4: INVALID: customer.country: REQUIRED"),
        "{summary}"
    );

    let mut csv = Vec::new();
    report.write_results_csv(&mut csv).unwrap();
    let csv = String::from_utf8(csv).unwrap();
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(lines[0], "row_number,outcome,customer_id,problems");
    assert_eq!(lines[1], "1,CREATED,c-1,");
    assert_eq!(lines[3], "3,DUPLICATE,c-3,");
    assert_eq!(lines[5], "5,FAILED,,STORAGE_UNAVAILABLE (try again)");
    assert_eq!(lines.len(), 7);
}

#[test]
fn a_clean_report_exits_zero_and_lists_at_most_twenty_problem_rows() {
    let rows = good_rows(2);
    let results = vec![
        ImportCustomerRowResult {
            row_number: 1,
            outcome: ImportRowOutcome::AlreadyImported as i32,
            customer_id: "c-1".into(),
            ..ImportCustomerRowResult::default()
        },
        ImportCustomerRowResult {
            row_number: 2,
            outcome: ImportRowOutcome::Duplicate as i32,
            customer_id: "c-2".into(),
            ..ImportCustomerRowResult::default()
        },
    ];
    let report = build_report("id", vec!["id".into()], true, &rows, results);
    assert_eq!(report.exit_code(), 0);
    assert!(report.render_summary().contains("validate only"));
    assert!(!report.render_summary().contains("problem rows"));

    let mut rows = good_rows(30);
    for row in &mut rows {
        row.mapped = Err(vec![Problem::new("kind", "REQUIRED", "")]);
    }
    let report = build_report("id", Vec::new(), false, &rows, Vec::new());
    let summary = report.render_summary();
    assert!(summary.contains("the first 20 of 30"), "{summary}");
    assert_eq!(summary.matches("  row ").count(), 20);
}

#[test]
fn a_timed_out_call_points_at_the_deadline_and_says_a_rerun_is_safe() {
    let hint = call_hint(Code::Cancelled, 1);
    assert!(hint.contains("CREDIT_REQUEST_TIMEOUT_MS"), "{hint}");
    assert!(hint.contains("not created twice"), "{hint}");
    let hint = call_hint(Code::Internal, 3);
    assert!(hint.contains("calls 1..2 went through"), "{hint}");
    assert!(call_hint(Code::InvalidArgument, 1).is_empty());
}

#[test]
fn addresses_default_to_the_listen_address_on_loopback() {
    assert_eq!(
        addr_for_listen_addr("0.0.0.0:6000".parse().unwrap(), false),
        "http://127.0.0.1:6000"
    );
    assert_eq!(
        addr_for_listen_addr("[::]:50051".parse().unwrap(), false),
        "http://[::1]:50051"
    );
    assert_eq!(
        addr_for_listen_addr(DEFAULT_LISTEN_ADDR.parse().unwrap(), false),
        "http://127.0.0.1:50051"
    );
    // A suite that serves TLS is called over TLS.
    assert_eq!(
        addr_for_listen_addr(DEFAULT_LISTEN_ADDR.parse().unwrap(), true),
        "https://127.0.0.1:50051"
    );
    assert_eq!(
        normalize_addr("intake:50051").unwrap(),
        "http://intake:50051"
    );
    assert_eq!(
        normalize_addr("https://intake:443").unwrap(),
        "https://intake:443"
    );
    let error = normalize_addr("grpc://intake:443").unwrap_err();
    assert_eq!(error.setting, "--addr (CREDIT_ADDR)");
}

#[test]
fn the_token_comes_from_the_environment_then_the_file_then_the_data_dir() {
    let dir = tempfile::tempdir().unwrap();
    let (token, source) = resolve_token(Some(" cst_env \n".into()), None, dir.path()).unwrap();
    assert_eq!(token.expose_secret(), "cst_env");
    assert_eq!(source, "CREDIT_TOKEN");

    let error = resolve_token(None, None, dir.path()).unwrap_err();
    assert!(matches!(error, ImportError::MissingToken { .. }));

    std::fs::write(dir.path().join(ADMIN_TOKEN_FILE), "cst_admin\n").unwrap();
    let (token, _) = resolve_token(None, None, dir.path()).unwrap();
    assert_eq!(token.expose_secret(), "cst_admin");

    let other = dir.path().join("other.token");
    std::fs::write(&other, "cst_other").unwrap();
    let (token, source) = resolve_token(None, Some(&other), dir.path()).unwrap();
    assert_eq!(token.expose_secret(), "cst_other");
    assert!(source.ends_with("other.token"));
    // The token never shows in Debug output.
    let options = ImportOptions::new("f.csv", "http://x", "cst_secret");
    assert!(!format!("{options:?}").contains("cst_secret"));
}

#[test]
fn data_point_columns_are_sent_as_text_and_empty_cells_are_left_out() {
    let parsed = parse_csv(
        b"kind,country,dp.housing,dp.credit_amount\nINDIVIDUAL,DE,own,1169\nINDIVIDUAL,DE,,2096\n",
    )
    .unwrap();
    let texts: Vec<Vec<(String, String)>> = parsed
        .rows
        .iter()
        .map(|row| {
            row.data_points
                .iter()
                .map(|entry| {
                    let value = match entry.value.as_ref().and_then(|value| value.value.as_ref()) {
                        Some(credit_proto::v1::data_point_value::Value::Text(text)) => text.clone(),
                        other => panic!("expected text, got {other:?}"),
                    };
                    (entry.code.clone(), value)
                })
                .collect()
        })
        .collect();
    assert_eq!(
        texts,
        [
            vec![
                ("housing".to_owned(), "own".to_owned()),
                ("credit_amount".to_owned(), "1169".to_owned())
            ],
            vec![("credit_amount".to_owned(), "2096".to_owned())],
        ]
    );
    let planned = plan_calls("imp", false, &parsed.rows, 10);
    assert_eq!(planned[0].messages[0].rows[0].data_points.len(), 2);

    let error = parse_csv(b"kind,dp.Housing\n").unwrap_err();
    assert!(error.problem.contains("dp.<code>"), "{error}");
    let error = parse_csv(b"kind,dp.housing,dp.housing\n").unwrap_err();
    assert!(error.problem.contains("twice"), "{error}");
}
