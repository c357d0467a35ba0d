//! Escapes of JavaScript and JSON strings, read in text: a body that is
//! not strict JSON (an anti-XSSI prefix such as `)]}'`, JSONP, a truncated
//! document, JSON sent as `text/plain`) is scanned as text, and there
//! `ann\u0040example.com` is still the address anyone who reads the string
//! sees.
//!
//! `\uXXXX` (a surrogate pair read as one character, a lone surrogate as
//! U+FFFD), `\u{X…}` and `\xXX`. The backslashes before one belong to it:
//! `\\u0040` is what a JSON string holds when it carries JSON itself, and
//! masking errs towards masking.

/// The length of the run of backslashes at `i`.
pub fn backslashes(text: &[u8], i: usize) -> usize {
    text.get(i..)
        .map_or(0, |t| t.iter().take_while(|b| **b == b'\\').count())
}

/// The character of the escape at `i` (its backslashes included) and its
/// length in bytes, if one is there.
pub fn escape(text: &[u8], i: usize) -> Option<(char, usize)> {
    let slashes = backslashes(text, i);
    if slashes == 0 {
        return None;
    }
    let at = i + slashes;
    let (c, len) = match *text.get(at)? {
        b'x' => (char::from(u8::try_from(hex(text, at + 1, 2)?).ok()?), 3),
        b'u' if text.get(at + 1) == Some(&b'{') => {
            let n = text[at + 2..]
                .iter()
                .take(7)
                .take_while(|b| b.is_ascii_hexdigit())
                .count();
            if !(1..=6).contains(&n) || text.get(at + 2 + n) != Some(&b'}') {
                return None;
            }
            (scalar(hex(text, at + 2, n)?), n + 3)
        }
        b'u' => {
            let unit = hex(text, at + 1, 4)?;
            match surrogate_pair(text, at + 5, slashes, unit) {
                Some(c) => (c, 5 + slashes + 5),
                None => (scalar(unit), 5),
            }
        }
        _ => return None,
    };
    Some((c, slashes + len))
}

/// The character a high surrogate `high` makes with the low one escaped
/// (with as many backslashes as `high` was) at `i`.
fn surrogate_pair(text: &[u8], i: usize, slashes: usize, high: u32) -> Option<char> {
    if !(0xd800..0xdc00).contains(&high)
        || backslashes(text, i) != slashes
        || text.get(i + slashes) != Some(&b'u')
    {
        return None;
    }
    let low = hex(text, i + slashes + 1, 4)?;
    (0xdc00..0xe000)
        .contains(&low)
        .then(|| scalar(0x10000 + ((high - 0xd800) << 10) + (low - 0xdc00)))
}

/// The character `value` stands for; U+FFFD for surrogates and values past
/// U+10FFFF, as a decoder that does not fail reads them.
fn scalar(value: u32) -> char {
    char::from_u32(value).unwrap_or(char::REPLACEMENT_CHARACTER)
}

/// Exactly `n` hexadecimal digits at `i`, as a number.
fn hex(text: &[u8], i: usize, n: usize) -> Option<u32> {
    text.get(i..i + n)?.iter().try_fold(0u32, |acc, b| {
        char::from(*b).to_digit(16).map(|d| acc << 4 | d)
    })
}
