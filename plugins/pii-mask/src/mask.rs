//! What a found value becomes: the four strategies and the per-call engine
//! that scans a value and writes its masked form.

use hmac::{Hmac, Mac};
use serde::Deserialize;
use sha2::Sha256;

use crate::detect::refs::{self, Decoded};
use crate::detect::{self, Found, email, escapes};
use crate::entity::{Counts, Entity, Labels};
use crate::{bytea, messages};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Strategy {
    /// `[EMAIL]`, `[CARD]`, …
    Redact,
    /// Enough to recognise, not to use: `j***@example.com`, `**** 4242`.
    Partial,
    /// A keyed, stable pseudonym: `email_3f9a0c1d2e4b5a69`.
    Hash,
    /// SQL NULL for a cell, JSON `null` for a JSON string; the redact form
    /// where there is no null (plain text, form fields, JSON object keys).
    Null,
}

/// Hex digits of a pseudonym (64 bits of HMAC-SHA256).
const PSEUDONYM_HEX: usize = 16;

/// Keyed pseudonyms: HMAC-SHA256 over `label:canonical value`, truncated.
#[derive(Clone)]
pub struct Pseudonyms {
    keyed: Hmac<Sha256>,
}

impl Pseudonyms {
    /// `None` only if the HMAC implementation refused the key (HMAC takes
    /// keys of any length, so in practice never).
    pub fn new(key: &[u8]) -> Option<Self> {
        let keyed = <Hmac<Sha256> as Mac>::new_from_slice(key).ok()?;
        Some(Pseudonyms { keyed })
    }

    fn write(&self, label: &str, entity: Option<Entity>, value: &[u8], out: &mut Vec<u8>) {
        let mut mac = self.keyed.clone();
        mac.update(label.as_bytes());
        mac.update(b":");
        canonical(entity, value, |bytes| mac.update(bytes));
        let digest = mac.finalize().into_bytes();
        out.extend_from_slice(label.as_bytes());
        out.push(b'_');
        for b in &digest[..PSEUDONYM_HEX / 2] {
            out.push(HEX[usize::from(b >> 4)]);
            out.push(HEX[usize::from(b & 0xf)]);
        }
    }
}

const HEX: &[u8; 16] = b"0123456789abcdef";

/// Feeds the form of `value` that identifies it regardless of how it was
/// written, so the same card number spaced or not gets one pseudonym.
fn canonical(entity: Option<Entity>, value: &[u8], mut feed: impl FnMut(&[u8])) {
    match entity {
        Some(Entity::Email) => {
            // `%40`, `&#64;`, `\u0040`, `＠` and `@` are the same `@`,
            // `&#46;`, `。` and `.` the same `.`, and a soft hyphen is
            // nothing: one pseudonym, as the text a column rule masks whole
            // is not decoded first.
            let mut i = 0;
            while i < value.len() {
                if let Some(width) = email::encoded_at(value, i) {
                    feed(b"@");
                    i += width;
                } else if let Some(width) = email::full_stop_at(value, i) {
                    feed(b".");
                    i += width;
                } else if let Some((c, width)) = refs::reference(value, i)
                    .or_else(|| escapes::escape(value, i))
                    .or_else(|| refs::unusual_at(value, i))
                {
                    if !refs::invisible(c) {
                        let c = match refs::look_alike(c) {
                            Some(ascii) => ascii,
                            None if email::is_full_stop(c) => '.',
                            None => c.to_ascii_lowercase(),
                        };
                        let mut buf = [0u8; 4];
                        feed(c.encode_utf8(&mut buf).as_bytes());
                    }
                    i += width;
                } else {
                    // Backslashes that escape nothing go whole: each of them
                    // would look at the same run again.
                    let n = escapes::backslashes(value, i).max(1);
                    for b in &value[i..i + n] {
                        feed(&[b.to_ascii_lowercase()]);
                    }
                    i += n;
                }
            }
        }
        Some(Entity::Ip) => {
            for b in value {
                feed(&[b.to_ascii_lowercase()]);
            }
        }
        Some(Entity::Phone | Entity::Card | Entity::Ssn) => {
            if value.first() == Some(&b'+') {
                feed(b"+");
            }
            for b in value.iter().filter(|b| b.is_ascii_digit()) {
                feed(&[*b]);
            }
        }
        Some(Entity::Iban) => {
            for b in value.iter().filter(|b| b.is_ascii_alphanumeric()) {
                feed(&[b.to_ascii_uppercase()]);
            }
        }
        _ => feed(value),
    }
}

/// Strategies and the hash key: everything needed to write a replacement.
pub struct Masking {
    pub strategies: [Strategy; Entity::ALL.len()],
    pub pseudonyms: Option<Pseudonyms>,
    pub labels: Labels,
}

