//! The one writer of the log, behind a lock: whoever holds it takes every
//! queued event, appends the whole group with one `write(2)` (group
//! commit), syncs per the fsync policy, and only then acknowledges the
//! group's waiters. A write-ahead append commits under the lock on its own
//! thread when the policy needs no sync per group ([`Writer::append_inline`]);
//! the writer thread ([`run`]) writes everything else, keeps the timers,
//! writes the signed checkpoints that are due and rolls segments. Syncs
//! that no waiter needs (interval syncs, checkpoints and their signed
//! heads) are left to the [`Syncer`] thread.

use std::collections::VecDeque;
use std::fs::{self, File};
use std::io::Write as _;
use std::os::unix::fs::DirBuilderExt as _;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde_json::Value;
use tokio::sync::{oneshot, watch};

use super::config::{AuditConfig, FsyncPolicy};
use super::error::AuditError;
use super::event::{Event, kinds};
use super::keys::{Head, SigningKey, checkpoint_message};
use super::queue::{IDLE_AFTER, LINGER, Queued};
use super::record::{DetailRef, IdentityRef, RecordView, ZERO_HASH, record_id};
use super::store::{Layout, Recovered, TornTail, open_append, random_id, recover};
use super::syncer::{Job, Syncer};

/// Most events written in one group commit.
const MAX_GROUP: usize = 4096;
/// Pause before retrying queued events after a failed write.
const RETRY_AFTER: Duration = Duration::from_secs(1);
/// At most one error line per this period while writes keep failing.
const ERROR_LOG_PERIOD: Duration = Duration::from_secs(5);

pub(crate) type Reply = oneshot::Sender<Result<u64, AuditError>>;

/// Who waits for an item's record.
pub(crate) enum Waiter {
    /// An emitted event: written when the writer gets to it.
    Nobody,
    /// A write-ahead record sent to the writer thread.
    Channel(Reply),
    /// A write-ahead record the caller commits itself ([`Writer::append_inline`]).
    Inline,
}

// Appends are the hot path and Shutdown happens once: boxing the event
// would cost an allocation per record to save bytes on one message.
#[allow(clippy::large_enum_variant)]
pub(crate) enum Command {
    Append(Item),
    Shutdown(oneshot::Sender<()>),
    /// Emitted events wait in [`Queued`] for a writer that sleeps.
    Wake,
}

pub(crate) struct Item {
    pub(crate) event: Event,
    pub(crate) time_ms: u64,
    pub(crate) waiter: Waiter,
}

/// What the log found when it opened.
#[derive(Debug, Clone)]
pub struct Opened {
    pub log_id: String,
    /// `None` for a new log.
    pub previous_shutdown_clean: Option<bool>,
    pub torn: Option<TornTail>,
    pub next_seq: u64,
}

pub(crate) struct Writer {
    layout: Layout,
    fsync: FsyncPolicy,
    fsync_interval: Duration,
    checkpoint_records: u64,
    checkpoint_interval: Duration,
    segment_bytes: u64,
    retry_limit: usize,
    key: SigningKey,
    log_id: String,
    file: File,
    segment_len: u64,
    next_seq: u64,
    prev: String,
    uncheckpointed: u64,
    uncheckpointed_since: Option<Instant>,
    unsynced_since: Option<Instant>,
    committed: watch::Sender<u64>,
    pending: Arc<AtomicUsize>,
    retry: VecDeque<Item>,
    retry_at: Option<Instant>,
    queued: Arc<Queued>,
    last_event: Instant,
    last_error_log: Option<Instant>,
    /// `None` while the log opens and once it shuts down (those checkpoints
    /// are synced here), and for `fsync = "always"`.
    syncer: Option<Syncer>,
    /// Set once the final checkpoint is written: nothing is appended after it.
    finished: bool,
    _lock: File,
}

pub(crate) fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

