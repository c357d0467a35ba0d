//! Session recordings: one file per session in `<state_dir>/sessions/`,
//! written as the session runs, replayable and exportable afterwards.
//!
//! A recording is JSON lines ([`entry`]): a header, one entry per
//! PostgreSQL statement (or batch) and per HTTP exchange, and an end line.
//! Each entry reaches the file with one `write(2)` before the client is
//! answered (a PostgreSQL statement is recorded before its ReadyForQuery is
//! sent on), so a crash of the gateway, `kill -9` included, loses nothing
//! the client saw acknowledged; a recording left without its end line gets
//! one (`interrupted`) when the gateway next starts.
//!
//! Recordings hold what the agent sent and what it received: statement
//! texts and parameters, and results or bodies only as they left the
//! gateway, after masking. The agent's own credential is never written.
//!
//! The protocol paths only build entries; readers ([`read`]), the replay
//! transcript ([`transcript`]), the HAR export ([`har`]) and retention
//! ([`retention`]) work on the files. A protocol added later (SSH) adds an
//! entry type, and its exporter (asciicast) beside [`har`].

pub mod api;
pub mod config;
pub mod entry;
pub mod har;
pub mod read;
pub mod retention;
pub mod transcript;

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use dashmap::DashSet;

pub use config::RecordingConfig;
pub use entry::{End, Entry, Header};

use crate::audit::{Audit, Event};

#[derive(Debug, thiserror::Error)]
pub enum RecordingError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("no recording of session {0}")]
    NotFound(String),
    #[error("\"{0}\" matches several recordings; give more of the id")]
    Ambiguous(String),
    #[error("\"{0}\" is not a session id")]
    BadId(String),
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> RecordingError + '_ {
    move |source| RecordingError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Where recordings live under a state directory.
pub fn sessions_dir(state_dir: &Path) -> PathBuf {
    state_dir.join("sessions")
}

/// Session ids are generated hex; anything else never names a file.
pub fn valid_id(id: &str) -> bool {
    !id.is_empty() && id.len() <= 64 && id.bytes().all(|b| b.is_ascii_hexdigit())
}

pub(crate) fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// Starts recordings. Cheap to clone; [`Recorder::disabled`] records nothing.
#[derive(Clone)]
pub struct Recorder {
    inner: Option<Arc<Shared>>,
}

pub(crate) struct Shared {
    dir: PathBuf,
    config: RecordingConfig,
    audit: Audit,
    /// Sessions being written: retention leaves their files alone.
    live: DashSet<String>,
}

impl Recorder {
    /// Opens `<state_dir>/sessions`, closing recordings a previous run left
    /// without an end line.
    pub fn open(
        state_dir: &Path,
        config: &RecordingConfig,
        audit: Audit,
    ) -> Result<Self, RecordingError> {
        if !config.enabled {
            return Ok(Self::disabled());
        }
        let dir = sessions_dir(state_dir);
        std::fs::create_dir_all(&dir).map_err(io(&dir))?;
        let recovered = recover(&dir)?;
        if !recovered.is_empty() {
            tracing::warn!(
                sessions = recovered.len(),
                "recordings of sessions interrupted by the last stop were closed"
            );
        }
        Ok(Self {
            inner: Some(Arc::new(Shared {
                dir,
                config: config.clone(),
                audit,
                live: DashSet::new(),
            })),
        })
    }

    pub fn disabled() -> Self {
        Self { inner: None }
    }

    pub fn is_enabled(&self) -> bool {
        self.inner.is_some()
    }

    pub fn config(&self) -> Option<&RecordingConfig> {
        self.inner.as_ref().map(|s| &s.config)
    }

    pub fn dir(&self) -> Option<&Path> {
        self.inner.as_ref().map(|s| s.dir.as_path())
    }

    pub(crate) fn shared(&self) -> Option<&Arc<Shared>> {
        self.inner.as_ref()
    }

    /// Creates the session's file and writes its header. `Ok(None)` when
    /// recording is off. An error means the session cannot be recorded;
    /// callers refuse it rather than run it unrecorded.
    pub fn begin(&self, header: Header) -> Result<Option<Arc<Recording>>, RecordingError> {
        let Some(shared) = &self.inner else {
            return Ok(None);
        };
        if !valid_id(&header.id) {
            return Err(RecordingError::BadId(header.id));
        }
        let path = shared.dir.join(format!("{}.jsonl", header.id));
        let file = OpenOptions::new()
            .create_new(true)
            .append(true)
            .open(&path)
            .map_err(io(&path))?;
        shared.live.insert(header.id.clone());
        let recording = Arc::new(Recording {
            id: header.id.clone(),
            path,
            started_ms: header.started_ms,
            shared: shared.clone(),
            next: AtomicU64::new(1),
            state: Mutex::new(WriteState {
                file: Some(file),
                ..WriteState::default()
            }),
        });
        recording.write_line(&Entry::Session(header), true)?;
        metrics::counter!("sluice_recordings_started_total").increment(1);
        Ok(Some(recording))
    }
}

