//! Character references and markup that hide text from the detectors
//! without hiding it from a reader: `ann&#64;example&#46;com` is
//! `ann@example.com` in a browser, in an XML parser and in Python's
//! `html.unescape`.
//!
//! Numeric references follow HTML5: `&#` and decimal digits, or `&#x` /
//! `&#X` and hexadecimal digits, any number of leading zeros, the `;`
//! optional; 0, surrogates and values past U+10FFFF are U+FFFD and 0x80–0x9F
//! the Windows-1252 characters. Named references are the few that stand for
//! characters the detectors read (`&commat;`, `&period;`, `&lowbar;`, …)
//! or that hide them (`&shy;`, `&zwj;`), with their `;`, in any case
//! (masking errs towards masking). XML markup that a reader does not see
//! inside a value is dropped: `<![CDATA[` and `]]>` (the content stays) and
//! closed comments `<!-- … -->`. So are characters nobody sees, raw or as
//! references: the soft hyphen (U+00AD, `&shy;`, `&#173;`) and the
//! zero-width ones (U+200B–U+200D, U+2060, U+FEFF), with which
//! `ann&shy;@example.com` reads as `ann@example.com`. JavaScript and JSON
//! string escapes (`\u0040`, `\x40`, see [`super::escapes`]) are decoded
//! as references are. Spaces, dashes and ats that look like ASCII ones,
//! raw or encoded, read as them (see [`look_alike`]).
//!
//! [`Decoded`] holds a value with all of these decoded, and maps spans of
//! the decoded text back to the bytes they came from.

use super::escapes;

/// Named references decoded, each with its `;` (`&shy` also without).
const NAMED: [(&[u8], char); 28] = [
    (b"commat;", '@'),
    (b"period;", '.'),
    (b"lowbar;", '_'),
    (b"underbar;", '_'),
    (b"plus;", '+'),
    (b"percnt;", '%'),
    (b"colon;", ':'),
    (b"lpar;", '('),
    (b"rpar;", ')'),
    (b"num;", '#'),
    (b"sol;", '/'),
    (b"equals;", '='),
    (b"amp;", '&'),
    (b"lt;", '<'),
    (b"gt;", '>'),
    (b"quot;", '"'),
    (b"apos;", '\''),
    (b"nbsp;", '\u{a0}'),
    (b"shy;", '\u{ad}'),
    // HTML5 reads `&shy` without its `;` too, as it does every Latin-1 name.
    (b"shy", '\u{ad}'),
    (b"ZeroWidthSpace;", '\u{200b}'),
    (b"NegativeVeryThinSpace;", '\u{200b}'),
    (b"NegativeThinSpace;", '\u{200b}'),
    (b"NegativeMediumSpace;", '\u{200b}'),
    (b"NegativeThickSpace;", '\u{200b}'),
    (b"zwnj;", '\u{200c}'),
    (b"zwj;", '\u{200d}'),
    (b"NoBreak;", '\u{2060}'),
];

/// What HTML5 makes of the numeric references 0x80–0x9F (Windows-1252);
/// `None` for the five it leaves as they are.
const C1: [Option<char>; 32] = [
    Some('\u{20ac}'),
    None,
    Some('\u{201a}'),
    Some('\u{0192}'),
    Some('\u{201e}'),
    Some('\u{2026}'),
    Some('\u{2020}'),
    Some('\u{2021}'),
    Some('\u{02c6}'),
    Some('\u{2030}'),
    Some('\u{0160}'),
    Some('\u{2039}'),
    Some('\u{0152}'),
    None,
    Some('\u{017d}'),
    None,
    None,
    Some('\u{2018}'),
    Some('\u{2019}'),
    Some('\u{201c}'),
    Some('\u{201d}'),
    Some('\u{2022}'),
    Some('\u{2013}'),
    Some('\u{2014}'),
    Some('\u{02dc}'),
    Some('\u{2122}'),
    Some('\u{0161}'),
    Some('\u{203a}'),
    Some('\u{0153}'),
    None,
    Some('\u{017e}'),
    Some('\u{0178}'),
];

/// The character of the reference at `i` (`&#64;`, `&#x0040`, `&commat;`)
/// and its length in bytes, if one is there.
pub fn reference(text: &[u8], i: usize) -> Option<(char, usize)> {
    let rest = text.get(i..)?;
    if rest.first() != Some(&b'&') {
        return None;
    }
    if rest.get(1) == Some(&b'#') {
        return numeric(rest);
    }
    let name = &rest[1..];
    NAMED
        .iter()
        .find(|(n, _)| name.len() >= n.len() && name[..n.len()].eq_ignore_ascii_case(n))
        .map(|(n, c)| (*c, 1 + n.len()))
}

