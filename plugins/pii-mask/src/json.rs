//! Masking inside JSON documents (json/jsonb cells, JSON and NDJSON bodies)
//! while keeping them valid JSON.
//!
//! The document is validated first; then only its strings are rewritten, in
//! place: every string (values and object keys) is decoded, scanned, and if
//! something is found re-encoded with the masked text. Everything else is
//! copied byte for byte, so numbers keep their exact spelling and keys their
//! order. Numbers that are valid card numbers are masked too (as a JSON
//! string, or `null`), however written: `4242424242424242`, `-4242…`,
//! `4242424242424242.0` (how Python writes a float), `4.242424242424242e15`.
//! A value that is not valid JSON is masked as plain text instead: it might
//! still hold personal data, and its string escapes are read there too
//! (see [`crate::detect::escapes`]).
//!
//! The `null` strategy writes `null` in place of a string, except in an
//! object key and in a document that is one array of strings and nothing
//! else: that is how the gateway hands maskers the short texts of one
//! message (a server error's fields, a response's header values), and it
//! reads them back as exactly as many strings; they get the redact form.

use serde::de::IgnoredAny;

use crate::detect::card_digits;
use crate::entity::Entity;
use crate::mask::{Engine, Outcome, Strategy};

/// Masks the JSON document (or sequence of documents) `text`; the masked
/// document is appended to `out` when something was found.
pub fn mask(engine: &mut Engine<'_>, text: &[u8], out: &mut Vec<u8>) -> Outcome {
    if !valid(text) {
        return engine.text(text, false, out);
    }
    let strings = string_array(text);
    let start = out.len();
    let mut decoded = Vec::new();
    let mut masked = Vec::new();
    let (mut i, mut copied, mut changed) = (0, 0, false);
    while i < text.len() {
        match text[i] {
            b'"' => {
                let (end, escaped) = string_end(text, i);
                let raw = text.get(i + 1..end - 1).unwrap_or_default();
                let content = if escaped {
                    decoded.clear();
                    unescape(raw, &mut decoded);
                    &decoded[..]
                } else {
                    raw
                };
                masked.clear();
                let key = is_key(text, end);
                match engine.text(content, !key && !strings, &mut masked) {
                    Outcome::Unchanged => {}
                    Outcome::Null => {
                        out.extend_from_slice(&text[copied..i]);
                        out.extend_from_slice(b"null");
                        copied = end;
                        changed = true;
                    }
                    Outcome::Replaced => {
                        out.extend_from_slice(&text[copied..i]);
                        escape(&masked, out);
                        copied = end;
                        changed = true;
                    }
                }
                i = end;
            }
            b'-' | b'0'..=b'9' => {
                let n = text[i..]
                    .iter()
                    .take_while(|b| matches!(b, b'-' | b'+' | b'.' | b'e' | b'E' | b'0'..=b'9'))
                    .count();
                let number = &text[i..i + n];
                let mut digits = [0u8; 19];
                if engine.entities & Entity::Card.bit() != 0
                    && let Some(digits) = integer_digits(number, &mut digits)
                    && card_digits(digits)
                {
                    masked.clear();
                    let strategy = engine.masking.strategy(Entity::Card);
                    // Written from the digits, so that every spelling of a
                    // number gets the partial form and pseudonym of its
                    // plain integer.
                    let outcome =
                        engine.whole(Entity::Card.id(), strategy, digits, true, &mut masked);
                    out.extend_from_slice(&text[copied..i]);
                    match outcome {
                        Outcome::Null => out.extend_from_slice(b"null"),
                        _ => escape(&masked, out),
                    }
                    copied = i + n;
                    changed = true;
                }
                i += n;
            }
            _ => i += 1,
        }
    }
    if !changed {
        out.truncate(start);
        return Outcome::Unchanged;
    }
    out.extend_from_slice(&text[copied..]);
    Outcome::Replaced
}

