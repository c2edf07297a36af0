//! `credit-suite import` against an in-memory stand-in for `IntakeService.ImportCustomers`
//! that follows the contract: one result per row, idempotency on `<import_id>:<row_number>`,
//! duplicates on (country, registration number), at most 50,000 rows per call, a bearer token.
//! The real service is tested end to end in `tests/e2e`.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "tests"
)]

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Command, Output};
use std::sync::{Arc, Mutex};

use credit_proto::v1::intake_service_server::{IntakeService, IntakeServiceServer};
use credit_proto::v1::{
    Customer, FieldViolation, ImportCustomerRow, ImportCustomerRowResult, ImportCustomersRequest,
    ImportCustomersResponse, ImportCustomersSummary, ImportRowOutcome, customer,
};
use credit_suite::import::{COLUMN_NAMES, ImportOptions, RowOutcome, run_import};
use tokio_stream::wrappers::TcpListenerStream;
use tonic::{Request, Response, Status, Streaming};

const TOKEN: &str = "cst_test_token";
const NATIONAL_ID: &str = "110101199003074514";
const PHONE: &str = "+8613912345678";
const EMAIL: &str = "wang.fang@example.cn";

/// One call as the stand-in saw it.
#[derive(Debug, Clone)]
struct SeenCall {
    import_id: String,
    validate_only: bool,
    messages: usize,
    rows: usize,
}

#[derive(Debug, Default)]
struct State {
    /// request_id -> customer id
    imported: HashMap<String, String>,
    /// (country, registration number) -> customer id
    registrations: HashMap<(String, String), String>,
    calls: Vec<SeenCall>,
    customers: usize,
}

impl State {
    fn import_row(
        &mut self,
        import_id: &str,
        validate_only: bool,
        row: ImportCustomerRow,
    ) -> ImportCustomerRowResult {
        let request_id = if row.request_id.is_empty() {
            format!("{import_id}:{}", row.row_number)
        } else {
            row.request_id.clone()
        };
        let result = |outcome: ImportRowOutcome, customer_id: &str| ImportCustomerRowResult {
            row_number: row.row_number,
            outcome: outcome as i32,
            customer_id: customer_id.to_owned(),
            ..ImportCustomerRowResult::default()
        };
        if let Some(customer_id) = self.imported.get(&request_id) {
            return result(ImportRowOutcome::AlreadyImported, customer_id);
        }
        let customer = row.customer.clone().unwrap_or_default();
        if customer.country.is_empty() {
            let mut invalid = result(ImportRowOutcome::Invalid, "");
            invalid.violations.push(FieldViolation {
                field: "customer.country".into(),
                reason: "REQUIRED".into(),
                description: "is required".into(),
            });
            return invalid;
        }
        let registration = registration_key(&customer);
        if let Some(existing) = registration
            .as_ref()
            .and_then(|key| self.registrations.get(key))
        {
            return result(ImportRowOutcome::Duplicate, existing);
        }
        if validate_only {
            return result(ImportRowOutcome::Created, "");
        }
        self.customers += 1;
        let customer_id = format!("c-{}", self.customers);
        self.imported.insert(request_id, customer_id.clone());
        if let Some(key) = registration {
            self.registrations.insert(key, customer_id.clone());
        }
        result(ImportRowOutcome::Created, &customer_id)
    }
}

fn registration_key(customer: &Customer) -> Option<(String, String)> {
    match &customer.details {
        Some(customer::Details::Enterprise(enterprise)) => Some((
            customer.country.clone(),
            enterprise.registration_number.clone(),
        )),
        _ => None,
    }
}

#[derive(Debug, Clone, Default)]
struct StandIn {
    state: Arc<Mutex<State>>,
}