impl Writer {
    /// Opens (or starts) the log: takes the lock, recovers the end of the
    /// chain, and writes the genesis checkpoint of a new log.
    pub(crate) fn open(
        layout: Layout,
        config: &AuditConfig,
        committed: watch::Sender<u64>,
        pending: Arc<AtomicUsize>,
        queued: Arc<Queued>,
    ) -> Result<(Writer, Opened), AuditError> {
        let segments = layout.segments_dir();
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&segments)
            .map_err(|e| AuditError::io(&segments, e))?;
        let lock_path = layout.lock();
        let lock = File::create(&lock_path).map_err(|e| AuditError::io(&lock_path, e))?;
        match lock.try_lock() {
            Ok(()) => {}
            Err(fs::TryLockError::WouldBlock) => return Err(AuditError::Locked(layout.dir)),
            Err(fs::TryLockError::Error(e)) => return Err(AuditError::io(&lock_path, e)),
        }
        let key = SigningKey::load_or_create(&layout.dir)?;
        let recovered = recover(&layout)?;
        let (fresh, torn, clean) = match &recovered {
            None => (true, None, None),
            Some(r) => (r.log_id.is_empty(), r.torn.clone(), Some(r.clean_shutdown)),
        };
        let (log_id, next_seq, prev, segment_path, segment_len) = match recovered {
            Some(Recovered {
                log_id,
                next_seq,
                prev,
                segment,
                segment_len,
                ..
            }) if !fresh => (log_id, next_seq, prev, segment.path, segment_len),
            _ => (random_id()?, 1, ZERO_HASH.to_string(), layout.segment(1), 0),
        };
        if !fresh
            && let Some(head) = Head::read(&layout.head())?
            && head.log_id == log_id
            && head.seq >= next_seq
        {
            return Err(AuditError::Corrupt(format!(
                "the log ends at record {} but its signed head names record {}: records were \
                 removed; run `sluice audit verify`",
                next_seq - 1,
                head.seq
            )));
        }
        let file = open_append(&segment_path)?;
        let mut writer = Writer {
            fsync: config.fsync,
            fsync_interval: Duration::from_millis(config.fsync_interval_ms),
            checkpoint_records: config.checkpoint_records,
            checkpoint_interval: Duration::from_secs(config.checkpoint_interval_secs),
            segment_bytes: config.segment_bytes(),
            retry_limit: config.queue_limit,
            key,
            log_id: log_id.clone(),
            file,
            segment_len,
            next_seq,
            prev,
            uncheckpointed: 0,
            uncheckpointed_since: None,
            unsynced_since: None,
            committed,
            pending,
            retry: VecDeque::new(),
            retry_at: None,
            queued,
            last_event: Instant::now(),
            last_error_log: None,
            syncer: None,
            finished: false,
            layout,
            _lock: lock,
        };
        writer.committed.send_replace(next_seq - 1);
        if fresh {
            writer
                .commit(Vec::new(), Some("genesis"), &mut None)
                .map_err(|e| AuditError::Write(format!("cannot start the log: {e}")))?;
        }
        let opened = Opened {
            log_id,
            previous_shutdown_clean: if fresh { None } else { clean },
            torn: torn.clone(),
            next_seq: writer.next_seq,
        };
        if let Some(t) = torn {
            let event = Event::new(kinds::RECOVERED)
                .with(
                    "reason",
                    "the last record was incomplete (interrupted write)",
                )
                .with("segment", t.segment.display().to_string())
                .with("offset", t.offset)
                .with("bytes", t.bytes)
                .with("saved_to", t.saved_to.display().to_string());
            writer.commit(
                vec![Item {
                    event,
                    time_ms: now_ms(),
                    waiter: Waiter::Nobody,
                }],
                None,
                &mut None,
            )?;
        }
        if writer.fsync != FsyncPolicy::Always {
            match Syncer::start() {
                Ok(syncer) => writer.syncer = Some(syncer),
                Err(e) => {
                    tracing::warn!("audit log: no sync thread ({e}); the writer syncs itself")
                }
            }
        }
        Ok((writer, opened))
    }

    /// Appends `event` after everything emitted before it, on the caller's
    /// thread: one locked `write(2)` instead of a hand-over to the writer
    /// thread and back, which cost two wake-ups per statement. Only for
    /// policies that do not sync each group (`fsync = "always"` goes
    /// through the writer thread, which may block on the disk).
    pub(crate) fn append_inline(&mut self, item: Item) -> Result<u64, AuditError> {
        if self.finished {
            return Err(AuditError::Closed);
        }
        let mut items = self.queued.take_items();
        self.pending.fetch_sub(items.len(), Ordering::Relaxed);
        items.push(item);
        self.last_event = Instant::now();
        let mut inline = None;
        if let Err(e) = self.commit(items, None, &mut inline) {
            self.report(&e.to_string());
        }
        inline.unwrap_or(Err(AuditError::Closed))
    }

    pub(crate) fn segment_full(&self) -> bool {
        self.segment_len >= self.segment_bytes
    }

    pub(crate) fn is_inline(&self) -> bool {
        self.fsync != FsyncPolicy::Always
    }
}

fn lock(writer: &Mutex<Writer>) -> MutexGuard<'_, Writer> {
    // A commit puts the chain back on every failure path before it returns.
    writer.lock().unwrap_or_else(|e| e.into_inner())
}

