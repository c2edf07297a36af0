//! Policies as versioned data (制度制定…定期修订): the credit policy, the approval matrix,
//! scorecards and dunning policies change through proposals, never in place.
//!
//! A proposal is a new version with the proposer's reason and the date it should take effect;
//! it walks the matrix's POLICY_CHANGE chain (so a second person approves it: the proposer
//! decides no step) and is published when the chain approves it. Every version stays
//! readable; the one in force at a time is the published version with the latest
//! `effective_from` not after it. Decisions record the version they used.

use chrono::{DateTime, Utc};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::approval::{Chain, ChainStatus};

/// A document kept as versions (the approval matrix, the credit policy, …): how its versions
/// are named in storage and in people's queues. Every governed document walks the same
/// POLICY_CHANGE chain and is stored, read and diffed the same way.
pub trait Governed: Serialize + DeserializeOwned + Clone + Send + Sync + Unpin + 'static {
    /// Its name in storage: `approval_matrix`, `credit_policy`.
    const SUBJECT: &'static str;
    /// The prefix of its versions' record ids in chains and queues: `matrix` → `matrix:3`.
    const RECORD_PREFIX: &'static str;
    /// What a person reads of it: the same document without the bookkeeping that every
    /// version changes (its own number, its last change), so a diff shows only what the
    /// proposal changes.
    fn without_bookkeeping(&self) -> Self {
        self.clone()
    }
    /// Stamps the document as version `version`, published at `at` by the proposer with
    /// `reason`, for documents that carry their own number and audit.
    fn stamp(
        &mut self,
        _version: u32,
        _proposer: &crate::Actor,
        _reason: &str,
        _at: DateTime<Utc>,
    ) {
    }
}

/// The record id of version `version` of `T` in chains and queues: `policy:3`.
pub fn record_id<T: Governed>(version: u32) -> String {
    format!("{}:{version}", T::RECORD_PREFIX)
}

/// The version named by a record id of `T`, if it is one.
pub fn parse_record_id<T: Governed>(record_id: &str) -> Option<u32> {
    record_id
        .strip_prefix(T::RECORD_PREFIX)?
        .strip_prefix(':')?
        .parse()
        .ok()
}

/// What a proposal changes against the version it was proposed over, field by field.
pub fn changes<T: Governed>(before: &T, after: &T) -> Vec<Change> {
    diff(&before.without_bookkeeping(), &after.without_bookkeeping())
}

/// A proposed version of a document owned by another service than limits (a scorecard
/// model, a dunning policy): the document as proposed, what it changes against the version it
/// was proposed over, and the POLICY_CHANGE chain it walks. Approving the chain's last step
/// publishes the document as the next version; the owner's store does both at once.
#[derive(Debug, Clone)]
pub struct Proposal<D> {
    pub proposal_id: String,
    /// The document as proposed (not yet a version).
    pub document: D,
    /// The latest version of the document when proposed; 0 for a new one.
    pub base_version: u32,
    /// What it changes against `base_version`, field by field.
    pub changes: Vec<Change>,
    /// Its maker is the proposer.
    pub chain: Chain,
    pub proposed_at: DateTime<Utc>,
    /// The version its approval published.
    pub published_version: Option<u32>,
}

impl<D> Proposal<D> {
    pub fn status(&self) -> VersionStatus {
        VersionStatus::of(&self.chain)
    }
}

/// Decides a proposal as its owner's store reads it in the transaction that records the
/// verdict, given the latest published version of its document now: the proposal with the
/// verdict in its chain. When the chain is then approved, the store publishes the document.
pub type ProposalDecider<'a, D> =
    &'a (dyn Fn(&Proposal<D>, u32) -> Result<Proposal<D>, crate::ServiceError> + Send + Sync);

/// Which proposals a listing returns.
#[derive(Debug, Clone, Default)]
pub struct ProposalFilter {
    pub status: Option<VersionStatus>,
    /// The document's id (a model id, a policy id); empty = every document.
    pub document_id: String,
}

/// Where a version stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum VersionStatus {
    /// Its chain waits for a decider (or for the proposer's answer to a return).
    Proposed,
    /// Approved: in force from `effective_from`.
    Published,
    Rejected,
}

