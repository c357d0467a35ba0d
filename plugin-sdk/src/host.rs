//! What the host offers every plugin: logging, metrics and a clock.
//!
//! On wasm32 these call the `sluice:plugin/host` imports. On any other target
//! (a plugin's unit tests) the imports do not exist — wit-bindgen's native
//! stubs are `unreachable!()` — so logs go to stderr, metrics to a
//! thread-local that [`crate::testing`] reads, and the clock to `SystemTime`.

#[cfg(target_arch = "wasm32")]
use crate::guardrail_world::sluice::plugin::host as imports;

/// Writes to the gateway's log, tagged by the gateway with the plugin's name.
pub mod log {
    #[cfg(target_arch = "wasm32")]
    use super::imports::{LogLevel, log as write};

    #[cfg(not(target_arch = "wasm32"))]
    #[derive(Debug, Clone, Copy)]
    enum LogLevel {
        Trace,
        Debug,
        Info,
        Warn,
        Error,
    }

    #[cfg(not(target_arch = "wasm32"))]
    fn write(level: LogLevel, message: &str) {
        eprintln!("[plugin {level:?}] {message}");
    }

    /// Very detailed diagnostics, normally filtered out by the gateway.
    pub fn trace(message: &str) {
        write(LogLevel::Trace, message);
    }

    /// Diagnostics for whoever debugs the plugin.
    pub fn debug(message: &str) {
        write(LogLevel::Debug, message);
    }

    /// Normal operation worth recording.
    pub fn info(message: &str) {
        write(LogLevel::Info, message);
    }

    /// Something unexpected that the plugin worked around.
    pub fn warn(message: &str) {
        write(LogLevel::Warn, message);
    }

    /// Something failed; usually paired with returning `Err`.
    pub fn error(message: &str) {
        write(LogLevel::Error, message);
    }
}

/// Plugin metrics, exported by the gateway as `sluice_plugin_<name>…` with a
/// `plugin` label added. Names are `[a-z0-9_]`; a plugin may create at most 64
/// distinct series (name + labels), further ones are dropped by the host.
pub mod metrics {
    /// Adds `value` to the counter `sluice_plugin_<name>_total{labels}`.
    pub fn counter_add(name: &str, value: u64, labels: &[(&str, &str)]) {
        #[cfg(target_arch = "wasm32")]
        super::imports::counter_add(name, value, &owned(labels));
        #[cfg(not(target_arch = "wasm32"))]
        recorded::push(recorded::Kind::Counter, name, value as f64, labels);
    }

    /// Records `value` in the histogram `sluice_plugin_<name>{labels}`.
    pub fn histogram_record(name: &str, value: f64, labels: &[(&str, &str)]) {
        #[cfg(target_arch = "wasm32")]
        super::imports::histogram_record(name, value, &owned(labels));
        #[cfg(not(target_arch = "wasm32"))]
        recorded::push(recorded::Kind::Histogram, name, value, labels);
    }

    // The generated import takes owned pairs.
    #[cfg(target_arch = "wasm32")]
    fn owned(labels: &[(&str, &str)]) -> Vec<(String, String)> {
        labels
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    /// Native stand-in for the host: what a test's plugin code recorded.
    #[cfg(not(target_arch = "wasm32"))]
    pub(crate) mod recorded {
        use std::cell::RefCell;

        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        pub enum Kind {
            Counter,
            Histogram,
        }

        /// One call to [`counter_add`](super::counter_add) or
        /// [`histogram_record`](super::histogram_record) made on this thread.
        #[derive(Debug, Clone, PartialEq)]
        pub struct Metric {
            pub kind: Kind,
            pub name: String,
            pub value: f64,
            pub labels: Vec<(String, String)>,
        }

        thread_local! {
            static RECORDED: RefCell<Vec<Metric>> = const { RefCell::new(Vec::new()) };
        }

        pub(crate) fn push(kind: Kind, name: &str, value: f64, labels: &[(&str, &str)]) {
            let labels = labels
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect();
            let metric = Metric {
                kind,
                name: name.to_string(),
                value,
                labels,
            };
            RECORDED.with(|r| r.borrow_mut().push(metric));
        }

        pub(crate) fn take() -> Vec<Metric> {
            RECORDED.with(|r| std::mem::take(&mut *r.borrow_mut()))
        }
    }
}

/// The host's wall clock.
pub mod clock {
    /// Milliseconds since the Unix epoch.
    pub fn now_unix_ms() -> u64 {
        #[cfg(target_arch = "wasm32")]
        return super::imports::now_unix_ms();
        #[cfg(not(target_arch = "wasm32"))]
        return std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64);
    }
}
