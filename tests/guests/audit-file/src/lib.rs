//! Test guest: an audit sink that appends each event as one JSON line to a
//! file in a directory the gateway grants (by default the preopen `/audit`).
//!
//! Config: `{"path": "/audit/events.jsonl", "fail_while": "/audit/down"}`
//! (both optional). While the `fail_while` file exists every delivery fails,
//! as a sink whose backend is down would. Delivery is at least once, so the
//! file may hold an event twice; readers drop repeats by `id`.

use std::fs::OpenOptions;
use std::io::Write;

use serde::Deserialize;
use serde_json::{Value, json};
use sluice_plugin_sdk::types::AuditEvent;
use sluice_plugin_sdk::{AuditSink, export_audit_sink};

#[derive(Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    path: String,
    fail_while: Option<String>,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            path: "/audit/events.jsonl".into(),
            fail_while: None,
        }
    }
}

pub struct AuditFile {
    path: String,
    fail_while: Option<String>,
}

impl AuditSink for AuditFile {
    type Config = Config;

    fn new(config: Config) -> Result<Self, String> {
        Ok(AuditFile {
            path: config.path,
            fail_while: config.fail_while,
        })
    }

    fn deliver(&self, events: &[AuditEvent]) -> Result<(), String> {
        if let Some(flag) = &self.fail_while
            && std::path::Path::new(flag).exists()
        {
            return Err(format!("audit-file: {flag} exists: the backend is down"));
        }
        let mut lines = String::new();
        for event in events {
            lines.push_str(&event_json(event).to_string());
            lines.push('\n');
        }
        // Opened per batch, so that a missing grant or a rotated file shows
        // as a failed delivery (the gateway keeps the batch and retries)
        // rather than as a plugin that never activates. One write, synced:
        // once `deliver` returns Ok the gateway drops the batch.
        OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.path)
            .and_then(|mut file| {
                file.write_all(lines.as_bytes())?;
                file.sync_data()
            })
            .map_err(|e| format!("audit-file: cannot append to {}: {e}", self.path))
    }
}

fn event_json(event: &AuditEvent) -> Value {
    // The detail is already JSON; embed it as such (or as a string if the
    // gateway ever sent something that does not parse).
    let detail = serde_json::from_str(&event.detail_json)
        .unwrap_or_else(|_| Value::String(event.detail_json.clone()));
    let identity = event
        .identity
        .as_ref()
        .map(|i| json!({ "subject": i.subject, "issuer": i.issuer, "groups": i.groups }));
    json!({
        "id": event.id,
        "sequence": event.sequence,
        "time_unix_ms": event.time_unix_ms,
        "kind": event.kind,
        "session_id": event.session_id,
        "connection": event.connection,
        "identity": identity,
        "detail": detail,
    })
}

export_audit_sink!(AuditFile);
