//! The per-instance store data and the host functions every plugin imports:
//! logging, metrics and a clock. Nothing else is reachable unless granted
//! (see `sandbox.rs`, and `outbound` for HTTP).

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use wasmtime::StoreLimits;
use wasmtime::component::ResourceTable;
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};
use wasmtime_wasi_http::{WasiHttpCtx, WasiHttpCtxView, WasiHttpView};

use super::bindings::host::{self, LogLevel};
use super::error::guest_text;
use super::outbound::OutboundHttp;
use super::sandbox::StderrTail;

/// Longest log line a plugin can write; longer ones are cut.
const MAX_LOG_BYTES: usize = 4096;
/// Distinct metric series one plugin instance may create.
const MAX_SERIES: usize = 64;

pub struct HostState {
    pub(crate) plugin: Arc<str>,
    pub(crate) wasi: WasiCtx,
    pub(crate) table: ResourceTable,
    pub(crate) http: WasiHttpCtx,
    /// Checks and sends the plugin's outbound HTTP requests.
    pub(crate) outbound: OutboundHttp,
    pub(crate) limits: StoreLimits,
    /// The guest's stderr (a Rust guest's panic message lands here); bounded.
    pub(crate) stderr: StderrTail,
    /// When the call in progress must stop; checked at every epoch tick.
    pub(crate) deadline: Instant,
    /// How long (ns) the call in progress has spent handed back to other
    /// sessions between ticks: not the call's time, so the deadline moves
    /// by as much.
    pub(crate) paused: Arc<AtomicU64>,
    /// The metric series this instance created, with their handles: a
    /// guest reporting the same series on every call reuses the handle
    /// instead of building the name and labels and looking it up in the
    /// registry each time.
    series: HashMap<SeriesKey, Series>,
}

/// (counter?, name, labels as the guest sent them).
type SeriesKey = (bool, String, Vec<(String, String)>);

enum Series {
    /// The handle, and the series' total across instances: kept here so that
    /// it saturates, where the exporter's own counter would wrap at 2^64
    /// (which a scraper reads as a reset).
    Counter(metrics::Counter, Arc<AtomicU64>),
    Histogram(metrics::Histogram),
}

/// Counter totals by series, shared by a plugin's instances and generations.
/// Bounded like the series themselves (per plugin name).
static COUNTER_TOTALS: std::sync::LazyLock<std::sync::Mutex<HashMap<String, Arc<AtomicU64>>>> =
    std::sync::LazyLock::new(Default::default);

/// `labels` as the series carries them (the plugin's name among them).
fn counter_total(name: &str, labels: &[metrics::Label]) -> Arc<AtomicU64> {
    let mut key = name.to_string();
    for l in labels {
        key.push_str(&format!("\0{}={}", l.key(), l.value()));
    }
    let mut totals = COUNTER_TOTALS.lock().unwrap_or_else(|e| e.into_inner());
    totals.entry(key).or_default().clone()
}

impl HostState {
    pub(crate) fn new(
        plugin: Arc<str>,
        wasi: WasiCtx,
        outbound: OutboundHttp,
        limits: StoreLimits,
        stderr: StderrTail,
    ) -> Self {
        Self {
            plugin,
            wasi,
            table: ResourceTable::new(),
            http: WasiHttpCtx::new(),
            outbound,
            limits,
            stderr,
            deadline: Instant::now(),
            paused: Arc::new(AtomicU64::new(0)),
            series: HashMap::new(),
        }
    }

    /// The last thing the guest wrote to stderr, to explain a trap: for a
    /// Rust panic, its message (the runtime's "note: run with
    /// RUST_BACKTRACE" hint is skipped).
    pub(crate) fn stderr_tail(&self) -> Option<String> {
        let bytes = self.stderr.contents();
        let text = String::from_utf8_lossy(&bytes);
        let mut lines = text
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty() && !l.starts_with("note: run with `RUST_BACKTRACE"))
            .rev();
        let last = lines.next()?;
        let line = match lines.next() {
            Some(prev) if prev.contains("panicked at") => format!("panicked: {last}"),
            _ => last.to_string(),
        };
        Some(truncate(&line, 300).to_string())
    }

    /// The handle of a series, created on first use; `None` once the
    /// instance has created as many series as it may.
    fn series(&mut self, key: SeriesKey) -> Option<&Series> {
        if !self.series.contains_key(&key) {
            if self.series.len() >= MAX_SERIES {
                return None;
            }
            let (counter, name, labels) = &key;
            let labels = metric_labels(&self.plugin, labels.clone());
            let handle = if *counter {
                let total = counter_total(name, &labels);
                Series::Counter(
                    metrics::counter!(format!("sluice_plugin_{name}_total"), labels),
                    total,
                )
            } else {
                Series::Histogram(metrics::histogram!(format!("sluice_plugin_{name}"), labels))
            };
            self.series.insert(key.clone(), handle);
        }
        self.series.get(&key)
    }
}

