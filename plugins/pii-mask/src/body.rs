//! HTTP bodies, by Content-Type:
//!
//! - JSON (`application/json`, `*+json`, NDJSON / JSON Lines): string
//!   leaves, see [`crate::json`];
//! - `application/x-www-form-urlencoded`: each name and value decoded,
//!   scanned and re-encoded;
//! - text (`text/*`, XML, YAML, CSV, JavaScript, or no Content-Type): the
//!   whole body as text;
//! - anything else: scanned as text if it is valid UTF-8 (a mislabelled
//!   body may still carry personal data), passed on unchanged if it is
//!   binary.
//!
//! There is no null in a text body: the `null` strategy writes the redact
//! form there (and in form fields); in JSON it writes `null`.

use crate::json;
use crate::mask::{Engine, Outcome};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Json,
    Form,
    Text,
    Other,
}

fn kind(content_type: &str) -> Kind {
    let essence = content_type.split(';').next().unwrap_or("").trim();
    let is = |t: &str| essence.eq_ignore_ascii_case(t);
    let ends = |suffix: &str| {
        essence.len() >= suffix.len()
            && essence.as_bytes()[essence.len() - suffix.len()..]
                .eq_ignore_ascii_case(suffix.as_bytes())
    };
    let starts = |prefix: &str| {
        essence.len() >= prefix.len()
            && essence.as_bytes()[..prefix.len()].eq_ignore_ascii_case(prefix.as_bytes())
    };
    if is("application/json")
        || ends("+json")
        || is("application/x-ndjson")
        || is("application/jsonl")
        || is("application/json-seq")
        || is("text/json")
    {
        Kind::Json
    } else if is("application/x-www-form-urlencoded") {
        Kind::Form
    } else if essence.is_empty()
        || starts("text/")
        || is("application/xml")
        || ends("+xml")
        || is("application/yaml")
        || is("application/x-yaml")
        || is("application/csv")
        || is("application/javascript")
    {
        Kind::Text
    } else {
        Kind::Other
    }
}

/// The masked body, or `None` when nothing changed.
pub fn mask(engine: &mut Engine<'_>, content_type: &str, body: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    let outcome = match kind(content_type) {
        Kind::Json => json::mask(engine, body, &mut out),
        Kind::Form => form(engine, body, &mut out),
        Kind::Text => engine.text(body, false, &mut out),
        Kind::Other if std::str::from_utf8(body).is_ok() => engine.text(body, false, &mut out),
        Kind::Other => Outcome::Unchanged,
    };
    (outcome == Outcome::Replaced).then_some(out)
}

/// `name=value&…`: names and values are masked separately, decoded.
fn form(engine: &mut Engine<'_>, body: &[u8], out: &mut Vec<u8>) -> Outcome {
    let mut decoded = Vec::new();
    let mut masked = Vec::new();
    let (mut copied, mut changed) = (0, false);
    let mut start = 0;
    while start <= body.len() {
        let end = body[start..]
            .iter()
            .position(|b| matches!(b, b'&' | b'='))
            .map_or(body.len(), |p| start + p);
        let raw = &body[start..end];
        let needs_decoding = raw.iter().any(|b| matches!(b, b'%' | b'+'));
        let text = if needs_decoding {
            decoded.clear();
            percent_decode(raw, &mut decoded);
            &decoded[..]
        } else {
            raw
        };
        masked.clear();
        if engine.text(text, false, &mut masked) == Outcome::Replaced {
            out.extend_from_slice(&body[copied..start]);
            percent_encode(&masked, out);
            copied = end;
            changed = true;
        }
        start = end + 1;
    }
    if !changed {
        out.clear();
        return Outcome::Unchanged;
    }
    out.extend_from_slice(&body[copied..]);
    Outcome::Replaced
}

/// `+` is a space and `%XX` a byte; a `%` not followed by two hex digits
/// stands for itself, as browsers read it.
fn percent_decode(raw: &[u8], out: &mut Vec<u8>) {
    let mut i = 0;
    while i < raw.len() {
        match raw[i] {
            b'+' => out.push(b' '),
            b'%' => {
                let pair = raw
                    .get(i + 1)
                    .copied()
                    .and_then(crate::hex_digit)
                    .zip(raw.get(i + 2).copied().and_then(crate::hex_digit));
                if let Some((hi, lo)) = pair {
                    out.push(hi << 4 | lo);
                    i += 3;
                    continue;
                }
                out.push(b'%');
            }
            b => out.push(b),
        }
        i += 1;
    }
}

fn percent_encode(text: &[u8], out: &mut Vec<u8>) {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    for &b in text {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'*' => out.push(b),
            b' ' => out.push(b'+'),
            _ => {
                out.push(b'%');
                out.push(HEX[usize::from(b >> 4)]);
                out.push(HEX[usize::from(b & 0xf)]);
            }
        }
    }
}
