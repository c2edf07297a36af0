//! `credit-suite import customers.csv`: registers customers from a CSV file through
//! `IntakeService.ImportCustomers` (client streaming), with a progress bar and a summary.
//!
//! The work is split so that everything but the network can be tested without a server:
//! [`parse_csv`] reads the header and maps each data row to a `credit.v1.Customer` (a row that
//! cannot even be mapped is kept with its problems and never sent), [`plan_calls`] splits the
//! rows into calls of at most [`MAX_ROWS_PER_CALL`] rows and messages of `batch_size` rows,
//! and [`build_report`] merges the server's per-row results with the rows refused locally.
//! [`run_import`] does all of it against a running suite.
//!
//! Personal data (national ids, phones, e-mails, names of individuals) is never printed: local
//! problems name the column and never echo a cell, and the server's violations name fields.

use std::collections::HashMap;
use std::fmt;
use std::io::IsTerminal;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use credit_core::error::ErrorChain;
use credit_proto::v1::intake_service_client::IntakeServiceClient;
use credit_proto::v1::{
    Contact, Customer, CustomerKind, Date, EnterpriseDetails, ImportCustomerRow,
    ImportCustomerRowResult, ImportCustomersRequest, ImportCustomersResponse, ImportRowOutcome,
    IndividualDetails, Money, PostalAddress, customer,
};
use credit_runtime::config::{
    Backend, ConfigError, DEFAULT_DATA_DIR, DEFAULT_LISTEN_ADDR, Settings,
};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use secrecy::{ExposeSecret, SecretString};
use sha2::{Digest, Sha256};
use tokio_stream::StreamExt;
use tonic::metadata::{Ascii, MetadataValue};
use tonic::transport::{Channel, Endpoint};
use tonic::{Code, Status};

use crate::ADMIN_TOKEN_FILE;

/// Most rows one `ImportCustomers` call may carry (the contract's limit). A bigger file is
/// imported in several calls: rows 1..=50,000 in the first, 50,001..=100,000 in the second, …
pub const MAX_ROWS_PER_CALL: i64 = 50_000;

/// Rows per stream message unless `--batch-size` says otherwise.
pub const DEFAULT_BATCH_SIZE: usize = 500;

/// Largest `--batch-size`: a message of 5,000 rows stays well below gRPC's default 4 MiB
/// message limit on the server.
pub const MAX_BATCH_SIZE: usize = 5_000;

/// Problem rows listed in the printed summary; `--results` has all of them.
pub const LISTED_PROBLEM_ROWS: usize = 20;

/// The response carries one result per row (50,000 at most per call): allow more than
/// tonic's default 4 MiB.
const MAX_RESPONSE_BYTES: usize = 128 * 1024 * 1024;

const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

// ---------------------------------------------------------------------------------------------
// Columns and the header
// ---------------------------------------------------------------------------------------------

/// A column of the import file. The header names them; their order is free.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Column {
    Kind,
    Country,
    ExternalReference,
    LegalName,
    RegistrationNumber,
    RegisteredCapital,
    RegisteredCapitalCurrency,
    LegalRepresentative,
    IndustryCode,
    FoundingDate,
    FullName,
    NationalId,
    BirthDate,
    Occupation,
    Employer,
    AnnualIncome,
    AnnualIncomeCurrency,
    AddressLine1,
    AddressLine2,
    Locality,
    Region,
    PostalCode,
    ContactName,
    ContactRole,
    ContactPhone,
    ContactEmail,
}

impl Column {
    /// Every column, in the documented order (the order of [`COLUMN_NAMES`]).
    pub const ALL: [Column; 26] = [
        Column::Kind,
        Column::Country,
        Column::ExternalReference,
        Column::LegalName,
        Column::RegistrationNumber,
        Column::RegisteredCapital,
        Column::RegisteredCapitalCurrency,
        Column::LegalRepresentative,
        Column::IndustryCode,
        Column::FoundingDate,
        Column::FullName,
        Column::NationalId,
        Column::BirthDate,
        Column::Occupation,
        Column::Employer,
        Column::AnnualIncome,
        Column::AnnualIncomeCurrency,
        Column::AddressLine1,
        Column::AddressLine2,
        Column::Locality,
        Column::Region,
        Column::PostalCode,
        Column::ContactName,
        Column::ContactRole,
        Column::ContactPhone,
        Column::ContactEmail,
    ];

    /// The column's name in the header.
    pub fn name(self) -> &'static str {
        match self {
            Column::Kind => "kind",
            Column::Country => "country",
            Column::ExternalReference => "external_reference",
            Column::LegalName => "legal_name",
            Column::RegistrationNumber => "registration_number",
            Column::RegisteredCapital => "registered_capital",
            Column::RegisteredCapitalCurrency => "registered_capital_currency",
            Column::LegalRepresentative => "legal_representative",
            Column::IndustryCode => "industry_code",
            Column::FoundingDate => "founding_date",
            Column::FullName => "full_name",
            Column::NationalId => "national_id",
            Column::BirthDate => "birth_date",
            Column::Occupation => "occupation",
            Column::Employer => "employer",
            Column::AnnualIncome => "annual_income",
            Column::AnnualIncomeCurrency => "annual_income_currency",
            Column::AddressLine1 => "address_line1",
            Column::AddressLine2 => "address_line2",
            Column::Locality => "locality",
            Column::Region => "region",
            Column::PostalCode => "postal_code",
            Column::ContactName => "contact_name",
            Column::ContactRole => "contact_role",
            Column::ContactPhone => "contact_phone",
            Column::ContactEmail => "contact_email",
        }
    }

    /// The column a header cell names (case and surrounding blanks ignored).
    pub fn from_name(name: &str) -> Option<Column> {
        let name = name.trim();
        Column::ALL
            .into_iter()
            .find(|column| column.name().eq_ignore_ascii_case(name))
    }

    fn index(self) -> usize {
        self as usize
    }
}

/// The header names, in the documented order; `COLUMN_NAMES.join(",")` is a full header.
pub const COLUMN_NAMES: [&str; 26] = [
    "kind",
    "country",
    "external_reference",
    "legal_name",
    "registration_number",
    "registered_capital",
    "registered_capital_currency",
    "legal_representative",
    "industry_code",
    "founding_date",
    "full_name",
    "national_id",
    "birth_date",
    "occupation",
    "employer",
    "annual_income",
    "annual_income_currency",
    "address_line1",
    "address_line2",
    "locality",
    "region",
    "postal_code",
    "contact_name",
    "contact_role",
    "contact_phone",
    "contact_email",
];

/// The file's first line: which position holds which column. `kind` is required; any other
/// column may be left out (its cells count as empty), none may appear twice, and a name that
/// is not a column is refused (a typo would otherwise drop a column silently).
#[derive(Debug, Clone)]
pub struct Header {
    positions: [Option<usize>; 26],
    width: usize,
}

/// Why a file cannot be imported at all (its header, or its encoding). Never echoes a data cell.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{problem}")]
pub struct FormatError {
    pub problem: String,
}

