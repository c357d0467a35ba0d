//! One record of the log: one line of JSON, chained to the one before it.
//!
//! A line is the record's canonical JSON with the record's hash appended as
//! its last member:
//!
//! ```text
//! {"seq":7,"id":"…-7","time_ms":…,"kind":"statement.allowed",…,"prev":"<hash of 6>","hash":"<hash of this>"}
//! ```
//!
//! The hash is the SHA-256 of the exact bytes of the line without the
//! `,"hash":"…"` member (`…,"prev":"<hex>"}`). Verification works on those
//! bytes as stored, never on a re-serialisation, so the JSON library's
//! formatting choices cannot make a valid record look broken or a broken
//! one valid. `prev` carries the previous record's hash: changing,
//! removing or reordering any record breaks the chain after it.

use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

use crate::plugins::bindings::types::{AuditEvent, Identity};

use super::event::{EventIdentity, hex};

/// `prev` of the first record of a log.
pub const ZERO_HASH: &str = "0000000000000000000000000000000000000000000000000000000000000000";

const HASH_KEY: &[u8] = br#","hash":""#;
const HASH_HEX: usize = 64;
/// `,"hash":"` + 64 hex digits + `"}`.
const HASH_SUFFIX: usize = HASH_KEY.len() + HASH_HEX + 2;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Record {
    pub seq: u64,
    /// `<log id>-<seq>`: unique across logs, stable across redeliveries.
    pub id: String,
    pub time_ms: u64,
    pub kind: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub connection: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub identity: Option<EventIdentity>,
    pub detail: Map<String, Value>,
    pub prev: String,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RecordError {
    #[error("it is not a complete record (it does not end with its hash)")]
    NoHash,
    #[error("it does not parse: {0}")]
    Malformed(String),
    #[error("its hash does not match its contents")]
    HashMismatch,
}

pub fn record_id(log_id: &str, seq: u64) -> String {
    format!("{log_id}-{seq}")
}

/// The log id part of a record id.
pub fn log_id_of(id: &str) -> Option<&str> {
    id.rsplit_once('-').map(|(log, _)| log)
}

fn digest(body: &[u8]) -> String {
    hex(&Sha256::digest(body))
}

/// A record's fields, borrowed, written exactly as serde writes a
/// [`Record`] (same members, same order, same bytes): the writer encodes
/// straight from the event it holds instead of copying every field into a
/// `Record` first.
pub(crate) struct RecordView<'a> {
    pub seq: u64,
    pub id: &'a str,
    pub time_ms: u64,
    pub kind: &'a str,
    pub session: Option<&'a str>,
    pub connection: Option<&'a str>,
    pub identity: Option<IdentityRef<'a>>,
    pub detail: DetailRef<'a>,
    pub prev: &'a str,
}

