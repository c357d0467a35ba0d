//! Email addresses: `local@domain.tld`, the local part `[A-Za-z0-9._%+-]`
//! (no leading dot, at most 64 bytes), the domain two or more labels of
//! `[A-Za-z0-9-]` that do not start or end with `-`, ending in an
//! alphabetic top-level label of two or more letters; labels may hold
//! letters outside ASCII (internationalised domains, `ada@exämple.com`).
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
    let mut start = at;
    while start > floor && is_local(text[start - 1]) {
        start -= 1;
    }
    while start < at && text[start] == b'.' {
        start += 1;
    }
    if start == at || at - start > 64 {
        return None;
    }
    let domain = at + width;
    let mut end = domain;
    while end < text.len() && is_domain(text[end]) {
        end += 1;
    }
    // A sentence may end right after the address.
    while end > domain && matches!(text[end - 1], b'.' | b'-') {
        end -= 1;
    }
    valid_domain(&text[domain..end]).then_some((start, end))
}

fn is_local(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b >= 0x80 || matches!(b, b'.' | b'_' | b'%' | b'+' | b'-')
}

fn is_domain(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b >= 0x80 || matches!(b, b'.' | b'-')
}

fn valid_domain(domain: &[u8]) -> bool {
    if domain.len() > 253 {
        return false;
    }
    let mut labels = 0;
    let mut last: &[u8] = &[];
    for label in domain.split(|&b| b == b'.') {
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
    labels >= 2 && last.len() >= 2 && last.iter().all(|b| b.is_ascii_alphabetic() || *b >= 0x80)
}