impl FormatError {
    fn new(problem: impl Into<String>) -> Self {
        Self {
            problem: problem.into(),
        }
    }
}

impl Header {
    /// Reads the header cells (a UTF-8 byte-order mark before the first one is ignored).
    pub fn parse<S: AsRef<str>>(cells: &[S]) -> Result<Self, FormatError> {
        let names: Vec<&str> = cells
            .iter()
            .enumerate()
            .map(|(position, cell)| {
                let cell = cell.as_ref().trim();
                if position == 0 {
                    cell.trim_start_matches('\u{feff}').trim()
                } else {
                    cell
                }
            })
            .collect();
        // Without a `kind` column this is not a header but (most likely) a data row: say so
        // without echoing its cells, which may hold personal data.
        if !names
            .iter()
            .any(|name| Column::from_name(name) == Some(Column::Kind))
        {
            return Err(FormatError::new(
                "the first line must be the header naming the columns, and it has no `kind` \
                 column (see docs/import.md)",
            ));
        }
        let mut positions = [None; 26];
        for (position, name) in names.iter().enumerate() {
            let Some(column) = Column::from_name(name) else {
                return Err(FormatError::new(format!(
                    "column {} of the header, {}, is not a known column (see docs/import.md)",
                    position + 1,
                    quoted_header_name(name)
                )));
            };
            if positions[column.index()].is_some() {
                return Err(FormatError::new(format!(
                    "the header names column `{}` twice",
                    column.name()
                )));
            }
            positions[column.index()] = Some(position);
        }
        Ok(Self {
            positions,
            width: names.len(),
        })
    }

    /// Number of cells every data row must have.
    pub fn width(&self) -> usize {
        self.width
    }

    /// Whether the header names `column`.
    pub fn has(&self, column: Column) -> bool {
        self.positions[column.index()].is_some()
    }
}

/// A header cell that is not a column name is shown only when it looks like a name (letters,
/// digits, `_`, `-` and blanks), so a stray data line never prints a phone or an e-mail.
fn quoted_header_name(name: &str) -> String {
    let looks_like_a_name = !name.is_empty()
        && name.chars().count() <= 40
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | ' '));
    if looks_like_a_name {
        format!("'{name}'")
    } else if name.is_empty() {
        "an empty name".to_owned()
    } else {
        "a name that is not a column".to_owned()
    }
}

// ---------------------------------------------------------------------------------------------
// Rows
// ---------------------------------------------------------------------------------------------

/// One problem with one row, shaped like the server's `FieldViolation`. `field` is a column
/// name for problems found by this client, a path such as `customer.country` for the server's.
/// `description` never holds a cell's value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub field: String,
    pub reason: String,
    pub description: String,
}

impl Problem {
    pub fn new(
        field: impl Into<String>,
        reason: impl Into<String>,
        description: impl Into<String>,
    ) -> Self {
        Self {
            field: field.into(),
            reason: reason.into(),
            description: description.into(),
        }
    }
}

impl fmt::Display for Problem {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        if !self.field.is_empty() {
            write!(formatter, "{}: ", self.field)?;
        }
        write!(formatter, "{}", self.reason)?;
        if !self.description.is_empty() {
            write!(formatter, " ({})", self.description)?;
        }
        Ok(())
    }
}

/// A data row of the file: its 1-based number (the header is not counted, so data row `n` is
/// line `n + 1` of a spreadsheet) and either the customer to send or why it cannot be sent.
#[derive(Debug, Clone, PartialEq)]
pub struct ParsedRow {
    pub row_number: i64,
    pub mapped: Result<Customer, Vec<Problem>>,
}

/// The data rows of a file, in order.
#[derive(Debug, Clone, PartialEq)]
pub struct ParsedFile {
    pub rows: Vec<ParsedRow>,
}

impl ParsedFile {
    /// Rows that will be sent.
    pub fn sendable_rows(&self) -> usize {
        self.rows.iter().filter(|row| row.mapped.is_ok()).count()
    }
}

/// Reads a whole CSV file: the header, then every data row mapped with [`map_row`]. Cells are
/// trimmed. A row whose cells are all empty (`,,,,` as spreadsheets export an empty row) is
/// skipped but keeps its number, so numbers still match the spreadsheet; an empty line is
/// ignored altogether. Fails only when the file as a whole is unusable (no header, an unknown
/// column); a bad row is kept with its problems.
pub fn parse_csv(bytes: &[u8]) -> Result<ParsedFile, FormatError> {
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(true)
        .flexible(true)
        .trim(csv::Trim::All)
        .from_reader(bytes);
    let header_record = reader
        .byte_headers()
        .map_err(|error| {
            FormatError::new(format!("cannot read the header: {}", csv_problem(&error)))
        })?
        .clone();
    if header_record.is_empty() || header_record.iter().all(<[u8]>::is_empty) {
        return Err(FormatError::new(
            "the file is empty; its first line must be the header naming the columns",
        ));
    }
    let header_cells = header_record
        .iter()
        .map(|cell| std::str::from_utf8(cell).map(str::to_owned))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|_| FormatError::new("the header is not UTF-8 text; save the file as UTF-8"))?;
    let header = Header::parse(&header_cells)?;

    let mut rows = Vec::new();
    let mut record = csv::ByteRecord::new();
    let mut row_number: i64 = 0;
    loop {
        match reader.read_byte_record(&mut record) {
            Ok(false) => break,
            Ok(true) => {}
            Err(error) => {
                return Err(FormatError::new(format!(
                    "cannot read data row {}: {}",
                    row_number + 1,
                    csv_problem(&error)
                )));
            }
        }
        row_number += 1;
        if record.iter().all(<[u8]>::is_empty) {
            continue;
        }
        let mapped = decode_cells(&header, &record).and_then(|cells| map_row(&header, &cells));
        rows.push(ParsedRow { row_number, mapped });
    }
    Ok(ParsedFile { rows })
}

/// The csv crate's error without any cell content (its messages hold none, but its
/// `Deserialize` variant could; we never deserialize, so that arm only names the kind).
fn csv_problem(error: &csv::Error) -> String {
    match error.kind() {
        csv::ErrorKind::Io(io) => io.to_string(),
        csv::ErrorKind::Utf8 { .. } => "a cell is not UTF-8 text".to_owned(),
        csv::ErrorKind::UnequalLengths {
            expected_len, len, ..
        } => {
            format!("it has {len} cells where {expected_len} were expected")
        }
        _ => "malformed CSV".to_owned(),
    }
}

