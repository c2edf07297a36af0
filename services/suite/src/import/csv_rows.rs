//! Reading the CSV file: its header (column names in any order, unknown columns refused),
//! each row's cells mapped to a `credit.v1.Customer`, and every problem with its row and column.

use std::fmt;

use credit_proto::v1::{
    Contact, Customer, CustomerKind, DataPointEntry, DataPointValue, Date, EnterpriseDetails,
    IndividualDetails, Money, PostalAddress, customer, data_point_value,
};

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

    pub(super) fn index(self) -> usize {
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
    /// `dp.<code>` columns: where each is, and the data point's code.
    data_points: Vec<(usize, String)>,
    width: usize,
}

/// The prefix of a column holding a data point's value (`dp.housing`).
pub const DATA_POINT_PREFIX: &str = "dp.";

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
        let mut data_points: Vec<(usize, String)> = Vec::new();
        for (position, name) in names.iter().enumerate() {
            if let Some(code) = name.strip_prefix(DATA_POINT_PREFIX) {
                if !is_data_point_code(code) {
                    return Err(FormatError::new(format!(
                        "column {} of the header, {}, is not a data point column: write \
                         dp.<code> with the data point's lower_snake_case code",
                        position + 1,
                        quoted_header_name(name)
                    )));
                }
                if data_points.iter().any(|(_, seen)| seen == code) {
                    return Err(FormatError::new(format!(
                        "the header names column `{name}` twice"
                    )));
                }
                data_points.push((position, code.to_owned()));
                continue;
            }
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
            data_points,
            width: names.len(),
        })
    }

    /// The codes of the data point columns, in header order.
    pub fn data_point_codes(&self) -> impl Iterator<Item = &str> {
        self.data_points.iter().map(|(_, code)| code.as_str())
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

/// What the server accepts as a data point code: lower_snake_case starting with a letter.
fn is_data_point_code(code: &str) -> bool {
    credit_core::names::is_snake_code(code, 64)
}

/// A header cell that is not a column name is shown only when it looks like a name (letters,
/// digits, `_`, `-` and blanks), so a stray data line never prints a phone or an e-mail.
fn quoted_header_name(name: &str) -> String {
    let looks_like_a_name = !name.is_empty()
        && name.chars().count() <= 40
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | ' ' | '.'));
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
    /// The row's non-empty `dp.<code>` cells, sent as text for the server to read by each
    /// data point's type.
    pub data_points: Vec<DataPointEntry>,
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
        let cells = decode_cells(&header, &record);
        let data_points = cells
            .as_ref()
            .map(|cells| map_data_points(&header, cells))
            .unwrap_or_default();
        let mapped = cells.and_then(|cells| map_row(&header, &cells));
        rows.push(ParsedRow {
            row_number,
            mapped,
            data_points,
        });
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

/// The row's data point cells that hold something, as text values.
pub fn map_data_points<S: AsRef<str>>(header: &Header, cells: &[S]) -> Vec<DataPointEntry> {
    header
        .data_points
        .iter()
        .filter_map(|(position, code)| {
            let cell = cells.get(*position)?.as_ref().trim();
            (!cell.is_empty()).then(|| DataPointEntry {
                code: code.clone(),
                value: Some(DataPointValue {
                    value: Some(data_point_value::Value::Text(cell.to_owned())),
                }),
            })
        })
        .collect()
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
