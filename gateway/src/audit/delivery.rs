//! Durable delivery to audit-sink plugins. The log is the spool: each sink
//! has a cursor (the last sequence it accepted) in
//! `<state_dir>/audit/cursors/<sink>.json`, and one task that reads the log
//! from there, hands batches to the sink's `deliver`, and moves the cursor
//! only after the sink accepted them. A failing, slow or missing sink falls
//! behind and catches up later, across restarts too; it never holds up the
//! data path or loses an event. Delivery is at least once (a crash between
//! `deliver` and the cursor update repeats a batch), with the same record id
//! every time, so sinks drop repeats.
//!
//! Routing: a sink in `[audit] sinks` gets every event; an audit sink that
//! appears only in connections' `plugins` gets the events of those
//! connections. Events are delivered in log order.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::config::Config;
use crate::plugins::bindings::types::AuditEvent;
use crate::plugins::{PluginHost, PluginKind};

use super::error::AuditError;
use super::keys::write_atomic;
use super::store::{Layout, LogReader};
use super::{Audit, AuditConfig};

/// Records scanned per read, matched or not, so a sink that matches few
/// events still moves its cursor in bounded steps.
const MAX_SCAN: usize = 4096;
/// Cursor writes for records the sink skips (other connections) are
/// batched to at most one per this period.
const SKIP_PERSIST: Duration = Duration::from_secs(1);
const FAILURE_LOG_PERIOD: Duration = Duration::from_secs(30);
const IDLE_POLL: Duration = Duration::from_secs(1);

/// Which events one sink receives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    pub sink: String,
    /// Every event (`[audit] sinks`).
    pub all: bool,
    /// Otherwise, the events of these connections.
    pub connections: BTreeSet<String>,
}

impl Route {
    fn wants(&self, connection: Option<&str>) -> bool {
        self.all || connection.is_some_and(|c| self.connections.contains(c))
    }
}

/// The candidate sinks of a configuration. A name becomes a sink once a
/// plugin of the audit-sink world is active under it; names of other kinds
/// (a connection's guardrails) never receive anything.
pub fn routes(config: &Config) -> Vec<Route> {
    let mut routes: BTreeMap<String, Route> = BTreeMap::new();
    for sink in &config.audit.sinks {
        routes.insert(
            sink.clone(),
            Route {
                sink: sink.clone(),
                all: true,
                connections: BTreeSet::new(),
            },
        );
    }
    for c in &config.connections {
        for name in &c.plugins {
            routes
                .entry(name.clone())
                .or_insert_with(|| Route {
                    sink: name.clone(),
                    all: false,
                    connections: BTreeSet::new(),
                })
                .connections
                .insert(c.name.clone());
        }
    }
    routes.into_values().collect()
}

#[derive(Debug, Serialize, Deserialize)]
struct Cursor {
    log_id: String,
    delivered: u64,
}

struct Sink {
    route: Route,
    layout: Layout,
    log_id: String,
    path: PathBuf,
    batch_size: usize,
    retry_initial: Duration,
    retry_max: Duration,
}

/// The delivery tasks. Left running until the runtime ends, a sink would be
/// cancelled in the middle of its `deliver` (its file left with half a
/// line, its blocking I/O cancelled under it): [`Deliveries::stop`] waits
/// for them; dropped, they are told to stop after their current batch.
pub struct Deliveries {
    stop: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
}

impl Drop for Deliveries {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
    }
}

impl Deliveries {
    /// Lets each task finish the batch it is handing to its sink, save its
    /// cursor and return; a task still running after `within` is aborted.
    pub async fn stop(mut self, within: Duration) {
        let _ = self.stop.send(true);
        let deadline = tokio::time::Instant::now() + within;
        for task in std::mem::take(&mut self.tasks) {
            let abort = task.abort_handle();
            if tokio::time::timeout_at(deadline, task).await.is_err() {
                tracing::warn!(
                    "an audit sink did not finish its delivery within {within:?}; stopped"
                );
                abort.abort();
            }
        }
    }
}