/// The row's cells as text; a cell that is not UTF-8 is a problem naming its column.
fn decode_cells(header: &Header, record: &csv::ByteRecord) -> Result<Vec<String>, Vec<Problem>> {
    let mut cells = Vec::with_capacity(record.len());
    let mut problems = Vec::new();
    for (position, cell) in record.iter().enumerate() {
        match std::str::from_utf8(cell) {
            Ok(text) => cells.push(text.to_owned()),
            Err(_) => {
                let field = Column::ALL
                    .into_iter()
                    .find(|column| header.positions[column.index()] == Some(position))
                    .map_or_else(
                        || format!("column {}", position + 1),
                        |column| column.name().to_owned(),
                    );
                problems.push(Problem::new(
                    field,
                    "INVALID_ENCODING",
                    "is not UTF-8 text; save the file as UTF-8",
                ));
                cells.push(String::new());
            }
        }
    }
    if problems.is_empty() {
        Ok(cells)
    } else {
        Err(problems)
    }
}

/// The cells of one row, looked up by column.
struct Cells<'a, S> {
    header: &'a Header,
    cells: &'a [S],
}

impl<S: AsRef<str>> Cells<'_, S> {
    /// The trimmed cell, or "" when the header does not name the column.
    fn get(&self, column: Column) -> &str {
        self.header.positions[column.index()]
            .and_then(|position| self.cells.get(position))
            .map_or("", |cell| cell.as_ref().trim())
    }

    fn owned(&self, column: Column) -> String {
        self.get(column).to_owned()
    }

    fn any(&self, columns: &[Column]) -> bool {
        columns.iter().any(|column| !self.get(*column).is_empty())
    }
}

/// Maps one data row to the customer to create. Fails, with one problem per column, only when
/// the row cannot be expressed as a `Customer` at all: a wrong number of cells, a `kind` other
/// than ENTERPRISE or INDIVIDUAL, or a date that is not a calendar date in YYYY-MM-DD form.
/// Everything else (required fields, formats, currencies, check characters) is the server's to
/// judge, so every rule lives in one place.
///
/// Columns of the other kind are ignored (an ENTERPRISE row's `national_id` is not sent).
/// Money is set only when its amount cell is non-empty; the address only when one of its cells
/// is; one contact (the primary one) only when one of the `contact_*` cells is.
pub fn map_row<S: AsRef<str>>(header: &Header, cells: &[S]) -> Result<Customer, Vec<Problem>> {
    if cells.len() != header.width {
        return Err(vec![Problem::new(
            "row",
            "WRONG_COLUMN_COUNT",
            format!(
                "has {} cells; the header has {} columns",
                cells.len(),
                header.width
            ),
        )]);
    }
    let cells = Cells { header, cells };
    let mut problems = Vec::new();

    let kind = match parse_kind(cells.get(Column::Kind)) {
        Ok(kind) => Some(kind),
        Err(problem) => {
            problems.push(problem);
            None
        }
    };
    // With an unknown kind, check both dates so that the row's problems come all at once.
    let founding_date = if kind != Some(CustomerKind::Individual) {
        parse_date(&cells, Column::FoundingDate, &mut problems)
    } else {
        None
    };
    let birth_date = if kind != Some(CustomerKind::Enterprise) {
        parse_date(&cells, Column::BirthDate, &mut problems)
    } else {
        None
    };
    let Some(kind) = kind.filter(|_| problems.is_empty()) else {
        return Err(problems);
    };

    let details = match kind {
        CustomerKind::Individual => customer::Details::Individual(IndividualDetails {
            full_name: cells.owned(Column::FullName),
            national_id: cells.owned(Column::NationalId),
            birth_date,
            occupation: cells.owned(Column::Occupation),
            employer: cells.owned(Column::Employer),
            annual_income: money(&cells, Column::AnnualIncome, Column::AnnualIncomeCurrency),
        }),
        // `parse_kind` yields only the two kinds; Unspecified cannot reach here.
        CustomerKind::Enterprise | CustomerKind::Unspecified => {
            customer::Details::Enterprise(EnterpriseDetails {
                legal_name: cells.owned(Column::LegalName),
                registration_number: cells.owned(Column::RegistrationNumber),
                registered_capital: money(
                    &cells,
                    Column::RegisteredCapital,
                    Column::RegisteredCapitalCurrency,
                ),
                legal_representative: cells.owned(Column::LegalRepresentative),
                industry_code: cells.owned(Column::IndustryCode),
                founding_date,
            })
        }
    };
    let country = cells.owned(Column::Country);
    Ok(Customer {
        kind: kind as i32,
        address: address(&cells, &country),
        contacts: contact(&cells).into_iter().collect(),
        country,
        external_reference: cells.owned(Column::ExternalReference),
        details: Some(details),
        ..Customer::default()
    })
}

fn parse_kind(cell: &str) -> Result<CustomerKind, Problem> {
    let field = Column::Kind.name();
    if cell.is_empty() {
        return Err(Problem::new(
            field,
            "REQUIRED",
            "is required: ENTERPRISE or INDIVIDUAL",
        ));
    }
    if cell.eq_ignore_ascii_case("ENTERPRISE") {
        Ok(CustomerKind::Enterprise)
    } else if cell.eq_ignore_ascii_case("INDIVIDUAL") {
        Ok(CustomerKind::Individual)
    } else {
        Err(Problem::new(
            field,
            "INVALID_VALUE",
            "must be ENTERPRISE or INDIVIDUAL",
        ))
    }
}

/// An empty cell is no date; anything else must be a calendar date written YYYY-MM-DD.
fn parse_date<S: AsRef<str>>(
    cells: &Cells<'_, S>,
    column: Column,
    problems: &mut Vec<Problem>,
) -> Option<Date> {
    let cell = cells.get(column);
    if cell.is_empty() {
        return None;
    }
    let date = parse_iso_date(cell);
    if date.is_none() {
        problems.push(Problem::new(
            column.name(),
            "INVALID_FORMAT",
            "must be a calendar date written YYYY-MM-DD",
        ));
    }
    date
}

/// `2024-02-29` → `Date { 2024, 2, 29 }`; anything but a real date in exactly that form → None.
pub fn parse_iso_date(text: &str) -> Option<Date> {
    use chrono::Datelike;
    let bytes = text.as_bytes();
    let shaped = bytes.len() == 10
        && bytes[4] == b'-'
        && bytes[7] == b'-'
        && bytes
            .iter()
            .enumerate()
            .all(|(position, byte)| position == 4 || position == 7 || byte.is_ascii_digit());
    if !shaped {
        return None;
    }
    let date = chrono::NaiveDate::parse_from_str(text, "%Y-%m-%d").ok()?;
    if date.year() < 1 {
        return None;
    }
    Some(Date {
        year: date.year(),
        month: i32::try_from(date.month()).ok()?,
        day: i32::try_from(date.day()).ok()?,
    })
}

/// Money when the amount cell is non-empty; the amount is sent as written (an exact decimal
/// string) and the server checks it and the currency.
fn money<S: AsRef<str>>(cells: &Cells<'_, S>, amount: Column, currency: Column) -> Option<Money> {
    let amount_text = cells.get(amount);
    if amount_text.is_empty() {
        return None;
    }
    Some(Money {
        amount: amount_text.to_owned(),
        currency: cells.owned(currency),
    })
}

