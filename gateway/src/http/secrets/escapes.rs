//! Escapes undone for the secrets' search: JSON's, percent-encoding and
//! HTML/XML character references, one round at a time, with a map from
//! each decoded byte back to the bytes that spell it.

use std::ops::Range;

use super::LONGEST_ESCAPE;

/// One unit of a text read with its escapes undone.
pub(super) enum Unit {
    /// A byte, and how many bytes of the text spell it.
    Byte(u8, usize),
    /// An escape cut short by the end of the text.
    Cut,
}

fn hex(b: u8) -> Option<u8> {
    crate::http::route::hex(b)
}

/// The unit at `i`: an escape whose byte is `useful` decoded (JSON's `\/`,
/// `\\`, `\"`, `\uXXXX`; `%XX`; `%uXXXX`; HTML and XML character
/// references, `&#45;`, `&#x2d;`, `&amp;`, as an upstream's error page
/// escapes what it quotes), to ASCII only (every pattern is ASCII). Anything else is itself: a `\` before another character
/// stays, and so does the character after it.
pub(super) fn unit(text: &[u8], i: usize, useful: &[bool; 256], complete: bool) -> Unit {
    let b = text[i];
    let rest = &text[i + 1..];
    let hex_run = |from: usize, n: usize| -> Result<u32, bool> {
        // Err(true): the text ends inside the run.
        let mut v = 0u32;
        for k in 0..n {
            match rest.get(from + k) {
                None => return Err(true),
                Some(&c) => match hex(c) {
                    Some(h) => v = v << 4 | u32::from(h),
                    None => return Err(false),
                },
            }
        }
        Ok(v)
    };
    let decoded = |v: u32, len: usize| match u8::try_from(v) {
        Ok(byte) if byte.is_ascii() && useful[usize::from(byte)] => Unit::Byte(byte, len),
        _ => Unit::Byte(b, 1),
    };
    match b {
        b'\\' => match rest.first() {
            None => Unit::Cut,
            Some(&c @ (b'/' | b'\\' | b'"')) if useful[usize::from(c)] => Unit::Byte(c, 2),
            Some(b'u') => match hex_run(1, 4) {
                Ok(v) => decoded(v, 6),
                Err(true) => Unit::Cut,
                Err(false) => Unit::Byte(b, 1),
            },
            Some(_) => Unit::Byte(b, 1),
        },
        b'%' => match rest.first() {
            None => Unit::Cut,
            Some(b'u' | b'U') => match hex_run(1, 4) {
                Ok(v) => decoded(v, 6),
                Err(true) => Unit::Cut,
                Err(false) => Unit::Byte(b, 1),
            },
            Some(_) => match hex_run(0, 2) {
                Ok(v) => decoded(v, 3),
                Err(true) => Unit::Cut,
                Err(false) => Unit::Byte(b, 1),
            },
        },
        b'&' => reference(rest, b, complete, decoded),
        _ => Unit::Byte(b, 1),
    }
}

/// A character reference after its `&`, read as HTML5 reads text:
/// numeric (up to the digits [`LONGEST_ESCAPE`] allows; the `;` may be
/// left out, `&#85&#112`) or one of XML's five names (`amp`, `lt`, `gt`
/// and `quot` also in capitals and without `;`, as HTML's legacy names).
/// `complete`: the text ends where it ends (else a reference cut short at
/// its end may go on in the next chunk).
fn reference(rest: &[u8], amp: u8, complete: bool, decoded: impl Fn(u32, usize) -> Unit) -> Unit {
    const NAMED: [(&[u8], u8, bool); 9] = [
        (b"amp", b'&', true),
        (b"AMP", b'&', true),
        (b"lt", b'<', true),
        (b"LT", b'<', true),
        (b"gt", b'>', true),
        (b"GT", b'>', true),
        (b"quot", b'"', true),
        (b"QUOT", b'"', true),
        (b"apos", b'\'', false),
    ];
    let cut = || {
        if complete {
            Unit::Byte(amp, 1)
        } else {
            Unit::Cut
        }
    };
    match rest.first() {
        None => cut(),
        Some(b'#') => {
            let (radix, from) = match rest.get(1) {
                None => return cut(),
                Some(b'x' | b'X') => (16, 2),
                Some(_) => (10, 1),
            };
            let most = LONGEST_ESCAPE - 2 - from;
            let mut v = 0u32;
            let mut k = 0;
            loop {
                match rest.get(from + k) {
                    None if k > 0 && complete => return decoded(v, from + k + 1),
                    None => return cut(),
                    Some(b';') if k > 0 => return decoded(v, from + k + 2),
                    Some(&c) => match char::from(c).to_digit(radix) {
                        Some(d) if k < most => {
                            v = v * radix + d;
                            k += 1;
                        }
                        // No `;`: the reference ends at the first byte
                        // that is no digit.
                        None if k > 0 => return decoded(v, from + k + 1),
                        _ => return Unit::Byte(amp, 1),
                    },
                }
            }
        }
        Some(_) => {
            for (name, byte, legacy) in NAMED {
                let n = name.len().min(rest.len());
                if rest[..n] != name[..n] {
                    continue;
                }
                if n < name.len() {
                    return cut();
                }
                return match rest.get(name.len()) {
                    Some(b';') => decoded(u32::from(byte), name.len() + 2),
                    None if !complete => Unit::Cut,
                    _ if legacy => decoded(u32::from(byte), name.len() + 1),
                    _ => Unit::Byte(amp, 1),
                };
            }
            Unit::Byte(amp, 1)
        }
    }
}

