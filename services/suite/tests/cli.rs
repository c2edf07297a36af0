//! The binary refuses bad configuration with one line naming the setting, and a non-zero exit.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "tests"
)]

use std::process::{Command, Output};

fn run(args: &[&str], env: &[(&str, &str)]) -> Output {
    let data_dir = tempfile::tempdir().unwrap();
    let mut command = Command::new(env!("CARGO_BIN_EXE_credit-suite"));
    command
        .args(args)
        .env_remove("CREDIT_DATABASE_URL")
        .env_remove("CREDIT_REDIS_URL")
        .env("CREDIT_DATA_DIR", data_dir.path())
        .env("CREDIT_LISTEN_ADDR", "127.0.0.1:0")
        .env("CREDIT_METRICS_ADDR", "127.0.0.1:0");
    for (name, value) in env {
        command.env(name, value);
    }
    command.output().unwrap()
}

/// The error is a single line on stderr that names `setting`, and the exit code is non-zero.
fn assert_refused(output: &Output, setting: &str) {
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success(), "must fail; stderr: {stderr}");
    let error_lines: Vec<_> = stderr
        .lines()
        .filter(|line| line.contains("error"))
        .collect();
    assert_eq!(error_lines.len(), 1, "one error line expected: {stderr}");
    assert!(
        error_lines[0].contains(setting),
        "{setting} must be named: {stderr}"
    );
}

#[test]
fn unparseable_database_url_is_refused() {
    let output = run(
        &["serve"],
        &[
            ("CREDIT_DATABASE_URL", "postgres//nohost"),
            ("CREDIT_REDIS_URL", "redis://127.0.0.1:6379"),
        ],
    );
    assert_refused(&output, "CREDIT_DATABASE_URL");
}

#[test]
fn unparseable_listen_address_is_refused() {
    let output = run(&["serve"], &[("CREDIT_LISTEN_ADDR", "localhost:port")]);
    assert_refused(&output, "CREDIT_LISTEN_ADDR");
}

#[test]
fn unknown_service_name_is_refused() {
    let output = run(&["serve", "--services", "limits,billing"], &[]);
    assert_refused(&output, "--services");
}

#[test]
fn a_subset_on_the_embedded_default_is_refused() {
    let output = run(&["serve", "--services", "limits"], &[]);
    assert_refused(&output, "--services");
    assert!(String::from_utf8_lossy(&output.stderr).contains("CREDIT_DATABASE_URL"));
}

#[test]
fn a_port_in_use_is_refused() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let output = run(&["serve"], &[("CREDIT_LISTEN_ADDR", &addr)]);
    assert_refused(&output, "CREDIT_LISTEN_ADDR");
}

#[test]
fn token_create_prints_a_token_once() {
    let data_dir = tempfile::tempdir().unwrap();
    let dir = data_dir.path().to_str().unwrap();
    let output = run(
        &[
            "token",
            "create",
            "--name",
            "mei",
            "--role",
            "credit_manager",
            "--authority",
            "500000",
        ],
        &[("CREDIT_DATA_DIR", dir)],
    );
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let token = String::from_utf8(output.stdout).unwrap();
    assert!(token.trim().starts_with("cst_"), "{token}");

    let refused = run(
        &["token", "create", "--name", "x", "--role", "superuser"],
        &[("CREDIT_DATA_DIR", dir)],
    );
    assert_refused(&refused, "--role");
}

#[tokio::test]
async fn migrate_applies_every_store_on_postgres_and_can_run_again() {
    let database = credit_runtime::testing::TestDatabase::create().await;
    let redis = credit_runtime::testing::redis_url();
    let env = [
        ("CREDIT_DATABASE_URL", database.url.as_str()),
        ("CREDIT_REDIS_URL", redis.as_str()),
    ];
    for _ in 0..2 {
        let output = run(&["migrate"], &env);
        assert!(
            output.status.success(),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
        let stdout = String::from_utf8_lossy(&output.stdout);
        assert!(
            stdout.contains("identity, events, intake, rating, limits, collections"),
            "{stdout}"
        );
    }
    database.drop_database().await;
}

/// `credit-suite reconcile` against a clean suite (the embedded default, served in this
/// process): no differences, exit code 0 and one summary line; the token's holder must be an
/// ADMIN and the customers must exist, or the exit code is 2 with one error line.
#[tokio::test]
async fn reconcile_on_a_clean_suite_exits_zero_with_a_summary() {
    let data_dir = tempfile::tempdir().unwrap();
    let settings = credit_runtime::Settings::for_tests(data_dir.path().to_owned());
    let application =
        credit_suite::Application::build(&settings, &credit_suite::ServiceSelection::all())
            .await
            .unwrap();
    let addr = format!("http://{}", application.local_addr().unwrap());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(application.run_until_stopped(async {
        let _ = stopped.await;
    }));
    let dir = data_dir.path().to_str().unwrap().to_owned();
    // The binary blocks; run it off the runtime that serves the suite.
    let run_binary = |args: Vec<String>, env: Vec<(&'static str, String)>| {
        tokio::task::spawn_blocking(move || {
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            let env: Vec<(&str, &str)> = env
                .iter()
                .map(|(name, value)| (*name, value.as_str()))
                .collect();
            run(&args, &env)
        })
    };
    let owned = |args: &[&str]| args.iter().map(|arg| (*arg).to_owned()).collect::<Vec<_>>();

    // The token is the admin.token the first start wrote into the data folder.
    let clean = run_binary(
        owned(&["reconcile", "--addr", &addr]),
        vec![("CREDIT_DATA_DIR", dir.clone())],
    )
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&clean.stdout);
    assert_eq!(
        clean.status.code(),
        Some(0),
        "stdout: {stdout}; stderr: {}",
        String::from_utf8_lossy(&clean.stderr)
    );
    assert_eq!(stdout, "checked 0 customers and 0 groups: no differences\n");

    let unknown = run_binary(
        owned(&[
            "reconcile",
            "--addr",
            &addr,
            "--dry-run",
            "--customer",
            "cus_nobody",
        ]),
        vec![("CREDIT_DATA_DIR", dir.clone())],
    )
    .await
    .unwrap();
    assert_eq!(unknown.status.code(), Some(2));
    assert_refused(&unknown, "NOT_FOUND");

    let store = credit_suite::open_token_store(&settings).await.unwrap();
    let analyst = credit_runtime::identity::issue_token(
        store.as_ref(),
        &credit_runtime::identity::NewPrincipal::new("ana", [credit_core::Role::Analyst]),
    )
    .await
    .unwrap();
    let refused = run_binary(
        owned(&["reconcile", "--addr", &addr]),
        vec![(
            "CREDIT_TOKEN",
            secrecy::ExposeSecret::expose_secret(&analyst.token).to_owned(),
        )],
    )
    .await
    .unwrap();
    assert_eq!(refused.status.code(), Some(2));
    assert_refused(&refused, "PERMISSION_DENIED");
    assert!(String::from_utf8_lossy(&refused.stderr).contains("ADMIN"));

    stop.send(()).unwrap();
    server.await.unwrap().unwrap();
}