const ADDRESS_COLUMNS: [Column; 5] = [
    Column::AddressLine1,
    Column::AddressLine2,
    Column::Locality,
    Column::Region,
    Column::PostalCode,
];

fn address<S: AsRef<str>>(cells: &Cells<'_, S>, country: &str) -> Option<PostalAddress> {
    if !cells.any(&ADDRESS_COLUMNS) {
        return None;
    }
    Some(PostalAddress {
        address_lines: [Column::AddressLine1, Column::AddressLine2]
            .into_iter()
            .map(|column| cells.owned(column))
            .filter(|line| !line.is_empty())
            .collect(),
        locality: cells.owned(Column::Locality),
        region: cells.owned(Column::Region),
        postal_code: cells.owned(Column::PostalCode),
        country: country.to_owned(),
    })
}

const CONTACT_COLUMNS: [Column; 4] = [
    Column::ContactName,
    Column::ContactRole,
    Column::ContactPhone,
    Column::ContactEmail,
];

fn contact<S: AsRef<str>>(cells: &Cells<'_, S>) -> Option<Contact> {
    if !cells.any(&CONTACT_COLUMNS) {
        return None;
    }
    Some(Contact {
        name: cells.owned(Column::ContactName),
        role: cells.owned(Column::ContactRole),
        phone: cells.owned(Column::ContactPhone),
        email: cells.owned(Column::ContactEmail),
        // The only contact of a new customer receives statements and dunning.
        primary: true,
        ..Contact::default()
    })
}

// ---------------------------------------------------------------------------------------------
// Import ids and calls
// ---------------------------------------------------------------------------------------------

/// The default import id: the lowercase hex SHA-256 of the file's bytes. The same file gives
/// the same id, so importing it again creates nothing twice (each row's idempotency key is
/// `<import_id>:<row_number>`); any change to the file gives a new id.
pub fn derive_import_id(file_bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(file_bytes))
}

/// The import id of call `part` (1-based): the base id for the first, `<base>-part<N>` after.
pub fn part_import_id(base_import_id: &str, part: usize) -> String {
    if part <= 1 {
        base_import_id.to_owned()
    } else {
        format!("{base_import_id}-part{part}")
    }
}

/// Checks an `--import-id`: 1..=128 characters of letters, digits, `.`, `_`, `-`, `:`.
pub fn check_import_id(import_id: &str) -> Result<(), ConfigError> {
    let valid = !import_id.is_empty()
        && import_id.len() <= 128
        && import_id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | ':'));
    if valid {
        Ok(())
    } else {
        Err(ConfigError::new(
            "--import-id",
            "must be 1..128 characters of letters, digits, '.', '_', '-' or ':'",
        ))
    }
}

/// One `ImportCustomers` call: its import id and its stream messages.
#[derive(Debug, Clone, PartialEq)]
pub struct PlannedCall {
    pub import_id: String,
    pub messages: Vec<ImportCustomersRequest>,
}

impl PlannedCall {
    pub fn row_count(&self) -> usize {
        self.messages.iter().map(|message| message.rows.len()).sum()
    }
}

/// Splits the rows that can be sent into calls and messages. Call `k` carries the rows numbered
/// `(k-1)·50,000 + 1 ..= k·50,000` under [`part_import_id`]`(base, k)`, so which call a row
/// belongs to depends only on its number (a re-run puts it under the same key); a call whose
/// rows were all refused locally is not made. Within a call, messages carry `batch_size` rows
/// (the last one fewer); every message repeats the import id and `validate_only`. Row numbers
/// stay those of the file. `request_id` is left empty: the server uses
/// `<import_id>:<row_number>`.
pub fn plan_calls(
    base_import_id: &str,
    validate_only: bool,
    rows: &[ParsedRow],
    batch_size: usize,
) -> Vec<PlannedCall> {
    let batch_size = batch_size.max(1);
    let mut calls: Vec<(usize, Vec<ImportCustomerRow>)> = Vec::new();
    for row in rows {
        let Ok(customer) = &row.mapped else {
            continue;
        };
        let part = usize::try_from((row.row_number - 1).max(0) / MAX_ROWS_PER_CALL)
            .map_or(usize::MAX, |index| index.saturating_add(1));
        let import_row = ImportCustomerRow {
            row_number: row.row_number,
            request_id: String::new(),
            customer: Some(customer.clone()),
        };
        match calls.last_mut() {
            Some((last_part, call_rows)) if *last_part == part => call_rows.push(import_row),
            _ => calls.push((part, vec![import_row])),
        }
    }
    calls
        .into_iter()
        .map(|(part, call_rows)| {
            let import_id = part_import_id(base_import_id, part);
            let messages = call_rows
                .chunks(batch_size)
                .map(|chunk| ImportCustomersRequest {
                    import_id: import_id.clone(),
                    validate_only,
                    rows: chunk.to_vec(),
                })
                .collect();
            PlannedCall {
                import_id,
                messages,
            }
        })
        .collect()
}

// ---------------------------------------------------------------------------------------------
// The report
// ---------------------------------------------------------------------------------------------

/// What happened to one row.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RowOutcome {
    /// Created (or, with `--validate-only`, would be).
    Created,
    /// Imported before under the same idempotency key; nothing written.
    AlreadyImported,
    /// An enterprise with the same (country, registration number) exists; nothing written.
    Duplicate,
    /// Refused: by this client (not sent) or by the server's validation.
    Invalid,
    /// Not stored for another reason; may be retried.
    Failed,
}

impl RowOutcome {
    pub fn as_str(self) -> &'static str {
        match self {
            RowOutcome::Created => "CREATED",
            RowOutcome::AlreadyImported => "ALREADY_IMPORTED",
            RowOutcome::Duplicate => "DUPLICATE",
            RowOutcome::Invalid => "INVALID",
            RowOutcome::Failed => "FAILED",
        }
    }

    /// Whether the row is done: its customer exists (or would).
    pub fn is_success(self) -> bool {
        match self {
            RowOutcome::Created | RowOutcome::AlreadyImported | RowOutcome::Duplicate => true,
            RowOutcome::Invalid | RowOutcome::Failed => false,
        }
    }
}

impl fmt::Display for RowOutcome {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(self.as_str())
    }
}

/// The result of one data row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RowReport {
    /// 1-based data row (header not counted).
    pub row_number: i64,
    pub outcome: RowOutcome,
    /// The created, earlier or existing customer (CREATED, ALREADY_IMPORTED, DUPLICATE).
    pub customer_id: String,
    /// Field violations of an INVALID row, the error of a FAILED one.
    pub problems: Vec<Problem>,
    /// False for a row refused by this client and therefore never sent.
    pub sent: bool,
}

/// Totals of an import. `invalid_in_file + invalid_on_server` rows are INVALID.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ImportSummary {
    pub rows_read: u64,
    pub created: u64,
    pub already_imported: u64,
    pub duplicates: u64,
    /// Refused by this client (kind, date, column count, encoding) and not sent.
    pub invalid_in_file: u64,
    /// Refused by the server's validation.
    pub invalid_on_server: u64,
    pub failed: u64,
}

