//! Five-level classification (五级分类) of receivables by days past due, and provisions
//! (`GetProvisions`), either by class provision rate or as expected credit loss.
//!
//! Provisions are computed and rounded per invoice (by [`round_money`]), then summed: class
//! totals, customer totals and the grand total are sums of the same rounded lines, so they
//! reconcile to the cent whichever way a user adds them up.

use std::collections::BTreeMap;

use chrono::NaiveDate;
use credit_core::{Currency, FieldViolation};
use rust_decimal::Decimal;

use super::AmountOverflow;
use super::aging::checked_sum;
use super::fraction::Fraction;
use super::receivable::{CustomerId, InvoiceHistory, InvoiceId};
use super::rounding::round_money;

/// Five-level classification (`AssetClassification`), from best to worst.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum AssetClassification {
    /// 正常
    Normal,
    /// 关注
    SpecialMention,
    /// 次级
    Substandard,
    /// 可疑
    Doubtful,
    /// 损失
    Loss,
}

impl AssetClassification {
    /// The five classes in order, best first.
    pub const ALL: [AssetClassification; 5] = [
        AssetClassification::Normal,
        AssetClassification::SpecialMention,
        AssetClassification::Substandard,
        AssetClassification::Doubtful,
        AssetClassification::Loss,
    ];

    fn index(self) -> usize {
        self as usize
    }

    /// Upper-snake name as in the contract ("SPECIAL_MENTION").
    pub fn name(self) -> &'static str {
        match self {
            Self::Normal => "NORMAL",
            Self::SpecialMention => "SPECIAL_MENTION",
            Self::Substandard => "SUBSTANDARD",
            Self::Doubtful => "DOUBTFUL",
            Self::Loss => "LOSS",
        }
    }
}

/// One class's threshold and provision rate (`ClassificationRule`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClassificationRule {
    pub classification: AssetClassification,
    /// Lowest days past due of the class (inclusive); the class ends where the next begins.
    pub min_days_past_due: u32,
    /// Provision rate in percent ("25" = 25 %).
    pub provision_rate_percent: Decimal,
}

/// A checked set of five rules: one per class in class order, the first from 0 days,
/// thresholds strictly increasing, rates from 0 to 100 % and never lower for a worse class.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClassificationPolicy {
    rules: [ClassificationRule; 5],
}

impl Default for ClassificationPolicy {
    /// NORMAL 0 days (1 %), SPECIAL_MENTION 1–90 (2 %), SUBSTANDARD 91–180 (25 %),
    /// DOUBTFUL 181–360 (50 %), LOSS over 360 (100 %).
    fn default() -> Self {
        let rule = |classification, min_days_past_due, percent: i64| ClassificationRule {
            classification,
            min_days_past_due,
            provision_rate_percent: Decimal::from(percent),
        };
        Self {
            rules: [
                rule(AssetClassification::Normal, 0, 1),
                rule(AssetClassification::SpecialMention, 1, 2),
                rule(AssetClassification::Substandard, 91, 25),
                rule(AssetClassification::Doubtful, 181, 50),
                rule(AssetClassification::Loss, 361, 100),
            ],
        }
    }
}

impl ClassificationPolicy {
    /// Parses the setting form, the five classes NORMAL to LOSS as `min days:rate %`, for
    /// example the default `0:1,1:2,91:25,181:50,361:100`; the problem in one line otherwise.
    pub fn parse_setting(text: &str) -> Result<Self, String> {
        let mut rules = Vec::new();
        for (index, part) in text.split(',').map(str::trim).enumerate() {
            let classification = AssetClassification::ALL
                .get(index)
                .copied()
                .ok_or_else(|| "lists more than the five classes NORMAL to LOSS".to_owned())?;
            let (days, rate) = part.split_once(':').ok_or_else(|| {
                format!(
                    "'{part}' is not 'min days:rate %' (class {})",
                    classification.name()
                )
            })?;
            let min_days_past_due = days.trim().parse::<u32>().map_err(|_| {
                format!(
                    "'{days}' is not a number of days (class {})",
                    classification.name()
                )
            })?;
            let provision_rate_percent = rate.trim().parse::<Decimal>().map_err(|_| {
                format!(
                    "'{rate}' is not a percentage (class {})",
                    classification.name()
                )
            })?;
            rules.push(ClassificationRule {
                classification,
                min_days_past_due,
                provision_rate_percent,
            });
        }
        Self::new(&rules).map_err(|violations| {
            violations
                .iter()
                .map(|violation| format!("{}: {}", violation.field, violation.description))
                .collect::<Vec<_>>()
                .join("; ")
        })
    }