/// Starts one delivery task per candidate sink.
pub fn spawn(audit: &Audit, host: Arc<PluginHost>, config: &Config) -> Deliveries {
    let (stop, stopping) = watch::channel(false);
    let (Some(layout), Some(opened), Some(committed)) =
        (audit.layout(), audit.opened(), audit.committed())
    else {
        return Deliveries {
            stop,
            tasks: Vec::new(),
        };
    };
    let AuditConfig {
        batch_size,
        retry_initial_ms,
        retry_max_ms,
        ..
    } = config.audit;
    let tasks = routes(config)
        .into_iter()
        .map(|route| {
            let sink = Sink {
                path: layout.cursors().join(format!("{}.json", route.sink)),
                route,
                layout: layout.clone(),
                log_id: opened.log_id.clone(),
                batch_size,
                retry_initial: Duration::from_millis(retry_initial_ms),
                retry_max: Duration::from_millis(retry_max_ms),
            };
            tokio::spawn(sink.run(host.clone(), committed.clone(), stopping.clone()))
        })
        .collect();
    Deliveries { stop, tasks }
}

/// Waits `d`, or less if the gateway is stopping.
async fn pause(d: Duration, stopping: &mut watch::Receiver<bool>) {
    tokio::select! {
        _ = tokio::time::sleep(d) => {}
        _ = stopping.wait_for(|s| *s) => {}
    }
}

impl Sink {
    /// The last sequence delivered; 0 for a new sink or a new log.
    fn load_cursor(&self) -> u64 {
        let cursor: Cursor = match std::fs::read(&self.path) {
            Ok(bytes) => match serde_json::from_slice(&bytes) {
                Ok(c) => c,
                Err(e) => {
                    tracing::warn!(sink = %self.route.sink, path = %self.path.display(),
                        "unreadable delivery cursor ({e}); delivering from the start of the log (the sink drops repeats by id)");
                    return 0;
                }
            },
            Err(_) => return 0,
        };
        if cursor.log_id == self.log_id {
            cursor.delivered
        } else {
            0
        }
    }

    fn save_cursor(&self, delivered: u64) -> Result<(), AuditError> {
        let dir = self.layout.cursors();
        std::fs::create_dir_all(&dir).map_err(|e| AuditError::io(&dir, e))?;
        let cursor = Cursor {
            log_id: self.log_id.clone(),
            delivered,
        };
        let json = serde_json::to_vec(&cursor).map_err(|e| AuditError::Write(e.to_string()))?;
        write_atomic(&self.path, &json)
    }

    /// Reads the next records up to `head` off the async runtime: the
    /// events this sink wants, and the last sequence scanned.
    async fn read(
        &self,
        reader: &mut Option<LogReader>,
        delivered: u64,
        head: u64,
    ) -> Result<(Vec<AuditEvent>, u64), AuditError> {
        let mut r = reader
            .take()
            .unwrap_or_else(|| LogReader::new(self.layout.clone(), delivered + 1));
        let route = self.route.clone();
        let batch = self.batch_size;
        let joined = tokio::task::spawn_blocking(move || {
            let mut events = Vec::new();
            let mut scanned = 0;
            let result = loop {
                if events.len() >= batch || scanned >= MAX_SCAN {
                    break Ok(());
                }
                match r.next(head) {
                    Ok(Some(record)) => {
                        scanned += 1;
                        if route.wants(record.connection.as_deref()) {
                            events.push(record.to_audit_event());
                        }
                    }
                    Ok(None) => break Ok(()),
                    Err(e) => break Err(e),
                }
            };
            let last = r.next_seq() - 1;
            (r, result.map(|()| (events, last)))
        })
        .await;
        match joined {
            Ok((r, result)) => {
                *reader = Some(r);
                result
            }
            Err(e) => Err(AuditError::Write(format!("log reader task failed: {e}"))),
        }
    }

