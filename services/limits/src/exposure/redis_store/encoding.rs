//! How profiles are kept in Redis hashes and how the scripts' replies read: field names,
//! the encoding of each field, and the parsing of hashes and replies back into the model.

use std::collections::HashMap;

use super::super::ExposureError;
use super::super::model::{
    AuthorizeOutcome, Cover, CustomerProfile, CustomerUpdate, Decision, GroupPosition,
    GroupProfile, Level, Limit, Outcome, ProfileStatus, ReasonCode, RuleFigures,
};

use super::Decided;

/// How long a generation outlives its last change: far longer than any rebuild takes.
pub(super) const GENERATION_TTL_SECONDS: i64 = 3_600;
const CUSTOMER_ID: &str = "customer_id";
const GROUP_ID: &str = "group_id";
const STATUS: &str = "status";
const LIMIT_AMOUNT: &str = "limit_amount";
const LIMIT_VALID_UNTIL: &str = "limit_valid_until";
const LIMIT_CURRENCY: &str = "limit_currency";
const BLOCKED: &str = "blocked";
const OLDEST_OVERDUE_DAYS: &str = "oldest_overdue_days";
const OVERDUE_TOLERANCE_DAYS: &str = "overdue_tolerance_days";
const RATING_REQUIRED: &str = "rating_required";
const RATING_VALID_UNTIL: &str = "rating_valid_until";
const ORDER_CAP: &str = "order_cap";
const SECURED: &str = "secured";
const SECURED_EXTENDS: &str = "secured_extends";
const SECURED_VALID_UNTIL: &str = "secured_valid_until";
const CONTINGENT: &str = "contingent";
const CAPACITY: &str = "capacity";
pub(super) const TOLERANCE_BPS: &str = "tolerance_bps";
pub(super) const EXPOSURE: &str = "exposure";
const EPOCH: &str = "epoch";

/// The scripts' refusals: `["ERROR", code, subject, detail]` replies (not Redis errors, to
/// which Redis appends script details).
pub(super) const REFUSED: &str = "ERROR";
const OUT_OF_RANGE: &str = "RANGE";
const CORRUPT: &str = "CORRUPT";
const CURRENCY: &str = "CURRENCY";

fn flag(value: bool) -> String {
    if value { "1" } else { "0" }.to_owned()
}