/// `&#…` at the start of `rest`.
fn numeric(rest: &[u8]) -> Option<(char, usize)> {
    let (radix, mut j) = match rest.get(2) {
        Some(b'x' | b'X') => (16, 3),
        _ => (10, 2),
    };
    let first = j;
    let mut value: u32 = 0;
    while let Some(d) = rest.get(j).and_then(|b| char::from(*b).to_digit(radix)) {
        // Saturates past U+10FFFF: any such value is U+FFFD.
        value = value.saturating_mul(radix).saturating_add(d);
        j += 1;
    }
    if j == first {
        return None;
    }
    if rest.get(j) == Some(&b';') {
        j += 1;
    }
    Some((html5_char(value), j))
}

/// The character HTML5 reads a numeric reference with `value` as.
fn html5_char(value: u32) -> char {
    match value {
        0 => char::REPLACEMENT_CHARACTER,
        0x80..=0x9f => C1[(value - 0x80) as usize]
            .unwrap_or_else(|| char::from_u32(value).unwrap_or(char::REPLACEMENT_CHARACTER)),
        _ => char::from_u32(value).unwrap_or(char::REPLACEMENT_CHARACTER),
    }
}

/// Markup at `i` a reader does not see, and its length: CDATA brackets,
/// comment delimiters, and comments holding nothing but whitespace
/// (`<!---->`, `<!-- -->`), which split what a browser shows as one word.
/// Any other comment loses only its delimiters: what it holds is text too,
/// which an agent reading the raw body sees.
fn markup(text: &[u8], i: usize) -> Option<usize> {
    let rest = text.get(i..)?;
    if rest.starts_with(b"<![CDATA[") {
        return Some(9);
    }
    if rest.starts_with(b"]]>") || rest.starts_with(b"-->") {
        return Some(3);
    }
    // HTML5 ends a comment at `--!>` too.
    if rest.starts_with(b"--!>") {
        return Some(4);
    }
    let body = rest.strip_prefix(b"<!--")?;
    // `<!-->` and `<!--->` are (empty) comments in HTML5.
    if body.starts_with(b">") {
        return Some(5);
    }
    if body.starts_with(b"->") {
        return Some(6);
    }
    let blank = body.iter().take_while(|b| b.is_ascii_whitespace()).count();
    let after = &body[blank..];
    if after.starts_with(b"-->") {
        Some(4 + blank + 3)
    } else if after.starts_with(b"--!>") {
        Some(4 + blank + 4)
    } else {
        Some(4)
    }
}

/// Characters that take no room on screen: read as nothing, they would
/// otherwise split a value a reader sees whole.
pub fn invisible(c: char) -> bool {
    matches!(
        c,
        '\u{ad}' | '\u{200b}'..='\u{200d}' | '\u{2060}' | '\u{feff}'
    )
}

/// What a separator that looks like an ASCII one reads as: the Unicode
/// spaces (no-break, figure, thin, narrow no-break, …) a space; hyphens,
/// dashes and the minus sign a `-`. Numbers are written with them
/// (`4242 4242 4242 4242` with no-break spaces, `536‑90‑4399` with
/// non-breaking hyphens, as word processors and locales do), and the
/// detectors know ASCII separators only. Em dashes are included: where one
/// joins digits, it is read as an ASCII dash would be. So are the
/// fullwidth and small commercial ats (U+FF20, U+FE6B) an `@`: a reader
/// (and a mail client or model that normalises the text) takes
/// `ann＠example.com` for the address. Full stops are not decoded here;
/// see [`super::email::full_stop_at`].
pub fn look_alike(c: char) -> Option<char> {
    match c {
        '\u{a0}' | '\u{2000}'..='\u{200a}' | '\u{202f}' | '\u{205f}' | '\u{3000}' => Some(' '),
        '\u{2010}'..='\u{2014}' | '\u{2212}' | '\u{fe63}' | '\u{ff0d}' => Some('-'),
        '\u{ff20}' | '\u{fe6b}' => Some('@'),
        _ => None,
    }
}

/// A character written raw at `i` that does not read as itself: an
/// [`invisible`] or [`look_alike`] one, and its length in bytes.
pub fn unusual_at(text: &[u8], i: usize) -> Option<(char, usize)> {
    let len = match text.get(i)? {
        0xc2 => 2,
        0xe2 | 0xe3 | 0xef => 3,
        _ => return None,
    };
    let c = std::str::from_utf8(text.get(i..i + len)?)
        .ok()?
        .chars()
        .next()?;
    (invisible(c) || look_alike(c).is_some()).then_some((c, len))
}

/// The bytes `c`, decoded, is read as: nothing if it is [`invisible`],
/// the ASCII separator it looks like, or itself.
fn read_as(c: char, buf: &mut [u8; 4]) -> &[u8] {
    if invisible(c) {
        return &[];
    }
    look_alike(c).unwrap_or(c).encode_utf8(buf).as_bytes()
}