    async fn run(
        self,
        host: Arc<PluginHost>,
        mut committed: watch::Receiver<u64>,
        mut stopping: watch::Receiver<bool>,
    ) {
        let name = self.route.sink.clone();
        // Registered once the plugin proves to be a sink: connections list
        // guardrails and maskers too, whose "lag" would be the whole log.
        let mut lag: Option<metrics::Gauge> = None;
        let delivered_total =
            metrics::counter!("sluice_audit_sink_delivered_total", "sink" => name.clone());
        let failures =
            metrics::counter!("sluice_audit_sink_failures_total", "sink" => name.clone());
        let mut delivered = self.load_cursor();
        let mut reader: Option<LogReader> = None;
        let mut batch: Vec<AuditEvent> = Vec::new();
        let mut batch_end = delivered;
        let mut backoff = self.retry_initial;
        // Failures in a row, since when, and when one was last logged.
        let mut failing: Option<(u64, Instant, Instant)> = None;
        let mut last_persist = Instant::now();
        let mut persisted = delivered;
        let mut warned = false;
        loop {
            if *stopping.borrow() {
                self.persist(delivered, &mut persisted, &mut last_persist);
                return;
            }
            let head = *committed.borrow_and_update();
            let plugin = match host.get(&name) {
                Some(p) if p.kind() == PluginKind::AuditSink => {
                    lag.get_or_insert_with(
                        || metrics::gauge!("sluice_audit_sink_lag_records", "sink" => name.clone()),
                    )
                    .set(head.saturating_sub(delivered) as f64);
                    p
                }
                Some(p) => {
                    // Connections list guardrails and maskers too: only a
                    // name in [audit] sinks is expected to be a sink.
                    if self.route.all && !warned {
                        warned = true;
                        tracing::warn!(sink = %name, kind = %p.kind(),
                            "listed in [audit] sinks but not an audit sink; its events wait in the log");
                    }
                    pause(IDLE_POLL, &mut stopping).await;
                    continue;
                }
                None => {
                    pause(IDLE_POLL, &mut stopping).await;
                    continue;
                }
            };
            if batch.is_empty() {
                let (events, scanned_to) = match self.read(&mut reader, delivered, head).await {
                    Ok(x) => x,
                    Err(e) => {
                        failures.increment(1);
                        tracing::error!(sink = %name, "cannot read the audit log for delivery: {e}");
                        reader = None;
                        pause(self.retry_max, &mut stopping).await;
                        continue;
                    }
                };
                if scanned_to <= delivered {
                    tokio::select! {
                        _ = committed.changed() => {}
                        _ = pause(IDLE_POLL, &mut stopping) => {}
                    }
                    continue;
                }
                batch = events;
                batch_end = scanned_to;
                if batch.is_empty() {
                    // Only other connections' events: nothing to deliver,
                    // but the cursor moves past them.
                    delivered = batch_end;
                    if last_persist.elapsed() >= SKIP_PERSIST {
                        self.persist(delivered, &mut persisted, &mut last_persist);
                    }
                    continue;
                }
            }
            match plugin.deliver(&batch).await {
                Ok(()) => {
                    delivered_total.increment(batch.len() as u64);
                    delivered = batch_end;
                    batch.clear();
                    backoff = self.retry_initial;
                    self.persist(delivered, &mut persisted, &mut last_persist);
                    if let Some((n, since, _)) = failing.take() {
                        tracing::info!(sink = %name, failures = n, down_for = ?since.elapsed(), "audit sink accepts events again");
                    }
                }
                Err(failure) => {
                    failures.increment(1);
                    let now = Instant::now();
                    let (n, _, logged) = failing.get_or_insert((0, now, now));
                    *n += 1;
                    if *n == 1 || logged.elapsed() >= FAILURE_LOG_PERIOD {
                        *logged = now;
                        tracing::warn!(sink = %name, pending = head.saturating_sub(delivered),
                            retry_in = ?backoff, "audit sink failed; the events stay in the log: {failure}");
                    }
                    pause(backoff, &mut stopping).await;
                    backoff = (backoff * 2).min(self.retry_max);
                }
            }
        }
    }

    fn persist(&self, delivered: u64, persisted: &mut u64, last: &mut Instant) {
        if delivered == *persisted {
            return;
        }
        match self.save_cursor(delivered) {
            Ok(()) => {
                *persisted = delivered;
                *last = Instant::now();
            }
            // The sink has the events; a stale cursor only repeats them.
            Err(e) => {
                tracing::warn!(sink = %self.route.sink, "cannot save the delivery cursor: {e}")
            }
        }
    }
}
