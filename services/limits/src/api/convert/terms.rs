//! Credit terms on the wire: the effective terms shown as `CreditTerms`, and SetCreditTerms'
//! masked fields read into the edits the use case applies.

use credit_core::{Money, Violations};
use credit_proto::v1 as pb;

use crate::domain::terms::{EffectiveTerms, TermsEdit, TermsSource};

use super::{parse_payment_terms, payment_terms_to_proto, to_timestamp};

fn terms_source_to_proto(source: TermsSource) -> pb::CreditTermsSource {
    match source {
        TermsSource::Customer => pb::CreditTermsSource::Customer,
        TermsSource::GradePolicy => pb::CreditTermsSource::GradePolicy,
        TermsSource::DefaultPolicy => pb::CreditTermsSource::DefaultPolicy,
    }
}

pub fn terms_to_proto(terms: &EffectiveTerms) -> pb::CreditTerms {
    pb::CreditTerms {
        customer_id: terms.customer_id.clone(),
        payment_terms: Some(payment_terms_to_proto(&terms.payment_terms)),
        order_amount_cap: terms.order_amount_cap.map(Into::into),
        payment_terms_source: terms_source_to_proto(terms.payment_terms_source) as i32,
        order_amount_cap_source: terms_source_to_proto(terms.order_amount_cap_source) as i32,
        grade: terms.grade.clone().unwrap_or_default(),
        audit: terms
            .last_change
            .as_ref()
            .map(|(person, at)| pb::AuditInfo {
                updated_at: Some(to_timestamp(*at)),
                updated_by: Some(pb::Actor::from(person)),
                ..Default::default()
            }),
    }
}

/// SetCreditTerms read: the masked fields as edits, in mask order, and every problem of the
/// request in `violations` (refused by the use case once it has read the stored terms).
pub fn parse_terms_edits(
    request: &pb::SetCreditTermsRequest,
    violations: &mut Violations,
) -> Vec<TermsEdit> {
    if request.reason.trim().is_empty() {
        violations.add("reason", "is required: say why the terms change");
    }
    let paths = request
        .update_mask
        .as_ref()
        .map(|mask| mask.paths.as_slice())
        .unwrap_or_default();
    if paths.is_empty() {
        violations.add(
            "update_mask",
            "names no field; name payment_terms and/or order_amount_cap",
        );
    }
    let default = pb::CreditTerms::default();
    let wire = request.terms.as_ref().unwrap_or(&default);
    let mut edits = Vec::with_capacity(paths.len());
    for path in paths {
        match path.as_str() {
            // A masked field left unset reverts to the policy default.
            "payment_terms" => edits.push(TermsEdit::PaymentTerms(
                wire.payment_terms.as_ref().and_then(|terms| {
                    parse_payment_terms(terms, "terms.payment_terms", violations)
                }),
            )),
            "order_amount_cap" => edits.push(TermsEdit::OrderAmountCap(
                wire.order_amount_cap.as_ref().and_then(|cap| {
                    violations.check(
                        "terms.order_amount_cap",
                        Money::try_from(cap).and_then(Money::positive),
                    )
                }),
            )),
            other => violations.add(
                "update_mask",
                format!("{other:?} is not a terms field; fields: payment_terms, order_amount_cap"),
            ),
        }
    }
    edits
}