    /// Checks `rules` (field paths `rules[i].…`), reporting every problem at once.
    pub fn new(rules: &[ClassificationRule]) -> Result<Self, Vec<FieldViolation>> {
        let mut violations = Vec::new();
        let Ok(rules) = <[ClassificationRule; 5]>::try_from(rules) else {
            violations.push(FieldViolation::new(
                "rules",
                format!(
                    "must list the five classes NORMAL to LOSS, got {} rules",
                    rules.len()
                ),
            ));
            return Err(violations);
        };
        for (index, rule) in rules.iter().enumerate() {
            let expected = AssetClassification::ALL[index];
            if rule.classification != expected {
                violations.push(FieldViolation::new(
                    format!("rules[{index}].classification"),
                    format!("must be {} (classes in order, best first)", expected.name()),
                ));
            }
            if index == 0 && rule.min_days_past_due != 0 {
                violations.push(FieldViolation::new(
                    "rules[0].min_days_past_due",
                    "must be 0 so that every receivable has a class",
                ));
            }
            if index > 0 && rule.min_days_past_due <= rules[index - 1].min_days_past_due {
                violations.push(FieldViolation::new(
                    format!("rules[{index}].min_days_past_due"),
                    format!(
                        "must be greater than the previous class's {}",
                        rules[index - 1].min_days_past_due
                    ),
                ));
            }
            let rate = rule.provision_rate_percent;
            if rate < Decimal::ZERO || rate > Decimal::ONE_HUNDRED {
                violations.push(FieldViolation::new(
                    format!("rules[{index}].provision_rate_percent"),
                    "must be between 0 and 100",
                ));
            } else if index > 0 && rate < rules[index - 1].provision_rate_percent {
                violations.push(FieldViolation::new(
                    format!("rules[{index}].provision_rate_percent"),
                    format!(
                        "must not be lower than the previous class's {}",
                        rules[index - 1].provision_rate_percent
                    ),
                ));
            }
        }
        if !violations.is_empty() {
            return Err(violations);
        }
        Ok(Self { rules })
    }

    /// The class of a receivable `days_past_due` days past due.
    pub fn classify(&self, days_past_due: u32) -> AssetClassification {
        self.rules
            .iter()
            .rev()
            .find(|rule| days_past_due >= rule.min_days_past_due)
            .map_or(AssetClassification::Normal, |rule| rule.classification)
    }

    /// The rules in class order.
    pub fn rules(&self) -> &[ClassificationRule; 5] {
        &self.rules
    }

    /// Highest days past due of `classification` (inclusive); `None` for LOSS.
    pub fn max_days_past_due(&self, classification: AssetClassification) -> Option<u32> {
        self.rules
            .get(classification.index() + 1)
            .map(|next| next.min_days_past_due - 1)
    }

    /// The provision rate of `classification` as a fraction (25 % → 0.25).
    pub fn provision_rate(&self, classification: AssetClassification) -> Decimal {
        self.rules[classification.index()].provision_rate_percent / Decimal::ONE_HUNDRED
    }
}

/// One open receivable to provision for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExposureLine {
    pub customer_id: CustomerId,
    pub invoice_id: InvoiceId,
    pub currency: Currency,
    /// Open amount on the as-of date.
    pub open_amount: Decimal,
    pub days_past_due: u32,
}

