//! Reading recordings: the session list (header and end line of each
//! file), one recording's entries, and id lookup by prefix.

use std::fs::File;
use std::io::{BufRead, BufReader, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use serde::Serialize;
use serde_json::Value;

use super::entry::{End, Entry, Header};
use super::{RecordingError, io, valid_id};

/// The end of a file: where its last complete line ends, and that line
/// when it is the session's end.
pub(crate) struct Tail {
    pub complete_len: u64,
    pub ended: Option<End>,
    pub last_time_ms: Option<u64>,
}

/// How much of a file's end is read to find its last line: end lines are
/// a few hundred bytes, so the small window almost always suffices.
const TAIL_WINDOWS: [u64; 2] = [4 * 1024, 256 * 1024];

pub(crate) fn id_of(path: &Path) -> Option<String> {
    if path.extension()? != "jsonl" {
        return None;
    }
    let id = path.file_stem()?.to_str()?;
    valid_id(id).then(|| id.to_string())
}

pub(crate) fn tail(path: &Path) -> Result<Tail, RecordingError> {
    let mut file = File::open(path).map_err(io(path))?;
    let len = file.seek(SeekFrom::End(0)).map_err(io(path))?;
    let mut buf = Vec::new();
    let mut from = 0;
    for window in TAIL_WINDOWS {
        from = len.saturating_sub(window);
        file.seek(SeekFrom::Start(from)).map_err(io(path))?;
        buf.clear();
        file.read_to_end(&mut buf).map_err(io(path))?;
        // The last complete line is whole when a newline precedes it
        // inside the window (or the window starts the file).
        if from == 0 || buf.iter().filter(|b| **b == b'\n').count() >= 2 {
            break;
        }
    }
    let complete = buf.iter().rposition(|b| *b == b'\n').map_or(0, |i| i + 1);
    let complete_len = from + complete as u64;
    let body = &buf[..complete];
    let last = body
        .strip_suffix(b"\n")
        .and_then(|b| b.rsplit(|c| *c == b'\n').next());
    let value: Option<Value> = last.and_then(|l| serde_json::from_slice(l).ok());
    let last_time_ms = value
        .as_ref()
        .and_then(|v| v.get("time_ms").or_else(|| v.get("started_ms")))
        .and_then(Value::as_u64);
    let ended = match value.map(serde_json::from_value::<Entry>) {
        Some(Ok(Entry::End(end))) => Some(end),
        _ => None,
    };
    Ok(Tail {
        complete_len,
        ended,
        last_time_ms,
    })
}

pub(crate) fn header_of(text: &[u8]) -> Option<Header> {
    let first = text.split(|b| *b == b'\n').next()?;
    match serde_json::from_slice(first).ok()? {
        Entry::Session(h) => Some(h),
        _ => None,
    }
}

fn read_header(path: &Path) -> Result<Option<Header>, RecordingError> {
    let file = File::open(path).map_err(io(path))?;
    let mut line = Vec::new();
    // A header is a few hundred bytes; a first line past 1 MiB is not one.
    BufReader::new(file)
        .take(1 << 20)
        .read_until(b'\n', &mut line)
        .map_err(io(path))?;
    Ok(header_of(&line))
}

/// One line of `sluice sessions list`.
#[derive(Debug, Clone, Serialize)]
pub struct Summary {
    pub id: String,
    pub protocol: String,
    pub connection: String,
    pub subject: String,
    pub groups: Vec<String>,
    pub client_addr: String,
    pub started_ms: u64,
    /// `None` while the session runs.
    pub ended_ms: Option<u64>,
    pub ending: Option<String>,
    pub statements_allowed: u64,
    pub statements_refused: u64,
    pub exchanges: u64,
    pub bytes: u64,
}

impl Summary {
    pub fn live(&self) -> bool {
        self.ended_ms.is_none()
    }
}

pub fn summary(path: &Path) -> Result<Option<Summary>, RecordingError> {
    let Some(header) = read_header(path)? else {
        return Ok(None);
    };
    let bytes = std::fs::metadata(path).map_err(io(path))?.len();
    let end = tail(path)?.ended;
    Ok(Some(Summary {
        id: header.id,
        protocol: header.protocol,
        connection: header.connection,
        subject: header.subject,
        groups: header.groups,
        client_addr: header.client_addr,
        started_ms: header.started_ms,
        ended_ms: end.as_ref().map(|e| e.time_ms),
        ending: end.as_ref().map(|e| e.ending.clone()),
        statements_allowed: end.as_ref().map_or(0, |e| e.statements_allowed),
        statements_refused: end.as_ref().map_or(0, |e| e.statements_refused),
        exchanges: end.as_ref().map_or(0, |e| e.exchanges),
        bytes,
    }))
}

/// Which sessions `list` shows.
#[derive(Debug, Default, Clone)]
pub struct Filter {
    pub subject: Option<String>,
    pub connection: Option<String>,
    /// Sessions that started at or after (ms since the epoch).
    pub since_ms: Option<u64>,
}

impl Filter {
    fn keeps(&self, s: &Summary) -> bool {
        self.subject.as_ref().is_none_or(|x| *x == s.subject)
            && self.connection.as_ref().is_none_or(|x| *x == s.connection)
            && self.since_ms.is_none_or(|t| s.started_ms >= t)
    }
}

/// Recordings in `dir`, oldest first. Unreadable files are skipped with a
/// warning.
pub fn list(dir: &Path, filter: &Filter) -> Result<Vec<Summary>, RecordingError> {
    let mut out = Vec::new();
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(out),
        Err(e) => return Err(io(dir)(e)),
    };
    for item in entries {
        let Ok(item) = item else { continue };
        let path = item.path();
        if id_of(&path).is_none() {
            continue;
        }
        match summary(&path) {
            Ok(Some(s)) if filter.keeps(&s) => out.push(s),
            Ok(_) => {}
            Err(e) => tracing::warn!("{e}"),
        }
    }
    out.sort_by(|a, b| (a.started_ms, &a.id).cmp(&(b.started_ms, &b.id)));
    Ok(out)
}