/// The limit's fields to set, or to delete when there is no limit (or no expiry).
pub(super) fn limit_fields(
    limit: Option<&Limit>,
    set: &mut Vec<(&'static str, String)>,
    delete: &mut Vec<&'static str>,
) {
    match limit {
        Some(limit) => {
            set.push((LIMIT_AMOUNT, limit.amount.to_string()));
            match limit.valid_until {
                Some(valid_until) => set.push((LIMIT_VALID_UNTIL, valid_until.to_string())),
                None => delete.push(LIMIT_VALID_UNTIL),
            }
        }
        None => delete.extend([LIMIT_AMOUNT, LIMIT_VALID_UNTIL]),
    }
}

pub(super) fn customer_fields(profile: &CustomerProfile) -> Vec<(&'static str, String)> {
    let mut fields = vec![
        (CUSTOMER_ID, profile.customer_id.clone()),
        (STATUS, profile.status.as_str().to_owned()),
        (BLOCKED, flag(profile.blocked)),
        (OLDEST_OVERDUE_DAYS, profile.oldest_overdue_days.to_string()),
        (
            OVERDUE_TOLERANCE_DAYS,
            profile.overdue_tolerance_days.to_string(),
        ),
        (RATING_REQUIRED, flag(profile.rating_required)),
        (TOLERANCE_BPS, profile.tolerance_bps.to_string()),
        (SECURED, profile.cover.secured.to_string()),
        (SECURED_EXTENDS, flag(profile.cover.extends_capacity)),
        (CONTINGENT, profile.cover.contingent.to_string()),
        (EXPOSURE, profile.exposure.to_string()),
        (EPOCH, profile.epoch.to_string()),
    ];
    if let Some(valid_until) = profile.cover.secured_valid_until {
        fields.push((SECURED_VALID_UNTIL, valid_until.to_string()));
    }
    if let Some(group_id) = &profile.group_id {
        fields.push((GROUP_ID, group_id.clone()));
    }
    if let Some(currency) = &profile.limit_currency {
        fields.push((LIMIT_CURRENCY, currency.clone()));
    }
    let mut not_stored = Vec::new();
    limit_fields(profile.limit.as_ref(), &mut fields, &mut not_stored);
    if let Some(valid_until) = profile.rating_valid_until {
        fields.push((RATING_VALID_UNTIL, valid_until.to_string()));
    }
    if let Some(order_cap) = profile.order_cap {
        fields.push((ORDER_CAP, order_cap.to_string()));
    }
    fields
}

pub(super) fn group_fields(profile: &GroupProfile) -> Vec<(&'static str, String)> {
    let mut fields = vec![
        (GROUP_ID, profile.group_id.clone()),
        (TOLERANCE_BPS, profile.tolerance_bps.to_string()),
        (EXPOSURE, profile.exposure.to_string()),
        (EPOCH, profile.epoch.to_string()),
    ];
    let mut not_stored = Vec::new();
    limit_fields(profile.limit.as_ref(), &mut fields, &mut not_stored);
    fields
}

/// The fields a [`CustomerUpdate`] sets and deletes; exposure and epoch are never among them.
pub(super) fn customer_update_fields(
    update: &CustomerUpdate,
) -> (Vec<(&'static str, String)>, Vec<&'static str>) {
    let mut set = Vec::new();
    let mut delete = Vec::new();
    if let Some(status) = update.status {
        set.push((STATUS, status.as_str().to_owned()));
    }
    if let Some(limit) = &update.limit {
        limit_fields(limit.as_ref(), &mut set, &mut delete);
    }
    if let Some(blocked) = update.blocked {
        set.push((BLOCKED, flag(blocked)));
    }
    if let Some(days) = update.oldest_overdue_days {
        set.push((OLDEST_OVERDUE_DAYS, days.to_string()));
    }
    if let Some(days) = update.overdue_tolerance_days {
        set.push((OVERDUE_TOLERANCE_DAYS, days.to_string()));
    }
    if let Some(required) = update.rating_required {
        set.push((RATING_REQUIRED, flag(required)));
    }
    match update.rating_valid_until {
        Some(Some(valid_until)) => set.push((RATING_VALID_UNTIL, valid_until.to_string())),
        Some(None) => delete.push(RATING_VALID_UNTIL),
        None => {}
    }
    match update.order_cap {
        Some(Some(order_cap)) => set.push((ORDER_CAP, order_cap.to_string())),
        Some(None) => delete.push(ORDER_CAP),
        None => {}
    }
    if let Some(tolerance_bps) = update.tolerance_bps {
        set.push((TOLERANCE_BPS, tolerance_bps.to_string()));
    }
    (set, delete)
}

// ---- decoding --------------------------------------------------------------------------

pub(super) fn corrupt(key: &str, detail: String) -> ExposureError {
    ExposureError::CorruptEntry {
        key: key.to_owned(),
        detail,
    }
}

pub(super) fn unexpected_reply(key: &str, reply: &[String]) -> ExposureError {
    corrupt(key, format!("unexpected script reply {reply:?}"))
}

pub(super) fn parse_number<T: std::str::FromStr>(
    key: &str,
    field: &str,
    text: &str,
) -> Result<T, ExposureError> {
    text.parse()
        .map_err(|_| corrupt(key, format!("{field} {text:?} is not a valid number")))
}

/// An optional number in a script reply: the empty string stands for "none".
pub(super) fn optional_number<T: std::str::FromStr>(
    key: &str,
    field: &str,
    text: &str,
) -> Result<Option<T>, ExposureError> {
    if text.is_empty() {
        return Ok(None);
    }
    parse_number(key, field, text).map(Some)
}

fn required<'a>(
    key: &str,
    fields: &'a HashMap<String, String>,
    field: &str,
) -> Result<&'a str, ExposureError> {
    fields
        .get(field)
        .map(String::as_str)
        .ok_or_else(|| corrupt(key, format!("{field} is missing")))
}

fn required_number<T: std::str::FromStr>(
    key: &str,
    fields: &HashMap<String, String>,
    field: &str,
) -> Result<T, ExposureError> {
    parse_number(key, field, required(key, fields, field)?)
}