/// The digits of the integer the JSON number `number` stands for, its sign
/// dropped (`-42`, `42.00`, `4.2e1` and `420E-1` are all `42`), if it is an
/// integer of at most 19 digits (the longest card number), however many
/// zeros pad it (`0.000…042e…`, `42000…0e-…`). Linear in the length of
/// `number`, whatever its length.
fn integer_digits<'b>(number: &[u8], buf: &'b mut [u8; 19]) -> Option<&'b [u8]> {
    let unsigned = number.strip_prefix(b"-").unwrap_or(number);
    let digits = |t: &[u8]| t.iter().take_while(|b| b.is_ascii_digit()).count();
    let (int, rest) = unsigned.split_at(digits(unsigned));
    let (frac, rest) = match rest.strip_prefix(b".") {
        Some(r) => r.split_at(digits(r)),
        None => (&[][..], rest),
    };
    // The significant digits: leading zeros say nothing, trailing zeros
    // (the integer's own or a fraction of zeros) are a power of ten.
    let all = || int.iter().chain(frac);
    let total = int.len() + frac.len();
    let lead = all().take_while(|b| **b == b'0').count();
    if lead == total {
        return None;
    }
    let trail = all().rev().take_while(|b| **b == b'0').count();
    let significant = total - lead - trail;
    if significant > buf.len() {
        return None;
    }
    // The number is the significant digits times 10^(exponent - fraction
    // digits + trailing zeros). An exponent beyond `bound` either way
    // leaves that power below 0 or above 19 whatever the digits, so the
    // exponent saturates there: no overflow, and every exponent that could
    // give a card is read exactly.
    let bound = i64::try_from(total).ok()?.saturating_add(20);
    let exponent: i64 = match rest {
        [] => 0,
        [b'e' | b'E', exp @ ..] => {
            let (negative, exp) = match exp {
                [b'-', e @ ..] => (true, e),
                [b'+', e @ ..] => (false, e),
                e => (false, e),
            };
            if exp.is_empty() || digits(exp) != exp.len() {
                return None;
            }
            let e = exp.iter().fold(0i64, |acc, b| {
                acc.saturating_mul(10)
                    .saturating_add(i64::from(b - b'0'))
                    .min(bound)
            });
            if negative { -e } else { e }
        }
        _ => return None,
    };
    // |exponent| and the digit counts are at most `bound`: no overflow.
    let zeros = exponent - i64::try_from(frac.len()).ok()? + i64::try_from(trail).ok()?;
    // Negative: a nonzero digit after the point.
    let zeros = usize::try_from(zeros).ok()?;
    let len = significant.checked_add(zeros).filter(|l| *l <= buf.len())?;
    for (slot, d) in buf.iter_mut().zip(all().skip(lead).take(significant)) {
        *slot = *d;
    }
    buf[significant..len].fill(b'0');
    Some(&buf[..len])
}

/// One JSON value or a whitespace-separated sequence of them (NDJSON).
/// `IgnoredAny` checks the syntax without building anything.
fn valid(text: &[u8]) -> bool {
    serde_json::Deserializer::from_slice(text)
        .into_iter::<IgnoredAny>()
        .all(|v| v.is_ok())
}

/// The index just past the string opening at `start`, and whether it holds
/// escapes. The document is valid, so the closing quote exists; should it
/// not, the rest of the text is the string.
fn string_end(text: &[u8], start: usize) -> (usize, bool) {
    let mut i = start + 1;
    let mut escaped = false;
    while i < text.len() {
        match text[i] {
            b'"' => return (i + 1, escaped),
            b'\\' => {
                escaped = true;
                i += 2;
            }
            _ => i += 1,
        }
    }
    (text.len(), escaped)
}

/// The (valid) document is one array whose elements are all strings: the
/// form of [`mask`]'s texts that must stay strings.
fn string_array(text: &[u8]) -> bool {
    let skip = |i: usize| {
        i + text[i..]
            .iter()
            .take_while(|b| b.is_ascii_whitespace())
            .count()
    };
    let mut i = skip(0);
    if text.get(i) != Some(&b'[') {
        return false;
    }
    i = skip(i + 1);
    if text.get(i) == Some(&b']') {
        return skip(i + 1) == text.len();
    }
    loop {
        if text.get(i) != Some(&b'"') {
            return false;
        }
        i = skip(string_end(text, i).0);
        match text.get(i) {
            Some(b',') => i = skip(i + 1),
            Some(b']') => return skip(i + 1) == text.len(),
            _ => return false,
        }
    }
}

