//! Per-connection access policy: may this identity use this connection?
//!
//! Evaluated after the token is verified and before any upstream connection is opened.
//! Order: deny lists win; then `allow_all`; then the allow lists. Empty allow lists allow
//! nobody (fail closed).

use serde::{Deserialize, Serialize};

use super::error::{AccessDenied, DenyReason};
use super::identity_value::Identity;
use super::metrics;

/// The identity fields of one `[[connections]]` entry.
///
/// Not `deny_unknown_fields`: it is meant to be read from a table that has other fields
/// too. (Beware: `#[serde(flatten)]` into a struct that itself has `deny_unknown_fields`
/// does not work in serde; copy the fields or build this with `Default` + field access.)
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConnectionPolicy {
    /// Allow every verified identity not denied below. Default false.
    #[serde(default)]
    pub allow_all: bool,
    /// Identities in any of these groups are allowed.
    #[serde(default)]
    pub allow_groups: Vec<String>,
    /// These subjects are allowed.
    #[serde(default)]
    pub allow_subjects: Vec<String>,
    /// Identities in any of these groups are refused, whatever the allow lists say.
    #[serde(default)]
    pub deny_groups: Vec<String>,
    /// These subjects are refused, whatever the allow lists say.
    #[serde(default)]
    pub deny_subjects: Vec<String>,
}

impl ConnectionPolicy {
    /// Allows or refuses `id`; the error says which rule decided.
    pub fn check(&self, id: &Identity) -> Result<(), AccessDenied> {
        let result = self.decide(id);
        metrics::access_decision(result.as_ref().err().map(|d| d.reason()));
        result
    }

    fn decide(&self, id: &Identity) -> Result<(), AccessDenied> {
        let deny = |reason, message: String| Err(AccessDenied { reason, message });
        if self.deny_subjects.contains(&id.subject) {
            return deny(
                DenyReason::DeniedSubject,
                format!("subject {:?} is denied on this connection", id.subject),
            );
        }
        if let Some(g) = id.groups.iter().find(|g| self.deny_groups.contains(g)) {
            return deny(
                DenyReason::DeniedGroup,
                format!("group {g:?} is denied on this connection"),
            );
        }
        if self.allow_all
            || self.allow_subjects.contains(&id.subject)
            || id.groups.iter().any(|g| self.allow_groups.contains(g))
        {
            return Ok(());
        }
        deny(
            DenyReason::NotAllowed,
            format!(
                "subject {:?} (groups {:?}) is not allowed on this connection",
                id.subject, id.groups
            ),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::SystemTime;

    fn id(subject: &str, groups: &[&str]) -> Identity {
        Identity {
            subject: subject.into(),
            issuer: "iss".into(),
            groups: groups.iter().map(|g| g.to_string()).collect(),
            claims: Default::default(),
            expires_at: SystemTime::now(),
            token_id: None,
        }
    }

    fn policy(toml_text: &str) -> ConnectionPolicy {
        toml::from_str(toml_text).unwrap()
    }

    #[test]
    fn decisions() {
        let p = policy(
            r#"allow_groups = ["agents"]
               allow_subjects = ["alice"]
               deny_groups = ["quarantined"]
               deny_subjects = ["mallory"]
               name = "ignored: other connection fields""#,
        );
        let cases: &[(&str, &[&str], Result<(), &str>)] = &[
            ("bob", &["agents"], Ok(())),
            ("alice", &[], Ok(())),
            ("bob", &["readers"], Err("not_allowed")),
            ("bob", &[], Err("not_allowed")),
            ("mallory", &["agents"], Err("denied_subject")),
            ("alice", &["quarantined"], Err("denied_group")),
            ("bob", &["agents", "quarantined"], Err("denied_group")),
        ];
        for (subject, groups, expected) in cases {
            let got = p.check(&id(subject, groups)).map_err(|e| e.reason());
            assert_eq!(got, *expected, "{subject} {groups:?}");
        }
    }

    #[test]
    fn empty_policy_allows_nobody_and_allow_all_allows_everybody_not_denied() {
        assert_eq!(
            ConnectionPolicy::default()
                .check(&id("a", &["g"]))
                .unwrap_err()
                .reason(),
            "not_allowed"
        );
        let p = policy("allow_all = true\ndeny_subjects = [\"x\"]");
        assert!(p.check(&id("a", &[])).is_ok());
        assert_eq!(
            p.check(&id("x", &[])).unwrap_err().reason(),
            "denied_subject"
        );
    }
}
