//! Email addresses: `local@domain.tld`, the local part `[A-Za-z0-9._%+-]`
//! (no leading dot, at most 64 bytes), the domain two or more labels of
//! `[A-Za-z0-9-]` that do not start or end with `-`, ending in an
//! alphabetic top-level label of two or more letters. Internationalised
//! domains are not matched.

/// The address whose `@` is at `at`, not reaching back before `floor`.
pub fn around(text: &[u8], at: usize, floor: usize) -> Option<(usize, usize)> {
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
    let mut end = at + 1;
    while end < text.len() && is_domain(text[end]) {
        end += 1;
    }
    // A sentence may end right after the address.
    while end > at + 1 && matches!(text[end - 1], b'.' | b'-') {
        end -= 1;
    }
    valid_domain(&text[at + 1..end]).then_some((start, end))
}

fn is_local(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b >= 0x80 || matches!(b, b'.' | b'_' | b'%' | b'+' | b'-')
}

fn is_domain(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-')
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
    labels >= 2 && last.len() >= 2 && last.iter().all(u8::is_ascii_alphabetic)
}
