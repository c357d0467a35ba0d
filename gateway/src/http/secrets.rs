//! Secrets in what crosses the gateway: the connection's credential in what
//! the upstream answers (an upstream that echoes its request, as httpbin's
//! `/anything` does, hands it to the agent), and the agent's token in what
//! the agent sends and what is recorded.
//!
//! A secret is found as written and through the escapes its readers undo:
//! JSON's (`\/`, `\u0041`) and percent-encoding (`%41`, IIS's `%u0041`), in
//! any mix, several times over in a text held whole. In a text the gateway
//! holds whole, each occurrence is replaced by a marker that contains no
//! quote, backslash or line break, so JSON stays JSON and an event stays one
//! event. A stream is searched as it passes: the bytes at the end of a chunk
//! that could begin a match are held back until the next one shows whether
//! they do, so no part of a match is passed on before it is found, and a
//! stream that holds one is cut there.

use std::borrow::Cow;
use std::ops::Range;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};

use bytes::{Bytes, BytesMut};
use hyper::HeaderMap;
use hyper::body::{Body as HttpBody, Frame, SizeHint};
use hyper::header::HeaderValue;
use memchr::memmem::Finder;

use super::body::BoxError;
use escapes::{Anchor, Unit, back, decode, merge, unit};

mod escapes;
#[cfg(test)]
mod tests;

/// What replaces the connection's credential in what the agent receives.
pub const CREDENTIAL_MARKER: &str = "[sluice: upstream credential]";
/// What replaces the agent's token in what is recorded.
pub const TOKEN_MARKER: &str = "[agent token]";

/// A secret (or one of its forms) shorter than this is not searched for: it
/// would be found by chance in ordinary text.
pub const MIN_SECRET: usize = 8;

/// Rounds of escapes undone in a text held whole: `%2541` is `%41` read once
/// and `A` read twice, and upstreams that decode twice exist.
pub const WHOLE: usize = 3;
/// In a stream, one: a match must fit in what is held back between chunks.
const STREAM: usize = 1;
/// The longest escape read: a character reference of the most digits read
/// (`&#x00002d;`, `&#0000045;`).
const LONGEST_ESCAPE: usize = 10;

/// Literal patterns (a secret and its other spellings), each searched as
/// written and with escapes undone.
pub struct Needles {
    finders: Vec<Finder<'static>>,
    shortest: usize,
    longest: usize,
    /// Bytes a match can begin with as written.
    starts: [bool; 256],
    /// Bytes worth decoding an escape into: those of the patterns, and
    /// what spells an escape (for the next round).
    useful: [bool; 256],
    marker: &'static str,
}

impl std::fmt::Debug for Needles {
    // The patterns are secrets.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Needles")
            .field("patterns", &self.finders.len())
            .finish_non_exhaustive()
    }
}

impl Needles {
    /// `None` when no pattern is long enough to search for.
    pub fn new(patterns: impl IntoIterator<Item = Vec<u8>>, marker: &'static str) -> Option<Self> {
        let mut patterns: Vec<Vec<u8>> = patterns
            .into_iter()
            .filter(|p| p.len() >= MIN_SECRET)
            .collect();
        patterns.sort();
        patterns.dedup();
        // The streaming search tracks candidates in a bit set.
        patterns.truncate(64);
        if patterns.is_empty() {
            return None;
        }
        let mut starts = [false; 256];
        let mut useful = [false; 256];
        for b in b"%\\uU0123456789abcdefABCDEF&#;xX" {
            useful[usize::from(*b)] = true;
        }
        for p in &patterns {
            starts[usize::from(p[0])] = true;
            for &b in p {
                useful[usize::from(b)] = true;
            }
        }
        Some(Self {
            shortest: patterns.iter().map(Vec::len).min().unwrap_or(0),
            longest: patterns.iter().map(Vec::len).max().unwrap_or(0),
            finders: patterns
                .iter()
                .map(|p| Finder::new(p).into_owned())
                .collect(),
            starts,
            useful,
            marker,
        })
    }

    /// The agent's token, for the records and the request body.
    pub fn token(token: &str) -> Option<Self> {
        Self::new(
            token_parts(token).into_iter().map(<[u8]>::to_vec),
            TOKEN_MARKER,
        )
    }

