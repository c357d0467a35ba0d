//! `sluice audit verify`: the whole chain, every checkpoint signature and the
//! signed head, against a trusted public key. Stops at the first record that
//! is not what it should be and names it.

use std::collections::HashMap;
use std::path::PathBuf;

use super::error::AuditError;
use super::event::kinds;
use super::keys::{Head, PublicKey, checkpoint_message};
use super::record::{Record, RecordError, ZERO_HASH, log_id_of, record_id};
use super::store::{Layout, lines};

/// A log that verified.
#[derive(Debug, Clone)]
pub struct Report {
    pub log_id: String,
    pub records: u64,
    pub segments: usize,
    pub checkpoints: u64,
    pub last_checkpoint: u64,
    /// Records after the last checkpoint: chained, not yet signed.
    pub unsigned_tail: u64,
    pub key_id: String,
}

#[derive(Debug, thiserror::Error)]
pub enum VerifyError {
    #[error("no audit log in {0}")]
    NoLog(PathBuf),
    #[error(transparent)]
    Unreadable(#[from] AuditError),
    /// The first record that is not what the chain requires.
    #[error("record {seq} ({file}, line {line}): {reason}")]
    Broken {
        seq: u64,
        file: String,
        line: usize,
        reason: String,
    },
    #[error("{0}")]
    Head(String),
}

struct Walk<'k> {
    key: &'k PublicKey,
    log_id: String,
    expected: u64,
    prev: String,
    checkpoints: u64,
    last_checkpoint: u64,
    checkpoint_hashes: HashMap<u64, String>,
}

impl Walk<'_> {
    fn check(&mut self, record: &Record, hash: &str) -> Result<(), String> {
        let seq = self.expected;
        if record.seq != seq {
            return Err(format!(
                "found record {} where record {seq} belongs: a record is missing or out of order",
                record.seq
            ));
        }
        if record.prev != self.prev {
            return Err(format!(
                "it does not chain to record {}: its prev hash differs from that record's hash",
                seq - 1
            ));
        }
        if seq == 1 {
            let log_id = log_id_of(&record.id).unwrap_or_default();
            if record.kind != kinds::CHECKPOINT
                || record.detail.get("reason").and_then(|r| r.as_str()) != Some("genesis")
            {
                return Err("the first record of a log must be its genesis checkpoint".into());
            }
            self.log_id = log_id.to_string();
        }
        if record.id != record_id(&self.log_id, seq) {
            return Err(format!(
                "its id {:?} is not that of record {seq} of log {}",
                record.id, self.log_id
            ));
        }
        if record.kind == kinds::CHECKPOINT {
            self.checkpoint(record)?;
            self.checkpoints += 1;
            self.last_checkpoint = seq;
            self.checkpoint_hashes.insert(seq, hash.to_string());
        }
        self.prev = hash.to_string();
        self.expected += 1;
        Ok(())
    }

    fn checkpoint(&self, record: &Record) -> Result<(), String> {
        let field = |name: &str| record.detail.get(name).and_then(|v| v.as_str());
        let public = field("public_key").unwrap_or_default();
        if public != self.key.base64() {
            let other = PublicKey::parse(public)
                .map(|k| k.key_id)
                .unwrap_or_else(|_| "unreadable".into());
            return Err(format!(
                "checkpoint signed by another key (key id {other}; the trusted key is {})",
                self.key.key_id
            ));
        }
        if field("log_id") != Some(self.log_id.as_str())
            || record.detail.get("covers").and_then(|v| v.as_u64()) != Some(record.seq - 1)
        {
            return Err("checkpoint names another log or position".into());
        }
        let message = checkpoint_message(&self.log_id, record.seq - 1, &record.prev);
        if !self
            .key
            .verify(&message, field("signature").unwrap_or_default())
        {
            return Err("checkpoint signature does not verify".into());
        }
        Ok(())
    }
}