impl ImportSummary {
    pub fn invalid(&self) -> u64 {
        self.invalid_in_file + self.invalid_on_server
    }
}

/// Everything an import did, row by row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImportReport {
    /// The base import id (the file's SHA-256 unless `--import-id`).
    pub import_id: String,
    /// The import id of each call made, in order (empty when no row could be sent).
    pub call_import_ids: Vec<String>,
    pub validate_only: bool,
    /// One entry per data row, in file order.
    pub rows: Vec<RowReport>,
    pub summary: ImportSummary,
}

impl ImportReport {
    /// True when every row was created, already imported, or a duplicate.
    pub fn is_complete(&self) -> bool {
        self.summary.invalid() == 0 && self.summary.failed == 0
    }

    /// 0 when every row is CREATED, ALREADY_IMPORTED or DUPLICATE; 1 otherwise.
    pub fn exit_code(&self) -> u8 {
        if self.is_complete() { 0 } else { 1 }
    }

    /// INVALID and FAILED rows, in file order.
    pub fn problem_rows(&self) -> impl Iterator<Item = &RowReport> {
        self.rows.iter().filter(|row| !row.outcome.is_success())
    }

    /// The summary printed at the end of `credit-suite import`.
    pub fn render_summary(&self) -> String {
        let summary = &self.summary;
        let mut text = String::new();
        let calls = match self.call_import_ids.len() {
            1 => " in 1 call".to_owned(),
            0 => String::new(),
            count => format!(" in {count} calls"),
        };
        text.push_str(&format!("import {}{calls}\n", self.import_id));
        if self.validate_only {
            text.push_str(
                "validate only: nothing was written; \"created\" counts rows that would be created\n",
            );
        }
        let lines = [
            ("rows read", summary.rows_read, String::new()),
            ("created", summary.created, String::new()),
            ("already imported", summary.already_imported, String::new()),
            ("duplicates", summary.duplicates, String::new()),
            (
                "invalid",
                summary.invalid(),
                format!(
                    "  ({} refused in the file, not sent; {} refused by the server)",
                    summary.invalid_in_file, summary.invalid_on_server
                ),
            ),
            ("failed", summary.failed, String::new()),
        ];
        for (label, count, note) in lines {
            text.push_str(&format!("{label:<17}{count:>9}{note}\n"));
        }
        let problem_count = self.problem_rows().count();
        if problem_count > 0 {
            if problem_count > LISTED_PROBLEM_ROWS {
                text.push_str(&format!(
                    "problem rows (the first {LISTED_PROBLEM_ROWS} of {problem_count}; --results writes all):\n"
                ));
            } else {
                text.push_str("problem rows:\n");
            }
            for row in self.problem_rows().take(LISTED_PROBLEM_ROWS) {
                let not_sent = if row.sent { "" } else { ", not sent" };
                text.push_str(&format!(
                    "  row {}: {}{not_sent}: {}\n",
                    row.row_number,
                    row.outcome,
                    join_problems(&row.problems)
                ));
            }
        }
        text
    }

    /// Writes one CSV line per data row: `row_number,outcome,customer_id,problems`.
    pub fn write_results_csv<W: std::io::Write>(&self, writer: W) -> Result<(), csv::Error> {
        let mut writer = csv::Writer::from_writer(writer);
        writer.write_record(["row_number", "outcome", "customer_id", "problems"])?;
        for row in &self.rows {
            writer.write_record([
                row.row_number.to_string(),
                row.outcome.as_str().to_owned(),
                row.customer_id.clone(),
                join_problems(&row.problems),
            ])?;
        }
        writer.flush()?;
        Ok(())
    }
}

fn join_problems(problems: &[Problem]) -> String {
    problems
        .iter()
        .map(Problem::to_string)
        .collect::<Vec<_>>()
        .join("; ")
}

/// Merges the rows refused locally with the server's results (from every call, matched by row
/// number). A sent row the server returned no result for is FAILED with `NO_RESULT`.
pub fn build_report(
    import_id: &str,
    call_import_ids: Vec<String>,
    validate_only: bool,
    rows: &[ParsedRow],
    server_results: Vec<ImportCustomerRowResult>,
) -> ImportReport {
    let mut results_by_row: HashMap<i64, ImportCustomerRowResult> = server_results
        .into_iter()
        .map(|result| (result.row_number, result))
        .collect();
    let rows: Vec<RowReport> = rows
        .iter()
        .map(|row| match &row.mapped {
            Err(problems) => RowReport {
                row_number: row.row_number,
                outcome: RowOutcome::Invalid,
                customer_id: String::new(),
                problems: problems.clone(),
                sent: false,
            },
            Ok(_) => match results_by_row.remove(&row.row_number) {
                Some(result) => row_report_from_server(result),
                None => RowReport {
                    row_number: row.row_number,
                    outcome: RowOutcome::Failed,
                    customer_id: String::new(),
                    problems: vec![Problem::new(
                        "",
                        "NO_RESULT",
                        "the server returned no result for this row; run the import again",
                    )],
                    sent: true,
                },
            },
        })
        .collect();
    let mut summary = ImportSummary {
        rows_read: rows.len() as u64,
        ..ImportSummary::default()
    };
    for row in &rows {
        match row.outcome {
            RowOutcome::Created => summary.created += 1,
            RowOutcome::AlreadyImported => summary.already_imported += 1,
            RowOutcome::Duplicate => summary.duplicates += 1,
            RowOutcome::Invalid if row.sent => summary.invalid_on_server += 1,
            RowOutcome::Invalid => summary.invalid_in_file += 1,
            RowOutcome::Failed => summary.failed += 1,
        }
    }
    ImportReport {
        import_id: import_id.to_owned(),
        call_import_ids,
        validate_only,
        rows,
        summary,
    }
}

fn row_report_from_server(result: ImportCustomerRowResult) -> RowReport {
    let mut problems: Vec<Problem> = result
        .violations
        .into_iter()
        .map(|violation| Problem::new(violation.field, violation.reason, violation.description))
        .collect();
    if let Some(error) = result.error {
        problems.push(Problem::new("", error.code, error.message));
    }
    let outcome = match ImportRowOutcome::try_from(result.outcome) {
        Ok(ImportRowOutcome::Created) => RowOutcome::Created,
        Ok(ImportRowOutcome::AlreadyImported) => RowOutcome::AlreadyImported,
        Ok(ImportRowOutcome::Duplicate) => RowOutcome::Duplicate,
        Ok(ImportRowOutcome::Invalid) => RowOutcome::Invalid,
        Ok(ImportRowOutcome::Failed) => RowOutcome::Failed,
        Ok(ImportRowOutcome::Unspecified) | Err(_) => {
            problems.push(Problem::new(
                "",
                "UNKNOWN_OUTCOME",
                format!("the server answered outcome {}", result.outcome),
            ));
            RowOutcome::Failed
        }
    };
    if outcome == RowOutcome::Failed && problems.is_empty() {
        problems.push(Problem::new("", "FAILED", "the server gave no reason"));
    }
    RowReport {
        row_number: result.row_number,
        outcome,
        customer_id: result.customer_id,
        problems,
        sent: true,
    }
}

