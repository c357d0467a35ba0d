//! One agent connection's trail: its recording (begun at its first
//! authenticated exchange, ended when the connection closes) and the
//! audit events of its exchanges.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use serde_json::Value;

use crate::audit::{Audit, EncodedIdentity, Event, EventIdentity, kinds};
use crate::identity::Identity;
use crate::recording::entry::{BodyCapture, End, Entry, Exchange, FORMAT_VERSION, Header};
use crate::recording::{Recorder, Recording, now_ms};

use super::record::{ExchangeRecord, Outcome};

pub struct ClientTrail {
    session_id: Arc<str>,
    /// The agent's address as text, formatted once: every exchange's audit
    /// event has it.
    peer_text: String,
    tls: bool,
    recorder: Recorder,
    audit: Audit,
    /// Shared, not cloned, by each exchange: it holds the identity's claims.
    begun: Mutex<Option<Arc<Begun>>>,
    next: AtomicU64,
    exchanges: AtomicU64,
    refused: AtomicU64,
}

/// The session as it began: the first verified identity and connection.
struct Begun {
    /// Whose session it is: an exchange under another identity is recorded
    /// with its own subject.
    subject: String,
    /// The identity, encoded once for every record of the session.
    encoded: EncodedIdentity,
    connection: String,
    recording: Option<Arc<Recording>>,
}

impl std::fmt::Debug for ClientTrail {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientTrail")
            .field("session_id", &self.session_id)
            .finish_non_exhaustive()
    }
}

/// The session cannot be recorded: the exchange is refused.
#[derive(Debug, thiserror::Error)]
#[error("the gateway cannot record this session: {0}")]
pub struct Unrecordable(String);

impl ClientTrail {
    pub fn new(
        session_id: Arc<str>,
        peer: SocketAddr,
        tls: bool,
        recorder: Recorder,
        audit: Audit,
    ) -> Self {
        Self {
            session_id,
            peer_text: peer.to_string(),
            tls,
            recorder,
            audit,
            begun: Mutex::new(None),
            next: AtomicU64::new(1),
            exchanges: AtomicU64::new(0),
            refused: AtomicU64::new(0),
        }
    }

    /// The exchange number of a request arriving now.
    pub fn next_n(&self) -> u64 {
        self.next.fetch_add(1, Ordering::Relaxed)
    }

    /// Whether exchanges go into a session recording.
    pub fn records(&self) -> bool {
        self.recorder.is_enabled()
    }

    /// Bytes of each body kept in the recording (0: none).
    pub fn body_limit(&self) -> usize {
        self.recorder.config().map_or(0, |c| c.http_body_bytes)
    }