    /// The secret of a connection's credential and the forms it travels in
    /// (for basic auth, the password and the encoded `user:password`), each
    /// also as base64 at any alignment: an upstream that echoes a request
    /// may encode it, and inside a longer base64 text a secret is spelled
    /// one of three ways. UTF-16 spellings too: a body in UTF-16 is
    /// searched as sent.
    pub fn credential(forms: &[&[u8]]) -> Option<Self> {
        let mut patterns = Vec::new();
        for form in forms {
            patterns.push(form.to_vec());
            // Header names reach the gateway in lower case, and upstreams
            // print keys folded (hex keys have no case to their reader).
            patterns.push(form.to_ascii_lowercase());
            patterns.push(form.to_ascii_uppercase());
            patterns.extend(base64_cores(form));
            patterns.push(form.iter().flat_map(|&b| [b, 0]).collect());
            patterns.push(form.iter().flat_map(|&b| [0, b]).collect());
        }
        Self::new(patterns, CREDENTIAL_MARKER)
    }

    pub fn marker(&self) -> &'static str {
        self.marker
    }

    fn raw(&self, text: &[u8], out: &mut Vec<Range<usize>>, first: bool) {
        if text.len() < self.shortest {
            return;
        }
        for f in &self.finders {
            let n = f.needle().len();
            for at in f.find_iter(text) {
                out.push(at..at + n);
                if first {
                    return;
                }
            }
        }
    }

    /// Where the patterns are in `text`, read as written and with up to
    /// `rounds` rounds of escapes undone: ranges of `text` (escapes whole),
    /// sorted and merged. With `first`, at most one. `complete`: `text`
    /// is held whole (not a stream's chunk that more may follow).
    fn find(&self, text: &[u8], rounds: usize, first: bool, complete: bool) -> Vec<Range<usize>> {
        let mut found = Vec::new();
        self.raw(text, &mut found, first);
        let mut maps: Vec<Vec<Anchor>> = Vec::new();
        let mut current = Cow::Borrowed(text);
        for _ in 0..rounds {
            if (first && !found.is_empty()) || current.len() < self.shortest {
                break;
            }
            let Some(view) = decode(&current, &self.useful, complete) else {
                break;
            };
            let mut here = Vec::new();
            self.raw(&view.text, &mut here, first);
            maps.push(view.anchors);
            found.extend(
                here.into_iter()
                    .map(|r| maps.iter().rev().fold(r, |r, m| back(m, r))),
            );
            current = Cow::Owned(view.text);
        }
        merge(found)
    }

    /// Whether `text`, held whole, holds a pattern.
    pub fn holds(&self, text: &[u8]) -> bool {
        !self.find(text, WHOLE, true, true).is_empty()
    }

    /// `text` with every match replaced by the marker; `None` when there is
    /// none (nothing is copied).
    pub fn replace(&self, text: &[u8]) -> Option<Vec<u8>> {
        let mut found = self.find(text, WHOLE, false, true);
        if found.is_empty() {
            return None;
        }
        let mut text = Cow::Borrowed(text);
        // Taking a match out can join escapes around it into another one;
        // what cannot be cleaned in a few passes is withheld whole.
        for _ in 0..3 {
            let mut out = Vec::with_capacity(text.len());
            let mut at = 0;
            for r in &found {
                out.extend_from_slice(&text[at..r.start]);
                out.extend_from_slice(self.marker.as_bytes());
                at = r.end;
            }
            out.extend_from_slice(&text[at..]);
            found = self.find(&out, WHOLE, false, true);
            if found.is_empty() {
                return Some(out);
            }
            text = Cow::Owned(out);
        }
        Some(self.marker.as_bytes().to_vec())
    }

    /// [`Needles::replace`] for text. The patterns are ASCII, and so are
    /// the escapes a match spans, so the result is UTF-8 where `text` is.
    pub fn replace_str(&self, text: &str) -> Option<String> {
        if text.len() < self.shortest {
            return None;
        }
        self.replace(text.as_bytes())
            .map(|v| String::from_utf8(v).unwrap_or_else(|e| lossy(e.as_bytes())))
    }

    /// Replaces matches in every header value; `true` when one was found.
    /// A value the marker cannot stand in is removed, and so is a header
    /// whose name holds a match (a name cannot be rewritten).
    pub fn replace_in_headers(&self, headers: &mut HeaderMap) -> bool {
        let mut found = false;
        let mut unusable = Vec::new();
        for (name, value) in headers.iter_mut() {
            if name.as_str().len() >= self.shortest && self.holds(name.as_str().as_bytes()) {
                found = true;
                unusable.push(name.clone());
                continue;
            }
            if value.len() < self.shortest {
                continue;
            }
            if let Some(clean) = self.replace(value.as_bytes()) {
                found = true;
                match HeaderValue::from_bytes(&clean) {
                    Ok(v) => *value = v,
                    Err(_) => unusable.push(name.clone()),
                }
            }
        }
        for name in unusable {
            headers.remove(name);
        }
        found
    }

    /// How many bytes at the end of `text` could begin a match (as written,
    /// or with one round of escapes undone, an escape cut short at the end
    /// included): the longest such end. Holding them back until the next
    /// chunk comes means no part of a match is passed on before it is
    /// found, and an end that cannot begin one (an event's blank line) is
    /// never held.
    fn open_end(&self, text: &[u8]) -> usize {
        let window = self.longest.saturating_mul(LONGEST_ESCAPE) - 1;
        let from = text.len().saturating_sub(window);
        (from..text.len())
            .find(|&p| self.could_begin(&text[p..]))
            .map_or(0, |p| text.len() - p)
    }

    fn could_begin(&self, s: &[u8]) -> bool {
        let first = s[0];
        if !(self.starts[usize::from(first)] || matches!(first, b'%' | b'\\' | b'&')) {
            return false;
        }
        let proper_prefix = |d: &[u8]| {
            self.finders.iter().any(|f| {
                let p = f.needle();
                p.len() > d.len() && p.starts_with(d)
            })
        };
        if proper_prefix(s) {
            return true;
        }
        // Decoded, compared with every pattern at once.
        let mut alive: u64 = if self.finders.len() == 64 {
            u64::MAX
        } else {
            (1u64 << self.finders.len()) - 1
        };
        let mut n = 0;
        let mut i = 0;
        while i < s.len() {
            let (b, len) = match unit(s, i, &self.useful, false) {
                Unit::Byte(b, len) => (b, len),
                // The escape may yet decode to the pattern's next byte.
                Unit::Cut => break,
            };
            for (k, f) in self.finders.iter().enumerate() {
                let p = f.needle();
                if p.get(n) != Some(&b) {
                    alive &= !(1u64 << k);
                }
            }
            if alive == 0 {
                return false;
            }
            n += 1;
            i += len;
        }
        self.finders
            .iter()
            .enumerate()
            .any(|(k, f)| alive & (1u64 << k) != 0 && f.needle().len() > n)
    }
}