/// The receivables open on `as_of`, one line per invoice.
pub fn exposure_lines(histories: &[InvoiceHistory], as_of: NaiveDate) -> Vec<ExposureLine> {
    histories
        .iter()
        .filter_map(|history| {
            let open_amount = history.open_amount_as_of(as_of)?;
            (open_amount > Decimal::ZERO).then(|| ExposureLine {
                customer_id: history.invoice.customer_id.clone(),
                invoice_id: history.invoice.invoice_id.clone(),
                currency: history.invoice.currency,
                open_amount,
                days_past_due: history.invoice.days_past_due(as_of),
            })
        })
        .collect()
}

/// How provisions are computed (`ProvisionMethod`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProvisionMethod {
    /// Open amount × the provision rate of the invoice's class.
    Classification,
    /// Expected credit loss: the customer's PD × `lgd` × open amount.
    ExpectedCreditLoss {
        lgd: Fraction,
        /// PD of each customer, from its rating.
        pd_by_customer: BTreeMap<CustomerId, Fraction>,
    },
}

/// Why provisions could not be computed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProvisionError {
    #[error("customer '{0}' has no PD: rate it before computing expected credit loss")]
    MissingPd(CustomerId),
    #[error(transparent)]
    TooLarge(#[from] AmountOverflow),
}

/// One invoice's provision.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProvisionLine {
    pub exposure: ExposureLine,
    pub classification: AssetClassification,
    /// The factor applied: the class rate, or PD × LGD, as a fraction (unrounded).
    pub rate: Decimal,
    /// `open_amount × rate`, rounded by [`round_money`].
    pub provision: Decimal,
}

/// Totals of one class in one currency (`ClassProvision`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ClassProvision {
    pub exposure: Decimal,
    pub provision: Decimal,
    pub invoice_count: u32,
}

/// Provisions of one currency (`ProvisionSummary`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProvisionSummary {
    pub currency: Currency,
    by_class: [ClassProvision; 5],
}

impl ProvisionSummary {
    fn new(currency: Currency) -> Self {
        Self {
            currency,
            by_class: [ClassProvision::default(); 5],
        }
    }

    pub fn class(&self, classification: AssetClassification) -> ClassProvision {
        self.by_class[classification.index()]
    }

    /// All five classes in class order.
    pub fn by_class(&self) -> impl Iterator<Item = (AssetClassification, ClassProvision)> + '_ {
        AssetClassification::ALL
            .into_iter()
            .map(|classification| (classification, self.class(classification)))
    }

    /// Checked: the classes' totals are bounded only by the portfolio.
    pub fn total_exposure(&self) -> Result<Decimal, AmountOverflow> {
        checked_sum(self.by_class.iter().map(|class| class.exposure))
    }

    pub fn total_provision(&self) -> Result<Decimal, AmountOverflow> {
        checked_sum(self.by_class.iter().map(|class| class.provision))
    }
}

/// Provision of one customer in one currency (`CustomerProvision`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CustomerProvision {
    pub customer_id: CustomerId,
    pub currency: Currency,
    /// Worst class of its open invoices.
    pub classification: AssetClassification,
    pub exposure: Decimal,
    pub provision: Decimal,
    /// PD used (expected credit loss only).
    pub pd: Option<Fraction>,
    /// LGD used (expected credit loss only).
    pub lgd: Option<Fraction>,
}

/// Provisions as of a date.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProvisionReport {
    pub lines: Vec<ProvisionLine>,
    /// Totals by class, per currency.
    pub summaries: BTreeMap<Currency, ProvisionSummary>,
    /// Per customer and currency, by provision descending, then customer id, then currency.
    pub customers: Vec<CustomerProvision>,
}

fn add(left: Decimal, right: Decimal) -> Result<Decimal, AmountOverflow> {
    left.checked_add(right).ok_or(AmountOverflow)
}

