//! IP addresses. IPv4: four dotted decimal octets 0–255 without leading
//! zeros, not part of a longer dotted number (`1.2.3.4.5` is a version, not
//! an address). IPv6: RFC 4291 text form (eight groups of 1–4 hex digits, or
//! fewer around one `::`, optionally ending in a dotted IPv4), with at least
//! one decimal digit and, when compressed, at least two non-empty groups, so
//! that words such as `dead::beef` and times such as `10:30:00` do not match.
//! A port (`:8080`), prefix length (`/24`) or zone (`%eth0`) after the
//! address is left as it is.

use super::{is_word, run};

pub fn v4(text: &[u8], start: usize) -> Option<usize> {
    if start > 0 && text[start - 1] == b'.' {
        return None;
    }
    let end = dotted_quad(text, start)?;
    let continued =
        text.get(end) == Some(&b'.') && text.get(end + 1).is_some_and(u8::is_ascii_digit);
    (!continued && !text.get(end).is_some_and(|b| is_word(*b) || *b == b'@')).then_some(end)
}

/// Four octets from `i`; the end of the last.
fn dotted_quad(text: &[u8], mut i: usize) -> Option<usize> {
    for k in 0..4 {
        if k > 0 {
            if text.get(i) != Some(&b'.') {
                return None;
            }
            i += 1;
        }
        let n = run(text, i, |b| b.is_ascii_digit());
        if n == 0 || n > 3 || (n > 1 && text[i] == b'0') {
            return None;
        }
        let value = text[i..i + n]
            .iter()
            .fold(0u32, |acc, b| acc * 10 + u32::from(b - b'0'));
        if value > 255 {
            return None;
        }
        i += n;
    }
    Some(i)
}

pub fn v6(text: &[u8], start: usize) -> Option<usize> {
    if start > 0 && matches!(text[start - 1], b':' | b'.') {
        return None;
    }
    // An address starts with `::` or a group of 1-4 hex digits and `:`.
    let lead = run(text, start, |b| b.is_ascii_hexdigit());
    if !(lead == 0 && text.get(start + 1) == Some(&b':')
        || (1..=4).contains(&lead) && text.get(start + lead) == Some(&b':'))
    {
        return None;
    }
    let mut i = start;
    let (mut groups, mut nonempty, mut compressed, mut has_digit) = (0usize, 0usize, false, false);
    if text.get(i..i + 2) == Some(b"::") {
        compressed = true;
        i += 2;
    }
    loop {
        let n = run(text, i, |b| b.is_ascii_hexdigit());
        if n == 0 {
            break;
        }
        // A dotted IPv4 in place of the last two groups.
        if groups <= 6
            && (compressed || groups == 6)
            && text.get(i + n) == Some(&b'.')
            && let Some(end) = dotted_quad(text, i)
        {
            return finish(text, end, groups + 2, nonempty + 1, compressed, true);
        }
        if n > 4 {
            return None;
        }
        has_digit |= text[i..i + n].iter().any(u8::is_ascii_digit);
        groups += 1;
        nonempty += 1;
        i += n;
        if text.get(i) != Some(&b':') {
            break;
        }
        if text.get(i + 1) == Some(&b':') {
            if compressed {
                return None;
            }
            compressed = true;
            i += 2;
            if !text.get(i).is_some_and(u8::is_ascii_hexdigit) {
                break;
            }
        } else if text.get(i + 1).is_some_and(u8::is_ascii_hexdigit) {
            i += 1;
        } else {
            break;
        }
    }
    finish(text, i, groups, nonempty, compressed, has_digit)
}

fn finish(
    text: &[u8],
    end: usize,
    groups: usize,
    nonempty: usize,
    compressed: bool,
    has_digit: bool,
) -> Option<usize> {
    let shape = if compressed {
        groups < 8 && nonempty >= 2
    } else {
        groups == 8
    };
    let alone = !text.get(end).is_some_and(|b| {
        is_word(*b) || *b == b'@' || (*b == b':' && end > 0 && text[end - 1] == b':')
    });
    (shape && has_digit && alone).then_some(end)
}
