use super::*;

#[test]
fn shares_are_rounded_to_the_cent() {
    assert_eq!(
        share(Decimal::new(500_000, 0), 60),
        Decimal::new(300_000, 0)
    );
    assert_eq!(share(Decimal::new(33_333, 2), 45), Decimal::new(15_000, 2));
}

#[test]
fn percent_shows_a_fraction_as_a_percentage() {
    assert_eq!(percent("0.0025"), "0.25 %");
    assert_eq!(percent("0.5000"), "50 %");
    assert_eq!(percent("n/a"), "n/a");
}

#[test]
fn endpoints_get_a_scheme_and_https_is_kept() {
    assert_eq!(
        normalize_endpoint("127.0.0.1:50051").unwrap_or_default(),
        "http://127.0.0.1:50051"
    );
    assert_eq!(
        normalize_endpoint("https://suite:443").unwrap_or_default(),
        "https://suite:443"
    );
    assert!(normalize_endpoint("ftp://suite:443").is_err());
}

#[test]
fn figures_are_sorted_by_key() {
    let reason = pb::Reason {
        code: "LIMIT_EXCEEDED".into(),
        message: "over".into(),
        metadata: [
            ("limit".to_owned(), "100".to_owned()),
            ("amount".to_owned(), "5".to_owned()),
        ]
        .into_iter()
        .collect(),
    };
    assert_eq!(figures(&reason), "amount 5, limit 100");
}
