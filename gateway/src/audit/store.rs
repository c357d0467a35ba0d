//! Where the log lives and how it is read back.
//!
//! ```text
//! <state_dir>/audit/
//!   log/00000000000000000001.jsonl   segments, named by their first sequence
//!   head.json                        the latest checkpoint, signed
//!   signing.key  signing.pub         the checkpoint key
//!   cursors/<sink>.json              per audit sink: last delivered sequence
//!   torn/                            torn tails set aside after a crash
//!   lock                             held by the gateway writing the log
//! ```
//!
//! The chain runs across segments: the first record of a segment carries the
//! hash of the last record of the one before.

use std::fs::{self, File};
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};

use super::error::AuditError;
use super::record::{Record, RecordError, ZERO_HASH, log_id_of};

#[derive(Debug, Clone)]
pub struct Layout {
    pub dir: PathBuf,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Segment {
    pub first: u64,
    pub path: PathBuf,
}

impl Layout {
    pub fn new(state_dir: &Path) -> Self {
        Self {
            dir: state_dir.join("audit"),
        }
    }
    pub fn segments_dir(&self) -> PathBuf {
        self.dir.join("log")
    }
    pub fn segment(&self, first: u64) -> PathBuf {
        self.segments_dir().join(format!("{first:020}.jsonl"))
    }
    pub fn head(&self) -> PathBuf {
        self.dir.join("head.json")
    }
    pub fn cursors(&self) -> PathBuf {
        self.dir.join("cursors")
    }
    pub fn torn(&self) -> PathBuf {
        self.dir.join("torn")
    }
    pub fn lock(&self) -> PathBuf {
        self.dir.join("lock")
    }

    /// Segment files in sequence order. Other files are not part of the log.
    pub fn segments(&self) -> Result<Vec<Segment>, AuditError> {
        let dir = self.segments_dir();
        let entries = match fs::read_dir(&dir) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(AuditError::io(&dir, e)),
        };
        let mut out = Vec::new();
        for entry in entries {
            let entry = entry.map_err(|e| AuditError::io(&dir, e))?;
            let name = entry.file_name();
            let Some(first) = name
                .to_str()
                .and_then(|n| n.strip_suffix(".jsonl"))
                .filter(|n| n.len() == 20 && n.bytes().all(|b| b.is_ascii_digit()))
                .and_then(|n| n.parse().ok())
            else {
                continue;
            };
            out.push(Segment {
                first,
                path: entry.path(),
            });
        }
        out.sort_by_key(|s| s.first);
        Ok(out)
    }
}

/// Complete lines (without their newline) with their offsets, and where the
/// bytes after the last newline start.
pub(crate) fn lines(bytes: &[u8]) -> (Vec<(usize, &[u8])>, usize) {
    let mut out = Vec::new();
    let mut start = 0;
    while let Some(n) = bytes[start..].iter().position(|&b| b == b'\n') {
        out.push((start, &bytes[start..start + n]));
        start += n + 1;
    }
    (out, start)
}

/// Where the writer continues after a restart.
#[derive(Debug)]
pub struct Recovered {
    pub log_id: String,
    pub next_seq: u64,
    pub prev: String,
    pub segment: Segment,
    pub segment_len: u64,
    pub torn: Option<TornTail>,
    /// The last record is the checkpoint of a clean shutdown.
    pub clean_shutdown: bool,
}

/// Bytes after the last complete record: a write the crash interrupted.
/// Never acknowledged (a record is acknowledged only once written whole),
/// set aside in `torn/` rather than dropped.
#[derive(Debug, Clone)]
pub struct TornTail {
    pub segment: PathBuf,
    pub offset: u64,
    pub bytes: u64,
    pub saved_to: PathBuf,
}

fn corrupt(path: &Path, line: usize, e: RecordError) -> AuditError {
    AuditError::Corrupt(format!(
        "{} line {}: {e}; run `sluice audit verify`, and move the audit directory aside to start a new log",
        path.display(),
        line + 1
    ))
}

/// The last record of a segment, if it has a complete one.
fn last_record(path: &Path, bytes: &[u8]) -> Result<Option<(Record, String)>, AuditError> {
    let (lines, _) = lines(bytes);
    match lines.last() {
        None => Ok(None),
        Some((_, line)) => Record::decode(line)
            .map(Some)
            .map_err(|e| corrupt(path, lines.len() - 1, e)),
    }
}

/// Finds the end of the log and sets a torn tail aside. `None`: no log yet.
///
/// Only the bytes after the last newline can be torn: the writer appends
/// whole lines, so a crash leaves at most one incomplete line (or, after a
/// power loss, unwritten zeros). A complete line that does not verify is not
/// a tear but damage, and the gateway refuses to write after it.
pub fn recover(layout: &Layout) -> Result<Option<Recovered>, AuditError> {
    let segments = layout.segments()?;
    let Some(last) = segments.last().cloned() else {
        return Ok(None);
    };
    let mut bytes = fs::read(&last.path).map_err(|e| AuditError::io(&last.path, e))?;
    let (_, tail) = lines(&bytes);
    let torn = if tail < bytes.len() {
        let t = set_aside(layout, &last, &bytes[tail..], tail as u64)?;
        bytes.truncate(tail);
        Some(t)
    } else {
        None
    };
    let found = match last_record(&last.path, &bytes)? {
        Some(r) => Some(r),
        None if segments.len() >= 2 => {
            let before = &segments[segments.len() - 2];
            let b = fs::read(&before.path).map_err(|e| AuditError::io(&before.path, e))?;
            last_record(&before.path, &b)?
        }
        None => None,
    };
    let Some((record, hash)) = found else {
        // Not even the first record was written whole: a new log, in a
        // segment that must be the first one.
        if last.first != 1 {
            return Err(AuditError::Corrupt(format!(
                "{} holds no record and no segment before it does",
                last.path.display()
            )));
        }
        return Ok(Some(Recovered {
            log_id: String::new(),
            next_seq: 1,
            prev: ZERO_HASH.into(),
            segment: last,
            segment_len: 0,
            torn,
            clean_shutdown: false,
        }));
    };
    let log_id = log_id_of(&record.id)
        .ok_or_else(|| AuditError::Corrupt(format!("record {} has no log id", record.seq)))?
        .to_string();
    if bytes.is_empty() && last.first != record.seq + 1 {
        return Err(AuditError::Corrupt(format!(
            "{} should start at record {}",
            last.path.display(),
            record.seq + 1
        )));
    }
    let clean_shutdown = record.kind == super::event::kinds::CHECKPOINT
        && record.detail.get("reason").and_then(|r| r.as_str()) == Some("shutdown");
    Ok(Some(Recovered {
        log_id,
        next_seq: record.seq + 1,
        prev: hash,
        segment: last,
        segment_len: bytes.len() as u64,
        torn,
        clean_shutdown,
    }))
}