#[tonic::async_trait]
impl IntakeService for StandIn {
    async fn import_customers(
        &self,
        request: Request<Streaming<ImportCustomersRequest>>,
    ) -> Result<Response<ImportCustomersResponse>, Status> {
        let authorized = request
            .metadata()
            .get("authorization")
            .and_then(|value| value.to_str().ok())
            == Some(&format!("Bearer {TOKEN}"));
        if !authorized {
            return Err(Status::unauthenticated("the bearer token is not valid"));
        }
        let mut stream = request.into_inner();
        let mut import_id = String::new();
        let mut validate_only = false;
        let mut messages = 0;
        let mut rows = Vec::new();
        while let Some(message) = stream.message().await? {
            if messages == 0 {
                import_id = message.import_id.clone();
                validate_only = message.validate_only;
            } else if !message.import_id.is_empty() && message.import_id != import_id {
                return Err(Status::invalid_argument(
                    "import_id changed within the call",
                ));
            }
            messages += 1;
            rows.extend(message.rows);
        }
        if import_id.is_empty() {
            return Err(Status::invalid_argument("import_id is required"));
        }
        if rows.len() > 50_000 {
            return Err(Status::invalid_argument("at most 50,000 rows per call"));
        }
        let mut state = self.state.lock().unwrap();
        state.calls.push(SeenCall {
            import_id: import_id.clone(),
            validate_only,
            messages,
            rows: rows.len(),
        });
        let results: Vec<ImportCustomerRowResult> = rows
            .into_iter()
            .map(|row| state.import_row(&import_id, validate_only, row))
            .collect();
        let count = |outcome: ImportRowOutcome| {
            results
                .iter()
                .filter(|result| result.outcome == outcome as i32)
                .count() as i64
        };
        let summary = ImportCustomersSummary {
            rows_received: results.len() as i64,
            created: count(ImportRowOutcome::Created),
            already_imported: count(ImportRowOutcome::AlreadyImported),
            duplicates: count(ImportRowOutcome::Duplicate),
            invalid: count(ImportRowOutcome::Invalid),
            failed: count(ImportRowOutcome::Failed),
        };
        Ok(Response::new(ImportCustomersResponse {
            import_id,
            results,
            summary: Some(summary),
        }))
    }
}

/// Serves the stand-in on a free port for the rest of the test.
async fn spawn_stand_in() -> (SocketAddr, Arc<Mutex<State>>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let stand_in = StandIn::default();
    let state = stand_in.state.clone();
    tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(IntakeServiceServer::new(stand_in))
            .serve_with_incoming(TcpListenerStream::new(listener)),
    );
    (addr, state)
}