/// Verifies the log of `layout` against `key`.
pub fn verify(layout: &Layout, key: &PublicKey) -> Result<Report, VerifyError> {
    let segments = layout.segments()?;
    if segments.is_empty() {
        return Err(VerifyError::NoLog(layout.segments_dir()));
    }
    let mut walk = Walk {
        key,
        log_id: String::new(),
        expected: 1,
        prev: ZERO_HASH.to_string(),
        checkpoints: 0,
        last_checkpoint: 0,
        checkpoint_hashes: HashMap::new(),
    };
    for segment in &segments {
        let file = segment.path.display().to_string();
        let broken = |seq: u64, line: usize, reason: String| VerifyError::Broken {
            seq,
            file: file.clone(),
            line,
            reason,
        };
        let bytes = std::fs::read(&segment.path).map_err(|e| AuditError::io(&segment.path, e))?;
        if segment.first != walk.expected {
            return Err(broken(
                walk.expected,
                1,
                format!(
                    "the log continues in a segment that starts at record {}",
                    segment.first
                ),
            ));
        }
        let (lines, tail) = lines(&bytes);
        for (i, (_, line)) in lines.iter().enumerate() {
            let (record, hash) = Record::decode(line).map_err(|e| {
                let why = match e {
                    RecordError::HashMismatch => {
                        "its contents were changed: its hash does not match them".to_string()
                    }
                    other => other.to_string(),
                };
                broken(walk.expected, i + 1, why)
            })?;
            walk.check(&record, &hash)
                .map_err(|why| broken(walk.expected, i + 1, why))?;
        }
        if tail < bytes.len() {
            return Err(broken(
                walk.expected,
                lines.len() + 1,
                format!(
                    "incomplete: the log ends in {} bytes of an unfinished record (an interrupted \
                     write is set aside when the gateway next starts; otherwise the tail was cut)",
                    bytes.len() - tail
                ),
            ));
        }
    }
    let last = walk.expected - 1;
    let head = Head::read(&layout.head())?.ok_or_else(|| {
        VerifyError::Head(format!(
            "{} is missing: the end of the log cannot be checked",
            layout.head().display()
        ))
    })?;
    if !head.verify(key) {
        return Err(VerifyError::Head(format!(
            "{} is not signed by the trusted key {}",
            layout.head().display(),
            key.key_id
        )));
    }
    if head.log_id != walk.log_id {
        return Err(VerifyError::Head(format!(
            "the signed head belongs to log {}, not to this log ({})",
            head.log_id, walk.log_id
        )));
    }
    // Where record `seq` is, or (one past the end) would be: the chain
    // verified, so a segment's lines are its records in order from `first`.
    let place = |seq: u64| {
        let segment = segments
            .iter()
            .rev()
            .find(|s| s.first <= seq)
            .unwrap_or(&segments[0]);
        let line = usize::try_from(seq.saturating_sub(segment.first) + 1).unwrap_or(usize::MAX);
        (segment.path.display().to_string(), line)
    };
    if head.seq > last {
        let (file, line) = place(last + 1);
        return Err(VerifyError::Broken {
            seq: last + 1,
            file,
            line,
            reason: format!(
                "missing: the log ends at record {last} but its signed head names record {}: \
                 records were cut from the end",
                head.seq
            ),
        });
    }
    if walk.checkpoint_hashes.get(&head.seq) != Some(&head.hash) {
        let (file, line) = place(head.seq);
        return Err(VerifyError::Broken {
            seq: head.seq,
            file,
            line,
            reason: "it is not the checkpoint the signed head names".into(),
        });
    }
    Ok(Report {
        log_id: walk.log_id,
        records: last,
        segments: segments.len(),
        checkpoints: walk.checkpoints,
        last_checkpoint: walk.last_checkpoint,
        unsigned_tail: last - walk.last_checkpoint,
        key_id: key.key_id.clone(),
    })
}
