//! Constructors for verdicts.

use super::{Approval, Denial, Verdict};

/// How long a request waits for an approver unless the plugin says otherwise.
pub const DEFAULT_APPROVAL_TTL_SECONDS: u32 = 3600;

impl Verdict {
    /// The request may proceed.
    pub fn allow() -> Self {
        Verdict::Allow
    }

    /// Refuses the request. `rule` is shown to the agent and in the audit log,
    /// so make it a stable name; `reason` is the human explanation.
    pub fn deny(rule: impl Into<String>, reason: impl Into<String>) -> Self {
        Verdict::Deny(Denial {
            rule: rule.into(),
            reason: reason.into(),
        })
    }

    /// Holds the request until the gateway's default approvers decide, for at
    /// most [`DEFAULT_APPROVAL_TTL_SECONDS`]. Use [`Approval::new`] to choose
    /// approver groups or the wait.
    pub fn require_approval(rule: impl Into<String>, reason: impl Into<String>) -> Self {
        Approval::new(rule, reason).into()
    }

    /// True for [`Verdict::Allow`].
    pub fn is_allow(&self) -> bool {
        matches!(self, Verdict::Allow)
    }
}

impl Approval {
    /// An approval request for the default approvers and the default wait.
    pub fn new(rule: impl Into<String>, reason: impl Into<String>) -> Self {
        Approval {
            rule: rule.into(),
            reason: reason.into(),
            approver_groups: Vec::new(),
            ttl_seconds: DEFAULT_APPROVAL_TTL_SECONDS,
        }
    }

    /// Only members of these groups may approve.
    pub fn with_approver_groups<I, S>(mut self, groups: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.approver_groups = groups.into_iter().map(Into::into).collect();
        self
    }

    /// How long the request may wait for a decision.
    pub fn with_ttl_seconds(mut self, ttl_seconds: u32) -> Self {
        self.ttl_seconds = ttl_seconds;
        self
    }
}

impl From<Approval> for Verdict {
    fn from(approval: Approval) -> Self {
        Verdict::RequireApproval(approval)
    }
}

impl From<Denial> for Verdict {
    fn from(denial: Denial) -> Self {
        Verdict::Deny(denial)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn approval_defaults_and_builder() {
        let Verdict::RequireApproval(a) = Verdict::require_approval("r", "why") else {
            panic!()
        };
        assert_eq!((a.ttl_seconds, a.approver_groups.len()), (3600, 0));
        let v: Verdict = Approval::new("r", "why")
            .with_approver_groups(["dba"])
            .with_ttl_seconds(60)
            .into();
        let Verdict::RequireApproval(a) = v else {
            panic!()
        };
        assert_eq!(
            (a.ttl_seconds, a.approver_groups),
            (60, vec!["dba".to_string()])
        );
    }

    #[test]
    fn deny_carries_rule_and_reason() {
        let v = Verdict::deny("rule", "reason");
        assert_eq!(
            v,
            Verdict::Deny(Denial {
                rule: "rule".into(),
                reason: "reason".into()
            })
        );
        assert!(!v.is_allow() && Verdict::allow().is_allow());
    }
}
