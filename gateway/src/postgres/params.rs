//! Bound parameters as guardrails see them.
//!
//! A Bind's values come in text or binary format, as the client chooses;
//! most drivers (tokio-postgres, JDBC, asyncpg) send binary. A binary value
//! means nothing without its type, and the Bind does not say it: the types
//! are those the Parse declared, completed by the server's
//! ParameterDescription when the client describes the statement (which
//! drivers that send binary do, to learn the types). [`Pipeline`] keeps
//! them per prepared statement ([`Pipeline`]), and [`guardrail_text`] decodes the binary
//! values of common types into their text form. Others reach the guardrails
//! as `none`.
//!
//! The same bookkeeping matches each BindComplete to its Bind's result
//! formats (needed to mask rows of a portal executed without a Describe).
//! Both depend on knowing which batch a reply belongs to: after an error
//! the server skips the rest of the batch, so its remaining Describes and
//! Binds are never answered, while the client may already have sent the
//! next batch.

use std::collections::{HashMap, VecDeque};

use super::frame::{BodyReader, FrameError};

/// Statements whose parameter types are remembered per session.
const MAX_TRACKED: usize = 10_000;

#[derive(Default)]
pub struct Pipeline {
    types: HashMap<String, Vec<u32>>,
    /// Statements described (Describe 'S') whose ParameterDescription has
    /// not arrived yet, in order, with the batch they belong to.
    pending: VecDeque<(u64, String)>,
    /// Batches (Query or Sync) the client has sent …
    sent: u64,
    /// … and those the server has answered with ReadyForQuery. Clients
    /// pipeline the next batch before the last one is answered, so a batch's
    /// end must not forget the Describes of the next.
    answered: u64,
    /// Result formats of forwarded Binds not yet acknowledged, with their
    /// batch.
    binds: VecDeque<(u64, Vec<i16>)>,
}

impl Pipeline {
    /// A Parse of statement `name` is forwarded: the types it declares
    /// (0 = for the server to infer). They replace the unnamed statement's;
    /// a named statement in use keeps its own (the server refuses the Parse)
    /// until it is closed.
    pub fn parsed(&mut self, name: String, declared: Vec<u32>) {
        let in_use = self.types.contains_key(&name);
        if name.is_empty() || (!in_use && self.types.len() < MAX_TRACKED) {
            self.types.insert(name, declared);
        }
    }

    /// A Describe is forwarded.
    pub fn describing(&mut self, body: &[u8]) {
        let mut r = BodyReader::new(body, "Describe");
        if let (Ok(b'S'), Ok(name)) = (r.u8(), r.cstr()) {
            self.pending.push_back((self.sent, name.to_string()));
        }
    }

    /// A Bind is forwarded with these result formats.
    pub fn bound(&mut self, formats: Vec<i16>) {
        self.binds.push_back((self.sent, formats));
    }

    /// A BindComplete: the result formats of the Bind it acknowledges.
    pub fn bind_complete(&mut self) -> Option<Vec<i16>> {
        let answered = self.answered;
        while self
            .binds
            .front()
            .is_some_and(|(batch, _)| *batch < answered)
        {
            self.binds.pop_front();
        }
        match self.binds.front() {
            Some((batch, _)) if *batch == answered => self.binds.pop_front().map(|b| b.1),
            _ => None,
        }
    }

    /// A Query or Sync is forwarded: the end of a batch.
    pub fn batch_sent(&mut self) {
        self.sent += 1;
    }

    /// A ParameterDescription from the server answers the oldest pending
    /// Describe of the batch being answered.
    pub fn described(&mut self, body: &[u8]) {
        self.drop_answered();
        let name = match self.pending.front() {
            Some((batch, _)) if *batch == self.answered => self.pending.pop_front().map(|p| p.1),
            _ => None,
        };
        let Some(name) = name else {
            return;
        };
        let types = oid_list(&mut BodyReader::new(body, "ParameterDescription"));
        if let (Ok(types), Some(known)) = (types, self.types.get_mut(&name)) {
            *known = types;
        }
    }

    /// After an ErrorResponse the server skips the rest of its batch: the
    /// batch's pending Describes will not be answered.
    pub fn failed(&mut self) {
        let answered = self.answered;
        self.pending.retain(|(batch, _)| *batch != answered);
        self.binds.retain(|(batch, _)| *batch != answered);
    }

    /// A ReadyForQuery ends the batch being answered.
    pub fn ready(&mut self) {
        self.failed();
        self.answered += 1;
    }

    fn drop_answered(&mut self) {
        while self
            .pending
            .front()
            .is_some_and(|(batch, _)| *batch < self.answered)
        {
            self.pending.pop_front();
        }
    }

    /// A Close of statement `name`.
    pub fn closed(&mut self, name: &str) {
        self.types.remove(name);
    }

    /// The statement's parameter types as far as known (0 = unknown).
    pub fn of(&self, statement: &str) -> Vec<u32> {
        self.types.get(statement).cloned().unwrap_or_default()
    }
}

/// A count and that many type OIDs: the end of a Parse (the declared
/// parameter types) and a whole ParameterDescription.
pub fn oid_list(r: &mut BodyReader<'_>) -> Result<Vec<u32>, FrameError> {
    let n = r.i16()?;
    (0..n).map(|_| r.i32().map(|oid| oid as u32)).collect()
}

