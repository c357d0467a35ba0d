//! What callers hand to the audit log: a dotted kind, the session it belongs
//! to (if any) and a JSON object of details. The log adds the sequence, the
//! time and the id when it accepts the event.
//!
//! The model is protocol-neutral on purpose: PostgreSQL statements, HTTP
//! exchanges, plugin lifecycle and session recordings all describe
//! themselves with the same shape (the WIT `audit-event`).

use std::borrow::Cow;
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};

use super::record::DetailRef;
use crate::identity::Identity;
use crate::plugins::bindings::types::Session;

/// Event kinds the gateway emits. Sinks and reviewers match on these; new
/// kinds may be added, existing ones keep their meaning.
pub mod kinds {
    /// A signed checkpoint of every record before it. The first record of
    /// every log is one (`reason: "genesis"`).
    pub const CHECKPOINT: &str = "audit.checkpoint";
    /// The log found and set aside a torn last record after a crash.
    pub const RECOVERED: &str = "audit.recovered";
    pub const GATEWAY_STARTED: &str = "gateway.started";
    pub const GATEWAY_STOPPED: &str = "gateway.stopped";
    pub const CONFIG_LOADED: &str = "config.loaded";
    pub const SESSION_START: &str = "session.start";
    pub const SESSION_END: &str = "session.end";
    /// The upstream could not be reached for an authenticated agent.
    pub const SESSION_FAILED: &str = "session.failed";
    /// A token was rejected or the identity may not use the connection.
    pub const IDENTITY_REFUSED: &str = "identity.refused";
    /// A client was turned away before identity (protocol, TLS, unknown
    /// connection).
    pub const CONNECTION_REFUSED: &str = "connection.refused";
    /// Allowed; recorded before the statement is forwarded (write-ahead).
    pub const STATEMENT_ALLOWED: &str = "statement.allowed";
    /// A prepared statement executed again (write-ahead, like `allowed`).
    pub const STATEMENT_EXECUTED: &str = "statement.executed";
    pub const STATEMENT_DENIED: &str = "statement.denied";
    pub const STATEMENT_APPROVAL_REQUIRED: &str = "statement.approval_required";
    /// Sent after a refused message of its batch: the server discards it
    /// until Sync, unjudged.
    pub const STATEMENT_SKIPPED: &str = "statement.skipped";
    /// What the client saw when the server finished: commands, rows,
    /// duration, error, masked values.
    pub const STATEMENT_COMPLETED: &str = "statement.completed";
    /// An HTTP exchange forwarded upstream (its outcome, status, sizes).
    pub const HTTP_EXCHANGE: &str = "http.exchange";
    /// An HTTP request a guardrail denied or held for approval.
    pub const HTTP_DENIED: &str = "http.denied";
    pub const PLUGIN_LOADED: &str = "plugin.loaded";
    pub const PLUGIN_RELOADED: &str = "plugin.reloaded";
    pub const PLUGIN_REFUSED: &str = "plugin.refused";
    pub const PLUGIN_REMOVED: &str = "plugin.removed";
    /// Retention deleted session recordings: each with its size and SHA-256.
    pub const RECORDING_PRUNED: &str = "recording.pruned";
    /// A session recording could not be written; it stops there.
    pub const RECORDING_FAILED: &str = "recording.failed";
}

/// The identity recorded with an event: who, per the verified token.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EventIdentity {
    pub subject: String,
    pub issuer: String,
    pub groups: Vec<String>,
    /// The claims the gateway exposes (`identity.exposed_claims`).
    #[serde(default, skip_serializing_if = "Map::is_empty")]
    pub claims: Map<String, Value>,
}

impl From<&Identity> for EventIdentity {
    fn from(id: &Identity) -> Self {
        Self {
            subject: id.subject.clone(),
            issuer: id.issuer.clone(),
            groups: id.groups.clone(),
            claims: id.claims.clone(),
        }
    }
}

impl From<&crate::plugins::bindings::types::Identity> for EventIdentity {
    fn from(id: &crate::plugins::bindings::types::Identity) -> Self {
        Self {
            subject: id.subject.clone(),
            issuer: id.issuer.clone(),
            groups: id.groups.clone(),
            claims: serde_json::from_str(&id.claims_json).unwrap_or_default(),
        }
    }
}

/// An identity encoded once: every record of a session carries the same
/// one, so its records share the encoding instead of each copying the
/// identity (claims and all) and encoding it again.
#[derive(Debug, Clone)]
pub struct EncodedIdentity(Arc<RawValue>);

impl EncodedIdentity {
    pub fn new(identity: &EventIdentity) -> Self {
        // Strings and a JSON map always encode; `null` (no identity) is
        // only a guard against that changing, never a panic.
        let raw =
            serde_json::value::to_raw_value(identity).unwrap_or_else(|_| RawValue::NULL.to_owned());
        Self(Arc::from(raw))
    }

    pub(crate) fn raw(&self) -> &RawValue {
        &self.0
    }
}