/// The writer thread: emitted events, timers (syncs, checkpoints, retries,
/// segment rolls) and, for `fsync = "always"`, write-ahead records.
pub(crate) fn run(writer: Arc<Mutex<Writer>>, rx: Receiver<Command>) {
    loop {
        let timeout = lock(&writer).sleep_timeout();
        let first = match rx.recv_timeout(timeout) {
            Ok(c) => Some(c),
            Err(RecvTimeoutError::Timeout) => None,
            Err(RecvTimeoutError::Disconnected) => {
                let mut w = lock(&writer);
                let queued = w.queued.take();
                w.pending.fetch_sub(queued.len(), Ordering::Relaxed);
                w.write_group(queued, None);
                w.finish();
                return;
            }
        };
        let mut items = Vec::new();
        let mut shutdown = None;
        let mut next = first;
        while let Some(command) = next {
            match command {
                Command::Append(item) => items.push(item),
                Command::Wake => {}
                Command::Shutdown(done) => {
                    shutdown = Some(done);
                    break;
                }
            }
            if items.len() >= MAX_GROUP {
                break;
            }
            next = rx.try_recv().ok();
        }
        // Queued events are taken under the lock that inline appends
        // commit under, so that no session's records change order.
        let mut w = lock(&writer);
        if shutdown.is_none() {
            let mut queued = w.queued.take();
            queued.append(&mut items);
            items = queued;
        }
        if !items.is_empty() {
            w.last_event = Instant::now();
        }
        w.pending.fetch_sub(items.len(), Ordering::Relaxed);
        if let Some(done) = shutdown {
            // Everything queued before the shutdown is written first.
            let counted = items.len();
            while let Ok(command) = rx.try_recv() {
                match command {
                    Command::Append(item) => items.push(item),
                    Command::Shutdown(_) | Command::Wake => {}
                }
            }
            let mut queued = w.queued.take();
            w.pending
                .fetch_sub(items.len() + queued.len() - counted, Ordering::Relaxed);
            let mut all: Vec<Item> = w.retry.drain(..).collect();
            all.append(&mut queued);
            all.append(&mut items);
            w.write_group(all, None);
            w.finish();
            let _ = done.send(());
            return;
        }
        w.tick(items);
    }
}

impl Writer {
    /// How long to sleep: until a timer is due, and no longer than
    /// [`LINGER`] while events flow (emitted ones do not wake the writer).
    fn sleep_timeout(&mut self) -> Duration {
        let due = self.idle_timeout();
        if self.last_event.elapsed() < IDLE_AFTER {
            due.min(LINGER)
        } else if self.queued.sleep() {
            due
        } else {
            Duration::ZERO
        }
    }

    /// How long to wait for events before a timer is due.
    fn idle_timeout(&self) -> Duration {
        let now = Instant::now();
        let due = [
            self.unsynced_since.map(|t| t + self.fsync_interval),
            self.uncheckpointed_since
                .map(|t| t + self.checkpoint_interval),
            self.retry_at,
        ];
        due.into_iter()
            .flatten()
            .min()
            .map(|t| t.saturating_duration_since(now))
            .unwrap_or(Duration::from_secs(3600))
    }

    fn tick(&mut self, mut items: Vec<Item>) {
        let now = Instant::now();
        if self.retry_at.is_some_and(|t| t <= now) {
            self.retry_at = None;
            let mut retried: Vec<Item> = self.retry.drain(..).collect();
            retried.append(&mut items);
            items = retried;
        }
        let checkpoint_due = self
            .uncheckpointed_since
            .is_some_and(|t| t + self.checkpoint_interval <= now);
        if !items.is_empty() || checkpoint_due {
            self.write_group(items, checkpoint_due.then_some("interval"));
        }
        if self
            .unsynced_since
            .is_some_and(|t| t + self.fsync_interval <= Instant::now())
        {
            match self.hand_over(None) {
                Ok(()) => self.unsynced_since = None,
                Err(e) => self.report(&format!("fsync failed: {e}")),
            }
        }
    }

    /// Syncs the segment (then writes `head`) on the sync thread, or here
    /// when there is none or the file cannot be shared with it.
    fn hand_over(&mut self, head: Option<Head>) -> std::io::Result<()> {
        let head = head.map(|h| (h, self.layout.head()));
        if let Some(syncer) = &self.syncer
            && let Ok(file) = self.file.try_clone()
        {
            syncer.submit(Job { file, head });
            return Ok(());
        }
        self.file.sync_data()?;
        if let Some((head, _)) = head {
            self.write_head(&head);
        }
        Ok(())
    }