/// A fixed-width big-endian number as text; `None` when the width is wrong.
fn fixed<const N: usize, T: ToString>(value: &[u8], decode: fn([u8; N]) -> T) -> Option<String> {
    <[u8; N]>::try_from(value)
        .ok()
        .map(|b| decode(b).to_string())
}

/// A binary value of type `oid` in its text form, for the types whose binary
/// format is fixed and simple; `None` for any other type or a value that
/// does not fit its type (the server refuses those anyway).
pub fn guardrail_text(oid: u32, value: &[u8]) -> Option<String> {
    match oid {
        // text, varchar, bpchar, name, json, xml, unknown, char
        25 | 1043 | 1042 | 19 | 114 | 142 | 705 | 18 => String::from_utf8(value.to_vec()).ok(),
        // jsonb: a version byte, then the text.
        3802 => match value.split_first() {
            Some((1, text)) => String::from_utf8(text.to_vec()).ok(),
            _ => None,
        },
        16 => match value {
            [0] => Some("f".into()),
            [1] => Some("t".into()),
            _ => None,
        },
        21 => fixed(value, i16::from_be_bytes),
        23 => fixed(value, i32::from_be_bytes),
        20 => fixed(value, i64::from_be_bytes),
        // oid: unsigned
        26 => fixed(value, u32::from_be_bytes),
        700 => fixed(value, f32::from_be_bytes),
        701 => fixed(value, f64::from_be_bytes),
        2950 => <[u8; 16]>::try_from(value).ok().map(|b| {
            let h = crate::audit::event::hex(&b);
            format!(
                "{}-{}-{}-{}-{}",
                &h[..8],
                &h[8..12],
                &h[12..16],
                &h[16..20],
                &h[20..]
            )
        }),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn description(types: &[i32]) -> Vec<u8> {
        let mut b = (types.len() as i16).to_be_bytes().to_vec();
        for t in types {
            b.extend_from_slice(&t.to_be_bytes());
        }
        b
    }

    #[test]
    fn types_come_from_the_parse_then_the_description() {
        let mut t = Pipeline::default();
        t.parsed("s1".into(), vec![0, 23]);
        assert_eq!(t.of("s1"), [0, 23]);
        t.describing(b"Ss1\0");
        t.described(&description(&[25, 23]));
        assert_eq!(t.of("s1"), [25, 23]);
        t.batch_sent();
        t.ready();
        // A Describe left unanswered by an error does not shift the next,
        // even when the next batch was sent before the failed one ended.
        t.parsed(String::new(), Vec::new());
        t.describing(b"Sgone\0");
        t.batch_sent();
        t.describing(b"S\0");
        t.batch_sent();
        t.failed();
        t.ready();
        t.described(&description(&[20]));
        assert_eq!(t.of(""), [20]);
        t.ready();
        // A Parse of a name in use fails at the server: the name keeps its
        // types until it is closed.
        t.parsed("s1".into(), Vec::new());
        assert_eq!(t.of("s1"), [25, 23]);
        t.closed("s1");
        assert!(t.of("s1").is_empty() && t.of("nope").is_empty());
        t.parsed("s1".into(), vec![16]);
        assert_eq!(t.of("s1"), [16]);
    }

    #[test]
    fn bind_formats_stay_matched_after_a_failed_batch() {
        let mut t = Pipeline::default();
        // Batch 1: an error before its Bind (never acknowledged); batch 2,
        // pipelined behind it, binds with binary results.
        t.bound(vec![0]);
        t.batch_sent();
        t.bound(vec![1]);
        t.batch_sent();
        t.failed();
        t.ready();
        assert_eq!(t.bind_complete(), Some(vec![1]));
        t.ready();
        assert_eq!(t.bind_complete(), None);
    }

    #[test]
    fn binary_values_of_common_types_decode() {
        assert_eq!(guardrail_text(25, b"drop it").as_deref(), Some("drop it"));
        assert_eq!(
            guardrail_text(3802, b"\x01{\"a\":1}").as_deref(),
            Some("{\"a\":1}")
        );
        assert_eq!(
            guardrail_text(23, &(-42i32).to_be_bytes()).as_deref(),
            Some("-42")
        );
        assert_eq!(
            guardrail_text(20, &(1i64 << 40).to_be_bytes()).as_deref(),
            Some("1099511627776")
        );
        assert_eq!(
            guardrail_text(21, &7i16.to_be_bytes()).as_deref(),
            Some("7")
        );
        assert_eq!(guardrail_text(16, &[1]).as_deref(), Some("t"));
        assert_eq!(
            guardrail_text(701, &1.5f64.to_be_bytes()).as_deref(),
            Some("1.5")
        );
        assert_eq!(
            guardrail_text(2950, &[0x12; 16]).as_deref(),
            Some("12121212-1212-1212-1212-121212121212")
        );
        // Wrong sizes, unknown types, bad UTF-8.
        assert_eq!(guardrail_text(23, &[0, 1]), None);
        assert_eq!(guardrail_text(17, b"bytes"), None);
        assert_eq!(guardrail_text(0, b"x"), None);
        assert_eq!(guardrail_text(25, &[0xff]), None);
    }
}
