//! The JSON lines file: appending, dropping repeats, rotating, and reading
//! back where a previous run stopped.

use std::fs::{self, File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use serde_json::Value;
use sluice_plugin_sdk::clock;
use sluice_plugin_sdk::types::AuditEvent;

/// The last event written: the gateway log it came from and its sequence.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Last {
    log: String,
    sequence: u64,
}

pub struct JsonlFile {
    path: PathBuf,
    rotate_bytes: u64,
    sync: bool,
    /// The file's length after our last write: if it changed, someone else
    /// wrote or rotated it, and the end is read again.
    len: Option<u64>,
    last: Option<Last>,
}

/// What one `append` did.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Appended {
    pub written: u64,
    pub repeats: u64,
}

/// Record ids are `<log id>-<sequence>`; sequences only grow within a log.
fn log_of(id: &str) -> &str {
    id.rsplit_once('-').map_or(id, |(log, _)| log)
}

/// One event as written: [`AuditEvent::to_json`] on one line.
pub fn event_line(event: &AuditEvent) -> String {
    event.to_json().to_string()
}

fn io(path: &Path, what: &str, e: std::io::Error) -> String {
    format!("audit-jsonl: cannot {what} {}: {e}", path.display())
}

impl JsonlFile {
    /// Checks that the file's directory is reachable (granted) and reads
    /// where a previous run stopped.
    pub fn open(path: PathBuf, rotate_bytes: u64, sync: bool) -> Result<Self, String> {
        if !path.is_absolute() {
            return Err(format!(
                "audit-jsonl: file {:?} must be an absolute path in a granted directory",
                path.display()
            ));
        }
        let dir = path.parent().unwrap_or(Path::new("/"));
        fs::read_dir(dir).map_err(|e| {
            format!(
                "audit-jsonl: directory {} is not available ({e}); grant it with \
                 [plugins.grants.audit-jsonl] dirs = [{{ host = \"…\", guest = \"{}\", writable = true }}]",
                dir.display(),
                dir.display()
            )
        })?;
        let mut file = JsonlFile {
            path,
            rotate_bytes,
            sync,
            len: None,
            last: None,
        };
        file.last = file.find_last()?;
        Ok(file)
    }

    fn rotated(&self) -> Vec<PathBuf> {
        let (Some(dir), Some(name)) = (
            self.path.parent(),
            self.path.file_name().and_then(|n| n.to_str()),
        ) else {
            return Vec::new();
        };
        let prefix = format!("{name}.");
        let mut found: Vec<(u64, PathBuf)> = fs::read_dir(dir)
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|e| {
                let n = e
                    .file_name()
                    .to_str()?
                    .strip_prefix(&prefix)?
                    .parse()
                    .ok()?;
                Some((n, e.path()))
            })
            .collect();
        found.sort();
        found.into_iter().map(|(_, p)| p).collect()
    }

    /// The last event of the current file, or of the newest rotated one.
    fn find_last(&mut self) -> Result<Option<Last>, String> {
        if let Some(last) = self.tail_of(&self.path.clone(), true)? {
            return Ok(Some(last));
        }
        for rotated in self.rotated().into_iter().rev() {
            if let Some(last) = self.tail_of(&rotated, false)? {
                return Ok(Some(last));
            }
        }
        Ok(None)
    }

    /// Reads the last complete line of `path`. An incomplete last line (a
    /// write cut short) is cut off the current file: those events were never
    /// acknowledged and come again.
    fn tail_of(&mut self, path: &Path, current: bool) -> Result<Option<Last>, String> {
        let mut file = match OpenOptions::new().read(true).write(current).open(path) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                if current {
                    self.len = Some(0);
                }
                return Ok(None);
            }
            Err(e) => return Err(io(path, "open", e)),
        };
        let mut len = file.metadata().map_err(|e| io(path, "stat", e))?.len();
        let mut window = 64 * 1024u64;
        loop {
            let start = len.saturating_sub(window);
            file.seek(SeekFrom::Start(start))
                .map_err(|e| io(path, "seek in", e))?;
            let mut buf = Vec::new();
            Read::by_ref(&mut file)
                .take(len - start)
                .read_to_end(&mut buf)
                .map_err(|e| io(path, "read", e))?;
            let end = match buf.iter().rposition(|&b| b == b'\n') {
                Some(i) => i + 1,
                // No newline in the window: look further back.
                None if start > 0 => {
                    window = window.saturating_mul(4);
                    continue;
                }
                None => 0,
            };
            let complete = start + end as u64;
            if current && complete < len {
                file.set_len(complete)
                    .map_err(|e| io(path, "truncate", e))?;
                len = complete;
            }
            if current {
                self.len = Some(complete);
            }
            if end == 0 {
                return Ok(None);
            }
            let line = match buf[..end - 1].iter().rposition(|&b| b == b'\n') {
                Some(j) => &buf[j + 1..end - 1],
                None if start == 0 => &buf[..end - 1],
                // The last line is longer than the window.
                None => {
                    window = window.saturating_mul(4);
                    continue;
                }
            };
            let value: Value = serde_json::from_slice(line).map_err(|e| {
                format!(
                    "audit-jsonl: the last line of {} is not an event ({e})",
                    path.display()
                )
            })?;
            return Ok(match (value["id"].as_str(), value["sequence"].as_u64()) {
                (Some(id), Some(sequence)) => Some(Last {
                    log: log_of(id).to_string(),
                    sequence,
                }),
                _ => None,
            });
        }
    }

    fn rotate(&mut self) -> Result<(), String> {
        let mut stamp = clock::now_unix_ms();
        let target = loop {
            let candidate = PathBuf::from(format!("{}.{stamp}", self.path.display()));
            if !candidate.exists() {
                break candidate;
            }
            stamp += 1;
        };
        fs::rename(&self.path, &target).map_err(|e| io(&self.path, "rotate", e))?;
        self.len = Some(0);
        Ok(())
    }

    pub fn append(&mut self, events: &[AuditEvent]) -> Result<Appended, String> {
        let on_disk = match fs::metadata(&self.path) {
            Ok(m) => m.len(),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => 0,
            Err(e) => return Err(io(&self.path, "stat", e)),
        };
        if self.len != Some(on_disk) {
            self.last = self.find_last()?;
        }
        let mut out = Appended::default();
        let mut lines = String::new();
        let mut last = self.last.clone();
        for event in events {
            let repeat = last
                .as_ref()
                .is_some_and(|l| l.log == log_of(&event.id) && event.sequence <= l.sequence);
            if repeat {
                out.repeats += 1;
                continue;
            }
            lines.push_str(&event_line(event));
            lines.push('\n');
            last = Some(Last {
                log: log_of(&event.id).to_string(),
                sequence: event.sequence,
            });
            out.written += 1;
        }
        if lines.is_empty() {
            return Ok(out);
        }
        let len = self.len.unwrap_or(0);
        if self.rotate_bytes > 0 && len > 0 && len + lines.len() as u64 > self.rotate_bytes {
            self.rotate()?;
        }
        let mut file: File = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.path)
            .map_err(|e| io(&self.path, "open", e))?;
        // One write; synced before the gateway is told the batch is safe.
        file.write_all(lines.as_bytes())
            .and_then(|()| if self.sync { file.sync_data() } else { Ok(()) })
            .map_err(|e| {
                // What part reached the file is read back next time.
                self.len = None;
                io(&self.path, "append to", e)
            })?;
        self.len = Some(self.len.unwrap_or(0) + lines.len() as u64);
        self.last = last;
        Ok(out)
    }
}
