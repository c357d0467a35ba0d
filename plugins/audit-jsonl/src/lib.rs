//! Audit sink: appends each audit event as one JSON line to a file.
//!
//! The file lives in a directory the gateway grants to this plugin (a WASI
//! preopen; nothing else is visible to it):
//!
//! ```toml
//! [audit]
//! sinks = ["audit-jsonl"]
//!
//! [plugins.grants.audit-jsonl]
//! dirs = [{ host = "/var/log/sluice", guest = "/audit", writable = true }]
//!
//! [plugins.config.audit-jsonl]
//! file = "/audit/events.jsonl"   # default
//! rotate_bytes = 104857600       # start a new file past 100 MiB; 0 (default): never
//! sync = true                    # fsync each batch before accepting it (default)
//! ```
//!
//! The gateway delivers at least once, in log order. Repeats are dropped:
//! the sink knows the highest sequence of each gateway log already written
//! (read back from the end of the file when it starts), and an event at or
//! below it is not written again. A rotated file is renamed to
//! `<file>.<unix-ms>` and a new one started.

mod file;

use std::sync::Mutex;

use serde::Deserialize;
use sluice_plugin_sdk::types::AuditEvent;
use sluice_plugin_sdk::{AuditSink, export_audit_sink, metrics};

pub use file::{JsonlFile, event_line};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Absolute path inside a granted directory.
    pub file: String,
    /// Rotate once the file has reached this size; 0 never rotates.
    pub rotate_bytes: u64,
    /// Sync each batch to disk before telling the gateway it is delivered.
    pub sync: bool,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            file: "/audit/events.jsonl".into(),
            rotate_bytes: 0,
            sync: true,
        }
    }
}

pub struct AuditJsonl {
    file: Mutex<JsonlFile>,
}

impl AuditSink for AuditJsonl {
    type Config = Config;

    fn new(config: Config) -> Result<Self, String> {
        let file = JsonlFile::open(config.file.into(), config.rotate_bytes, config.sync)?;
        Ok(AuditJsonl {
            file: Mutex::new(file),
        })
    }

    fn deliver(&self, events: &[AuditEvent]) -> Result<(), String> {
        let mut file = self.file.lock().unwrap_or_else(|e| e.into_inner());
        let outcome = file.append(events)?;
        if outcome.written > 0 {
            metrics::counter_add("events_written", outcome.written, &[]);
        }
        if outcome.repeats > 0 {
            metrics::counter_add("events_repeated", outcome.repeats, &[]);
        }
        Ok(())
    }
}

export_audit_sink!(AuditJsonl);

#[cfg(test)]
mod tests;
