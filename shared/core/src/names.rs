//! The one rule for the lower_snake_case codes services exchange: data point codes (intake
//! defines them, scorecards name them, the CSV import reads them from column names) and
//! document types (intake records them, the credit policy's freshness rules name them).

/// Whether `text` is a lower_snake_case code of at most `max_len` bytes: lower-case letters,
/// digits and single underscores between words, starting with a letter.
pub fn is_snake_code(text: &str, max_len: usize) -> bool {
    !text.is_empty()
        && text.len() <= max_len
        && text.starts_with(|first: char| first.is_ascii_lowercase())
        && text
            .bytes()
            .all(|byte| byte.is_ascii_lowercase() || byte.is_ascii_digit() || byte == b'_')
        && !text.ends_with('_')
        && !text.contains("__")
}

#[cfg(test)]
mod tests {
    use super::is_snake_code;

    #[test]
    fn codes_are_lower_snake_case_within_their_length() {
        for good in ["housing", "credit_amount", "site_visit_2"] {
            assert!(is_snake_code(good, 64), "{good}");
        }
        for bad in [
            "",
            "Housing",
            "2nd_visit",
            "credit__amount",
            "amount_",
            "credit.amount",
        ] {
            assert!(!is_snake_code(bad, 64), "{bad}");
        }
        assert!(!is_snake_code("abc", 2));
    }
}