// ---------------------------------------------------------------------------------------------
// Running an import against a suite
// ---------------------------------------------------------------------------------------------

/// What [`run_import`] needs. Build with [`ImportOptions::new`], then set fields.
#[derive(Debug, Clone)]
pub struct ImportOptions {
    /// The CSV file.
    pub file: PathBuf,
    /// `http://host:port` of the suite (IntakeService).
    pub addr: String,
    /// Bearer token of a principal with ANALYST or ADMIN.
    pub token: SecretString,
    /// Where the token came from, for error messages ("CREDIT_TOKEN", a file path); never the
    /// token itself.
    pub token_source: String,
    /// Base import id; `None` derives it from the file's SHA-256 ([`derive_import_id`]).
    pub import_id: Option<String>,
    /// Rows per stream message, 1..=[`MAX_BATCH_SIZE`].
    pub batch_size: usize,
    /// Validate and check for duplicates only; nothing is written.
    pub validate_only: bool,
    /// Write every row's result as CSV to this file.
    pub results_path: Option<PathBuf>,
    /// Draw a progress bar on stderr (only ever when stderr is a terminal).
    pub show_progress: bool,
}

impl ImportOptions {
    /// Defaults: import id from the file's SHA-256, 500 rows a message, no results file, no
    /// progress bar.
    pub fn new(
        file: impl Into<PathBuf>,
        addr: impl Into<String>,
        token: impl Into<String>,
    ) -> Self {
        Self {
            file: file.into(),
            addr: addr.into(),
            token: SecretString::from(token.into()),
            token_source: "the import options".to_owned(),
            import_id: None,
            batch_size: DEFAULT_BATCH_SIZE,
            validate_only: false,
            results_path: None,
            show_progress: false,
        }
    }
}

/// Why an import could not be done (the exit code 2 cases). Never holds personal data or the
/// token.
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    #[error(transparent)]
    Usage(#[from] ConfigError),
    #[error("cannot read {path}")]
    ReadFile {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: {source}")]
    Format {
        path: String,
        #[source]
        source: FormatError,
    },
    #[error(
        "no token: set CREDIT_TOKEN, pass --token-file, or start the suite once so that it writes {default_path}"
    )]
    MissingToken { default_path: String },
    #[error("cannot read the token file {path}")]
    TokenFile {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot connect to {addr}")]
    Connect {
        addr: String,
        #[source]
        source: tonic::transport::Error,
    },
    #[error("{addr} refused the token from {token_source}: {code}: {message}")]
    Auth {
        addr: String,
        token_source: String,
        code: &'static str,
        message: String,
    },
    #[error(
        "ImportCustomers call {call} of {calls} (import id {import_id}) failed: {code}: {message}{hint}"
    )]
    Call {
        call: usize,
        calls: usize,
        import_id: String,
        code: &'static str,
        message: String,
        /// What to do: raise the server's deadline, run again when earlier calls went through.
        hint: String,
    },
    #[error("cannot start the async runtime")]
    Runtime(#[source] std::io::Error),
    #[error("cannot write the results to {path}")]
    WriteResults {
        path: String,
        #[source]
        source: csv::Error,
    },
}

/// Reads, maps and sends `options.file`, and returns every row's result. Rows the client cannot
/// map are not sent and come back INVALID; the others are streamed in calls of at most
/// [`MAX_ROWS_PER_CALL`] rows. Writes `options.results_path` when set. Errors are whole-import
/// failures (file, token, connection, a refused or failed call); row problems are in the
/// report.
pub async fn run_import(options: &ImportOptions) -> Result<ImportReport, ImportError> {
    if !(1..=MAX_BATCH_SIZE).contains(&options.batch_size) {
        return Err(
            ConfigError::new("--batch-size", format!("must be 1..={MAX_BATCH_SIZE}")).into(),
        );
    }
    if let Some(import_id) = &options.import_id {
        check_import_id(import_id)?;
    }
    let path = options.file.display().to_string();
    let bytes = tokio::fs::read(&options.file)
        .await
        .map_err(|source| ImportError::ReadFile {
            path: path.clone(),
            source,
        })?;
    let import_id = options
        .import_id
        .clone()
        .unwrap_or_else(|| derive_import_id(&bytes));
    let parsed = parse_csv(&bytes).map_err(|source| ImportError::Format {
        path: path.clone(),
        source,
    })?;
    drop(bytes);

    let calls = plan_calls(
        &import_id,
        options.validate_only,
        &parsed.rows,
        options.batch_size,
    );
    let call_import_ids: Vec<String> = calls.iter().map(|call| call.import_id.clone()).collect();
    let server_results = if calls.is_empty() {
        Vec::new()
    } else {
        send_calls(options, calls).await?
    };
    let report = build_report(
        &import_id,
        call_import_ids,
        options.validate_only,
        &parsed.rows,
        server_results,
    );
    if let Some(results_path) = &options.results_path {
        write_results_file(&report, results_path)?;
    }
    Ok(report)
}

fn write_results_file(report: &ImportReport, path: &Path) -> Result<(), ImportError> {
    let to_error = |source: csv::Error| ImportError::WriteResults {
        path: path.display().to_string(),
        source,
    };
    let file = std::fs::File::create(path).map_err(|error| to_error(csv::Error::from(error)))?;
    report
        .write_results_csv(std::io::BufWriter::new(file))
        .map_err(to_error)
}

async fn send_calls(
    options: &ImportOptions,
    calls: Vec<PlannedCall>,
) -> Result<Vec<ImportCustomerRowResult>, ImportError> {
    let authorization: MetadataValue<Ascii> = format!("Bearer {}", options.token.expose_secret())
        .parse()
        .map_err(|_| {
            ConfigError::new(
                options.token_source.clone(),
                "the token holds characters that cannot be sent in a header",
            )
        })?;
    let client = connect(&options.addr).await?;
    let total_rows: usize = calls.iter().map(PlannedCall::row_count).sum();
    let progress = progress_bar(options.show_progress, total_rows as u64);
    let call_count = calls.len();
    let mut results = Vec::with_capacity(total_rows);
    for (index, call) in calls.into_iter().enumerate() {
        let import_id = call.import_id.clone();
        match send_call(client.clone(), &authorization, call, &progress).await {
            Ok(response) => results.extend(response.results),
            Err(status) => {
                progress.finish_and_clear();
                return Err(call_error(
                    options,
                    &status,
                    index + 1,
                    call_count,
                    import_id,
                ));
            }
        }
    }
    progress.finish_and_clear();
    Ok(results)
}