impl WasiView for HostState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

impl WasiHttpView for HostState {
    fn http(&mut self) -> WasiHttpCtxView<'_> {
        WasiHttpCtxView {
            ctx: &mut self.http,
            table: &mut self.table,
            hooks: &mut self.outbound,
        }
    }
}

fn truncate(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

fn valid_metric_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
}

fn metric_labels(plugin: &str, labels: Vec<(String, String)>) -> Vec<metrics::Label> {
    let mut out = Vec::with_capacity(labels.len() + 1);
    out.push(metrics::Label::new("plugin", plugin.to_string()));
    for (k, v) in labels.into_iter().take(8) {
        // Prometheus reserves `__` names (`__name__` would rename the
        // series) and label names start with a letter or `_`.
        let reserved =
            k == "plugin" || k.starts_with("__") || k.starts_with(|c: char| c.is_ascii_digit());
        if valid_metric_name(&k) && !reserved {
            out.push(metrics::Label::new(k, truncate(&v, 128).to_string()));
        }
    }
    out
}

impl host::Host for HostState {
    fn log(&mut self, level: LogLevel, message: String) {
        let plugin = &*self.plugin;
        // Escaped so that a plugin cannot write lines of its own into the
        // gateway's text log.
        let message = guest_text(&message, MAX_LOG_BYTES);
        match level {
            LogLevel::Trace => tracing::trace!(target: "sluice::plugin", plugin, "{message}"),
            LogLevel::Debug => tracing::debug!(target: "sluice::plugin", plugin, "{message}"),
            LogLevel::Info => tracing::info!(target: "sluice::plugin", plugin, "{message}"),
            LogLevel::Warn => tracing::warn!(target: "sluice::plugin", plugin, "{message}"),
            LogLevel::Error => tracing::error!(target: "sluice::plugin", plugin, "{message}"),
        }
    }

    fn counter_add(&mut self, name: String, value: u64, labels: Vec<(String, String)>) {
        if !valid_metric_name(&name) {
            return;
        }
        if let Some(Series::Counter(c, total)) = self.series((true, name, labels)) {
            let sum = |t: u64| Some(t.saturating_add(value));
            let before = total
                .fetch_update(Ordering::Relaxed, Ordering::Relaxed, sum)
                .unwrap_or_else(|t| t);
            // `absolute` keeps the larger value, so instances racing here
            // cannot move the series backwards.
            c.absolute(before.saturating_add(value));
        }
    }

    fn histogram_record(&mut self, name: String, value: f64, labels: Vec<(String, String)>) {
        if !valid_metric_name(&name) || !value.is_finite() {
            return;
        }
        if let Some(Series::Histogram(h)) = self.series((false, name, labels)) {
            h.record(value);
        }
    }

    fn now_unix_ms(&mut self) -> u64 {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_millis() as u64)
            .unwrap_or(0)
    }
}

impl super::bindings::types::Host for HostState {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn truncation_respects_char_boundaries() {
        assert_eq!(truncate("héllo", 2), "h");
        assert_eq!(truncate("abc", 10), "abc");
    }

    #[test]
    fn metric_names_are_restricted() {
        assert!(valid_metric_name("rows_masked"));
        assert!(!valid_metric_name("Rows"));
        assert!(!valid_metric_name("a-b"));
        assert!(!valid_metric_name(""));
    }

    #[test]
    fn reserved_label_names_are_dropped() {
        let labels = |pairs: &[(&str, &str)]| {
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect()
        };
        let kept: Vec<String> = metric_labels(
            "p",
            labels(&[
                ("__name__", "evil"),
                ("plugin", "other"),
                ("1st", "x"),
                ("table", "t"),
            ]),
        )
        .iter()
        .map(|l| format!("{}={}", l.key(), l.value()))
        .collect();
        assert_eq!(kept, ["plugin=p", "table=t"]);
    }
}