    /// Writes the signed head; the segment is synced through its checkpoint.
    fn write_head(&mut self, head: &Head) {
        if let Err(e) = head.write(&self.layout.head()) {
            self.report(&format!("cannot write the signed head: {e}"));
        }
    }

    fn write_group(&mut self, items: Vec<Item>, checkpoint: Option<&'static str>) {
        if items.is_empty() && checkpoint.is_none() {
            return;
        }
        if let Err(e) = self.commit(items, checkpoint, &mut None) {
            self.report(&e.to_string());
        }
        // Rolled here, not in `commit`: the full segment is synced first,
        // and inline appends must not wait for a disk.
        if self.segment_full()
            && let Err(e) = self.roll()
        {
            self.report(&format!("cannot start a new segment: {e}"));
        }
    }

    /// Clean shutdown: a final checkpoint, synced, and its head written
    /// after any the sync thread still had.
    fn finish(&mut self) {
        if let Some(syncer) = self.syncer.take() {
            syncer.stop();
        }
        if let Err(e) = self.commit(Vec::new(), Some("shutdown"), &mut None) {
            self.report(&format!("final checkpoint: {e}"));
        }
        self.finished = true;
    }

    fn report(&mut self, message: &str) {
        metrics::counter!("sluice_audit_write_failures_total").increment(1);
        let now = Instant::now();
        if self
            .last_error_log
            .is_none_or(|t| now.duration_since(t) >= ERROR_LOG_PERIOD)
        {
            self.last_error_log = Some(now);
            tracing::error!("audit log: {message}");
        }
    }

    fn push_record(
        &mut self,
        buf: &mut Vec<u8>,
        kind: &str,
        event: Option<&Event>,
        detail: DetailRef<'_>,
        time_ms: u64,
    ) -> Result<(u64, String), AuditError> {
        let seq = self.next_seq;
        let id = record_id(&self.log_id, seq);
        let record = RecordView {
            seq,
            id: &id,
            time_ms,
            kind,
            session: event.and_then(|e| e.session_id.as_deref()),
            connection: event.and_then(|e| e.connection.as_deref()),
            identity: event
                .and_then(|e| e.identity.as_ref())
                .map(|i| IdentityRef::Encoded(i.raw())),
            detail,
            prev: &self.prev,
        };
        let hash = record
            .encode_into(buf)
            .map_err(|e| AuditError::Write(format!("cannot encode a record: {e}")))?;
        self.prev.clone_from(&hash);
        self.next_seq += 1;
        Ok((seq, hash))
    }

    fn checkpoint_detail(&self, reason: &str) -> serde_json::Map<String, Value> {
        let covers = self.next_seq - 1;
        let signature = self
            .key
            .sign(&checkpoint_message(&self.log_id, covers, &self.prev));
        let public = self.key.public();
        let mut d = serde_json::Map::new();
        d.insert("reason".into(), reason.into());
        d.insert("log_id".into(), self.log_id.clone().into());
        d.insert("covers".into(), covers.into());
        d.insert("key_id".into(), public.key_id.clone().into());
        d.insert("public_key".into(), public.base64().into());
        d.insert("signature".into(), signature.into());
        d
    }

