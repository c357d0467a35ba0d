//! Email addresses: `local@domain.tld`, the local part `[A-Za-z0-9._%+-]`
//! (no leading dot, at most 64 bytes) with apostrophes inside names
//! (`o'neil`) or ending them (`ann'`), or a quoted string
//! (`"ann smith"@example.com`); the domain two or more labels of
//! `[A-Za-z0-9-]` that do not start or end with `-`, ending in an
//! alphabetic top-level label of two or more letters or a punycode one
//! (`xn--p1ai`); labels may hold letters outside ASCII (internationalised
//! domains, `ada@exämple.com`).
//! Labels may also be separated by the full stops IDNA reads as `.`
//! (`ann@example。com`, see [`full_stop_at`]).
//! The `@` may be encoded as text that leaves a server encoded: `%40`
//! (URLs and form values: `/users?email=ann%40example.com`) or an HTML
//! character reference (`&#64;`, `&#x0040`, `&commat;`); values are scanned
//! with their character references decoded too (see [`super::refs`]).

/// The length of an encoded `@` at `at`, if one is there: `%40`, or a
/// character reference that stands for `@` (see [`super::refs`]).
pub fn encoded_at(text: &[u8], at: usize) -> Option<usize> {
    let rest = &text[at..];
    if rest.len() >= 3 && rest[..3].eq_ignore_ascii_case(b"%40") {
        return Some(3);
    }
    match super::refs::reference(text, at) {
        Some(('@', width)) => Some(width),
        _ => None,
    }
}

/// The address whose `@` (`width` bytes: 1, or an encoded form) is at
/// `at`, not reaching back before `floor`.
pub fn around(text: &[u8], at: usize, width: usize, floor: usize) -> Option<(usize, usize)> {
    let mut start = quoted_local(text, at, floor).unwrap_or(at);
    if start == at {
        loop {
            while start > floor && is_local(text[start - 1]) {
                start -= 1;
            }
            match apostrophes(text, start, at, floor) {
                0 => break,
                n => start -= n,
            }
        }
        while start < at && text[start] == b'.' {
            start += 1;
        }
    }
    if start == at || at - start > 64 {
        return None;
    }
    let domain = at + width;
    let mut end = domain;
    while end < text.len() {
        if let Some(n) = full_stop_at(text, end) {
            // Between an ASCII label and text that is not one, the full stop
            // ends a sentence (`ann@example.com。次に`), not the domain.
            let next_label = text.get(end + n).is_some_and(u8::is_ascii_alphanumeric);
            if !(next_label || text[end - 1] >= 0x80) {
                break;
            }
            end += n;
        } else if is_domain(text[end]) {
            end += 1;
        } else {
            break;
        }
    }
    let scanned = end;
    domain_end(text, domain, end)
        .or_else(|| identifier(text, start, domain, scanned))
        .map(|end| (start, end))
}

/// Where the domain starting at `domain` and running at most to `end`
/// ends, if it is a valid one.
fn domain_end(text: &[u8], domain: usize, mut end: usize) -> Option<usize> {
    loop {
        // A sentence may end right after the address.
        loop {
            if end > domain && matches!(text[end - 1], b'.' | b'-') {
                end -= 1;
            } else if end >= domain + 3 && full_stop_at(text, end - 3).is_some() {
                end -= 3;
            } else {
                break;
            }
        }
        if valid_domain(&text[domain..end]) {
            return Some(end);
        }
        // Or end at an earlier stop, before what was glued on after one
        // (`ann@example.com.x`, `ann@example.com.1`, `ann@example.com。4242`:
        // SQL's `email || '.x'`). Only the first 253 bytes can be a
        // domain: a long run of labels costs one pass, not one per stop.
        end = (domain..end.min(domain + MAX_DOMAIN + 1))
            .rev()
            .find(|&i| text[i] == b'.' || full_stop_at(text, i).is_some())?;
    }
}

/// An address cut at its first dot and quoted whole, as PostgreSQL
/// quotes an identifier it read from one: `schema "ann@example" does not
/// exist` (from `'ann@example.com'::regclass`). Only a quoted, dotless
/// domain of a letter and 2–63 letters, digits and `-` (not ending with
/// one); unquoted, `user@localhost` is no address.
fn identifier(text: &[u8], start: usize, domain: usize, end: usize) -> Option<usize> {
    let label = &text[domain..end];
    let quoted = start > 0 && text[start - 1] == b'"' && text.get(end) == Some(&b'"');
    let plausible = (2..=63).contains(&label.len())
        && label[0].is_ascii_alphabetic()
        && label[label.len() - 1] != b'-'
        && label
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || *b == b'-');
    (quoted && plausible).then_some(end)
}