/// Provisions for `exposures` by `method`; every line is classified by `policy` whatever the
/// method, so the class columns are filled in both. Sums and products are checked (a total
/// too large is [`ProvisionError::TooLarge`], never a panic); the lint keeps them so.
#[deny(clippy::arithmetic_side_effects)]
pub fn compute_provisions(
    exposures: &[ExposureLine],
    policy: &ClassificationPolicy,
    method: &ProvisionMethod,
) -> Result<ProvisionReport, ProvisionError> {
    let mut lines = Vec::with_capacity(exposures.len());
    for exposure in exposures {
        let classification = policy.classify(exposure.days_past_due);
        let rate = match method {
            ProvisionMethod::Classification => policy.provision_rate(classification),
            ProvisionMethod::ExpectedCreditLoss {
                lgd,
                pd_by_customer,
            } => {
                let pd = pd_by_customer
                    .get(&exposure.customer_id)
                    .ok_or_else(|| ProvisionError::MissingPd(exposure.customer_id.clone()))?;
                pd.value().checked_mul(lgd.value()).ok_or(AmountOverflow)?
            }
        };
        let provision = exposure
            .open_amount
            .checked_mul(rate)
            .ok_or(AmountOverflow)?;
        lines.push(ProvisionLine {
            exposure: exposure.clone(),
            classification,
            rate,
            provision: round_money(provision),
        });
    }

    let mut summaries: BTreeMap<Currency, ProvisionSummary> = BTreeMap::new();
    let mut customers: BTreeMap<(CustomerId, Currency), CustomerProvision> = BTreeMap::new();
    for line in &lines {
        let currency = line.exposure.currency;
        let summary = summaries
            .entry(currency)
            .or_insert_with(|| ProvisionSummary::new(currency));
        let class = &mut summary.by_class[line.classification.index()];
        class.exposure = add(class.exposure, line.exposure.open_amount)?;
        class.provision = add(class.provision, line.provision)?;
        class.invoice_count = class.invoice_count.saturating_add(1);

        let (pd, lgd) = match method {
            ProvisionMethod::Classification => (None, None),
            ProvisionMethod::ExpectedCreditLoss {
                lgd,
                pd_by_customer,
            } => (
                pd_by_customer.get(&line.exposure.customer_id).copied(),
                Some(*lgd),
            ),
        };
        let customer = customers
            .entry((line.exposure.customer_id.clone(), currency))
            .or_insert_with(|| CustomerProvision {
                customer_id: line.exposure.customer_id.clone(),
                currency,
                classification: line.classification,
                exposure: Decimal::ZERO,
                provision: Decimal::ZERO,
                pd,
                lgd,
            });
        customer.classification = customer.classification.max(line.classification);
        customer.exposure = add(customer.exposure, line.exposure.open_amount)?;
        customer.provision = add(customer.provision, line.provision)?;
    }
    let mut customers: Vec<CustomerProvision> = customers.into_values().collect();
    customers.sort_by(|left, right| {
        right
            .provision
            .cmp(&left.provision)
            .then_with(|| left.customer_id.cmp(&right.customer_id))
            .then_with(|| left.currency.cmp(&right.currency))
    });
    Ok(ProvisionReport {
        lines,
        summaries,
        customers,
    })
}

#[cfg(test)]
mod setting_tests {
    use super::*;