fn stored_number<T: std::str::FromStr>(
    key: &str,
    fields: &HashMap<String, String>,
    field: &str,
) -> Result<Option<T>, ExposureError> {
    fields
        .get(field)
        .map(|text| parse_number(key, field, text))
        .transpose()
}

fn stored_limit(
    key: &str,
    fields: &HashMap<String, String>,
) -> Result<Option<Limit>, ExposureError> {
    let Some(amount) = stored_number(key, fields, LIMIT_AMOUNT)? else {
        return Ok(None);
    };
    Ok(Some(Limit {
        amount,
        valid_until: stored_number(key, fields, LIMIT_VALID_UNTIL)?,
    }))
}

pub(super) fn parse_customer(
    key: &str,
    fields: &HashMap<String, String>,
) -> Result<CustomerProfile, ExposureError> {
    Ok(CustomerProfile {
        customer_id: required(key, fields, CUSTOMER_ID)?.to_owned(),
        group_id: fields.get(GROUP_ID).cloned(),
        status: ProfileStatus::parse(required(key, fields, STATUS)?),
        limit: stored_limit(key, fields)?,
        limit_currency: fields.get(LIMIT_CURRENCY).cloned(),
        blocked: required(key, fields, BLOCKED)? == "1",
        oldest_overdue_days: required_number(key, fields, OLDEST_OVERDUE_DAYS)?,
        overdue_tolerance_days: required_number(key, fields, OVERDUE_TOLERANCE_DAYS)?,
        rating_required: required(key, fields, RATING_REQUIRED)? == "1",
        rating_valid_until: stored_number(key, fields, RATING_VALID_UNTIL)?,
        order_cap: stored_number(key, fields, ORDER_CAP)?,
        tolerance_bps: required_number(key, fields, TOLERANCE_BPS)?,
        cover: Cover {
            secured: stored_number(key, fields, SECURED)?.unwrap_or(0),
            extends_capacity: fields.get(SECURED_EXTENDS).is_some_and(|flag| flag == "1"),
            secured_valid_until: stored_number(key, fields, SECURED_VALID_UNTIL)?,
            contingent: stored_number(key, fields, CONTINGENT)?.unwrap_or(0),
        },
        exposure: required_number(key, fields, EXPOSURE)?,
        epoch: required_number(key, fields, EPOCH)?,
    })
}

pub(super) fn parse_group(
    key: &str,
    fields: &HashMap<String, String>,
) -> Result<GroupProfile, ExposureError> {
    Ok(GroupProfile {
        group_id: required(key, fields, GROUP_ID)?.to_owned(),
        limit: stored_limit(key, fields)?,
        tolerance_bps: required_number(key, fields, TOLERANCE_BPS)?,
        exposure: required_number(key, fields, EXPOSURE)?,
        epoch: required_number(key, fields, EPOCH)?,
    })
}

/// What the authorize script reports once per call: the epochs the reservations were made in
/// and the profile's figures the rules compared (see the script's header).
#[derive(Debug, Clone)]
pub(super) struct CallProfile {
    epoch: u64,
    group: Option<CallGroup>,
    figures: RuleFigures,
}

#[derive(Debug, Clone)]
pub(super) struct CallGroup {
    group_id: String,
    epoch: u64,
    tolerance_bps: u32,
}

/// Decodes the profile the authorize script sends before its orders' replies. It is empty
/// when the script decided no order, and then no order's reply asks for it.
pub(super) fn parse_call_profile(
    key: &str,
    reply: &[String],
) -> Result<CallProfile, ExposureError> {
    let [
        epoch,
        group_id,
        group_epoch,
        group_tolerance_bps,
        status,
        oldest_overdue_days,
        overdue_tolerance_days,
        order_cap,
        tolerance_bps,
    ] = reply
    else {
        return Err(unexpected_reply(key, reply));
    };
    let group = if group_id.is_empty() {
        None
    } else {
        Some(CallGroup {
            group_id: group_id.clone(),
            epoch: parse_number(key, EPOCH, group_epoch)?,
            tolerance_bps: parse_number(key, TOLERANCE_BPS, group_tolerance_bps)?,
        })
    };
    Ok(CallProfile {
        epoch: parse_number(key, EPOCH, epoch)?,
        group,
        figures: RuleFigures {
            status: ProfileStatus::parse(status),
            oldest_overdue_days: parse_number(key, OLDEST_OVERDUE_DAYS, oldest_overdue_days)?,
            overdue_tolerance_days: parse_number(
                key,
                OVERDUE_TOLERANCE_DAYS,
                overdue_tolerance_days,
            )?,
            order_cap: optional_number(key, ORDER_CAP, order_cap)?,
            tolerance_bps: parse_number(key, TOLERANCE_BPS, tolerance_bps)?,
        },
    })
}