/// An identity in a [`RecordView`]: fields, or JSON encoded beforehand
/// (written as it is).
#[derive(Serialize)]
#[serde(untagged)]
pub(crate) enum IdentityRef<'a> {
    Fields(&'a EventIdentity),
    Encoded(&'a RawValue),
}

/// Details in a [`RecordView`], likewise.
#[derive(Serialize)]
#[serde(untagged)]
pub(crate) enum DetailRef<'a> {
    Fields(&'a Map<String, Value>),
    Encoded(&'a RawValue),
}

impl RecordView<'_> {
    /// Appends the record's line (with its newline) to `out`; returns the
    /// record's hash. On error `out` is left as it was.
    pub(crate) fn encode_into(&self, out: &mut Vec<u8>) -> Result<String, serde_json::Error> {
        let start = out.len();
        if let Err(e) = self.write_json(out) {
            out.truncate(start);
            return Err(e);
        }
        let hash = digest(&out[start..]);
        // A serialised struct always ends with its closing brace.
        out.pop();
        out.reserve(HASH_SUFFIX + 1);
        out.extend_from_slice(HASH_KEY);
        out.extend_from_slice(hash.as_bytes());
        out.extend_from_slice(b"\"}\n");
        Ok(hash)
    }

    /// The JSON `serde_json::to_writer` makes of the view, byte for byte
    /// (a test holds them together), written by hand: the members' names
    /// are constants, and most values (ids, kinds, hashes) need no
    /// escaping, where serde would escape-check every name and value
    /// through a writer call each, on every record of every statement.
    fn write_json(&self, out: &mut Vec<u8>) -> Result<(), serde_json::Error> {
        out.extend_from_slice(b"{\"seq\":");
        serde_json::to_writer(&mut *out, &self.seq)?;
        out.extend_from_slice(b",\"id\":");
        json_str(out, self.id)?;
        out.extend_from_slice(b",\"time_ms\":");
        serde_json::to_writer(&mut *out, &self.time_ms)?;
        out.extend_from_slice(b",\"kind\":");
        json_str(out, self.kind)?;
        if let Some(session) = self.session {
            out.extend_from_slice(b",\"session\":");
            json_str(out, session)?;
        }
        if let Some(connection) = self.connection {
            out.extend_from_slice(b",\"connection\":");
            json_str(out, connection)?;
        }
        if let Some(identity) = &self.identity {
            out.extend_from_slice(b",\"identity\":");
            serde_json::to_writer(&mut *out, identity)?;
        }
        out.extend_from_slice(b",\"detail\":");
        serde_json::to_writer(&mut *out, &self.detail)?;
        out.extend_from_slice(b",\"prev\":");
        json_str(out, self.prev)?;
        out.push(b'}');
        Ok(())
    }
}

/// A JSON string as serde_json writes it: text without control
/// characters, quotes or backslashes is copied as it is, anything else
/// goes through serde_json's escaping.
fn json_str(out: &mut Vec<u8>, text: &str) -> Result<(), serde_json::Error> {
    if text.bytes().all(|b| b >= 0x20 && b != b'"' && b != b'\\') {
        out.reserve(text.len() + 2);
        out.push(b'"');
        out.extend_from_slice(text.as_bytes());
        out.push(b'"');
        Ok(())
    } else {
        serde_json::to_writer(out, text)
    }
}

impl Record {
    fn view(&self) -> RecordView<'_> {
        RecordView {
            seq: self.seq,
            id: &self.id,
            time_ms: self.time_ms,
            kind: &self.kind,
            session: self.session.as_deref(),
            connection: self.connection.as_deref(),
            identity: self.identity.as_ref().map(IdentityRef::Fields),
            detail: DetailRef::Fields(&self.detail),
            prev: &self.prev,
        }
    }

    /// The line to append (with its newline) and the record's hash.
    pub fn encode(&self) -> Result<(Vec<u8>, String), serde_json::Error> {
        let mut line = Vec::new();
        let hash = self.view().encode_into(&mut line)?;
        Ok((line, hash))
    }

    /// Parses one line (without its newline) and checks its own hash. The
    /// chain (`prev`, `seq`) is the caller's to check.
    pub fn decode(line: &[u8]) -> Result<(Record, String), RecordError> {
        let n = line.len();
        if n < HASH_SUFFIX + 2
            || !line.ends_with(b"\"}")
            || &line[n - HASH_SUFFIX..n - HASH_SUFFIX + HASH_KEY.len()] != HASH_KEY
        {
            return Err(RecordError::NoHash);
        }
        let stored = &line[n - HASH_HEX - 2..n - 2];
        if !stored
            .iter()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(b))
        {
            return Err(RecordError::NoHash);
        }
        let mut body = Vec::with_capacity(n - HASH_SUFFIX + 1);
        body.extend_from_slice(&line[..n - HASH_SUFFIX]);
        body.push(b'}');
        let record: Record =
            serde_json::from_slice(&body).map_err(|e| RecordError::Malformed(e.to_string()))?;
        let hash = digest(&body);
        if hash.as_bytes() != stored {
            return Err(RecordError::HashMismatch);
        }
        Ok((record, hash))
    }

    /// The record as the WIT `audit-event` handed to audit sinks.
    pub fn to_audit_event(&self) -> AuditEvent {
        AuditEvent {
            id: self.id.clone(),
            sequence: self.seq,
            time_unix_ms: self.time_ms,
            kind: self.kind.clone(),
            session_id: self.session.clone(),
            connection: self.connection.clone(),
            identity: self.identity.as_ref().map(|i| Identity {
                subject: i.subject.clone(),
                issuer: i.issuer.clone(),
                groups: i.groups.clone(),
                claims_json: Value::Object(i.claims.clone()).to_string(),
            }),
            detail_json: Value::Object(self.detail.clone()).to_string(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn record(seq: u64) -> Record {
        Record {
            seq,
            id: record_id("abc", seq),
            time_ms: 1,
            kind: "statement.allowed".into(),
            session: Some("s1".into()),
            connection: None,
            identity: None,
            detail: json!({"text": "select \"1\"", "n": 1.5})
                .as_object()
                .cloned()
                .unwrap(),
            prev: ZERO_HASH.into(),
        }
    }

    #[test]
    fn a_line_decodes_to_its_record_and_hash() {
        let r = record(3);
        let (line, hash) = r.encode().unwrap();
        assert_eq!(line.last(), Some(&b'\n'));
        let (back, h) = Record::decode(&line[..line.len() - 1]).unwrap();
        assert_eq!(back, r);
        assert_eq!(h, hash);
        assert_eq!(log_id_of(&back.id), Some("abc"));
    }

    /// The writer encodes views by hand; readers decode `Record`s with
    /// serde: both must see the same members in the same order, and the
    /// same bytes, escapes included.
    #[test]
    fn a_view_is_written_as_serde_writes_its_record() {
        let written = |r: &Record| {
            let mut out = Vec::new();
            r.view().write_json(&mut out).unwrap();
            out
        };
        let mut r = record(4);
        assert_eq!(written(&r), serde_json::to_vec(&r).unwrap());
        r.identity = Some(EventIdentity {
            subject: "agent-1".into(),
            issuer: "https://issuer.test".into(),
            groups: vec!["agents".into()],
            claims: json!({"tenant": "t1"}).as_object().cloned().unwrap(),
        });
        r.connection = Some("appdb".into());
        assert_eq!(written(&r), serde_json::to_vec(&r).unwrap());
        // Text that needs escaping, or looks as if it might.
        r.connection = Some("a\"b\\c\nd\u{1}e\u{7f}é ✓ /".into());
        r.kind = "kind\twith\ttabs".into();
        r.session = Some("\"".into());
        r.id = String::new();
        r.prev = "\\".into();
        assert_eq!(written(&r), serde_json::to_vec(&r).unwrap());
        r.session = None;
        r.connection = None;
        r.identity = None;
        assert_eq!(written(&r), serde_json::to_vec(&r).unwrap());
    }

    #[test]
    fn any_changed_byte_is_detected() {
        let (line, _) = record(3).encode().unwrap();
        let line = &line[..line.len() - 1];
        for i in 0..line.len() {
            let mut bad = line.to_vec();
            bad[i] ^= 0x01;
            assert!(Record::decode(&bad).is_err(), "byte {i} changed unnoticed");
        }
        assert_eq!(
            Record::decode(&line[..line.len() - 3]),
            Err(RecordError::NoHash)
        );
    }
}
