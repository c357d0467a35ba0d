//! The audit trail: an append-only, hash-chained log in `state_dir` with
//! signed checkpoints, and durable delivery of its records to audit-sink
//! plugins.
//!
//! Anything that happens in the gateway is described as an [`Event`] and
//! handed to [`Audit`]: [`Audit::emit`] queues it and returns at once (the
//! data path never waits for it); [`Audit::append`] waits until the record is
//! in the log, for write-ahead records that must exist before an action is
//! taken. One `Writer`, behind a lock, assigns sequence numbers,
//! chains and writes the records in groups: its thread writes queued events
//! and keeps the timers, and a write-ahead append commits itself under the
//! lock when the fsync policy lets it. The log itself is the spool the sinks
//! are fed from ([`delivery`]); `sluice audit verify` checks it ([`verify`]).

pub mod config;
pub mod delivery;
mod error;
pub mod event;
pub mod keys;
mod queue;
pub mod record;
pub mod store;
mod syncer;
pub mod verify;
mod writer;

use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::Sender;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use tokio::sync::{oneshot, watch};

pub use config::{AuditConfig, FsyncPolicy};
pub use error::AuditError;
pub use event::{EncodedIdentity, Event, EventIdentity, bounded_text, kinds};
pub use record::Record;
pub use store::{Layout, LogReader};
pub use writer::Opened;

use queue::Queued;
use writer::{Command, Item, Waiter, Writer, now_ms};

static DROPPED: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// The handle every part of the gateway records through. Cheap to clone.
#[derive(Clone)]
pub struct Audit {
    inner: Option<Arc<Inner>>,
}

struct Inner {
    tx: Sender<Command>,
    /// Shared with the writer thread; write-ahead records are committed
    /// under it by their callers when `inline`.
    writer: Arc<Mutex<Writer>>,
    inline: bool,
    /// Emitted events not yet handed to the writer (see [`queue`]).
    queued: Arc<Queued>,
    pending: Arc<AtomicUsize>,
    queue_limit: usize,
    write_ahead: bool,
    write_timeout: Duration,
    max_text_bytes: usize,
    committed: watch::Receiver<u64>,
    layout: Layout,
    opened: Opened,
    thread: Mutex<Option<JoinHandle<()>>>,
}

impl Audit {
    /// Opens the log in `state_dir` (recovering it after a crash) and
    /// starts its writer.
    pub fn open(state_dir: &Path, config: &AuditConfig) -> Result<Self, AuditError> {
        let layout = Layout::new(state_dir);
        let pending = Arc::new(AtomicUsize::new(0));
        let (committed_tx, committed) = watch::channel(0);
        let queued = Arc::new(Queued::default());
        let (writer, opened) = Writer::open(
            layout.clone(),
            config,
            committed_tx,
            pending.clone(),
            queued.clone(),
        )?;
        let inline = writer.is_inline();
        let writer = Arc::new(Mutex::new(writer));
        let (tx, rx) = std::sync::mpsc::channel();
        let thread_writer = writer.clone();
        let thread = std::thread::Builder::new()
            .name("sluice-audit".into())
            .spawn(move || writer::run(thread_writer, rx))
            .map_err(|e| AuditError::Write(format!("cannot start the writer thread: {e}")))?;
        Ok(Self {
            inner: Some(Arc::new(Inner {
                tx,
                writer,
                inline,
                queued,
                pending,
                queue_limit: config.queue_limit,
                write_ahead: config.write_ahead,
                write_timeout: Duration::from_millis(config.write_timeout_ms),
                max_text_bytes: config.max_text_bytes,
                committed,
                layout,
                opened,
                thread: Mutex::new(Some(thread)),
            })),
        })
    }

    /// A handle that records nothing, for embedding parts of the gateway
    /// (tests, `plugin check`) where no log is kept.
    pub fn discard() -> Self {
        Self { inner: None }
    }

    pub fn is_recording(&self) -> bool {
        self.inner.is_some()
    }

    /// What the log found when it opened.
    pub fn opened(&self) -> Option<&Opened> {
        self.inner.as_ref().map(|i| &i.opened)
    }

    pub fn layout(&self) -> Option<&Layout> {
        self.inner.as_ref().map(|i| &i.layout)
    }

    /// Longest statement text kept in a record.
    pub fn max_text_bytes(&self) -> usize {
        self.inner.as_ref().map_or(65536, |i| i.max_text_bytes)
    }

    /// Whether statements are recorded before they are forwarded.
    pub fn write_ahead(&self) -> bool {
        self.inner.as_ref().is_some_and(|i| i.write_ahead)
    }

    /// The sequence of the last record written (per the fsync policy),
    /// updated after every group commit.
    pub fn committed(&self) -> Option<watch::Receiver<u64>> {
        self.inner.as_ref().map(|i| i.committed.clone())
    }

    /// Queues an event and returns at once. It reaches the log with the next
    /// write-ahead record, or within a few milliseconds (see [`queue`]).
    /// If the writer is so far behind
    /// that `queue_limit` events wait, the event is dropped and counted
    /// (`sluice_audit_events_dropped_total`) rather than block the caller.
    pub fn emit(&self, event: Event) {
        let Some(inner) = &self.inner else { return };
        if inner.pending.load(Ordering::Relaxed) >= inner.queue_limit {
            metrics::counter!("sluice_audit_events_dropped_total").increment(1);
            // One line per doubling, not one per event, while it lasts.
            let n = DROPPED.fetch_add(1, Ordering::Relaxed) + 1;
            if n.is_power_of_two() {
                tracing::error!(kind = %event.kind, dropped = n, "audit queue full: events dropped");
            }
            return;
        }
        inner.pending.fetch_add(1, Ordering::Relaxed);
        let item = Item {
            event,
            time_ms: now_ms(),
            waiter: Waiter::Nobody,
        };
        if inner.queued.emit(item, &inner.tx).is_err() {
            inner.pending.fetch_sub(1, Ordering::Relaxed);
            metrics::counter!("sluice_audit_events_dropped_total").increment(1);
        }
    }