async fn connect(addr: &str) -> Result<IntakeServiceClient<Channel>, ImportError> {
    let endpoint = Endpoint::from_shared(addr.to_owned())
        .map_err(|_| ConfigError::new("--addr (CREDIT_ADDR)", format!("'{addr}' is not a URL")))?
        .connect_timeout(CONNECT_TIMEOUT)
        .tcp_nodelay(true);
    let channel = endpoint
        .connect()
        .await
        .map_err(|source| ImportError::Connect {
            addr: addr.to_owned(),
            source,
        })?;
    Ok(IntakeServiceClient::new(channel).max_decoding_message_size(MAX_RESPONSE_BYTES))
}

async fn send_call(
    mut client: IntakeServiceClient<Channel>,
    authorization: &MetadataValue<Ascii>,
    call: PlannedCall,
    progress: &ProgressBar,
) -> Result<ImportCustomersResponse, Status> {
    let bar = progress.clone();
    let last_message = call.messages.len();
    // Counted as each message is handed to the transport: "rows sent".
    let stream =
        tokio_stream::iter(call.messages.into_iter().enumerate()).map(move |(index, message)| {
            bar.inc(message.rows.len() as u64);
            if index + 1 == last_message {
                bar.set_message("waiting for the results");
            }
            message
        });
    let mut request = tonic::Request::new(stream);
    request
        .metadata_mut()
        .insert("authorization", authorization.clone());
    let response = client.import_customers(request).await?.into_inner();
    progress.set_message("");
    Ok(response)
}

fn call_error(
    options: &ImportOptions,
    status: &Status,
    call: usize,
    calls: usize,
    import_id: String,
) -> ImportError {
    let code = code_name(status.code());
    let message = status.message().to_owned();
    match status.code() {
        Code::Unauthenticated | Code::PermissionDenied => ImportError::Auth {
            addr: options.addr.clone(),
            token_source: options.token_source.clone(),
            code,
            message: if status.code() == Code::PermissionDenied {
                format!("{message} (ImportCustomers needs the ANALYST or ADMIN role)")
            } else {
                message
            },
        },
        _ => ImportError::Call {
            call,
            calls,
            import_id,
            code,
            message,
            hint: call_hint(status.code(), call),
        },
    }
}

fn call_hint(code: Code, call: usize) -> String {
    let mut hint = String::new();
    if matches!(code, Code::Cancelled | Code::DeadlineExceeded) {
        hint.push_str(
            "; the server's per-call deadline (CREDIT_REQUEST_TIMEOUT_MS) may be too short for \
             this many rows",
        );
    }
    if call > 1 {
        hint.push_str(&format!("; calls 1..{} went through", call - 1));
    }
    if !hint.is_empty() {
        hint.push_str(
            "; rows stored so far are not created twice when the same command runs again",
        );
    }
    hint
}

/// The canonical name of a gRPC code, as grpcurl and the contract write it.
pub(crate) fn code_name(code: Code) -> &'static str {
    match code {
        Code::Ok => "OK",
        Code::Cancelled => "CANCELLED",
        Code::Unknown => "UNKNOWN",
        Code::InvalidArgument => "INVALID_ARGUMENT",
        Code::DeadlineExceeded => "DEADLINE_EXCEEDED",
        Code::NotFound => "NOT_FOUND",
        Code::AlreadyExists => "ALREADY_EXISTS",
        Code::PermissionDenied => "PERMISSION_DENIED",
        Code::ResourceExhausted => "RESOURCE_EXHAUSTED",
        Code::FailedPrecondition => "FAILED_PRECONDITION",
        Code::Aborted => "ABORTED",
        Code::OutOfRange => "OUT_OF_RANGE",
        Code::Unimplemented => "UNIMPLEMENTED",
        Code::Internal => "INTERNAL",
        Code::Unavailable => "UNAVAILABLE",
        Code::DataLoss => "DATA_LOSS",
        Code::Unauthenticated => "UNAUTHENTICATED",
    }
}

fn progress_bar(wanted: bool, total_rows: u64) -> ProgressBar {
    if !wanted || !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::with_draw_target(Some(total_rows), ProgressDrawTarget::stderr());
    if let Ok(style) =
        ProgressStyle::with_template("importing [{bar:40}] {pos}/{len} rows sent ({elapsed}) {msg}")
    {
        bar.set_style(style.progress_chars("=> "));
    }
    bar
}

// ---------------------------------------------------------------------------------------------
// The command line
// ---------------------------------------------------------------------------------------------

/// `credit-suite import FILE`: the arguments, as parsed by clap.
#[derive(Debug, Clone, clap::Args)]
pub struct ImportArgs {
    /// The CSV file: a header row naming the columns, then one customer a row (docs/import.md).
    pub file: PathBuf,
    /// Address of the suite [default: http:// + CREDIT_LISTEN_ADDR, 127.0.0.1:50051].
    #[arg(long, env = "CREDIT_ADDR")]
    pub addr: Option<String>,
    /// File holding the bearer token (ANALYST or ADMIN), when CREDIT_TOKEN is not set
    /// [default: CREDIT_DATA_DIR/admin.token].
    #[arg(long)]
    pub token_file: Option<PathBuf>,
    /// Identifies the import across retries [default: the SHA-256 of the file]. Reuse it to
    /// re-send an edited file without creating its earlier rows again.
    #[arg(long)]
    pub import_id: Option<String>,
    /// Rows per stream message (1..=5000).
    #[arg(long, default_value_t = DEFAULT_BATCH_SIZE as u64,
          value_parser = clap::value_parser!(u64).range(1..=MAX_BATCH_SIZE as u64))]
    pub batch_size: u64,
    /// Validate and check for duplicates only; nothing is written.
    #[arg(long)]
    pub validate_only: bool,
    /// Write every row's result (row_number,outcome,customer_id,problems) as CSV to this file.
    #[arg(long, value_name = "PATH")]
    pub results: Option<PathBuf>,
}

impl ImportArgs {
    /// Resolves the defaults: the suite and the token as [`resolve_target`] finds them.
    pub fn into_options(self, config_file: Option<&Path>) -> Result<ImportOptions, ImportError> {
        let target = resolve_target(
            self.addr.as_deref(),
            self.token_file.as_deref(),
            config_file,
        )?;
        let batch_size = usize::try_from(self.batch_size).map_err(|_| {
            ConfigError::new("--batch-size", format!("must be 1..={MAX_BATCH_SIZE}"))
        })?;
        Ok(ImportOptions {
            file: self.file,
            addr: target.addr,
            token: target.token,
            token_source: target.token_source,
            import_id: self.import_id,
            batch_size,
            validate_only: self.validate_only,
            results_path: self.results,
            show_progress: true,
        })
    }
}

/// Where a client command (`import`, `reconcile`) finds the suite, and the token it shows.
#[derive(Debug, Clone)]
pub struct SuiteTarget {
    /// `http://host:port`.
    pub addr: String,
    pub token: SecretString,
    /// Where the token came from, for error messages; never the token itself.
    pub token_source: String,
}