    /// Appends one group (and a checkpoint when due or asked for), syncs per
    /// policy, then acknowledges. On failure the file and the chain are put
    /// back as they were; waiters get the error, the other events are kept
    /// for a retry. An [`Waiter::Inline`] item's outcome goes to `inline`.
    fn commit(
        &mut self,
        items: Vec<Item>,
        checkpoint: Option<&'static str>,
        inline: &mut Option<Result<u64, AuditError>>,
    ) -> Result<(), AuditError> {
        let started = Instant::now();
        let saved = (
            self.next_seq,
            self.prev.clone(),
            self.uncheckpointed,
            self.uncheckpointed_since,
        );
        let mut buf = Vec::with_capacity(items.len() * 512);
        let mut acks = Vec::with_capacity(items.len());
        let mut kept = Vec::new();
        for item in items {
            match self.push_record(
                &mut buf,
                &item.event.kind,
                Some(&item.event),
                item.event.detail.view(),
                item.time_ms,
            ) {
                Ok((seq, _)) => {
                    acks.push((item.waiter, seq));
                    kept.push((item.event, item.time_ms));
                }
                Err(e) => match item.waiter {
                    Waiter::Channel(reply) => {
                        let _ = reply.send(Err(e));
                    }
                    Waiter::Inline => *inline = Some(Err(e)),
                    Waiter::Nobody => {}
                },
            }
        }
        self.uncheckpointed += acks.len() as u64;
        if !acks.is_empty() {
            self.uncheckpointed_since.get_or_insert(started);
        }
        let reason =
            checkpoint.or((self.uncheckpointed >= self.checkpoint_records).then_some("records"));
        let mut head = None;
        let mut written = Ok(());
        if let Some(reason) = reason {
            let detail = self.checkpoint_detail(reason);
            match self.push_record(
                &mut buf,
                kinds::CHECKPOINT,
                None,
                DetailRef::Fields(&detail),
                now_ms(),
            ) {
                Ok(h) => head = Some(h),
                Err(e) => written = Err(e),
            }
        }
        // A checkpoint's sync is left to the sync thread when there is one.
        let sync = self.fsync == FsyncPolicy::Always || (head.is_some() && self.syncer.is_none());
        if written.is_ok() {
            written = self
                .file
                .write_all(&buf)
                .and_then(|()| if sync { self.file.sync_data() } else { Ok(()) })
                .map_err(|e| AuditError::Write(e.to_string()));
        }
        if let Err(error) = written {
            // Cut off whatever part of the group reached the file, so the
            // next group continues the chain from the last good record.
            let _ = self.file.set_len(self.segment_len);
            (
                self.next_seq,
                self.prev,
                self.uncheckpointed,
                self.uncheckpointed_since,
            ) = saved;
            self.keep_for_retry(acks, kept, &error, inline);
            return Err(error);
        }
        self.segment_len += buf.len() as u64;
        if sync {
            self.unsynced_since = None;
        } else if self.fsync == FsyncPolicy::Interval {
            self.unsynced_since.get_or_insert(started);
        }
        let head_written = head.is_some();
        if let Some((seq, hash)) = head {
            self.uncheckpointed = 0;
            self.uncheckpointed_since = None;
            metrics::counter!("sluice_audit_checkpoints_total").increment(1);
            let head = Head::new(&self.key, &self.log_id, seq, &hash);
            if sync {
                self.write_head(&head);
            } else {
                match self.hand_over(Some(head)) {
                    Ok(()) => self.unsynced_since = None,
                    Err(e) => self.report(&format!("fsync failed: {e}")),
                }
            }
        }
        let last = self.next_seq - 1;
        metrics::counter!("sluice_audit_records_total")
            .increment(acks.len() as u64 + u64::from(head_written));
        self.committed.send_replace(last);
        metrics::gauge!("sluice_audit_last_sequence").set(last as f64);
        metrics::histogram!("sluice_audit_commit_seconds").record(started.elapsed().as_secs_f64());
        for (waiter, seq) in acks {
            match waiter {
                Waiter::Channel(reply) => {
                    let _ = reply.send(Ok(seq));
                }
                Waiter::Inline => *inline = Some(Ok(seq)),
                Waiter::Nobody => {}
            }
        }
        Ok(())
    }

    /// Waiters get the error; events nobody waits for are written later.
    fn keep_for_retry(
        &mut self,
        acks: Vec<(Waiter, u64)>,
        kept: Vec<(Event, u64)>,
        error: &AuditError,
        inline: &mut Option<Result<u64, AuditError>>,
    ) {
        for ((waiter, _), (event, time_ms)) in acks.into_iter().zip(kept) {
            match waiter {
                Waiter::Channel(reply) => {
                    let _ = reply.send(Err(error.clone()));
                }
                // Refused, so never written: nobody may later find a
                // record of an action that was not taken.
                Waiter::Inline => *inline = Some(Err(error.clone())),
                Waiter::Nobody if self.retry.len() < self.retry_limit => {
                    self.retry.push_back(Item {
                        event,
                        time_ms,
                        waiter: Waiter::Nobody,
                    })
                }
                Waiter::Nobody => {
                    metrics::counter!("sluice_audit_events_dropped_total").increment(1)
                }
            }
        }
        if !self.retry.is_empty() {
            self.retry_at = Some(Instant::now() + RETRY_AFTER);
        }
    }

    /// Starts the next segment. The full one is synced first, so that a
    /// segment is never newer on disk than the one before it.
    fn roll(&mut self) -> Result<(), AuditError> {
        let path = self.layout.segment(self.next_seq);
        self.file
            .sync_data()
            .map_err(|e| AuditError::io(&path, e))?;
        let file = open_append(&path)?;
        super::keys::sync_dir(&self.layout.segments_dir())?;
        self.file = file;
        self.segment_len = 0;
        self.unsynced_since = None;
        Ok(())
    }
}