/// An event's details: fields added one by one, or a typed struct encoded
/// once (the records written for every statement are built this way).
#[derive(Debug, Clone)]
pub enum Detail {
    Fields(Map<String, Value>),
    /// Always a JSON object.
    Encoded(Box<RawValue>),
}

impl Detail {
    /// The details as a record view holds them.
    pub(crate) fn view(&self) -> DetailRef<'_> {
        match self {
            Detail::Fields(map) => DetailRef::Fields(map),
            Detail::Encoded(raw) => DetailRef::Encoded(raw),
        }
    }

    /// The fields, decoding encoded ones.
    fn fields(&mut self) -> &mut Map<String, Value> {
        if let Detail::Encoded(raw) = self {
            let map = serde_json::from_str(raw.get()).unwrap_or_default();
            *self = Detail::Fields(map);
        }
        match self {
            Detail::Fields(map) => map,
            Detail::Encoded(_) => unreachable!("decoded above"),
        }
    }
}

/// An event before the log has accepted it.
#[derive(Debug, Clone)]
pub struct Event {
    pub kind: Cow<'static, str>,
    pub session_id: Option<String>,
    pub connection: Option<String>,
    pub identity: Option<EncodedIdentity>,
    pub detail: Detail,
}

impl Event {
    pub fn new(kind: impl Into<Cow<'static, str>>) -> Self {
        Self {
            kind: kind.into(),
            session_id: None,
            connection: None,
            identity: None,
            detail: Detail::Fields(Map::new()),
        }
    }

    /// Session id, connection and identity of a plugin-facing session.
    pub fn session(mut self, session: &Session) -> Self {
        self.session_id = Some(session.id.clone());
        self.connection = Some(session.connection.clone());
        self.identity = Some(EncodedIdentity::new(&(&session.identity).into()));
        self
    }

    pub fn session_id(mut self, id: impl Into<String>) -> Self {
        self.session_id = Some(id.into());
        self
    }

    pub fn connection(mut self, connection: impl Into<String>) -> Self {
        self.connection = Some(connection.into());
        self
    }

    pub fn identity(mut self, identity: impl Into<EventIdentity>) -> Self {
        self.identity = Some(EncodedIdentity::new(&identity.into()));
        self
    }

    /// An identity already encoded (a session's, shared by its records).
    pub fn encoded_identity(mut self, identity: EncodedIdentity) -> Self {
        self.identity = Some(identity);
        self
    }

    /// Adds one detail field.
    pub fn with(mut self, key: &str, value: impl Into<Value>) -> Self {
        self.detail.fields().insert(key.to_string(), value.into());
        self
    }

    /// The details as one struct, encoded at once instead of field by
    /// field. It must serialise as a JSON object; anything else is stored
    /// under `value`, as [`Event::details`] does.
    pub fn detail_of(mut self, detail: &impl Serialize) -> Self {
        match serde_json::value::to_raw_value(detail) {
            Ok(raw) if raw.get().starts_with('{') => {
                self.detail = Detail::Encoded(raw);
                self
            }
            Ok(raw) => {
                self.detail = Detail::Fields(Map::new());
                self.details(serde_json::from_str(raw.get()).unwrap_or(Value::Null))
            }
            Err(e) => {
                self.detail = Detail::Fields(Map::new());
                self.with("encoding_error", e.to_string())
            }
        }
    }

    /// Adds the fields of a JSON object (anything else is stored under
    /// `value`).
    pub fn details(mut self, value: Value) -> Self {
        let detail = self.detail.fields();
        match value {
            Value::Object(map) => detail.extend(map),
            other => {
                detail.insert("value".into(), other);
            }
        }
        self
    }
}

/// Statement (or body) text for a record, cut at `max` bytes on a character
/// boundary. A cut text carries its full length and SHA-256, so the record
/// still identifies exactly what was sent.
pub fn bounded_text(text: &str, max: usize) -> Value {
    if text.len() <= max {
        return Value::String(text.to_string());
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    json!({
        "prefix": &text[..end],
        "bytes": text.len(),
        "sha256": hex(&Sha256::digest(text.as_bytes())),
    })
}

pub(crate) fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    // Into a buffer of the final size: pushing chars (or bytes) checks
    // length and capacity per digit, and this runs for every audit record.
    let mut digits = vec![0u8; bytes.len() * 2];
    for (pair, b) in digits.chunks_exact_mut(2).zip(bytes) {
        pair[0] = DIGITS[(b >> 4) as usize];
        pair[1] = DIGITS[(b & 15) as usize];
    }
    // Hex digits are ASCII, so this never falls back.
    String::from_utf8(digits).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_text_is_cut_on_a_char_boundary_with_its_digest() {
        assert_eq!(bounded_text("select 1", 64), json!("select 1"));
        let cut = bounded_text("héllo", 2);
        assert_eq!(cut["prefix"], "h");
        assert_eq!(cut["bytes"], 6);
        assert_eq!(cut["sha256"].as_str().map(str::len), Some(64));
    }
}