/// Runs the binary with a clean environment plus `env`, off the async runtime.
async fn run(args: Vec<String>, env: Vec<(&'static str, String)>) -> Output {
    let data_dir = tempfile::tempdir().unwrap();
    tokio::task::spawn_blocking(move || {
        let mut command = Command::new(env!("CARGO_BIN_EXE_credit-suite"));
        command.arg("import").args(&args);
        for name in [
            "CREDIT_TOKEN",
            "CREDIT_ADDR",
            "CREDIT_CONFIG",
            "CREDIT_LISTEN_ADDR",
            "CREDIT_DATABASE_URL",
            "CREDIT_REDIS_URL",
        ] {
            command.env_remove(name);
        }
        command.env("CREDIT_DATA_DIR", data_dir.path());
        for (name, value) in env {
            command.env(name, value);
        }
        command.output().unwrap()
    })
    .await
    .unwrap()
}

fn write_file(dir: &Path, name: &str, text: &str) -> String {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path.to_str().unwrap().to_owned()
}

/// A row with the given cells, empty elsewhere.
fn row(cells: &[(&str, &str)]) -> String {
    COLUMN_NAMES
        .iter()
        .map(|column| {
            cells
                .iter()
                .find(|(name, _)| name == column)
                .map_or("", |(_, value)| *value)
        })
        .collect::<Vec<_>>()
        .join(",")
}

fn enterprise(country: &str, registration_number: &str) -> String {
    row(&[
        ("kind", "ENTERPRISE"),
        ("country", country),
        ("legal_name", "Example Trading Co. Ltd."),
        ("registration_number", registration_number),
        ("registered_capital", "5000000.00"),
        ("registered_capital_currency", "CNY"),
        ("founding_date", "2015-06-01"),
    ])
}

fn individual(kind: &str, birth_date: &str) -> String {
    row(&[
        ("kind", kind),
        ("country", "CN"),
        ("full_name", "Wang Fang"),
        ("national_id", NATIONAL_ID),
        ("birth_date", birth_date),
        ("contact_phone", PHONE),
        ("contact_email", EMAIL),
    ])
}

fn csv(rows: &[String]) -> String {
    let mut text = COLUMN_NAMES.join(",");
    for row in rows {
        text.push('\n');
        text.push_str(row);
    }
    text.push('\n');
    text
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

fn assert_no_personal_data(output: &Output) {
    let printed = format!("{}{}", stdout(output), stderr(output));
    for secret in [NATIONAL_ID, PHONE, EMAIL, TOKEN] {
        assert!(!printed.contains(secret), "{secret} printed:\n{printed}");
    }
}

/// The count printed on the summary line `label`.
fn count(summary: &str, label: &str) -> u64 {
    let line = summary
        .lines()
        .find(|line| line.starts_with(label))
        .unwrap_or_else(|| panic!("no '{label}' line in:\n{summary}"));
    line[label.len()..]
        .split_whitespace()
        .next()
        .unwrap()
        .parse()
        .unwrap()
}

fn assert_one_error_line(output: &Output, expected: &str) {
    assert_eq!(output.status.code(), Some(2), "{}", stderr(output));
    let error_lines: Vec<String> = stderr(output)
        .lines()
        .filter(|line| line.contains("error"))
        .map(str::to_owned)
        .collect();
    assert_eq!(error_lines.len(), 1, "{}", stderr(output));
    assert!(
        error_lines[0].starts_with("credit-suite: error: "),
        "{}",
        error_lines[0]
    );
    assert!(
        error_lines[0].contains(expected),
        "'{expected}' expected in: {}",
        error_lines[0]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_row_gets_a_result_and_a_second_run_creates_nothing_twice() {
    let (addr, state) = spawn_stand_in().await;
    let dir = tempfile::tempdir().unwrap();
    let file = write_file(
        dir.path(),
        "customers.csv",
        &csv(&[
            enterprise("CN", "91310000MA1FL8TQ36"), // 1 created
            individual("INDIVIDUAL", "1990-03-07"), // 2 created
            individual("PERSON", "1990-03-07"),     // 3 bad kind: not sent
            individual("INDIVIDUAL", "07/03/1990"), // 4 bad date: not sent
            enterprise("", "X-1"),                  // 5 refused by the server
            enterprise("CN", "91310000MA1FL8TQ36"), // 6 duplicate of row 1
        ]),
    );
    let results = dir.path().join("results.csv");
    let args = vec![
        file.clone(),
        "--addr".into(),
        format!("http://{addr}"),
        "--batch-size".into(),
        "2".into(),
        "--results".into(),
        results.to_str().unwrap().into(),
    ];
    let env = vec![("CREDIT_TOKEN", TOKEN.to_owned())];

    let first = run(args.clone(), env.clone()).await;
    assert_eq!(first.status.code(), Some(1), "{}", stderr(&first));
    assert_no_personal_data(&first);
    let summary = stdout(&first);
    assert_eq!(count(&summary, "rows read"), 6, "{summary}");
    assert_eq!(count(&summary, "created"), 2, "{summary}");
    assert_eq!(count(&summary, "duplicates"), 1, "{summary}");
    assert_eq!(count(&summary, "invalid"), 3, "{summary}");
    assert_eq!(count(&summary, "failed"), 0, "{summary}");
    assert!(summary.contains("(2 refused in the file, not sent; 1 refused by the server)"));
    assert!(
        summary.contains("row 3: INVALID, not sent: kind: INVALID_VALUE"),
        "{summary}"
    );
    assert!(
        summary.contains("row 4: INVALID, not sent: birth_date: INVALID_FORMAT"),
        "{summary}"
    );
    assert!(
        summary.contains("row 5: INVALID: customer.country: REQUIRED"),
        "{summary}"
    );

    let written = std::fs::read_to_string(&results).unwrap();
    let lines: Vec<&str> = written.lines().collect();
    assert_eq!(lines.len(), 7, "{written}");
    assert_eq!(lines[0], "row_number,outcome,customer_id,problems");
    assert!(lines[1].starts_with("1,CREATED,c-1,"), "{written}");
    assert!(lines[6].starts_with("6,DUPLICATE,c-1,"), "{written}");
    assert!(!written.contains(NATIONAL_ID));
    {
        let state = state.lock().unwrap();
        assert_eq!(state.calls.len(), 1);
        let call = &state.calls[0];
        assert_eq!(call.rows, 4, "rows 3 and 4 are not sent");
        assert_eq!(call.messages, 2, "--batch-size 2");
        assert_eq!(call.import_id.len(), 64, "the file's SHA-256");
        assert!(!call.validate_only);
    }

    let second = run(args, env).await;
    assert_eq!(second.status.code(), Some(1), "{}", stderr(&second));
    let summary = stdout(&second);
    assert_eq!(count(&summary, "created"), 0, "{summary}");
    assert_eq!(count(&summary, "already imported"), 2, "{summary}");
    assert_eq!(count(&summary, "duplicates"), 1, "{summary}");
    let state = state.lock().unwrap();
    assert_eq!(state.customers, 2, "nothing created twice");
    assert_eq!(state.calls[1].import_id, state.calls[0].import_id);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_clean_file_exits_zero_and_the_address_and_token_default_from_the_environment() {
    let (addr, state) = spawn_stand_in().await;
    let dir = tempfile::tempdir().unwrap();
    let file = write_file(
        dir.path(),
        "clean.csv",
        &csv(&[enterprise("DE", "HRB 1"), individual("individual", "")]),
    );
    std::fs::write(dir.path().join("admin.token"), format!("{TOKEN}\n")).unwrap();
    // A server setting that would stop `serve` does not stop the client.
    let env = vec![
        ("CREDIT_LISTEN_ADDR", addr.to_string()),
        ("CREDIT_DATA_DIR", dir.path().to_str().unwrap().to_owned()),
        ("CREDIT_DATABASE_URL", "not a url".to_owned()),
    ];
    let first = run(vec![file.clone(), "--validate-only".into()], env.clone()).await;
    assert_eq!(first.status.code(), Some(0), "{}", stderr(&first));
    assert!(stdout(&first).contains("validate only"));
    assert_eq!(
        state.lock().unwrap().customers,
        0,
        "validate only writes nothing"
    );

    let imported = run(vec![file.clone()], env.clone()).await;
    assert_eq!(imported.status.code(), Some(0), "{}", stderr(&imported));
    assert_eq!(count(&stdout(&imported), "created"), 2);
    let again = run(vec![file], env).await;
    assert_eq!(again.status.code(), Some(0), "{}", stderr(&again));
    assert_eq!(count(&stdout(&again), "already imported"), 2);
    assert_no_personal_data(&again);
    assert_eq!(state.lock().unwrap().customers, 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_token_or_no_server_is_one_error_line_and_exit_code_two() {
    let (addr, state) = spawn_stand_in().await;
    let dir = tempfile::tempdir().unwrap();
    let file = write_file(dir.path(), "c.csv", &csv(&[individual("INDIVIDUAL", "")]));

    let refused = run(
        vec![file.clone(), "--addr".into(), format!("http://{addr}")],
        vec![("CREDIT_TOKEN", "cst_wrong_token".to_owned())],
    )
    .await;
    assert_one_error_line(&refused, "UNAUTHENTICATED");
    assert!(stderr(&refused).contains("CREDIT_TOKEN"));
    assert!(!stderr(&refused).contains("cst_wrong_token"));
    assert_eq!(state.lock().unwrap().customers, 0);

    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let closed_addr = closed.local_addr().unwrap();
    drop(closed);
    let unreachable = run(
        vec![
            file.clone(),
            "--addr".into(),
            format!("http://{closed_addr}"),
        ],
        vec![("CREDIT_TOKEN", TOKEN.to_owned())],
    )
    .await;
    assert_one_error_line(&unreachable, "cannot connect to");

    let no_token = run(vec![file.clone()], Vec::new()).await;
    assert_one_error_line(&no_token, "no token");

    let missing = run(
        vec![dir.path().join("nope.csv").to_str().unwrap().into()],
        vec![("CREDIT_TOKEN", TOKEN.to_owned())],
    )
    .await;
    assert_one_error_line(&missing, "nope.csv");

    let headless = write_file(dir.path(), "headless.csv", &individual("INDIVIDUAL", ""));
    let no_header = run(vec![headless], vec![("CREDIT_TOKEN", TOKEN.to_owned())]).await;
    assert_one_error_line(&no_header, "header");
    assert_no_personal_data(&no_header);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_file_of_more_than_fifty_thousand_rows_is_imported_in_several_calls() {
    let (addr, state) = spawn_stand_in().await;
    let dir = tempfile::tempdir().unwrap();
    let rows: Vec<String> = (1..=50_003)
        .map(|number| enterprise("DE", &format!("HRB {number}")))
        .collect();
    let file = write_file(dir.path(), "big.csv", &csv(&rows));
    let mut options = ImportOptions::new(&file, format!("http://{addr}"), TOKEN);
    options.batch_size = 5_000;
    options.import_id = Some("big-import".to_owned());

    let report = run_import(&options).await.unwrap();
    assert_eq!(report.call_import_ids, ["big-import", "big-import-part2"]);
    assert_eq!(report.summary.rows_read, 50_003);
    assert_eq!(report.summary.created, 50_003);
    assert_eq!(report.rows[50_002].row_number, 50_003);
    assert_eq!(report.exit_code(), 0);
    {
        let state = state.lock().unwrap();
        let calls: Vec<(String, usize, usize)> = state
            .calls
            .iter()
            .map(|call| (call.import_id.clone(), call.rows, call.messages))
            .collect();
        assert_eq!(
            calls,
            [
                ("big-import".to_owned(), 50_000, 10),
                ("big-import-part2".to_owned(), 3, 1)
            ]
        );
    }

    let again = run_import(&options).await.unwrap();
    assert_eq!(again.summary.already_imported, 50_003);
    assert!(
        again
            .rows
            .iter()
            .all(|row| row.outcome == RowOutcome::AlreadyImported)
    );
    assert_eq!(state.lock().unwrap().customers, 50_003);
}
