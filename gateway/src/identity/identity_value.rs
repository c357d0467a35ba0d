//! The verified identity that travels with a session: into tracing spans, plugin calls
//! (`claims_json()` for the WIT `identity` record) and audit events (`Serialize`).

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// Who is calling, as established by a verified token.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Identity {
    /// The token's `sub`.
    pub subject: String,
    /// The token's `iss`, exactly as configured.
    pub issuer: String,
    /// Groups from the issuer's groups claim, then the mapping table (deduplicated, in order).
    pub groups: Vec<String>,
    /// The claims listed in `identity.exposed_claims` that the token carried, keyed by the
    /// configured name (dotted paths stay dotted).
    pub claims: Map<String, Value>,
    /// The token's `exp`; serialised as Unix seconds.
    #[serde(with = "unix_seconds")]
    pub expires_at: SystemTime,
    /// The token's `jti`, when present (for audit correlation).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_id: Option<String>,
}

impl Identity {
    /// Whether the identity is in `group`.
    pub fn in_group(&self, group: &str) -> bool {
        self.groups.iter().any(|g| g == group)
    }

    /// The exposed claims as a JSON object text, the form plugins receive.
    pub fn claims_json(&self) -> String {
        Value::Object(self.claims.clone()).to_string()
    }

    /// The whole identity as JSON (for audit events).
    pub fn to_json(&self) -> Value {
        serde_json::to_value(self).unwrap_or(Value::Null)
    }

    /// Time left before the token expires (zero once expired): sessions outliving their
    /// token can be closed or asked to re-authenticate.
    pub fn expires_in(&self) -> Duration {
        self.expires_at
            .duration_since(SystemTime::now())
            .unwrap_or(Duration::ZERO)
    }

    /// `expires_at` as Unix seconds.
    pub fn expires_at_unix(&self) -> u64 {
        self.expires_at
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs())
    }
}

mod unix_seconds {
    use std::time::{Duration, SystemTime, UNIX_EPOCH};

    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(t: &SystemTime, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs()))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<SystemTime, D::Error> {
        let secs = u64::deserialize(d)?.min(253_402_300_799);
        Ok(UNIX_EPOCH + Duration::from_secs(secs))
    }
}

/// What plugins see of an identity (the `identity` record of the WIT contract).
impl From<&Identity> for crate::plugins::bindings::types::Identity {
    fn from(id: &Identity) -> Self {
        Self {
            subject: id.subject.clone(),
            issuer: id.issuer.clone(),
            groups: id.groups.clone(),
            claims_json: id.claims_json(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn serialises_for_audit_and_plugins() {
        let id = Identity {
            subject: "agent-1".into(),
            issuer: "https://idp".into(),
            groups: vec!["agents".into()],
            claims: json!({"client_id": "c"}).as_object().cloned().unwrap(),
            expires_at: UNIX_EPOCH + Duration::from_secs(1_700_000_000),
            token_id: None,
        };
        assert_eq!(
            id.to_json(),
            json!({"subject": "agent-1", "issuer": "https://idp", "groups": ["agents"],
                   "claims": {"client_id": "c"}, "expires_at": 1_700_000_000u64})
        );
        assert_eq!(id.claims_json(), r#"{"client_id":"c"}"#);
        let back: Identity = serde_json::from_value(id.to_json()).unwrap();
        assert_eq!(back, id);
        assert!(id.in_group("agents"));
        assert_eq!(id.expires_in(), Duration::ZERO);
    }
}