    fn begun(&self) -> Option<Arc<Begun>> {
        self.begun.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Called once identity and connection are known, before anything is
    /// forwarded: the first call starts the session (and its recording).
    /// Streams of one HTTP/2 connection wait for each other here, so none
    /// is forwarded before the recording exists.
    pub fn begin(&self, identity: &Identity, connection: &str) -> Result<(), Unrecordable> {
        let mut begun = self.begun.lock().unwrap_or_else(|e| e.into_inner());
        if begun.is_some() {
            return Ok(());
        }
        let who = EventIdentity::from(identity);
        let encoded = EncodedIdentity::new(&who);
        let header = Header {
            version: FORMAT_VERSION,
            id: self.session_id.to_string(),
            protocol: "http".into(),
            connection: connection.to_string(),
            subject: who.subject.clone(),
            issuer: who.issuer,
            groups: who.groups,
            client_addr: self.peer_text.clone(),
            started_ms: now_ms(),
            detail: [("tls".to_string(), Value::from(self.tls))]
                .into_iter()
                .collect(),
        };
        // Not begun on failure: the next request tries again.
        let recording = self
            .recorder
            .begin(header)
            .map_err(|e| Unrecordable(e.to_string()))?;
        self.audit.emit(
            Event::new(kinds::SESSION_START)
                .connection(connection)
                .encoded_identity(encoded.clone())
                .session_id(self.session_id.to_string())
                .with("protocol", "http")
                .with("client_addr", self.peer_text.clone())
                .with("tls", self.tls),
        );
        *begun = Some(Arc::new(Begun {
            subject: who.subject,
            encoded,
            connection: connection.to_string(),
            recording,
        }));
        Ok(())
    }

    /// One finished exchange: its recording entry and its audit event. The
    /// record is consumed: its headers, URL and verdict move into the entry
    /// rather than being copied (a few dozen allocations per exchange).
    pub fn exchange(&self, rec: ExchangeRecord, response_body: Option<BodyCapture>) {
        let refused = rec.outcome != Outcome::Forwarded && rec.outcome != Outcome::UpstreamError;
        let masked = rec
            .masking
            .as_ref()
            .map(|m| {
                let mut out = std::collections::BTreeMap::new();
                for (entity, n) in &m.detections {
                    *out.entry(entity.clone()).or_insert(0u64) += u64::from(*n);
                }
                out
            })
            .unwrap_or_default();
        let begun = self.begun();
        self.audit_exchange(&rec, &masked, begun.as_deref());
        let Some(recording) = begun.and_then(|b| b.recording.clone()) else {
            return;
        };
        if rec.subject.is_none() {
            // Exchanges without a verified identity belong to no session.
            return;
        }
        self.exchanges.fetch_add(1, Ordering::Relaxed);
        if refused {
            self.refused.fetch_add(1, Ordering::Relaxed);
        }
        let limit = self.body_limit();
        let request_bytes = rec.request_bytes.load(Ordering::Relaxed);
        let request_body = rec
            .request_body
            .as_ref()
            .filter(|b| !b.is_empty())
            .and_then(|b| BodyCapture::of(b, limit));
        let (plugin, rule, reason) = match rec.verdict {
            Some(v) => (Some(v.plugin), Some(v.rule), Some(v.reason)),
            None => (None, None, None),
        };
        let entry = Exchange {
            n: rec.n,
            time_ms: rec.time_ms,
            subject: rec.subject,
            method: rec.method.to_string(),
            url: rec.url,
            http_version: rec.http_version,
            request_headers: rec.request_headers,
            request_body,
            request_bytes,
            status: rec.status,
            response_headers: rec.response_headers,
            response_body,
            response_bytes: rec.response_bytes,
            outcome: rec.outcome.as_str().to_string(),
            plugin,
            rule,
            reason,
            mcp: rec.mcp,
            masked,
            duration_ms: rec.duration.as_secs_f64() * 1000.0,
            completed: rec.completed,
        };
        recording.write(&Entry::Http(entry));
    }

    fn audit_exchange(
        &self,
        rec: &ExchangeRecord,
        masked: &std::collections::BTreeMap<String, u64>,
        begun: Option<&Begun>,
    ) {
        let kind = match rec.outcome {
            Outcome::Forwarded | Outcome::UpstreamError => kinds::HTTP_EXCHANGE,
            Outcome::Denied | Outcome::ApprovalRequired => kinds::HTTP_DENIED,
            Outcome::Refused if rec.status == 401 || rec.status == 403 => kinds::IDENTITY_REFUSED,
            Outcome::Refused => kinds::CONNECTION_REFUSED,
        };
        let identified = begun.filter(|b| rec.subject.as_deref() == Some(b.subject.as_str()));
        let path = rec.path.as_deref().unwrap_or(&rec.raw_path);
        let method = rec.method.as_str();
        let verdict = rec.verdict.as_ref();
        let detail = ExchangeDetail {
            client_addr: &self.peer_text,
            completed: rec.completed,
            duration_ms: rec.duration.as_secs_f64() * 1000.0,
            masked,
            mcp_method: rec.mcp.last().map(|(m, _)| m.as_str()),
            mcp_tool: rec.mcp.iter().rev().find_map(|(_, t)| t.as_deref()),
            method,
            outcome: rec.outcome.as_str(),
            path,
            plugin: verdict.map(|v| v.plugin.as_str()),
            protocol: "http",
            reason: verdict
                .map(|v| v.reason.as_str())
                .or(rec.refusal.as_deref()),
            request_bytes: rec.request_bytes.load(std::sync::atomic::Ordering::Relaxed),
            response_bytes: rec.response_bytes,
            rule: verdict.map(|v| v.rule.as_str()),
            status: rec.status,
            subject: match identified {
                Some(_) => None,
                None => rec.subject.as_deref(),
            },
        };
        let mut event = Event::new(kind)
            .session_id(self.session_id.to_string())
            .detail_of(&detail);
        if let Some(c) = rec.connection.as_ref().or(rec.asked.as_ref()) {
            event = event.connection(c.clone());
        }
        if let Some(b) = identified {
            event = event.encoded_identity(b.encoded.clone());
        }
        self.audit.emit(event);
    }

    /// The connection closed.
    pub fn end(&self, ending: &str) {
        let Some(begun) = self.begun() else {
            return;
        };
        let Begun {
            encoded,
            connection,
            recording,
            ..
        } = &*begun;
        let exchanges = self.exchanges.load(Ordering::Relaxed);
        let refused = self.refused.load(Ordering::Relaxed);
        if let Some(recording) = recording {
            recording.end(End {
                ending: ending.to_string(),
                ..End::default()
            });
        }
        self.audit.emit(
            Event::new(kinds::SESSION_END)
                .connection(connection.clone())
                .encoded_identity(encoded.clone())
                .session_id(self.session_id.to_string())
                .with("protocol", "http")
                .with("ending", ending)
                .with("exchanges", exchanges)
                .with("refused", refused),
        );
    }
}

/// The detail of an HTTP exchange's record, encoded in one pass. Members in
/// name order, as records built field by field have them.
#[derive(serde::Serialize)]
struct ExchangeDetail<'a> {
    client_addr: &'a str,
    completed: bool,
    duration_ms: f64,
    #[serde(skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    masked: &'a std::collections::BTreeMap<String, u64>,
    /// The last call's, when the request was JSON-RPC.
    #[serde(skip_serializing_if = "Option::is_none")]
    mcp_method: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    mcp_tool: Option<&'a str>,
    method: &'a str,
    outcome: &'a str,
    path: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    plugin: Option<&'a str>,
    protocol: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    reason: Option<&'a str>,
    request_bytes: u64,
    response_bytes: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    rule: Option<&'a str>,
    status: u16,
    /// When the exchange's identity is not the session's.
    #[serde(skip_serializing_if = "Option::is_none")]
    subject: Option<&'a str>,
}
