//! Syncs the log off the writer thread.
//!
//! A checkpoint is only worth signing once the records it covers are on
//! stable storage, so its signed head is written after an `fdatasync` of the
//! segment; the head itself is written atomically (a synced temporary file,
//! a rename, a synced directory). Done by the writer, those three syncs held
//! every waiting statement for as long as the disk took, once per
//! `checkpoint_records`; a slow disk turned that into write-ahead timeouts.
//!
//! Here a thread of its own does them while the writer goes on appending.
//! Jobs do not queue up: a newer job replaces one not yet started, and its
//! sync covers everything the older one would have (an `fdatasync` covers
//! all that was written before it; a segment is synced when it is closed,
//! before its successor is opened). The head only ever moves forward.
//!
//! Not used for `fsync = "always"`, where each group is synced before it is
//! acknowledged, nor for the genesis and shutdown checkpoints, which the
//! writer syncs itself with this thread stopped.

use std::fs::File;
use std::path::PathBuf;
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use super::keys::Head;

/// At most one error line per this period while syncs keep failing.
const ERROR_LOG_PERIOD: Duration = Duration::from_secs(5);

/// A sync of the current segment and, for a checkpoint, the signed head to
/// write once it is done.
pub(crate) struct Job {
    /// A handle on the segment (`File::try_clone`: the same open file).
    pub(crate) file: File,
    pub(crate) head: Option<(Head, PathBuf)>,
}

#[derive(Default)]
struct Slot {
    job: Option<Job>,
    stop: bool,
}

#[derive(Default)]
struct Shared {
    slot: Mutex<Slot>,
    wake: Condvar,
}

pub(crate) struct Syncer {
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
}

impl Syncer {
    pub(crate) fn start() -> std::io::Result<Self> {
        let shared = Arc::new(Shared::default());
        let worker = shared.clone();
        let thread = std::thread::Builder::new()
            .name("sluice-audit-sync".into())
            .spawn(move || run(&worker))?;
        Ok(Self {
            shared,
            thread: Some(thread),
        })
    }

    /// Hands over a job; one not yet started is merged into it.
    pub(crate) fn submit(&self, mut job: Job) {
        let mut slot = lock(&self.shared.slot);
        if let Some(older) = slot.job.take()
            && job.head.is_none()
        {
            job.head = older.head;
        }
        slot.job = Some(job);
        self.shared.wake.notify_one();
    }

    /// Finishes the job in hand and any waiting one, then ends the thread.
    pub(crate) fn stop(mut self) {
        self.halt();
    }

    fn halt(&mut self) {
        lock(&self.shared.slot).stop = true;
        self.shared.wake.notify_one();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl Drop for Syncer {
    fn drop(&mut self) {
        self.halt();
    }
}

fn lock(slot: &Mutex<Slot>) -> std::sync::MutexGuard<'_, Slot> {
    // A job is taken or put whole: a panic cannot leave the slot half-done.
    slot.lock().unwrap_or_else(|e| e.into_inner())
}

fn run(shared: &Shared) {
    let mut last_error_log: Option<Instant> = None;
    loop {
        let job = {
            let mut slot = lock(&shared.slot);
            loop {
                if let Some(job) = slot.job.take() {
                    break job;
                }
                if slot.stop {
                    return;
                }
                slot = shared.wake.wait(slot).unwrap_or_else(|e| e.into_inner());
            }
        };
        let started = Instant::now();
        let outcome = job
            .file
            .sync_data()
            .map_err(|e| format!("fsync failed: {e}"))
            .and_then(|()| match &job.head {
                Some((head, path)) => head
                    .write(path)
                    .map_err(|e| format!("cannot write the signed head: {e}")),
                None => Ok(()),
            });
        metrics::histogram!("sluice_audit_sync_seconds").record(started.elapsed().as_secs_f64());
        if let Err(message) = outcome {
            metrics::counter!("sluice_audit_write_failures_total").increment(1);
            let now = Instant::now();
            if last_error_log.is_none_or(|t| now.duration_since(t) >= ERROR_LOG_PERIOD) {
                last_error_log = Some(now);
                tracing::error!("audit log: {message}");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audit::keys::SigningKey;

    #[test]
    fn a_waiting_job_is_merged_and_the_newest_head_is_written() {
        let dir = tempfile::tempdir().unwrap();
        let key = SigningKey::load_or_create(dir.path()).unwrap();
        let segment = dir.path().join("segment");
        let file = File::create(&segment).unwrap();
        let head_path = dir.path().join("head.json");
        let syncer = Syncer::start().unwrap();
        // Several jobs in a row: whatever is merged, the last head wins and
        // a later head-less sync does not drop it.
        for seq in 1..=50 {
            syncer.submit(Job {
                file: file.try_clone().unwrap(),
                head: Some((Head::new(&key, "log", seq, "h"), head_path.clone())),
            });
        }
        syncer.submit(Job {
            file: file.try_clone().unwrap(),
            head: None,
        });
        syncer.stop();
        let head = Head::read(&head_path).unwrap().unwrap();
        assert_eq!(head.seq, 50);
    }
}