impl Masking {
    /// Appends the replacement of `value` (one value of label `id`) to `out`.
    /// `Null` is written in its redact form: callers that can make a value
    /// null check for it first.
    pub fn write(
        &self,
        strategy: Strategy,
        id: usize,
        value: &[u8],
        shown: usize,
        out: &mut Vec<u8>,
    ) {
        let entity = Labels::entity(id);
        match strategy {
            Strategy::Redact | Strategy::Null => self.redact(id, out),
            Strategy::Partial => partial(entity, value, shown, out),
            Strategy::Hash => match &self.pseudonyms {
                Some(p) => p.write(self.labels.name(id), entity, value, out),
                // Config validation refuses `hash` without a key; should one
                // slip through, the value is still never shown.
                None => self.redact(id, out),
            },
        }
    }

    pub fn redact(&self, id: usize, out: &mut Vec<u8>) {
        match Labels::entity(id) {
            Some(e) => out.extend_from_slice(e.token().as_bytes()),
            None => {
                let name = self.labels.name(id);
                if name == crate::config::DEFAULT_RULE_LABEL {
                    out.extend_from_slice(b"[REDACTED]");
                } else {
                    out.push(b'[');
                    out.extend(name.bytes().map(|b| b.to_ascii_uppercase()));
                    out.push(b']');
                }
            }
        }
    }

    pub fn strategy(&self, entity: Entity) -> Strategy {
        self.strategies[entity.id()]
    }
}

/// The partial form of `value`: recognisable, not usable.
fn partial(entity: Option<Entity>, value: &[u8], shown: usize, out: &mut Vec<u8>) {
    match entity {
        Some(Entity::Email) => match (0..value.len())
            .rev()
            .find(|&i| value[i] == b'@' || email::encoded_at(value, i).is_some())
        {
            Some(at) if at > 0 => {
                first_char(local_shown(&value[..at]), out);
                out.extend_from_slice(b"***");
                out.extend_from_slice(&value[at..]);
            }
            _ => generic(value, out),
        },
        Some(Entity::Phone | Entity::Card | Entity::Ssn) => {
            // Every digit but the last four becomes `*`; the layout stays.
            let digits = value.iter().filter(|b| b.is_ascii_digit()).count();
            let mut seen = 0;
            for &b in value {
                if b.is_ascii_digit() {
                    seen += 1;
                    out.push(if seen + 4 > digits { b } else { b'*' });
                } else {
                    out.push(b);
                }
            }
        }
        Some(Entity::Iban) => {
            let chars = value.iter().filter(|b| b.is_ascii_alphanumeric()).count();
            let mut seen = 0;
            for &b in value {
                if b.is_ascii_alphanumeric() {
                    seen += 1;
                    out.push(if seen <= 2 || seen + 4 > chars {
                        b
                    } else {
                        b'*'
                    });
                } else {
                    out.push(b);
                }
            }
        }
        Some(Entity::Ip) => {
            // IPv4 keeps its /24 (`192.168.1.*`), IPv6 its /48 (`2001:db8:85a3:*`).
            let keep = if value.contains(&b':') {
                let compressed = value.windows(2).position(|w| w == b"::");
                let third = value
                    .iter()
                    .enumerate()
                    .filter(|(_, b)| **b == b':')
                    .nth(2)
                    .map(|(i, _)| i);
                match (compressed, third) {
                    (Some(a), Some(b)) => a.min(b),
                    (a, b) => a.or(b).unwrap_or(0),
                }
            } else {
                value.iter().rposition(|b| *b == b'.').map_or(0, |i| i + 1)
            };
            out.extend_from_slice(&value[..keep]);
            if value.contains(&b':') {
                out.extend_from_slice(b":*");
            } else {
                out.push(b'*');
            }
        }
        Some(Entity::Jwt) if shown > 0 && shown <= value.len() => {
            out.extend_from_slice(&value[..shown]);
            out.extend_from_slice(b".***");
        }
        Some(Entity::Jwt | Entity::Secret) => {
            out.extend_from_slice(&value[..shown.min(value.len())]);
            out.extend_from_slice(b"***");
        }
        None => generic(value, out),
    }
}

/// What the partial form of a local part shows the first character of: a
/// quoted local part (`"ann smith"`) from inside its quotes (an escaping
/// `\` skipped), so that its opening quote, which may have been decoded
/// from `&quot;`, never reaches the output.
fn local_shown(local: &[u8]) -> &[u8] {
    match local {
        [b'"', b'\\', inside @ ..] | [b'"', inside @ ..] => inside,
        _ => local,
    }
}

