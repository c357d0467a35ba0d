//! Audit sink: POSTs each batch of audit events as JSON to one HTTP
//! endpoint, the only destination the gateway lets it reach:
//!
//! ```toml
//! [audit]
//! sinks = ["audit-webhook"]
//!
//! [plugins.grants.audit-webhook]
//! http = ["https://hooks.example.com/sluice"]
//! env = ["SLUICE_HOOK_TOKEN"]
//!
//! [plugins.config.audit-webhook]
//! url = "https://hooks.example.com/sluice/events"
//! headers = { Authorization = { env = "SLUICE_HOOK_TOKEN", prefix = "Bearer " } }
//! ```
//!
//! Body: `{"events": [ … ]}`, each event with its own `id`. Header
//! `Idempotency-Key`: `<first id>..<last id>` of the batch. A batch is
//! accepted only on a 2xx answer; anything else is retried within the call
//! (up to `max_attempts`, within `budget_ms`) and then reported to the
//! gateway, whose spool keeps the batch and delivers it again later.

mod post;
mod target;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use serde::Deserialize;
use sluice_plugin_sdk::types::AuditEvent;
use sluice_plugin_sdk::{AuditSink, export_audit_sink, log, metrics};

pub use target::{GRANTS_ENV, Url, check_granted};

use post::{Failure, post};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// The endpoint; must be under a destination granted to the plugin.
    pub url: String,
    /// Extra request headers: a literal value, or one read from a granted
    /// environment variable (`{ env = "NAME", prefix = "Bearer " }`).
    #[serde(default)]
    pub headers: BTreeMap<String, HeaderValue>,
    /// One attempt's limit (connect, then the first response byte).
    #[serde(default = "d_timeout_ms")]
    pub timeout_ms: u64,
    /// Attempts within one delivery before the batch goes back to the spool.
    #[serde(default = "d_max_attempts")]
    pub max_attempts: u32,
    /// Wait after the first failed attempt, doubled after each further one.
    #[serde(default = "d_backoff_ms")]
    pub backoff_ms: u64,
    /// What one delivery may take in all; keep it below the gateway's
    /// `plugins.sink_call_deadline_ms` (default 5000).
    #[serde(default = "d_budget_ms")]
    pub budget_ms: u64,
}

fn d_timeout_ms() -> u64 {
    2000
}
fn d_max_attempts() -> u32 {
    3
}
fn d_backoff_ms() -> u64 {
    100
}
fn d_budget_ms() -> u64 {
    4000
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub enum HeaderValue {
    Literal(String),
    Env {
        env: String,
        #[serde(default)]
        prefix: String,
    },
}

/// Headers the plugin sets itself, or that the HTTP layer owns.
const RESERVED: &[&str] = &[
    "content-type",
    "content-length",
    "idempotency-key",
    "host",
    "connection",
    "transfer-encoding",
];

pub struct AuditWebhook {
    url: Url,
    shown: String,
    headers: Vec<(String, Vec<u8>)>,
    timeout: Duration,
    max_attempts: u32,
    backoff: Duration,
    budget: Duration,
}

impl AuditSink for AuditWebhook {
    type Config = Config;

    fn new(config: Config) -> Result<Self, String> {
        let err = |m: String| format!("audit-webhook: {m}");
        let url = Url::parse(&config.url).map_err(err)?;
        let granted = std::env::var(GRANTS_ENV).ok();
        check_granted(&url, &config.url, granted.as_deref()).map_err(err)?;
        if config.timeout_ms == 0 || config.budget_ms == 0 {
            return Err(err("timeout_ms and budget_ms must be positive".into()));
        }
        if !(1..=10).contains(&config.max_attempts) {
            return Err(err("max_attempts must be between 1 and 10".into()));
        }
        let mut headers = vec![("content-type".to_string(), b"application/json".to_vec())];
        for (name, value) in config.headers {
            let lower = name.to_ascii_lowercase();
            if RESERVED.contains(&lower.as_str()) {
                return Err(err(format!(
                    "header {name:?} is set by the plugin or the gateway"
                )));
            }
            let value = match value {
                HeaderValue::Literal(v) => v,
                HeaderValue::Env { env, prefix } => match std::env::var(&env) {
                    Ok(v) => format!("{prefix}{v}"),
                    Err(_) => {
                        return Err(err(format!(
                            "header {name:?}: environment variable {env} is not visible; grant it \
                             ([plugins.grants.<this plugin>] env = [\"{env}\"]) and set it for the gateway"
                        )));
                    }
                },
            };
            headers.push((lower, value.into_bytes()));
        }
        Ok(AuditWebhook {
            url,
            shown: config.url,
            headers,
            timeout: Duration::from_millis(config.timeout_ms),
            max_attempts: config.max_attempts,
            backoff: Duration::from_millis(config.backoff_ms),
            budget: Duration::from_millis(config.budget_ms),
        })
    }

    fn deliver(&self, events: &[AuditEvent]) -> Result<(), String> {
        let (Some(first), Some(last)) = (events.first(), events.last()) else {
            return Ok(());
        };
        let body = batch_body(events);
        let mut headers = self.headers.clone();
        headers.push((
            "idempotency-key".into(),
            idempotency_key(first, last).into_bytes(),
        ));
        let started = Instant::now();
        let mut backoff = self.backoff;
        let mut attempts = 0;
        let failure = loop {
            attempts += 1;
            let left = self.budget.saturating_sub(started.elapsed());
            let failure = match post(&self.url, &headers, &body, self.timeout.min(left)) {
                Ok(_) => {
                    metrics::counter_add("events_posted", events.len() as u64, &[]);
                    return Ok(());
                }
                Err(failure) => failure,
            };
            metrics::counter_add("post_failures", 1, &[]);
            let left = self.budget.saturating_sub(started.elapsed());
            let retryable = match &failure {
                Failure::Denied => false,
                // The endpoint refuses this batch as it is; another attempt
                // now would be refused the same way.
                Failure::Status(code, _) => *code >= 500 || *code == 408 || *code == 429,
                Failure::Transport(_) => true,
            };
            if !retryable || attempts >= self.max_attempts || left <= backoff {
                break failure;
            }
            log::debug(&format!(
                "POST {} attempt {attempts} failed ({failure}); retrying in {backoff:?}",
                self.shown
            ));
            sleep(backoff);
            backoff = backoff.saturating_mul(2);
        };
        Err(format!(
            "audit-webhook: POST {} failed after {attempts} attempt(s): {failure}; the gateway keeps \
             the {} event(s) and retries",
            self.shown,
            events.len()
        ))
    }
}

/// `{"events": [...]}`, each event as [`AuditEvent::to_json`].
pub fn batch_body(events: &[AuditEvent]) -> Vec<u8> {
    let events: Vec<_> = events.iter().map(AuditEvent::to_json).collect();
    serde_json::json!({ "events": events })
        .to_string()
        .into_bytes()
}

/// Names the batch by its first and last event: a batch retried after a
/// failure carries the same key. Event ids are `<log id>-<sequence>`.
pub fn idempotency_key(first: &AuditEvent, last: &AuditEvent) -> String {
    format!("{}..{}", first.id, last.id)
}

/// Waits in the host (a WASI timer), not spinning on the CPU deadline.
fn sleep(d: Duration) {
    let nanos = u64::try_from(d.as_nanos()).unwrap_or(u64::MAX);
    wasip2::clocks::monotonic_clock::subscribe_duration(nanos).block();
}

export_audit_sink!(AuditWebhook);

#[cfg(test)]
mod tests;