impl VersionStatus {
    pub fn of(chain: &Chain) -> Self {
        match chain.status {
            ChainStatus::Pending | ChainStatus::Returned => VersionStatus::Proposed,
            ChainStatus::Approved => VersionStatus::Published,
            ChainStatus::Rejected => VersionStatus::Rejected,
        }
    }

    pub fn as_str(&self) -> &'static str {
        match self {
            VersionStatus::Proposed => "PROPOSED",
            VersionStatus::Published => "PUBLISHED",
            VersionStatus::Rejected => "REJECTED",
        }
    }
}

/// One version of a governed document.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Version<T> {
    /// 1, 2, 3, … in the order proposed; 0 is the shipped document, never stored.
    pub version: u32,
    pub document: T,
    /// Why the proposer wants it.
    pub reason: String,
    pub proposed_at: DateTime<Utc>,
    /// When it takes effect: the date asked for, or the approval if that comes later.
    pub effective_from: DateTime<Utc>,
    /// When its chain approved it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub published_at: Option<DateTime<Utc>>,
    /// The POLICY_CHANGE chain it walks; its maker is the proposer.
    pub chain: Chain,
    /// The version it was made from (the newest published when it was proposed).
    #[serde(default)]
    pub based_on: u32,
    /// What it changes against `based_on`, field by field: what its deciders read.
    #[serde(default)]
    pub changes: Vec<Change>,
}

impl<T> Version<T> {
    pub fn status(&self) -> VersionStatus {
        VersionStatus::of(&self.chain)
    }

    /// Called when the chain has approved it: published now, in force from the date asked
    /// for or from now, whichever is later (a version never takes effect in the past).
    pub fn publish(&mut self, now: DateTime<Utc>) {
        self.published_at = Some(now);
        self.effective_from = self.effective_from.max(now);
    }
}

/// The version in force at `at` among `versions`: the published one with the latest
/// `effective_from` not after `at` (a later version number wins a tie).
pub fn in_force<T>(versions: &[Version<T>], at: DateTime<Utc>) -> Option<&Version<T>> {
    versions
        .iter()
        .filter(|version| {
            version.status() == VersionStatus::Published && version.effective_from <= at
        })
        .max_by_key(|version| (version.effective_from, version.version))
}

/// One difference between two versions of a document: the path of the field (`rules[2].steps`)
/// with its value before and after, as JSON text (empty when absent on that side).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Change {
    pub path: String,
    pub before: String,
    pub after: String,
}

/// What changes from `before` to `after`, field by field, in document order: what the
/// deciders of a proposal read.
pub fn diff<T: Serialize>(before: &T, after: &T) -> Vec<Change> {
    let before = serde_json::to_value(before).unwrap_or(serde_json::Value::Null);
    let after = serde_json::to_value(after).unwrap_or(serde_json::Value::Null);
    let mut changes = Vec::new();
    diff_values("", &before, &after, &mut changes);
    changes
}

fn diff_values(
    path: &str,
    before: &serde_json::Value,
    after: &serde_json::Value,
    changes: &mut Vec<Change>,
) {
    use serde_json::Value;
    if before == after {
        return;
    }
    let child = |key: &str| {
        if path.is_empty() {
            key.to_owned()
        } else {
            format!("{path}.{key}")
        }
    };
    match (before, after) {
        (Value::Object(old), Value::Object(new)) => {
            let mut keys: Vec<&String> = old.keys().chain(new.keys()).collect();
            keys.sort();
            keys.dedup();
            for key in keys {
                diff_values(
                    &child(key),
                    old.get(key).unwrap_or(&Value::Null),
                    new.get(key).unwrap_or(&Value::Null),
                    changes,
                );
            }
        }
        (Value::Array(old), Value::Array(new)) => {
            for index in 0..old.len().max(new.len()) {
                diff_values(
                    &format!("{path}[{index}]"),
                    old.get(index).unwrap_or(&Value::Null),
                    new.get(index).unwrap_or(&Value::Null),
                    changes,
                );
            }
        }
        _ => {
            let text = |value: &Value| match value {
                Value::Null => String::new(),
                other => other.to_string(),
            };
            changes.push(Change {
                path: path.to_owned(),
                before: text(before),
                after: text(after),
            });
        }
    }
}

#[cfg(test)]
mod tests;
