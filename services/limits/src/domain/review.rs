//! Reviews after a grade change (信用等级调整后的复核): when rating moves a customer to
//! another grade, a credit manager reviews its limit, its payment terms and how closely it is
//! watched. The review is a task in the credit manager's queue, walked through the approval
//! matrix's CREDIT_REVIEW chain; approving it records that the review was done (with the
//! reviewer's note), beside the limit cut a downgrade may have drafted.

use chrono::{DateTime, Utc};
use credit_core::approval::Chain;
use serde::{Deserialize, Serialize};

use super::policy::CreditPolicy;

/// Which way the grade moved.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum GradeMove {
    /// To a riskier grade.
    Downgrade,
    /// To a less risky grade.
    Upgrade,
    /// To a grade the policy does not rank against the other (another scale, an unlisted
    /// grade).
    Regrade,
}

impl GradeMove {
    /// How the grade moved from `previous` to `grade` in the policy's order (best first);
    /// `None` for a first grade or the same grade again.
    pub fn between(policy: &CreditPolicy, previous: &str, grade: &str) -> Option<Self> {
        if previous.is_empty() || previous == grade {
            return None;
        }
        Some(match (policy.rank(previous), policy.rank(grade)) {
            (Some(before), Some(after)) if after > before => GradeMove::Downgrade,
            (Some(before), Some(after)) if after < before => GradeMove::Upgrade,
            _ => GradeMove::Regrade,
        })
    }

    pub fn as_str(&self) -> &'static str {
        match self {
            GradeMove::Downgrade => "downgraded",
            GradeMove::Upgrade => "upgraded",
            GradeMove::Regrade => "regraded",
        }
    }
}

/// A review of one customer after one grade change.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CreditReview {
    pub review_id: String,
    pub customer_id: String,
    pub grade_move: GradeMove,
    pub previous_grade: String,
    pub grade: String,
    /// The rating that changed the grade.
    pub rating_id: String,
    /// The limit cut the downgrade drafted, when it drafted one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit_cut_request_id: Option<String>,
    pub opened_at: DateTime<Utc>,
    /// The CREDIT_REVIEW chain; its maker is the system.
    pub chain: Chain,
}

impl CreditReview {
    /// What the reviewer reads in the queue.
    pub fn summary(&self) -> String {
        let cut = self
            .limit_cut_request_id
            .as_ref()
            .map(|id| format!("; limit cut drafted: {id}"))
            .unwrap_or_default();
        format!(
            "review customer {}: {} from {} to {} (rating {}){cut}",
            self.customer_id,
            self.grade_move.as_str(),
            self.previous_grade,
            self.grade,
            self.rating_id
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_move_is_read_in_the_policys_order_of_grades() {
        let policy = CreditPolicy::default();
        assert_eq!(
            GradeMove::between(&policy, "A", "BB"),
            Some(GradeMove::Downgrade)
        );
        assert_eq!(
            GradeMove::between(&policy, "BB", "AA"),
            Some(GradeMove::Upgrade)
        );
        assert_eq!(
            GradeMove::between(&policy, "A", "R7"),
            Some(GradeMove::Regrade)
        );
        assert_eq!(GradeMove::between(&policy, "", "A"), None, "a first grade");
        assert_eq!(GradeMove::between(&policy, "A", "A"), None);
    }
}
