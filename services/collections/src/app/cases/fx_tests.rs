use super::*;
use rust_decimal_macros::dec;

fn code(text: &str) -> Currency {
    Currency::parse(text).unwrap()
}

#[test]
fn amounts_are_ranked_in_the_reporting_currency_by_direct_or_inverse_rates() {
    let table = [
        (code("USD"), code("CNY"), dec!(7.10)),
        (code("CNY"), code("EUR"), dec!(0.125)),
        (code("CNY"), code("USD"), dec!(0.14)),
    ];
    let rates = rates_into_target(&table, code("CNY"));
    // The direct USD->CNY rate wins over the inverse of CNY->USD.
    assert_eq!(rates[&code("USD")], dec!(7.10));
    assert_eq!(rates[&code("EUR")], dec!(8));
    assert_eq!(rates[&code("CNY")], dec!(1));
    let amounts = BTreeMap::from([
        (code("CNY"), dec!(1000.00)),
        (code("USD"), dec!(100.00)),
        (code("EUR"), dec!(10.005)),
        (code("JPY"), dec!(5000)),
    ]);
    // 1000 + 710 + 80.04 = 1790.04; JPY has no rate and is left out.
    assert_eq!(
        in_reporting_currency(&amounts, &rates, "cus_1"),
        dec!(1790.04)
    );
}