/// The length of a full stop at `i` that IDNA (UTS #46) reads as the `.`
/// between a domain's labels, as browsers and mail clients do: the
/// ideographic (U+3002), fullwidth (U+FF0E) and halfwidth ideographic
/// (U+FF61) ones. They are not decoded into `.` with the look-alike
/// separators (see [`super::refs`]): Chinese and Japanese sentences end
/// with them, and a number after a `.` is a decimal, not a card or phone.
pub fn full_stop_at(text: &[u8], i: usize) -> Option<usize> {
    // The UTF-8 encodings of the characters of [`is_full_stop`].
    match text.get(i..)? {
        [0xe3, 0x80, 0x82, ..] | [0xef, 0xbc, 0x8e, ..] | [0xef, 0xbd, 0xa1, ..] => Some(3),
        _ => None,
    }
}

/// The start of a quoted local part (`"ann smith"@`) ending just before
/// `at`: printable ASCII, spaces and non-ASCII bytes between the quotes,
/// `\` escaping the next byte.
fn quoted_local(text: &[u8], at: usize, floor: usize) -> Option<usize> {
    if at < floor + 3 || text[at - 1] != b'"' {
        return None;
    }
    let first = at.saturating_sub(64).max(floor);
    // A quote after an odd number of backslashes is escaped.
    let unescaped = |i: usize| {
        text[first..i]
            .iter()
            .rev()
            .take_while(|b| **b == b'\\')
            .count()
            % 2
            == 0
    };
    if !unescaped(at - 1) {
        return None;
    }
    let open = (first..at - 1)
        .rev()
        .find(|&i| text[i] == b'"' && unescaped(i))?;
    let inside = &text[open + 1..at - 1];
    let printable = |b: &u8| *b == b'\t' || (0x20..0x7f).contains(b) || *b >= 0x80;
    (!inside.is_empty() && inside.iter().all(printable)).then_some(open)
}

/// How many bytes of apostrophes before `start` belong to the local part
/// that starts there: one (`o'neil`) or two, as SQL escapes one
/// (`'o''neil@example.com'`), between a letter or digit and a letter or
/// the `@` at `at` (`ann'@example.com`). A quote that opens a string
/// (`'ann@example.com'`, `x='ann@…'`) has no letter or digit before it
/// and stays out.
fn apostrophes(text: &[u8], start: usize, at: usize, floor: usize) -> usize {
    let next_is_letter = text
        .get(start)
        .is_some_and(|b| b.is_ascii_alphabetic() || *b >= 0x80);
    if !next_is_letter && start != at {
        return 0;
    }
    let quotes = text[floor..start]
        .iter()
        .rev()
        .take_while(|b| **b == b'\'')
        .take(3)
        .count();
    let before = start - quotes;
    let named = before > floor && text[before - 1].is_ascii_alphanumeric();
    if (1..=2).contains(&quotes) && named {
        quotes
    } else {
        0
    }
}

fn is_local(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b >= 0x80 || matches!(b, b'.' | b'_' | b'%' | b'+' | b'-')
}

fn is_domain(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b >= 0x80 || matches!(b, b'.' | b'-')
}

/// The longest domain name, in bytes.
const MAX_DOMAIN: usize = 253;

fn valid_domain(domain: &[u8]) -> bool {
    if domain.len() > MAX_DOMAIN {
        return false;
    }
    let mut labels = 0;
    let mut last: &[u8] = &[];
    for label in labels_of(domain) {
        if label.is_empty()
            || label.len() > 63
            || label[0] == b'-'
            || label[label.len() - 1] == b'-'
        {
            return false;
        }
        labels += 1;
        last = label;
    }
    // Letters or digits glued to a top-level domain (`ann@example.com0`)
    // are read as part of it, so the whole address goes: a top-level
    // label is its first two letters, then letters or digits.
    let alphabetic = last.len() >= 2
        && last[..2]
            .iter()
            .all(|b| b.is_ascii_alphabetic() || *b >= 0x80)
        && last.iter().all(|b| b.is_ascii_alphanumeric() || *b >= 0x80);
    // An internationalised top-level domain in its ASCII form (`.xn--p1ai`
    // is `.рф`); the label rules above already hold for it.
    let punycode = last.len() > 4
        && last[..4].eq_ignore_ascii_case(b"xn--")
        && last.iter().all(|b| b.is_ascii_alphanumeric() || *b == b'-');
    labels >= 2 && (alphabetic || punycode)
}

/// One of the full stops [`full_stop_at`] finds.
pub fn is_full_stop(c: char) -> bool {
    matches!(c, '\u{3002}' | '\u{ff0e}' | '\u{ff61}')
}

/// The labels of `domain`, split at `.` and at the [`full_stop_at`] ones.
fn labels_of(domain: &[u8]) -> impl Iterator<Item = &[u8]> {
    let mut rest = Some(domain);
    std::iter::from_fn(move || {
        let text = rest?;
        let mut i = 0;
        while i < text.len() {
            let stop = if text[i] == b'.' {
                Some(1)
            } else {
                full_stop_at(text, i)
            };
            if let Some(n) = stop {
                rest = Some(&text[i + n..]);
                return Some(&text[..i]);
            }
            i += 1;
        }
        rest = None;
        Some(text)
    })
}
