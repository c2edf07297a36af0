//! `credit-suite import`: a 10,000-row CSV file with bad rows, imported twice.

use std::fmt::Write as _;

use credit_e2e_tests::{TestSuite, uscc};
use credit_proto::v1 as pb;
use credit_suite::import::{ImportOptions, RowOutcome, run_import};

const ROWS: u64 = 10_000;

/// What row n (1-based) of the file is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Row {
    Enterprise,
    Individual,
    /// Wrong USCC check character: the server refuses it.
    WrongCheckCharacter,
    /// A founding date that is no date: the client refuses it before sending.
    BadDate,
    /// The registration number of the row before it.
    RepeatOfPrevious,
}

fn row_kind(row: u64) -> Row {
    if row.is_multiple_of(500) {
        Row::RepeatOfPrevious
    } else if row.is_multiple_of(333) {
        Row::BadDate
    } else if row.is_multiple_of(200) {
        Row::WrongCheckCharacter
    } else if row.is_multiple_of(7) {
        Row::Individual
    } else {
        Row::Enterprise
    }
}

fn csv_file() -> String {
    let mut csv = String::from(
        "kind,country,legal_name,registration_number,founding_date,full_name,national_id,birth_date,contact_name,contact_email\n",
    );
    for row in 1..=ROWS {
        let enterprise = |code: String, founded: &str| {
            format!(
                "ENTERPRISE,CN,Import Co {row},{code},{founded},,,,Buyer {row},buyer{row}@example.cn\n"
            )
        };
        let line = match row_kind(row) {
            Row::Individual => format!("INDIVIDUAL,CN,,,,Person {row},ID{row:012},1980-01-01,,\n"),
            Row::Enterprise => enterprise(uscc(row), "2015-06-30"),
            Row::BadDate => enterprise(uscc(row), "2020-13-45"),
            Row::RepeatOfPrevious => enterprise(uscc(row - 1), "2015-06-30"),
            Row::WrongCheckCharacter => {
                let mut code = uscc(row);
                let check = code.pop().unwrap_or('0');
                code.push(if check == '0' { '1' } else { '0' });
                enterprise(code, "2015-06-30")
            }
        };
        csv.push_str(&line);
    }
    csv
}

#[derive(Debug, Default)]
struct Expected {
    created: u64,
    invalid_in_file: u64,
    invalid_on_server: u64,
    duplicates: u64,
}

/// The summary worked out from the row kinds alone.
fn expected() -> Expected {
    let mut expected = Expected::default();
    for row in 1..=ROWS {
        match row_kind(row) {
            Row::Enterprise | Row::Individual => expected.created += 1,
            Row::BadDate => expected.invalid_in_file += 1,
            Row::WrongCheckCharacter => expected.invalid_on_server += 1,
            // A repeat is a duplicate only when the row before it stored that number.
            Row::RepeatOfPrevious => match row_kind(row - 1) {
                Row::Enterprise => expected.duplicates += 1,
                _ => expected.created += 1,
            },
        }
    }
    expected
}

async fn stored_customers(suite: &TestSuite) -> usize {
    let mut intake = suite.intake(&suite.admin_token);
    let mut count = 0;
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
        count += page.customers.len();
        if page.next_page_token.is_empty() {
            return count;
        }
        page_token = page.next_page_token;
    }
}

pub async fn ten_thousand_rows_import_once_with_a_per_row_summary(suite: &TestSuite) {
    let folder = tempfile::tempdir().unwrap();
    let file = folder.path().join("customers.csv");
    std::fs::write(&file, csv_file()).unwrap();
    let options = ImportOptions::new(
        &file,
        format!("http://{}", suite.addr),
        suite.admin_token.clone(),
    );
    let expected = expected();

    let first = run_import(&options).await.unwrap();
    let summary = &first.summary;
    assert_eq!(summary.rows_read, ROWS);
    assert_eq!(summary.created, expected.created);
    assert_eq!(summary.invalid_in_file, expected.invalid_in_file);
    assert_eq!(summary.invalid_on_server, expected.invalid_on_server);
    assert_eq!(summary.duplicates, expected.duplicates);
    assert_eq!(summary.failed, 0);
    assert_eq!(first.rows.len(), usize::try_from(ROWS).unwrap());
    // Row 200 has a wrong check character; the server names the field.
    let row_200 = &first.rows[199];
    assert_eq!(row_200.outcome, RowOutcome::Invalid);
    let mut problems = String::new();
    for problem in &row_200.problems {
        let _ = write!(problems, "{problem:?}");
    }
    assert!(problems.contains("registration_number"), "{problems}");
    assert_eq!(
        first.rows[332].outcome,
        RowOutcome::Invalid,
        "row 333's date is refused"
    );
    assert_eq!(row_kind(499), Row::Enterprise);
    assert_eq!(first.rows[499].outcome, RowOutcome::Duplicate);
    assert_eq!(first.rows[499].customer_id, first.rows[498].customer_id);
    assert_eq!(
        stored_customers(suite).await,
        usize::try_from(expected.created).unwrap()
    );

    // The same file again: every good row was imported before, nothing is created twice.
    let second = run_import(&options).await.unwrap();
    assert_eq!(second.summary.created, 0);
    assert_eq!(second.summary.already_imported, expected.created);
    assert_eq!(second.summary.duplicates, expected.duplicates);
    assert_eq!(
        second.summary.invalid(),
        expected.invalid_in_file + expected.invalid_on_server
    );
    assert_eq!(second.rows[0].customer_id, first.rows[0].customer_id);
    assert_eq!(
        stored_customers(suite).await,
        usize::try_from(expected.created).unwrap()
    );
}