/// Where a decoded escape came from: one byte of the view at `view`, spelled
/// by `len` bytes of the text at `orig`.
pub(super) struct Anchor {
    pub(super) view: usize,
    pub(super) orig: usize,
    pub(super) len: usize,
}

pub(super) struct View {
    pub(super) text: Vec<u8>,
    /// Sorted by `view`; between anchors the view is the text, shifted.
    pub(super) anchors: Vec<Anchor>,
}

/// `text` with its escapes undone once; `None` when it has none.
pub(super) fn decode(text: &[u8], useful: &[bool; 256], complete: bool) -> Option<View> {
    // Nothing is copied until an escape is found: binary streams have
    // plenty of `%` and `\` bytes, few of them escapes.
    let mut from = 0;
    let first = loop {
        let at = from + memchr::memchr3(b'\\', b'%', b'&', &text[from..])?;
        match unit(text, at, useful, complete) {
            Unit::Byte(_, 1) => from = at + 1,
            Unit::Byte(..) => break at,
            Unit::Cut => return None,
        }
    };
    let mut out = Vec::with_capacity(text.len());
    out.extend_from_slice(&text[..first]);
    let mut anchors = Vec::new();
    let mut i = first;
    while i < text.len() {
        match unit(text, i, useful, complete) {
            Unit::Byte(b, 1) => {
                out.push(b);
                i += 1;
            }
            Unit::Byte(b, len) => {
                anchors.push(Anchor {
                    view: out.len(),
                    orig: i,
                    len,
                });
                out.push(b);
                i += len;
            }
            Unit::Cut => {
                out.extend_from_slice(&text[i..]);
                break;
            }
        }
    }
    (!anchors.is_empty()).then_some(View { text: out, anchors })
}

/// Where byte `v` of a view starts in the text it was decoded from.
fn start_of(anchors: &[Anchor], v: usize) -> usize {
    match anchors.partition_point(|a| a.view <= v) {
        0 => v,
        k => {
            let a = &anchors[k - 1];
            if a.view == v {
                a.orig
            } else {
                a.orig + a.len + (v - a.view - 1)
            }
        }
    }
}

/// A range of a view as the range of the text that spells it (an escape at
/// either end whole).
pub(super) fn back(anchors: &[Anchor], r: Range<usize>) -> Range<usize> {
    let last = r.end - 1;
    let end = match anchors.partition_point(|a| a.view <= last) {
        0 => r.end,
        k => {
            let a = &anchors[k - 1];
            if a.view == last {
                a.orig + a.len
            } else {
                a.orig + a.len + (last - a.view)
            }
        }
    };
    start_of(anchors, r.start)..end
}

pub(super) fn merge(mut ranges: Vec<Range<usize>>) -> Vec<Range<usize>> {
    if ranges.len() < 2 {
        return ranges;
    }
    ranges.sort_by_key(|r| r.start);
    let mut out: Vec<Range<usize>> = Vec::with_capacity(ranges.len());
    for r in ranges {
        match out.last_mut() {
            Some(last) if r.start <= last.end => last.end = last.end.max(r.end),
            _ => out.push(r),
        }
    }
    out
}