/// What names the agent's token: the token, and for a JWS or JWE (dotted
/// segments) each segment after the first. The first, the protected
/// header, is the same for every token an issuer signs with one key, so
/// the rest is the token to anyone who has seen one; and a token cut in
/// two anywhere leaves one of them whole.
pub fn token_parts(token: &str) -> Vec<&[u8]> {
    let mut parts = vec![token.as_bytes()];
    let segments: Vec<&str> = token.split('.').collect();
    if segments.len() >= 3 {
        parts.extend(
            segments[1..]
                .iter()
                .filter(|s| s.len() >= MIN_SECRET)
                .map(|s| s.as_bytes()),
        );
    }
    parts
}

/// The shortest text that can hold what names the token.
pub fn token_shortest(token: &str) -> usize {
    token_parts(token)
        .iter()
        .map(|p| p.len())
        .min()
        .unwrap_or(token.len())
}

fn lossy(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// The base64 spellings of `secret` inside any longer base64 text: for each
/// of the three alignments, the characters that depend on the secret's
/// bytes alone, in the standard and the URL-safe alphabet.
fn base64_cores(secret: &[u8]) -> Vec<Vec<u8>> {
    use base64::Engine as _;
    let mut out = Vec::new();
    for pad in 0..3usize {
        let mut bytes = vec![0u8; pad];
        bytes.extend_from_slice(secret);
        let encoded = base64::engine::general_purpose::STANDARD_NO_PAD.encode(&bytes);
        // The first characters carry the padding's bits too (one character
        // per padding byte, and the one shared with the secret); the last
        // one of an unfinished group carries bits of whatever follows.
        let start = [0, 2, 3][pad];
        let end = encoded.len() - usize::from(bytes.len() % 3 != 0);
        if end <= start {
            continue;
        }
        let core = encoded.as_bytes()[start..end].to_vec();
        let url_safe: Vec<u8> = core
            .iter()
            .map(|&b| match b {
                b'+' => b'-',
                b'/' => b'_',
                other => other,
            })
            .collect();
        if url_safe != core {
            out.push(url_safe);
        }
        out.push(core);
    }
    out
}

/// A body searched as it streams. A match ends it with an error before any
/// byte of the match is passed on (a response is cut, an upload aborted
/// before its last bytes), and raises `found`. Trailers are cleaned as
/// headers are.
pub struct Guarded<B> {
    inner: B,
    needles: Arc<Needles>,
    /// Seen, not yet passed on: an end that could begin a match.
    held: BytesMut,
    /// Trailers waiting for the held bytes to go first.
    trailers: Option<HeaderMap>,
    ended: bool,
    failed: bool,
    found: Arc<AtomicBool>,
    what: &'static str,
}

impl<B> Guarded<B> {
    /// `what` is the error's text, naming what was found where.
    pub fn new(
        inner: B,
        needles: Arc<Needles>,
        found: Arc<AtomicBool>,
        what: &'static str,
    ) -> Self {
        Self {
            inner,
            needles,
            held: BytesMut::new(),
            trailers: None,
            ended: false,
            failed: false,
            found,
            what,
        }
    }
}

impl<B> HttpBody for Guarded<B>
where
    B: HttpBody<Data = Bytes> + Unpin,
    B::Error: Into<BoxError>,
{
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = &mut *self;
        loop {
            if this.failed {
                return Poll::Ready(None);
            }
            if this.ended {
                if !this.held.is_empty() {
                    return Poll::Ready(Some(Ok(Frame::data(this.held.split().freeze()))));
                }
                return Poll::Ready(this.trailers.take().map(|t| Ok(Frame::trailers(t))));
            }
            let frame = match Pin::new(&mut this.inner).poll_frame(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(None) => {
                    this.ended = true;
                    continue;
                }
                Poll::Ready(Some(Err(e))) => {
                    this.failed = true;
                    return Poll::Ready(Some(Err(e.into())));
                }
                Poll::Ready(Some(Ok(frame))) => frame,
            };
            let data = match frame.into_data() {
                Ok(data) => data,
                Err(frame) => {
                    if let Ok(mut trailers) = frame.into_trailers() {
                        this.needles.replace_in_headers(&mut trailers);
                        this.trailers = Some(trailers);
                    }
                    // Trailers end the body.
                    this.ended = true;
                    continue;
                }
            };
            let buf = if this.held.is_empty() {
                data
            } else {
                this.held.extend_from_slice(&data);
                this.held.split().freeze()
            };
            if !this.needles.find(&buf, STREAM, true, false).is_empty() {
                this.failed = true;
                this.found.store(true, Ordering::Relaxed);
                return Poll::Ready(Some(Err(this.what.into())));
            }
            let open = this.needles.open_end(&buf);
            let pass = buf.len() - open;
            this.held.extend_from_slice(&buf[pass..]);
            if pass > 0 {
                return Poll::Ready(Some(Ok(Frame::data(buf.slice(..pass)))));
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.failed
            || (self.ended && self.held.is_empty() && self.trailers.is_none())
            || (self.held.is_empty() && self.trailers.is_none() && self.inner.is_end_stream())
    }

    fn size_hint(&self) -> SizeHint {
        // What is held back is still to come.
        let inner = self.inner.size_hint();
        let held = self.held.len() as u64;
        let mut hint = SizeHint::new();
        if let Some(upper) = inner.upper() {
            hint.set_upper(upper.saturating_add(held));
        }
        hint.set_lower(inner.lower().saturating_add(held));
        hint
    }
}