/// Markup that opens or closes a CDATA section or a comment, and whether
/// it opens: what must stay balanced when a match that spans it is
/// replaced.
fn boundary(markup: &[u8]) -> Option<(u8, bool)> {
    const CDATA: u8 = 0;
    const COMMENT: u8 = 1;
    match markup {
        b"<![CDATA[" => Some((CDATA, true)),
        b"]]>" => Some((CDATA, false)),
        b"<!--" => Some((COMMENT, true)),
        b"-->" | b"--!>" => Some((COMMENT, false)),
        // Whole blank comments and invisible characters.
        _ => None,
    }
}

/// One decoded reference or dropped piece of markup: `orig_len` bytes at
/// `orig` became `len` bytes at `at` of the decoded text.
#[derive(Clone, Copy, Debug)]
struct Unit {
    at: usize,
    len: usize,
    orig: usize,
    orig_len: usize,
}

/// A value with its references decoded and its hidden markup dropped.
#[derive(Default, Debug)]
pub struct Decoded {
    pub text: Vec<u8>,
    units: Vec<Unit>,
}

impl Decoded {
    /// Decodes `text`; `false`, and nothing kept, when it holds nothing to
    /// decode (no allocation then).
    pub fn decode(&mut self, text: &[u8]) -> bool {
        self.text.clear();
        self.units.clear();
        let mut copied = 0;
        let mut i = 0;
        let mut buf = [0u8; 4];
        // 0xc2, 0xe2, 0xe3 and 0xef lead the invisible and look-alike
        // characters.
        while let Some(p) = text[i..].iter().position(|b| {
            matches!(
                b,
                b'&' | b'<' | b']' | b'-' | b'\\' | 0xc2 | 0xe2 | 0xe3 | 0xef
            )
        }) {
            i += p;
            let encoded = reference(text, i)
                .or_else(|| escapes::escape(text, i))
                .or_else(|| unusual_at(text, i));
            let (decoded, len): (&[u8], usize) = if let Some((c, len)) = encoded {
                (read_as(c, &mut buf), len)
            } else if let Some(len) = markup(text, i) {
                (&[], len)
            } else {
                // A run of backslashes is skipped whole: each of them would
                // look at the same run again.
                i += escapes::backslashes(text, i).max(1);
                continue;
            };
            self.text.extend_from_slice(&text[copied..i]);
            self.units.push(Unit {
                at: self.text.len(),
                len: decoded.len(),
                orig: i,
                orig_len: len,
            });
            self.text.extend_from_slice(decoded);
            i += len;
            copied = i;
        }
        if self.units.is_empty() {
            return false;
        }
        self.text.extend_from_slice(&text[copied..]);
        true
    }

    /// Where byte `d` of the decoded text came from: the start of its
    /// reference, or its own offset.
    fn start_of(&self, d: usize) -> usize {
        let n = self.units.partition_point(|u| u.at <= d);
        let Some(u) = n.checked_sub(1).map(|k| self.units[k]) else {
            return d;
        };
        if d < u.at + u.len {
            u.orig
        } else {
            u.orig + u.orig_len + (d - u.at - u.len)
        }
    }

    /// The original bytes of the decoded span `start..end` (not empty): from
    /// the start of its first byte's source to the end of its last's.
    pub fn span(&self, start: usize, end: usize) -> (usize, usize) {
        let last = end - 1;
        let n = self.units.partition_point(|u| u.at <= last);
        let end = match n.checked_sub(1).map(|k| self.units[k]) {
            Some(u) if last < u.at + u.len => u.orig + u.orig_len,
            _ => self.start_of(last) + 1,
        };
        (self.start_of(start), end)
    }

    /// Appends the CDATA and comment delimiters among the original bytes
    /// `start..end` of `text` (the value [`Decoded::decode`] was given) that
    /// the span does not close or open itself, in order: a replacement of
    /// `ann<![CDATA[@example.com` followed by them leaves the document's
    /// sections balanced (`[EMAIL]<![CDATA[`), while a section wholly inside
    /// the span goes with it.
    pub fn unbalanced(&self, text: &[u8], start: usize, end: usize, out: &mut Vec<u8>) {
        let first = self.units.partition_point(|u| u.orig < start);
        let mut open: Vec<(u8, bool, &[u8])> = Vec::new();
        for u in self.units[first..]
            .iter()
            .take_while(|u| u.orig + u.orig_len <= end)
            .filter(|u| u.len == 0)
        {
            let markup = &text[u.orig..u.orig + u.orig_len];
            let Some((kind, opens)) = boundary(markup) else {
                continue;
            };
            // A section opened and closed within the span, or closed and
            // reopened (the span starts in one and ends in the next).
            match open.last() {
                Some(&(k, o, _)) if k == kind && o != opens => {
                    open.pop();
                }
                _ => open.push((kind, opens, markup)),
            }
        }
        for (_, _, markup) in open {
            out.extend_from_slice(markup);
        }
    }
}
