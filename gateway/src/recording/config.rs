//! `[recording]`: per-session recordings in `<state_dir>/sessions/`.

use serde::Deserialize;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RecordingConfig {
    /// Record every session (default true).
    #[serde(default = "d_true")]
    pub enabled: bool,
    /// A recording stops growing at this size: a `truncated` entry marks
    /// the cut and the session's end is still written. Default 64 MiB.
    #[serde(default = "d_max_session_bytes")]
    pub max_session_bytes: u64,
    /// Result rows (as the client received them, i.e. masked) kept per
    /// PostgreSQL statement. Default 0: counts only.
    #[serde(default)]
    pub rows_per_statement: usize,
    /// Bytes of each HTTP request and response body kept (the request as
    /// the guardrails saw it, the response as the agent received it).
    /// Default 65536; 0 keeps none.
    #[serde(default = "d_http_body_bytes")]
    pub http_body_bytes: usize,
    /// Recordings of sessions that ended longer ago than this are deleted
    /// (humantime, e.g. `"30days"`, `"12h"`). Default `"30days"`.
    #[serde(default = "d_max_age")]
    pub max_age: String,
    /// Beyond this total, the oldest finished recordings are deleted.
    /// Default 10 GiB.
    #[serde(default = "d_max_total_bytes")]
    pub max_total_bytes: u64,
    /// How often retention runs (it also runs at start). Default 300.
    #[serde(default = "d_prune_interval_secs")]
    pub prune_interval_secs: u64,
}

fn d_true() -> bool {
    true
}
fn d_max_session_bytes() -> u64 {
    64 << 20
}
fn d_http_body_bytes() -> usize {
    64 << 10
}
fn d_max_age() -> String {
    "30days".into()
}
fn d_max_total_bytes() -> u64 {
    10 << 30
}
fn d_prune_interval_secs() -> u64 {
    300
}

impl Default for RecordingConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            max_session_bytes: d_max_session_bytes(),
            rows_per_statement: 0,
            http_body_bytes: d_http_body_bytes(),
            max_age: d_max_age(),
            max_total_bytes: d_max_total_bytes(),
            prune_interval_secs: d_prune_interval_secs(),
        }
    }
}

impl RecordingConfig {
    /// Checks what serde cannot; `Err` names the key.
    pub fn validate(&self) -> Result<(), String> {
        self.max_age_duration()?;
        if self.max_session_bytes < 4096 {
            return Err("recording.max_session_bytes must be at least 4096".into());
        }
        if self.prune_interval_secs == 0 {
            return Err("recording.prune_interval_secs must be at least 1".into());
        }
        Ok(())
    }

    pub fn max_age_duration(&self) -> Result<std::time::Duration, String> {
        humantime::parse_duration(&self.max_age)
            .map_err(|e| format!("recording.max_age \"{}\": {e}", self.max_age))
    }
}