fn set_aside(
    layout: &Layout,
    segment: &Segment,
    torn: &[u8],
    offset: u64,
) -> Result<TornTail, AuditError> {
    let dir = layout.torn();
    fs::create_dir_all(&dir).map_err(|e| AuditError::io(&dir, e))?;
    let saved_to = dir.join(format!("{:020}-{offset}.bin", segment.first));
    super::keys::write_atomic(&saved_to, torn)?;
    fs::OpenOptions::new()
        .write(true)
        .open(&segment.path)
        .and_then(|f| {
            f.set_len(offset)?;
            f.sync_all()
        })
        .map_err(|e| AuditError::io(&segment.path, e))?;
    tracing::warn!(
        segment = %segment.path.display(),
        offset,
        bytes = torn.len(),
        saved_to = %saved_to.display(),
        "the audit log ended in an incomplete record (interrupted write); it was set aside and the log continues after the last complete record"
    );
    Ok(TornTail {
        segment: segment.path.clone(),
        offset,
        bytes: torn.len() as u64,
        saved_to,
    })
}

/// Reads records in order from a sequence on, across segments, while the
/// writer appends. Each record's own hash is checked.
pub struct LogReader {
    layout: Layout,
    next_seq: u64,
    current: Option<(PathBuf, BufReader<File>)>,
    partial: Vec<u8>,
}

impl LogReader {
    pub fn new(layout: Layout, next_seq: u64) -> Self {
        Self {
            layout,
            next_seq: next_seq.max(1),
            current: None,
            partial: Vec::new(),
        }
    }

    pub fn next_seq(&self) -> u64 {
        self.next_seq
    }

    fn open(&mut self) -> Result<bool, AuditError> {
        let segments = self.layout.segments()?;
        let segment = match segments.iter().rev().find(|s| s.first <= self.next_seq) {
            Some(s) => s.clone(),
            // Older records are gone: start at the oldest there is.
            None => match segments.first() {
                Some(s) => {
                    self.next_seq = s.first;
                    s.clone()
                }
                None => return Ok(false),
            },
        };
        let file = File::open(&segment.path).map_err(|e| AuditError::io(&segment.path, e))?;
        self.current = Some((segment.path, BufReader::new(file)));
        self.partial.clear();
        Ok(true)
    }

    /// The next record, if its sequence is at most `limit`; `None` when the
    /// reader has caught up.
    pub fn next(&mut self, limit: u64) -> Result<Option<Record>, AuditError> {
        loop {
            if self.next_seq > limit {
                return Ok(None);
            }
            if self.current.is_none() && !self.open()? {
                return Ok(None);
            }
            let Some((path, reader)) = self.current.as_mut() else {
                return Ok(None);
            };
            reader
                .read_until(b'\n', &mut self.partial)
                .map_err(|e| AuditError::io(path, e))?;
            if self.partial.last() == Some(&b'\n') {
                let line = std::mem::take(&mut self.partial);
                let (record, _) = Record::decode(&line[..line.len() - 1]).map_err(|e| {
                    AuditError::Corrupt(format!(
                        "{}: the record after {}: {e}",
                        path.display(),
                        self.next_seq.saturating_sub(1)
                    ))
                })?;
                if record.seq < self.next_seq {
                    continue;
                }
                if record.seq > self.next_seq {
                    return Err(AuditError::Corrupt(format!(
                        "{}: record {} follows record {}",
                        path.display(),
                        record.seq,
                        self.next_seq - 1
                    )));
                }
                self.next_seq += 1;
                return Ok(Some(record));
            }
            if !self.partial.is_empty() {
                // A line still being written: read the rest next time.
                return Ok(None);
            }
            let next = self.layout.segment(self.next_seq);
            if *path == next || !next.exists() {
                return Ok(None);
            }
            let file = File::open(&next).map_err(|e| AuditError::io(&next, e))?;
            self.current = Some((next, BufReader::new(file)));
        }
    }
}

/// A fresh log's id: 8 random bytes, hex.
pub(crate) fn random_id() -> Result<String, AuditError> {
    let mut b = [0u8; 8];
    ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut b)
        .map_err(|_| AuditError::Write("no randomness available for the log id".into()))?;
    Ok(super::event::hex(&b))
}

/// A segment opened for appending (created if missing).
pub(crate) fn open_append(path: &Path) -> Result<File, AuditError> {
    fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .map_err(|e| AuditError::io(path, e))
}