/// Characters that end an attribute, open a tag or begin a reference in
/// HTML and XML, or begin an escape in a JavaScript or JSON string.
fn markup_significant(b: u8) -> bool {
    matches!(b, b'"' | b'\'' | b'<' | b'>' | b'&' | b'\\')
}

/// Writes the markup-significant characters of `out[from..]` (a
/// replacement written from a value whose character references were
/// decoded) as character references: `&quot;ann smith&quot;@…` or
/// `ann&amp;#64;…` must not give back a `"` that ends an attribute or an
/// `&` that begins a reference where the text held none, nor
/// `\u0022ann smith\u0022@…` a `"` that ends a JSON string or a `\` that
/// begins an escape. Other characters are kept.
fn escape_markup(out: &mut Vec<u8>, from: usize) {
    if !out[from..].iter().any(|b| markup_significant(*b)) {
        return;
    }
    let written = out.split_off(from);
    for b in written {
        match b {
            b'"' => out.extend_from_slice(b"&quot;"),
            b'\'' => out.extend_from_slice(b"&#39;"),
            b'<' => out.extend_from_slice(b"&lt;"),
            b'>' => out.extend_from_slice(b"&gt;"),
            b'&' => out.extend_from_slice(b"&amp;"),
            b'\\' => out.extend_from_slice(b"&#92;"),
            b => out.push(b),
        }
    }
}

/// First character and `***`.
fn generic(value: &[u8], out: &mut Vec<u8>) {
    first_char(value, out);
    out.extend_from_slice(b"***");
}

/// The first character of `value` (all its UTF-8 bytes), if any.
fn first_char(value: &[u8], out: &mut Vec<u8>) {
    let Some(&b) = value.first() else { return };
    let len = match b {
        0x00..=0x7f => 1,
        0xc0..=0xdf => 2,
        0xe0..=0xef => 3,
        0xf0..=0xf7 => 4,
        // Not the start of a UTF-8 character: show nothing.
        _ => return,
    };
    if let Some(c) = value.get(..len) {
        out.extend_from_slice(c);
    }
}

/// What became of a value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Unchanged,
    /// The masked value was appended to the output buffer.
    Replaced,
    /// The value must become null.
    Null,
}

/// Masks values for one call: the labels active for the caller's session,
/// and what was found so far.
pub struct Engine<'a> {
    pub masking: &'a Masking,
    /// Bits of the built-in entities to look for.
    pub entities: u64,
    pub counts: Counts,
    found: Vec<Found>,
    /// The value being scanned with its character references decoded.
    refs: Decoded,
    /// Column rules for the values server messages name (bodies only:
    /// see [`messages`]).
    pub messages: Option<messages::Rules<'a>>,
}

impl<'a> Engine<'a> {
    pub fn new(masking: &'a Masking, entities: u64) -> Self {
        Engine {
            masking,
            entities,
            counts: Counts::default(),
            found: Vec::new(),
            refs: Decoded::default(),
            messages: None,
        }
    }

    /// Masks `text` as `scan` does, after two steps that reveal
    /// what it would miss: the values of columns that column rules mask,
    /// where a server message names them (see [`messages`]), and the bytes
    /// of every bytea hex run (see [`bytea`]), which are masked as a value
    /// of their own and written back in hex: a text stays a text, and the
    /// hex of `[EMAIL]` is a bytea literal still. Where strategy `null`
    /// applies and `null_ok`, the whole value is null, as for any match.
    pub fn text(&mut self, text: &[u8], null_ok: bool, out: &mut Vec<u8>) -> Outcome {
        if let Some(rules) = self.messages
            && let Some(rewritten) = messages::rewrite(self, rules, text)
        {
            return match self.hex_runs(&rewritten, null_ok, out) {
                Outcome::Unchanged => {
                    out.extend_from_slice(&rewritten);
                    Outcome::Replaced
                }
                outcome => outcome,
            };
        }
        self.hex_runs(text, null_ok, out)
    }