/// The file of session `id`, or of the one session whose id starts with it.
pub fn resolve(dir: &Path, id: &str) -> Result<PathBuf, RecordingError> {
    if !valid_id(id) {
        return Err(RecordingError::BadId(id.to_string()));
    }
    let exact = dir.join(format!("{id}.jsonl"));
    if exact.exists() {
        return Ok(exact);
    }
    let mut found = None;
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(RecordingError::NotFound(id.to_string()));
        }
        Err(e) => return Err(io(dir)(e)),
    };
    for item in entries.flatten() {
        let path = item.path();
        if id_of(&path).is_some_and(|x| x.starts_with(id)) {
            if found.is_some() {
                return Err(RecordingError::Ambiguous(id.to_string()));
            }
            found = Some(path);
        }
    }
    found.ok_or_else(|| RecordingError::NotFound(id.to_string()))
}

/// A recording's entries in file order.
pub struct Recorded {
    pub entries: Vec<Entry>,
    /// The last line was cut short (the session is being written, or the
    /// gateway stopped mid-write and has not restarted since).
    pub torn: bool,
}

pub fn entries(path: &Path) -> Result<Recorded, RecordingError> {
    let mut text = Vec::new();
    File::open(path)
        .and_then(|mut f| f.read_to_end(&mut text))
        .map_err(io(path))?;
    Ok(parse(&text))
}

/// Parses complete lines; entry types this version does not know are
/// skipped.
pub fn parse(text: &[u8]) -> Recorded {
    let complete = text.iter().rposition(|b| *b == b'\n').map_or(0, |i| i + 1);
    let entries = text[..complete]
        .split(|b| *b == b'\n')
        .filter(|l| !l.is_empty())
        .filter_map(|l| serde_json::from_slice::<Entry>(l).ok())
        .collect();
    Recorded {
        entries,
        torn: complete < text.len(),
    }
}

/// `--since`: an RFC 3339 time (`2026-11-26T10:00:00Z`) or an age
/// (`90m`, `2h`, `7days`) counted back from now. Milliseconds since the
/// epoch.
pub fn parse_since(text: &str) -> Result<u64, String> {
    if let Ok(t) = humantime::parse_rfc3339_weak(text) {
        return t
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
            .map_err(|_| format!("\"{text}\" is before 1970"));
    }
    match humantime::parse_duration(text) {
        Ok(age) => {
            Ok(super::now_ms().saturating_sub(u64::try_from(age.as_millis()).unwrap_or(u64::MAX)))
        }
        Err(_) => Err(format!(
            "\"{text}\" is neither a time (2026-11-26T10:00:00Z) nor an age (2h, 7days)"
        )),
    }
}
