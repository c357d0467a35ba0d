//! A small hand-written email scanner: `local@domain.tld`, where the local
//! part is `[A-Za-z0-9._%+-]+` and the domain is dot-separated labels of
//! `[A-Za-z0-9-]` ending in an alphabetic TLD of two or more letters.

/// `text` with every address replaced, and how many there were; `None` when
/// there were none.
pub fn mask_emails(text: &str, replacement: &str) -> Option<(String, u32)> {
    let bytes = text.as_bytes();
    let mut out = String::new();
    let (mut copied, mut count, mut i) = (0, 0, 0);
    while i < bytes.len() {
        if bytes[i] == b'@'
            && let Some((start, end)) = address_around(bytes, i, copied)
        {
            // Both ends are at ASCII bytes, so these are char boundaries.
            out.push_str(&text[copied..start]);
            out.push_str(replacement);
            copied = end;
            count += 1;
            i = end;
        } else {
            i += 1;
        }
    }
    if count == 0 {
        return None;
    }
    out.push_str(&text[copied..]);
    Some((out, count))
}

/// The byte range of the address whose `@` is at `at`, not reaching back
/// before `floor` (the end of the previous replacement).
fn address_around(bytes: &[u8], at: usize, floor: usize) -> Option<(usize, usize)> {
    let mut start = at;
    while start > floor && is_local(bytes[start - 1]) {
        start -= 1;
    }
    while start < at && bytes[start] == b'.' {
        start += 1;
    }
    let mut end = at + 1;
    while end < bytes.len() && is_domain(bytes[end]) {
        end += 1;
    }
    // A sentence may end right after the address.
    while end > at + 1 && matches!(bytes[end - 1], b'.' | b'-') {
        end -= 1;
    }
    (start < at && valid_domain(&bytes[at + 1..end])).then_some((start, end))
}

fn is_local(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'%' | b'+' | b'-')
}

fn is_domain(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-')
}

fn valid_domain(domain: &[u8]) -> bool {
    let labels: Vec<&[u8]> = domain.split(|&b| b == b'.').collect();
    let tld = labels[labels.len() - 1];
    labels.len() >= 2
        && labels.iter().all(|l| !l.is_empty() && l[0] != b'-')
        && tld.len() >= 2
        && tld.iter().all(u8::is_ascii_alphabetic)
}