#[derive(Default)]
struct WriteState {
    file: Option<File>,
    bytes: u64,
    entries: u64,
    dropped: u64,
    truncated: bool,
    ended: bool,
    /// Requests offered to the recording (written or past the size limit),
    /// for the end line.
    allowed: u64,
    refused: u64,
    exchanges: u64,
}

/// One session's recording, shared by the tasks of that session.
pub struct Recording {
    id: String,
    path: PathBuf,
    started_ms: u64,
    shared: Arc<Shared>,
    next: AtomicU64,
    state: Mutex<WriteState>,
}

impl Recording {
    pub fn id(&self) -> &str {
        &self.id
    }

    pub fn config(&self) -> &RecordingConfig {
        &self.shared.config
    }

    /// The next entry number, taken when a request arrives so that the
    /// replay shows requests in the order they were sent even when their
    /// entries are written as they complete.
    pub fn next_n(&self) -> u64 {
        self.next.fetch_add(1, Ordering::Relaxed)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, WriteState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Appends an entry. A write failure is logged, counted and put in the
    /// audit log; the session goes on (the audit log still records it).
    pub fn write(&self, entry: &Entry) {
        if let Err(e) = self.write_line(entry, false) {
            self.failed(&e);
        }
    }

    fn write_line(&self, entry: &Entry, force: bool) -> Result<(), RecordingError> {
        let mut line = serde_json::to_vec(entry).unwrap_or_else(|e| {
            // Entries are plain data; should one ever fail to serialise, the
            // file still shows that something was here.
            format!(
                "{{\"type\":\"unserialisable\",\"error\":{:?}}}",
                e.to_string()
            )
            .into_bytes()
        });
        line.push(b'\n');
        let limit = self.shared.config.max_session_bytes;
        let mut s = self.lock();
        if s.ended {
            return Ok(());
        }
        match entry {
            Entry::Statement(st) if st.verdict == "allow" => s.allowed += 1,
            // The server discarded it: neither allowed nor refused.
            Entry::Statement(st) if st.verdict == "skip" => {}
            Entry::Statement(_) => s.refused += 1,
            Entry::Http(_) => s.exchanges += 1,
            _ => {}
        }
        if !force && (s.truncated || s.bytes + line.len() as u64 > limit) {
            s.dropped += 1;
            if !s.truncated {
                s.truncated = true;
                let mark = Entry::Truncated(entry::Truncated {
                    time_ms: now_ms(),
                    limit_bytes: limit,
                });
                let mut mark = serde_json::to_vec(&mark).unwrap_or_default();
                mark.push(b'\n');
                Self::append(&mut s, &self.path, &mark)?;
            }
            return Ok(());
        }
        Self::append(&mut s, &self.path, &line)
    }

    /// `line` ends with its newline.
    fn append(s: &mut WriteState, path: &Path, line: &[u8]) -> Result<(), RecordingError> {
        let Some(file) = s.file.as_mut() else {
            return Ok(());
        };
        match file.write_all(line) {
            Ok(()) => {
                s.bytes += line.len() as u64;
                s.entries += 1;
                metrics::counter!("sluice_recording_bytes_total").increment(line.len() as u64);
                Ok(())
            }
            Err(e) => {
                // Stop writing: a torn line followed by more lines would
                // leave a file readers have to repair.
                s.file = None;
                Err(io(path)(e))
            }
        }
    }

    fn failed(&self, e: &RecordingError) {
        metrics::counter!("sluice_recording_write_failures_total").increment(1);
        tracing::error!(session = %self.id, "session recording failed: {e}");
        self.shared.audit.emit(
            Event::new(crate::audit::kinds::RECORDING_FAILED)
                .session_id(self.id.clone())
                .with("error", e.to_string()),
        );
    }

    /// Writes the end line (past the size limit too) and closes the file.
    /// The counts are the recording's own: requests it was given.
    pub fn end(&self, mut end: End) {
        {
            let s = self.lock();
            end.entries = s.entries;
            end.dropped = s.dropped;
            end.statements_allowed = s.allowed;
            end.statements_refused = s.refused;
            end.exchanges = s.exchanges;
        }
        if end.time_ms == 0 {
            end.time_ms = now_ms();
        }
        end.duration_ms = end.time_ms.saturating_sub(self.started_ms);
        if let Err(e) = self.write_line(&Entry::End(end), true) {
            self.failed(&e);
        }
        let mut s = self.lock();
        s.ended = true;
        s.file = None;
        drop(s);
        self.shared.live.remove(&self.id);
    }
}

impl Drop for Recording {
    fn drop(&mut self) {
        // A session task that ended without saying how (a panic) still
        // leaves a closed recording.
        if !self.lock().ended {
            self.end(End {
                ending: "aborted".into(),
                ..End::default()
            });
        }
    }
}

/// Closes recordings without an end line: a torn last line (the write the
/// crash interrupted) is cut off, then an `interrupted` end is appended.
fn recover(dir: &Path) -> Result<Vec<String>, RecordingError> {
    let mut recovered = Vec::new();
    for item in std::fs::read_dir(dir).map_err(io(dir))? {
        let Ok(item) = item else { continue };
        let path = item.path();
        let Some(id) = read::id_of(&path) else {
            continue;
        };
        let tail = match read::tail(&path) {
            Ok(t) => t,
            Err(e) => {
                tracing::warn!("{e}");
                continue;
            }
        };
        if tail.ended.is_some() {
            continue;
        }
        if let Err(e) = close_interrupted(&path, &tail) {
            tracing::warn!(
                "cannot close the interrupted recording {}: {e}",
                path.display()
            );
            continue;
        }
        recovered.push(id);
    }
    Ok(recovered)
}

fn close_interrupted(path: &Path, tail: &read::Tail) -> std::io::Result<()> {
    let mut file = OpenOptions::new().read(true).write(true).open(path)?;
    let len = file.seek(SeekFrom::End(0))?;
    if tail.complete_len < len {
        file.set_len(tail.complete_len)?;
    }
    // Count the entries the file holds (only interrupted files are read
    // whole, and only once).
    file.seek(SeekFrom::Start(0))?;
    let mut text = Vec::new();
    file.read_to_end(&mut text)?;
    let entries = text.iter().filter(|b| **b == b'\n').count() as u64;
    let header = read::header_of(&text);
    let started = header.as_ref().map_or(0, |h| h.started_ms);
    let last = tail.last_time_ms.unwrap_or(started);
    // The counts the session kept in memory are lost with it: rebuilt from
    // what the file holds.
    let mut end = End {
        time_ms: last,
        duration_ms: last.saturating_sub(started),
        ending: "interrupted".into(),
        error: Some("the gateway stopped before the session ended".into()),
        entries,
        ..End::default()
    };
    let mut truncated = false;
    for line in text.split(|b| *b == b'\n') {
        match serde_json::from_slice::<Entry>(line) {
            Ok(Entry::Statement(s)) if s.verdict == "allow" => end.statements_allowed += 1,
            Ok(Entry::Statement(s)) if s.verdict == "skip" => {}
            Ok(Entry::Statement(_)) => end.statements_refused += 1,
            Ok(Entry::Http(_)) => end.exchanges += 1,
            Ok(Entry::Truncated(_)) => truncated = true,
            _ => {}
        }
    }
    if truncated {
        end.error = Some(
            "the gateway stopped before the session ended; the recording had reached its size \
             limit, so the counts and duration cover only what it holds (the audit log has every \
             statement)"
                .into(),
        );
    }
    let end = Entry::End(end);
    let mut line = serde_json::to_vec(&end).map_err(std::io::Error::other)?;
    line.push(b'\n');
    file.seek(SeekFrom::End(0))?;
    file.write_all(&line)?;
    file.sync_data()
}

/// Registers metric descriptions once, for `/metrics` readers.
pub fn describe_metrics() {
    metrics::describe_counter!(
        "sluice_recordings_started_total",
        "Session recordings started"
    );
    metrics::describe_counter!(
        "sluice_recording_bytes_total",
        "Bytes written to session recordings"
    );
    metrics::describe_counter!(
        "sluice_recording_write_failures_total",
        "Writes to a session recording that failed (the recording stops)"
    );
    metrics::describe_counter!(
        "sluice_recordings_pruned_total",
        "Recordings deleted by retention"
    );
}

#[cfg(test)]
mod tests;
