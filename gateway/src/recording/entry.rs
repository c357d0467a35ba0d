//! The lines of a recording: one JSON object per line, tagged by `type`.
//! The first line is the session's header, the last its end; readers skip
//! types they do not know, so later versions may add entries.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// Bumped when an entry changes meaning; readers accept what they know.
pub const FORMAT_VERSION: u32 = 1;

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Entry {
    Session(Header),
    Statement(Statement),
    Http(Exchange),
    /// The recording reached `max_session_bytes`; later entries until the
    /// end were counted, not written.
    Truncated(Truncated),
    End(End),
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Header {
    pub version: u32,
    pub id: String,
    /// `postgres`, `http` (and `ssh` once that protocol lands).
    pub protocol: String,
    pub connection: String,
    pub subject: String,
    pub issuer: String,
    pub groups: Vec<String>,
    pub client_addr: String,
    pub started_ms: u64,
    /// Protocol details: TLS, client user, application name, …
    #[serde(default, skip_serializing_if = "Map::is_empty")]
    pub detail: Map<String, Value>,
}

/// What one PostgreSQL Query, or one extended-protocol batch up to Sync,
/// sent and what came of it.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Statement {
    /// Position in the session, in the order the client sent it.
    pub n: u64,
    /// When the gateway received it (ms since the epoch).
    pub time_ms: u64,
    pub sql: Vec<SqlText>,
    /// `allow`, `deny`, `require_approval`, or `skip`: sent after a refused
    /// message of its batch, discarded by the server unjudged.
    pub verdict: String,
    /// For a refusal: `policy`, `plugin_failure`, `missing_plugin` or
    /// `gateway`; `batch_refused` for a `skip`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cause: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub plugin: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rule: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Command tags the server reported, in order.
    #[serde(default)]
    pub commands: Vec<String>,
    #[serde(default)]
    pub rows: u64,
    /// Values masked in the results and in the errors and notices that
    /// answered the statement, per entity.
    #[serde(default)]
    pub masked: BTreeMap<String, u64>,
    /// From forwarding to the server's ReadyForQuery.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration_ms: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<SqlError>,
    /// Sequences of the audit records written for it.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub audit_records: Vec<u64>,
    /// Result rows as the client received them, up to `rows_per_statement`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub result: Option<ResultRows>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SqlText {
    /// `simple_query`, `parse`, `execute` or `function_call`.
    pub phase: String,
    /// The text, or (when longer than the audit's `max_text_bytes`) its
    /// prefix with length and SHA-256.
    pub text: Value,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub statement_name: Option<String>,
    /// Bound parameters in text form (`\x…` hex for binary ones); `null` is
    /// SQL NULL.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub parameters: Vec<Option<String>>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct SqlError {
    pub code: String,
    pub message: String,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct ResultRows {
    pub columns: Vec<String>,
    /// Cells as text (`\x…` hex for binary cells that are not UTF-8).
    pub rows: Vec<Vec<Option<String>>>,
    /// More rows were sent than kept.
    pub truncated: bool,
}

/// One HTTP exchange; exports to a HAR entry.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Exchange {
    pub n: u64,
    /// When the request arrived (ms since the epoch).
    pub time_ms: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject: Option<String>,
    pub method: String,
    /// Absolute URL as the agent addressed the gateway.
    pub url: String,
    pub http_version: String,
    /// The agent's headers; credentials it presented appear as `[redacted]`.
    pub request_headers: Vec<(String, String)>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_body: Option<BodyCapture>,
    pub request_bytes: u64,
    pub status: u16,
    pub response_headers: Vec<(String, String)>,
    /// The body as the agent received it (masked where maskers ran).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub response_body: Option<BodyCapture>,
    pub response_bytes: u64,
    /// `forwarded`, `denied`, `approval_required`, `refused`, `upstream_error`.
    pub outcome: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub plugin: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rule: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// MCP calls in the request: (method, tool).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub mcp: Vec<(String, Option<String>)>,
    #[serde(default)]
    pub masked: BTreeMap<String, u64>,
    pub duration_ms: f64,
    /// False when the response failed or the agent left before its end.
    pub completed: bool,
}

/// A kept body: UTF-8 as `text`, anything else as `base64`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct BodyCapture {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub base64: Option<String>,
    /// The body was longer than what is kept.
    pub truncated: bool,
}

impl BodyCapture {
    pub fn of(bytes: &[u8], limit: usize) -> Option<Self> {
        if limit == 0 {
            return None;
        }
        let kept = &bytes[..bytes.len().min(limit)];
        let truncated = kept.len() < bytes.len();
        Some(match std::str::from_utf8(kept) {
            Ok(text) => Self {
                text: Some(text.to_string()),
                base64: None,
                truncated,
            },
            // A cut can split a character: keep the valid prefix as text.
            Err(e) if truncated && e.error_len().is_none() => Self {
                text: Some(String::from_utf8_lossy(&kept[..e.valid_up_to()]).into_owned()),
                base64: None,
                truncated,
            },
            Err(_) => Self {
                text: None,
                base64: Some(base64::Engine::encode(
                    &base64::engine::general_purpose::STANDARD,
                    kept,
                )),
                truncated,
            },
        })
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Truncated {
    pub time_ms: u64,
    pub limit_bytes: u64,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct End {
    pub time_ms: u64,
    pub duration_ms: u64,
    /// How the session ended: `terminated`, `client_vanished`, … or
    /// `interrupted` when the gateway stopped without writing this line
    /// and added it when it next started.
    pub ending: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Statement entries (each a Query, or a batch up to Sync) allowed and
    /// refused, and HTTP exchanges, in the session.
    #[serde(default)]
    pub statements_allowed: u64,
    #[serde(default)]
    pub statements_refused: u64,
    #[serde(default)]
    pub exchanges: u64,
    /// Entries written before this one (the header included).
    pub entries: u64,
    /// Entries not written because the recording reached its size limit.
    #[serde(default)]
    pub dropped: u64,
}

/// A PostgreSQL value as recorded: text as is, other bytes as `\x` hex.
pub fn cell_text(bytes: &[u8]) -> String {
    match std::str::from_utf8(bytes) {
        Ok(s) => s.to_string(),
        Err(_) => {
            let mut s = String::with_capacity(2 + bytes.len() * 2);
            s.push_str("\\x");
            s.push_str(&crate::audit::event::hex(bytes));
            s
        }
    }
}