#[test]
fn demo_without_the_suites_data_or_a_checker_token_is_refused() {
    let output = run(&["demo", "--endpoint", "127.0.0.1:9"], &[]);
    assert_refused(&output, "--checker-token");
    assert_eq!(output.status.code(), Some(1));
}

#[test]
fn demo_that_cannot_reach_the_suite_says_where_it_looked() {
    let output = run(
        &[
            "demo",
            "--endpoint",
            "127.0.0.1:9",
            "--token",
            "maker",
            "--checker-token",
            "checker",
        ],
        &[],
    );
    assert_refused(&output, "cannot connect to http://127.0.0.1:9");
    assert_eq!(output.status.code(), Some(1));
}

#[test]
fn a_bad_classification_setting_is_refused_with_the_class_named() {
    let output = run(
        &["serve"],
        &[(
            "CREDIT_CLASSIFICATION_RULES",
            "0:1,1:2,91:25,181:fifty,361:100",
        )],
    );
    assert_refused(&output, "CREDIT_CLASSIFICATION_RULES");
    assert!(String::from_utf8_lossy(&output.stderr).contains("DOUBTFUL"));
}

/// The token id `token create` / `token rotate` name on standard error.
fn issued_token_id(output: &Output) -> String {
    let stderr = String::from_utf8_lossy(&output.stderr);
    stderr
        .split_whitespace()
        .find(|word| word.starts_with("prn_"))
        .unwrap_or_else(|| panic!("no token id in: {stderr}"))
        .to_owned()
}

#[test]
fn tokens_are_listed_rotated_and_revoked_from_the_command_line() {
    let data_dir = tempfile::tempdir().unwrap();
    let dir = data_dir.path().to_str().unwrap();
    let env = [("CREDIT_DATA_DIR", dir)];
    let created = run(
        &[
            "token",
            "create",
            "--name",
            "erp",
            "--role",
            "order_entry",
            "--expires-in-days",
            "30",
        ],
        &env,
    );
    assert!(created.status.success());
    let first = issued_token_id(&created);

    let rotated = run(&["token", "rotate", &first, "--grace-minutes", "0"], &env);
    assert!(
        rotated.status.success(),
        "{}",
        String::from_utf8_lossy(&rotated.stderr)
    );
    let second = issued_token_id(&rotated);
    assert_ne!(second, first);
    let new_token = String::from_utf8(rotated.stdout).unwrap();
    assert!(new_token.trim().starts_with("cst_"));

    let revoked = run(&["token", "revoke", &second], &env);
    assert!(revoked.status.success());

    let listed = run(&["token", "list"], &env);
    assert!(listed.status.success());
    let table = String::from_utf8(listed.stdout).unwrap();
    let line_of = |id: &str| {
        table
            .lines()
            .find(|line| line.starts_with(id))
            .unwrap_or_else(|| panic!("{id} not listed: {table}"))
            .to_owned()
    };
    // Both tokens belong to one person, the first revoked by the rotation, the second by hand.
    let (first_line, second_line) = (line_of(&first), line_of(&second));
    let person = |line: &str| line.split_whitespace().nth(1).unwrap().to_owned();
    assert_eq!(person(&first_line), person(&second_line));
    assert!(first_line.ends_with("revoked"), "{first_line}");
    assert!(second_line.ends_with("revoked"), "{second_line}");
    assert!(first_line.contains("ORDER_ENTRY"));
    assert!(table.contains("2 tokens, 0 active"), "{table}");

    // Nothing to revoke or rotate: one error line naming the token, exit code 2.
    let unknown = run(&["token", "revoke", "prn_nobody"], &env);
    assert_eq!(unknown.status.code(), Some(2));
    assert_refused(&unknown, "prn_nobody");
    let again = run(&["token", "rotate", &second], &env);
    assert_refused(&again, &second);
    let too_long = run(
        &[
            "token",
            "create",
            "--name",
            "x",
            "--role",
            "analyst",
            "--expires-in-days",
            "9999",
        ],
        &env,
    );
    assert_refused(&too_long, "--expires-in-days");
}