/// The address from `addr` (`--addr`/`CREDIT_ADDR`), else from the suite's settings
/// (`CREDIT_LISTEN_ADDR`, `--config`); the token from `CREDIT_TOKEN`, else `token_file`
/// (`--token-file`), else `CREDIT_DATA_DIR/admin.token`. Server settings a client does not use
/// never stop it: when they do not load, the two it needs are read from the environment.
pub fn resolve_target(
    addr: Option<&str>,
    token_file: Option<&Path>,
    config_file: Option<&Path>,
) -> Result<SuiteTarget, ImportError> {
    let lookup = |name: &str| {
        std::env::var(name)
            .ok()
            .filter(|value| !value.trim().is_empty())
    };
    let addr = addr.map(str::trim).filter(|addr| !addr.is_empty());
    let needs_settings =
        addr.is_none() || (lookup("CREDIT_TOKEN").is_none() && token_file.is_none());
    let settings = if needs_settings {
        ClientSettings::load(config_file, &lookup)?
    } else {
        ClientSettings::default()
    };
    let addr = match addr {
        Some(addr) => normalize_addr(addr)?,
        None => addr_for_listen_addr(settings.listen_addr),
    };
    let (token, token_source) =
        resolve_token(lookup("CREDIT_TOKEN"), token_file, &settings.data_dir)?;
    Ok(SuiteTarget {
        addr,
        token,
        token_source,
    })
}

/// The two server settings a client needs.
#[derive(Debug, Clone)]
struct ClientSettings {
    listen_addr: SocketAddr,
    data_dir: PathBuf,
}

impl Default for ClientSettings {
    fn default() -> Self {
        Self {
            listen_addr: SocketAddr::from(([127, 0, 0, 1], 50051)),
            data_dir: PathBuf::from(DEFAULT_DATA_DIR),
        }
    }
}

impl ClientSettings {
    fn load(
        config_file: Option<&Path>,
        lookup: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Self, ConfigError> {
        let env_data_dir = || {
            PathBuf::from(lookup("CREDIT_DATA_DIR").unwrap_or_else(|| DEFAULT_DATA_DIR.to_owned()))
        };
        match Settings::load(config_file) {
            Ok(settings) => Ok(Self {
                listen_addr: settings.listen_addr,
                data_dir: match settings.backend {
                    Backend::Embedded { data_dir } => data_dir,
                    Backend::Production { .. } => env_data_dir(),
                },
            }),
            Err(_) => {
                let text =
                    lookup("CREDIT_LISTEN_ADDR").unwrap_or_else(|| DEFAULT_LISTEN_ADDR.to_owned());
                let listen_addr = text.trim().parse().map_err(|_| {
                    ConfigError::new(
                        "CREDIT_LISTEN_ADDR",
                        format!(
                            "'{text}' is not an address such as 127.0.0.1:50051; or pass --addr"
                        ),
                    )
                })?;
                Ok(Self {
                    listen_addr,
                    data_dir: env_data_dir(),
                })
            }
        }
    }
}

/// `http://` + the listen address; a server listening on every interface (0.0.0.0, ::) is
/// called on loopback.
pub fn addr_for_listen_addr(listen_addr: SocketAddr) -> String {
    let mut target = listen_addr;
    if target.ip().is_unspecified() {
        target.set_ip(match target {
            SocketAddr::V4(_) => std::net::Ipv4Addr::LOCALHOST.into(),
            SocketAddr::V6(_) => std::net::Ipv6Addr::LOCALHOST.into(),
        });
    }
    format!("http://{target}")
}

/// `host:port` gets `http://`; an `https://` address is refused (this build has no TLS).
fn normalize_addr(addr: &str) -> Result<String, ConfigError> {
    let setting = "--addr (CREDIT_ADDR)";
    let with_scheme = if addr.contains("://") {
        addr.to_owned()
    } else {
        format!("http://{addr}")
    };
    if !with_scheme.starts_with("http://") {
        return Err(ConfigError::new(
            setting,
            format!("'{addr}' must be an http:// address such as http://127.0.0.1:50051"),
        ));
    }
    if Endpoint::from_shared(with_scheme.clone()).is_err() {
        return Err(ConfigError::new(setting, format!("'{addr}' is not a URL")));
    }
    Ok(with_scheme)
}

fn resolve_token(
    from_env: Option<String>,
    token_file: Option<&Path>,
    data_dir: &Path,
) -> Result<(SecretString, String), ImportError> {
    if let Some(token) = from_env {
        return Ok((
            SecretString::from(token.trim().to_owned()),
            "CREDIT_TOKEN".to_owned(),
        ));
    }
    let default_path = data_dir.join(ADMIN_TOKEN_FILE);
    let path = match token_file {
        Some(path) => path.to_path_buf(),
        None if default_path.is_file() => default_path,
        None => {
            return Err(ImportError::MissingToken {
                default_path: default_path.display().to_string(),
            });
        }
    };
    let text = std::fs::read_to_string(&path).map_err(|source| ImportError::TokenFile {
        path: path.display().to_string(),
        source,
    })?;
    let token = text.trim();
    if token.is_empty() {
        return Err(ImportError::TokenFile {
            path: path.display().to_string(),
            source: std::io::Error::new(std::io::ErrorKind::InvalidData, "the file is empty"),
        });
    }
    Ok((
        SecretString::from(token.to_owned()),
        path.display().to_string(),
    ))
}

/// Runs `credit-suite import`: prints the summary on stdout and returns exit code 0 (every row
/// created, already imported or a duplicate), 1 (some rows invalid or failed) or 2 (nothing
/// could be imported: usage, file, token, connection or call error, printed as one line
/// `credit-suite: error: ...` on stderr).
pub fn run_command(args: ImportArgs, config_file: Option<&Path>) -> ExitCode {
    let outcome = args.into_options(config_file).and_then(|options| {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(ImportError::Runtime)?;
        runtime.block_on(run_import(&options))
    });
    match outcome {
        Ok(report) => {
            print!("{}", report.render_summary());
            ExitCode::from(report.exit_code())
        }
        Err(error) => {
            eprintln!("credit-suite: error: {}", ErrorChain(&error));
            ExitCode::from(2)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use credit_proto::v1::{FieldViolation, Reason};

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
        let result =
            |row_number: i64, outcome: ImportRowOutcome, id: &str| ImportCustomerRowResult {
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
            addr_for_listen_addr("0.0.0.0:6000".parse().unwrap()),
            "http://127.0.0.1:6000"
        );
        assert_eq!(
            addr_for_listen_addr("[::]:50051".parse().unwrap()),
            "http://[::1]:50051"
        );
        assert_eq!(
            addr_for_listen_addr(DEFAULT_LISTEN_ADDR.parse().unwrap()),
            "http://127.0.0.1:50051"
        );
        assert_eq!(
            normalize_addr("intake:50051").unwrap(),
            "http://intake:50051"
        );
        assert!(normalize_addr("https://intake:443").is_err());
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
}