/// The string ending at `end` is an object key (a `:` follows).
fn is_key(text: &[u8], end: usize) -> bool {
    text[end..]
        .iter()
        .find(|b| !b.is_ascii_whitespace())
        .is_some_and(|b| *b == b':')
}

/// Decodes the escapes of a JSON string body into `out` (UTF-8). A lone
/// surrogate becomes U+FFFD.
fn unescape(raw: &[u8], out: &mut Vec<u8>) {
    let mut i = 0;
    while i < raw.len() {
        if raw[i] != b'\\' {
            out.push(raw[i]);
            i += 1;
            continue;
        }
        let Some(&e) = raw.get(i + 1) else { break };
        i += 2;
        let simple = match e {
            b'"' => b'"',
            b'\\' => b'\\',
            b'/' => b'/',
            b'b' => 0x08,
            b'f' => 0x0c,
            b'n' => b'\n',
            b'r' => b'\r',
            b't' => b'\t',
            b'u' => {
                let (c, used) = unicode_escape(raw, i);
                i += used;
                let mut buf = [0u8; 4];
                out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
                continue;
            }
            other => other,
        };
        out.push(simple);
    }
}

/// The character of a `\u` escape whose hex digits start at `i` (with its
/// low surrogate, if it is a pair), and how many bytes it used.
fn unicode_escape(raw: &[u8], i: usize) -> (char, usize) {
    let hex = |at: usize| -> Option<u32> {
        let digits = std::str::from_utf8(raw.get(at..at + 4)?).ok()?;
        u32::from_str_radix(digits, 16).ok()
    };
    let Some(first) = hex(i) else {
        return (char::REPLACEMENT_CHARACTER, 0);
    };
    if (0xd800..0xdc00).contains(&first)
        && raw.get(i + 4..i + 6) == Some(b"\\u")
        && let Some(second) = hex(i + 6)
        && (0xdc00..0xe000).contains(&second)
    {
        let c = 0x10000 + ((first - 0xd800) << 10) + (second - 0xdc00);
        return (char::from_u32(c).unwrap_or(char::REPLACEMENT_CHARACTER), 10);
    }
    (
        char::from_u32(first).unwrap_or(char::REPLACEMENT_CHARACTER),
        4,
    )
}

/// Writes `text` as a JSON string.
pub fn escape(text: &[u8], out: &mut Vec<u8>) {
    out.push(b'"');
    for &b in text {
        match b {
            b'"' => out.extend_from_slice(b"\\\""),
            b'\\' => out.extend_from_slice(b"\\\\"),
            b'\n' => out.extend_from_slice(b"\\n"),
            b'\r' => out.extend_from_slice(b"\\r"),
            b'\t' => out.extend_from_slice(b"\\t"),
            0x00..=0x1f => {
                const HEX: &[u8; 16] = b"0123456789abcdef";
                out.extend_from_slice(b"\\u00");
                out.push(HEX[usize::from(b >> 4)]);
                out.push(HEX[usize::from(b & 0xf)]);
            }
            _ => out.push(b),
        }
    }
    out.push(b'"');
}

/// A whole JSON value replaced by a string: what a column rule writes into
/// a json/jsonb cell (partial forms of a document make no sense, so
/// `partial` writes the redact form).
pub fn whole(
    engine: &mut Engine<'_>,
    id: usize,
    strategy: Strategy,
    value: &[u8],
    out: &mut Vec<u8>,
) -> Outcome {
    let strategy = match strategy {
        Strategy::Partial => Strategy::Redact,
        s => s,
    };
    let mut text = Vec::new();
    let outcome = engine.whole(id, strategy, value, true, &mut text);
    if outcome == Outcome::Replaced {
        escape(&text, out);
    }
    outcome
}