    #[test]
    fn the_setting_form_reads_the_default_and_names_a_bad_class() {
        assert_eq!(
            ClassificationPolicy::parse_setting("0:1, 1:2, 91:25, 181:50, 361:100").unwrap(),
            ClassificationPolicy::default()
        );
        let stricter = ClassificationPolicy::parse_setting("0:1,1:5,61:30,121:60,241:100").unwrap();
        assert_eq!(stricter.classify(61), AssetClassification::Substandard);
        assert_eq!(stricter.classify(60), AssetClassification::SpecialMention);
        let error = ClassificationPolicy::parse_setting("0:1,1:2,91:25,181:x,361:100").unwrap_err();
        assert!(error.contains("DOUBTFUL"), "{error}");
        let error = ClassificationPolicy::parse_setting("0:1,1:2,91:25").unwrap_err();
        assert!(error.contains("five classes"), "{error}");
        let error =
            ClassificationPolicy::parse_setting("0:1,90:2,91:25,89:50,361:100").unwrap_err();
        assert!(error.contains("rules[3].min_days_past_due"), "{error}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::receivable::test_support::*;
    use rust_decimal_macros::dec;

    fn line(customer: &str, number: &str, open: Decimal, days: u32) -> ExposureLine {
        ExposureLine {
            customer_id: CustomerId::parse(customer).unwrap(),
            invoice_id: InvoiceId::parse(number).unwrap(),
            currency: cny(),
            open_amount: open,
            days_past_due: days,
        }
    }

    #[test]
    fn default_thresholds_classify_by_days_past_due() {
        use AssetClassification::*;
        let policy = ClassificationPolicy::default();
        let expected = [
            (0, Normal),
            (1, SpecialMention),
            (90, SpecialMention),
            (91, Substandard),
            (180, Substandard),
            (181, Doubtful),
            (360, Doubtful),
            (361, Loss),
        ];
        for (days, class) in expected {
            assert_eq!(policy.classify(days), class, "{days} days");
        }
        assert_eq!(policy.max_days_past_due(SpecialMention), Some(90));
        assert_eq!(policy.max_days_past_due(Loss), None);
        assert_eq!(policy.provision_rate(Substandard), dec!(0.25));
    }

    #[test]
    fn configured_thresholds_are_validated_with_field_paths() {
        let mut rules = *ClassificationPolicy::default().rules();
        rules[0].min_days_past_due = 5;
        rules[2].min_days_past_due = 1; // not above SPECIAL_MENTION's 1
        rules[3].provision_rate_percent = dec!(20); // below SUBSTANDARD's 25
        rules[4].provision_rate_percent = dec!(101);
        rules[1].classification = AssetClassification::Loss;
        let violations = ClassificationPolicy::new(&rules).unwrap_err();
        let fields: Vec<&str> = violations.iter().map(|v| v.field.as_str()).collect();
        assert_eq!(
            fields,
            [
                "rules[0].min_days_past_due",
                "rules[1].classification",
                "rules[1].min_days_past_due", // 1 is not above rules[0]'s 5
                "rules[2].min_days_past_due",
                "rules[3].provision_rate_percent",
                "rules[4].provision_rate_percent",
            ]
        );
        assert_eq!(
            ClassificationPolicy::new(&rules[..4]).unwrap_err()[0].field,
            "rules"
        );
        // Stricter thresholds are accepted: LOSS from 181 days.
        let mut stricter = *ClassificationPolicy::default().rules();
        stricter[4].min_days_past_due = 181;
        stricter[3].min_days_past_due = 121;
        let policy = ClassificationPolicy::new(&stricter).unwrap();
        assert_eq!(policy.classify(181), AssetClassification::Loss);
        assert_eq!(policy.classify(121), AssetClassification::Doubtful);
    }

    #[test]
    fn classification_provisions_match_the_hand_computed_figures() {
        let exposures = [
            line("c1", "A", dec!(10000.00), 0),  // NORMAL 1 %: 100.00
            line("c1", "B", dec!(2500.50), 45),  // SPECIAL_MENTION 2 %: 50.01
            line("c2", "C", dec!(333.33), 100),  // SUBSTANDARD 25 %: 83.3325 → 83.33
            line("c2", "D", dec!(1234.57), 200), // DOUBTFUL 50 %: 617.285 → 617.28 (half-even)
            line("c3", "E", dec!(99.99), 400),   // LOSS 100 %: 99.99
            line("c3", "F", dec!(0.50), 1),      // SPECIAL_MENTION 2 %: 0.01
        ];
        let report = compute_provisions(
            &exposures,
            &ClassificationPolicy::default(),
            &ProvisionMethod::Classification,
        )
        .unwrap();
        let provisions: Vec<Decimal> = report.lines.iter().map(|line| line.provision).collect();
        assert_eq!(
            provisions,
            [
                dec!(100.00),
                dec!(50.01),
                dec!(83.33),
                dec!(617.28),
                dec!(99.99),
                dec!(0.01)
            ]
        );
        let summary = &report.summaries[&cny()];
        // SPECIAL_MENTION: 2500.50 + 0.50 = 2501.00 exposure, 50.01 + 0.01 = 50.02 provision.
        assert_eq!(
            summary.class(AssetClassification::SpecialMention),
            ClassProvision {
                exposure: dec!(2501.00),
                provision: dec!(50.02),
                invoice_count: 2
            }
        );
        // 10000 + 2500.50 + 333.33 + 1234.57 + 99.99 + 0.50 = 14168.89.
        assert_eq!(summary.total_exposure().unwrap(), dec!(14168.89));
        // 100.00 + 50.01 + 83.33 + 617.28 + 99.99 + 0.01 = 950.62.
        assert_eq!(summary.total_provision().unwrap(), dec!(950.62));
        // By customer, largest provision first: c2 700.61, c1 150.01, c3 100.00.
        let by_customer: Vec<(&str, AssetClassification, Decimal)> = report
            .customers
            .iter()
            .map(|c| (c.customer_id.as_str(), c.classification, c.provision))
            .collect();
        assert_eq!(
            by_customer,
            [
                ("c2", AssetClassification::Doubtful, dec!(700.61)),
                ("c1", AssetClassification::SpecialMention, dec!(150.01)),
                ("c3", AssetClassification::Loss, dec!(100.00)),
            ]
        );
    }

    #[test]
    fn expected_credit_loss_is_pd_times_lgd_times_exposure() {
        let exposures = [
            line("c1", "A", dec!(10000.00), 0),
            line("c2", "B", dec!(2000.00), 100),
        ];
        let method = ProvisionMethod::ExpectedCreditLoss {
            lgd: Fraction::parse(dec!(0.45)).unwrap(),
            pd_by_customer: BTreeMap::from([
                (
                    CustomerId::parse("c1").unwrap(),
                    Fraction::parse(dec!(0.02)).unwrap(),
                ),
                (
                    CustomerId::parse("c2").unwrap(),
                    Fraction::parse(dec!(0.153)).unwrap(),
                ),
            ]),
        };
        let report =
            compute_provisions(&exposures, &ClassificationPolicy::default(), &method).unwrap();
        // c1: 10000 × 0.02 × 0.45 = 90.00; c2: 2000 × 0.153 × 0.45 = 137.70.
        assert_eq!(report.lines[0].provision, dec!(90.00));
        assert_eq!(report.lines[1].provision, dec!(137.70));
        assert_eq!(report.customers[0].customer_id.as_str(), "c2");
        assert_eq!(report.customers[0].pd.unwrap().value(), dec!(0.153));
        assert_eq!(
            report.summaries[&cny()].total_provision().unwrap(),
            dec!(227.70)
        );
        // The class columns are still filled: B is SUBSTANDARD at 100 days.
        assert_eq!(
            report.summaries[&cny()]
                .class(AssetClassification::Substandard)
                .provision,
            dec!(137.70)
        );

        let missing = ProvisionMethod::ExpectedCreditLoss {
            lgd: Fraction::parse(dec!(0.45)).unwrap(),
            pd_by_customer: BTreeMap::new(),
        };
        assert_eq!(
            compute_provisions(&exposures, &ClassificationPolicy::default(), &missing),
            Err(ProvisionError::MissingPd(CustomerId::parse("c1").unwrap()))
        );
    }

    #[test]
    fn exposure_lines_come_from_histories_as_of_the_date() {
        use crate::domain::receivable::MovementKind::Payment;
        let histories = [InvoiceHistory::new(
            invoice("c1", "A", dec!(500.00), "2026-01-01", "2026-01-31"),
            vec![movement(Payment, dec!(200.00), "2026-02-15")],
        )];
        // On 2026-05-01: 300 open, 28 + 31 + 30 + 1 = 90 days → SPECIAL_MENTION.
        let lines = exposure_lines(&histories, date("2026-05-01"));
        assert_eq!(lines.len(), 1);
        assert_eq!(lines[0].open_amount, dec!(300.00));
        assert_eq!(lines[0].days_past_due, 90);
    }
}