    fn hex_runs(&mut self, text: &[u8], null_ok: bool, out: &mut Vec<u8>) -> Outcome {
        let Some(first) = bytea::next_run(text, 0) else {
            return self.scan(text, null_ok, out);
        };
        let (mut staged, mut decoded, mut masked) = (Vec::new(), Vec::new(), Vec::new());
        let mut copied = 0;
        let mut next = Some(first);
        while let Some(run) = next {
            decoded.clear();
            bytea::decode(&text[run.digits..run.end], &mut decoded);
            masked.clear();
            // Decoded, a run is half as long: nested runs (a bytea of a
            // bytea's text) end.
            match self.text(&decoded, null_ok, &mut masked) {
                Outcome::Null => return Outcome::Null,
                Outcome::Replaced => {
                    staged.extend_from_slice(&text[copied..run.digits]);
                    bytea::encode(&masked, &mut staged);
                    copied = run.end;
                }
                Outcome::Unchanged => {}
            }
            next = bytea::next_run(text, run.end);
        }
        if copied == 0 {
            return self.scan(text, null_ok, out);
        }
        // The rest is scanned as text still: `\x41…` may be a JavaScript
        // escape followed by digits that are a card number.
        staged.extend_from_slice(&text[copied..]);
        match self.scan(&staged, null_ok, out) {
            Outcome::Unchanged => {
                out.extend_from_slice(&staged);
                Outcome::Replaced
            }
            outcome => outcome,
        }
    }

    /// Scans `text`, with its character references decoded (see
    /// [`refs`]); when something is found, appends the masked text to
    /// `out` (or reports `Null` when `null_ok` and a found entity's strategy
    /// is `null`). A match replaces the bytes it was decoded from; its
    /// masked form is written from the decoded value, with any `"`, `'`,
    /// `<`, `>`, `&` and `\` in it written as character references (see
    /// [`escape_markup`]).
    fn scan(&mut self, text: &[u8], null_ok: bool, out: &mut Vec<u8>) -> Outcome {
        let decoded = self.refs.decode(text);
        let scanned: &[u8] = if decoded { &self.refs.text } else { text };
        detect::scan(scanned, self.entities, &mut self.found);
        if self.found.is_empty() {
            return Outcome::Unchanged;
        }
        for f in &self.found {
            self.counts.add(f.entity.id());
        }
        let masking = self.masking;
        if null_ok
            && self
                .found
                .iter()
                .any(|f| masking.strategy(f.entity) == Strategy::Null)
        {
            return Outcome::Null;
        }
        out.reserve(text.len() + 16);
        let mut copied = 0;
        for f in &self.found {
            let (start, end) = if decoded {
                self.refs.span(f.start, f.end)
            } else {
                (f.start, f.end)
            };
            let start = start.max(copied);
            out.extend_from_slice(&text[copied..start]);
            let written = out.len();
            masking.write(
                masking.strategy(f.entity),
                f.entity.id(),
                &scanned[f.start..f.end],
                f.shown,
                out,
            );
            if decoded {
                escape_markup(out, written);
                self.refs.unbalanced(text, start, end, out);
            }
            copied = end.max(start);
        }
        out.extend_from_slice(&text[copied..]);
        Outcome::Replaced
    }

    /// Masks all of `value` as one value of label `id` (a column rule, a
    /// card number stored as a JSON number).
    ///
    /// `partial` shows part of a value of a built-in entity only when the
    /// whole value (leading and trailing whitespace aside, character
    /// references decoded) is one value of that entity as its detector
    /// finds it; anything else (`pro`, `call after 5pm`, an address in a
    /// sentence) gets the redact form, so that a column rule never lets
    /// text through. Labels of column rules that are not built-in
    /// entities have no detector: their partial form is the first
    /// character and `***`.
    pub fn whole(
        &mut self,
        id: usize,
        strategy: Strategy,
        value: &[u8],
        null_ok: bool,
        out: &mut Vec<u8>,
    ) -> Outcome {
        self.counts.add(id);
        if null_ok && strategy == Strategy::Null {
            return Outcome::Null;
        }
        if strategy == Strategy::Partial
            && let Some(entity) = Labels::entity(id)
        {
            self.partial_whole(entity, value, out);
            return Outcome::Replaced;
        }
        self.masking.write(strategy, id, value, 0, out);
        Outcome::Replaced
    }

    /// The partial form of all of `value` as one `entity` value, or its
    /// redact form if it is not one (see [`Engine::whole`]).
    fn partial_whole(&mut self, entity: Entity, value: &[u8], out: &mut Vec<u8>) {
        let trimmed = value.trim_ascii();
        let lead = value.len() - value.trim_ascii_start().len();
        let decoded = self.refs.decode(trimmed);
        let scanned: &[u8] = if decoded { &self.refs.text } else { trimmed };
        detect::scan(scanned, entity.bit(), &mut self.found);
        match self.found[..] {
            [f] if f.entity == entity && f.start == 0 && f.end == scanned.len() => {
                out.extend_from_slice(&value[..lead]);
                let written = out.len();
                self.masking
                    .write(Strategy::Partial, entity.id(), scanned, f.shown, out);
                if decoded {
                    escape_markup(out, written);
                }
                out.extend_from_slice(&value[lead + trimmed.len()..]);
            }
            _ => self.masking.redact(entity.id(), out),
        }
    }
}