    /// Appends an event and waits until its record is in the log; returns
    /// its sequence. Fails (and the caller must not act) when the log cannot
    /// take it: a failed write, or, through the writer thread, not within
    /// `write_timeout_ms`.
    pub async fn append(&self, event: Event) -> Result<u64, AuditError> {
        let Some(inner) = &self.inner else {
            return Ok(0);
        };
        let waiting = inner.pending.load(Ordering::Relaxed);
        if waiting >= inner.queue_limit {
            return Err(AuditError::Overloaded(waiting));
        }
        // Busy (the writer thread rolling a segment, another append in its
        // write) or full (the writer thread rolls it): through the writer
        // thread, under `write_timeout`, rather than block this thread.
        if inner.inline
            && let Some(mut writer) = lock_writer_briefly(&inner.writer)
            && !writer.segment_full()
        {
            let result = writer.append_inline(Item {
                event,
                time_ms: now_ms(),
                waiter: Waiter::Inline,
            });
            drop(writer);
            inner.queued.wake_if_asleep(&inner.tx);
            return result;
        }
        let (reply, done) = oneshot::channel();
        inner.pending.fetch_add(1, Ordering::Relaxed);
        let item = Item {
            event,
            time_ms: now_ms(),
            waiter: Waiter::Channel(reply),
        };
        if inner.tx.send(Command::Append(item)).is_err() {
            inner.pending.fetch_sub(1, Ordering::Relaxed);
            return Err(AuditError::Closed);
        }
        match tokio::time::timeout(inner.write_timeout, done).await {
            Ok(Ok(result)) => result,
            Ok(Err(_)) => Err(AuditError::Closed),
            Err(_) => Err(AuditError::Timeout(inner.write_timeout.as_millis() as u64)),
        }
    }

    /// A write-ahead record: appended and awaited when `write_ahead` is on,
    /// queued otherwise. `Ok(None)` when not awaited.
    pub async fn record(&self, event: Event) -> Result<Option<u64>, AuditError> {
        if self.write_ahead() {
            self.append(event).await.map(Some)
        } else {
            self.emit(event);
            Ok(None)
        }
    }

    /// Writes what is queued and a final signed checkpoint, then stops the
    /// writer. Events emitted afterwards are dropped.
    pub async fn shutdown(&self) {
        let Some(inner) = &self.inner else { return };
        let (done, finished) = oneshot::channel();
        if inner.tx.send(Command::Shutdown(done)).is_ok()
            && tokio::time::timeout(Duration::from_secs(10), finished)
                .await
                .is_err()
        {
            tracing::error!("the audit writer did not finish within 10 s");
            return;
        }
        let thread = inner
            .thread
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take();
        if let Some(thread) = thread {
            let _ = tokio::task::spawn_blocking(move || thread.join()).await;
        }
    }
}

/// How long an append waits for the writer's lock on its own thread before
/// it goes through the writer thread instead.
const LOCK_WAIT: Duration = Duration::from_micros(200);

/// The writer's lock, if it comes free within [`LOCK_WAIT`]. Its holder is
/// usually another session's append (one `write(2)`): waiting that out on
/// this thread, yielding the core meanwhile, costs less than the two thread
/// wake-ups of a hand-over to the writer thread, which under load took a
/// third of the appends. A holder stuck longer (a slow disk, a segment
/// roll) is left to the writer thread and `write_timeout`.
fn lock_writer_briefly(writer: &Mutex<Writer>) -> Option<std::sync::MutexGuard<'_, Writer>> {
    let started = Instant::now();
    loop {
        if let Some(w) = try_lock_writer(writer) {
            return Some(w);
        }
        if started.elapsed() >= LOCK_WAIT {
            return None;
        }
        std::thread::yield_now();
    }
}

fn try_lock_writer(writer: &Mutex<Writer>) -> Option<std::sync::MutexGuard<'_, Writer>> {
    match writer.try_lock() {
        Ok(w) => Some(w),
        // A commit puts the chain back on every failure path.
        Err(std::sync::TryLockError::Poisoned(e)) => Some(e.into_inner()),
        Err(std::sync::TryLockError::WouldBlock) => None,
    }
}

/// Registers metric descriptions once, for `/metrics` readers.
pub fn describe_metrics() {
    metrics::describe_counter!(
        "sluice_audit_records_total",
        "Records appended to the audit log, checkpoints included"
    );
    metrics::describe_counter!(
        "sluice_audit_write_failures_total",
        "Group commits or syncs of the audit log that failed"
    );
    metrics::describe_counter!(
        "sluice_audit_events_dropped_total",
        "Events dropped because the audit queue was full"
    );
    metrics::describe_counter!(
        "sluice_audit_checkpoints_total",
        "Signed checkpoints written"
    );
    metrics::describe_gauge!(
        "sluice_audit_last_sequence",
        "Sequence of the last record written"
    );
    metrics::describe_histogram!(
        "sluice_audit_commit_seconds",
        "Time to write (and sync, per policy) one group of records"
    );
    metrics::describe_gauge!(
        "sluice_audit_sink_lag_records",
        "Records of the log not yet passed to an audit sink"
    );
    metrics::describe_counter!(
        "sluice_audit_sink_delivered_total",
        "Events an audit sink accepted"
    );
    metrics::describe_counter!(
        "sluice_audit_sink_failures_total",
        "Failed deliver calls to an audit sink (each retried)"
    );
}

#[cfg(test)]
mod tests;