/// One order's reply of the authorize script (see the script's header), with the call's
/// profile.
pub(super) fn parse_authorize_reply(
    customer_key: &str,
    profile: &Result<CallProfile, ExposureError>,
    reply: &[String],
) -> Decided {
    match reply {
        [status, code, subject, detail] if status == REFUSED => {
            Err(refusal(customer_key, code, subject, detail))
        }
        [status, customer, group] if status == "COLD" => Ok(AuthorizeOutcome::Cold {
            customer: customer == "1",
            group: group == "1",
        }),
        [status, rest @ ..] if status == "DECIDED" => {
            let profile = profile.as_ref().map_err(Clone::clone)?;
            Ok(AuthorizeOutcome::Decided(parse_decision(
                customer_key,
                profile,
                rest,
            )?))
        }
        _ => Err(unexpected_reply(customer_key, reply)),
    }
}

/// Decodes the `DECIDED` reply of `lua/authorize.lua` (after its first element).
fn parse_decision(
    key: &str,
    profile: &CallProfile,
    reply: &[String],
) -> Result<Decision, ExposureError> {
    let [
        outcome,
        reasons,
        reserved,
        exposure_after,
        limit,
        group_limit,
        group_exposure_after,
        secured,
        capacity,
        contingent,
    ] = reply
    else {
        return Err(unexpected_reply(key, reply));
    };
    let outcome = Outcome::parse(outcome)
        .ok_or_else(|| corrupt(key, format!("unknown outcome {outcome:?} in script reply")))?;
    let reasons = reasons
        .split(',')
        .filter(|reason| !reason.is_empty())
        .map(|reason| {
            ReasonCode::parse(reason)
                .ok_or_else(|| corrupt(key, format!("unknown reason {reason:?} in script reply")))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let exposure_after: i64 = parse_number(key, EXPOSURE, exposure_after)?;
    let limit: Option<i64> = optional_number(key, LIMIT_AMOUNT, limit)?;
    let group = match &profile.group {
        None => None,
        Some(group) => {
            let limit: Option<i64> = optional_number(key, LIMIT_AMOUNT, group_limit)?;
            let exposure_after: i64 = parse_number(key, EXPOSURE, group_exposure_after)?;
            Some(GroupPosition {
                group_id: group.group_id.clone(),
                limit,
                exposure_after,
                available_after: limit.map(|limit| limit.saturating_sub(exposure_after)),
                epoch: group.epoch,
                tolerance_bps: group.tolerance_bps,
            })
        }
    };
    let capacity: Option<i64> = optional_number(key, CAPACITY, capacity)?;
    let contingent: i64 = parse_number(key, CONTINGENT, contingent)?;
    Ok(Decision {
        outcome,
        reasons,
        limit,
        capacity,
        exposure_after,
        available_after: capacity.map(|capacity| {
            capacity
                .saturating_sub(contingent)
                .saturating_sub(exposure_after)
        }),
        secured: parse_number(key, SECURED, secured)?,
        contingent,
        group,
        reserved: reserved == "1",
        epoch: profile.epoch,
        figures: profile.figures.clone(),
    })
}

/// The error for a script's `["ERROR", code, subject, detail]` refusal.
pub(super) fn refusal(key: &str, code: &str, subject: &str, detail: &str) -> ExposureError {
    match code {
        OUT_OF_RANGE => ExposureError::ExposureOutOfRange {
            level: if subject == Level::Group.as_str() {
                Level::Group
            } else {
                Level::Customer
            },
            id: detail.to_owned(),
        },
        CURRENCY => ExposureError::CurrencyMismatch {
            limit_currency: subject.to_owned(),
        },
        CORRUPT => ExposureError::CorruptEntry {
            key: subject.to_owned(),
            detail: detail.to_owned(),
        },
        _ => corrupt(
            key,
            format!("unknown refusal {code:?} {subject:?} {detail:?}"),
        ),
    }
}
