//! Audit events as JSON, the one shape every first-party sink writes.

use serde_json::{Value, json};

use super::AuditEvent;

impl AuditEvent {
    /// The event as a JSON object: `id`, `sequence`, `time_unix_ms`, `kind`,
    /// `session_id`, `connection`, `identity` (`subject`, `issuer`,
    /// `groups`, `claims`) and `detail`. The gateway sends `detail` and the
    /// claims as JSON text; they are embedded as JSON (as a string in the
    /// unexpected case that they do not parse).
    pub fn to_json(&self) -> Value {
        let parse =
            |s: &str| serde_json::from_str(s).unwrap_or_else(|_| Value::String(s.to_string()));
        let identity = self.identity.as_ref().map(|i| {
            json!({
                "subject": i.subject,
                "issuer": i.issuer,
                "groups": i.groups,
                "claims": parse(&i.claims_json),
            })
        });
        json!({
            "id": self.id,
            "sequence": self.sequence,
            "time_unix_ms": self.time_unix_ms,
            "kind": self.kind,
            "session_id": self.session_id,
            "connection": self.connection,
            "identity": identity,
            "detail": parse(&self.detail_json),
        })
    }
}
