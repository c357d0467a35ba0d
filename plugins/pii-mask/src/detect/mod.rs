//! Finding personal data and secrets in a value.
//!
//! Every detector works on bytes: all the formats are ASCII, so a match
//! starts and ends on ASCII bytes, replacing it keeps UTF-8 text valid, and
//! text in another encoding is still scanned.
//!
//! One pass over the value: an `@` triggers the email check (which looks
//! back for the local part); every other detector is only tried where a word
//! starts, and only for the bytes that can begin its format (a digit, `+`,
//! `(`, a few letters, `-`, `:`), so ordinary prose costs a table lookup per
//! byte and nothing is allocated unless something is found.

mod email;
mod iban;
mod ip;
mod numbers;
mod tokens;

use crate::entity::Entity;

pub use numbers::card_digits;

/// One match: bytes `start..end` hold a value of `entity`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Found {
    pub start: usize,
    pub end: usize,
    pub entity: Entity,
    /// Leading bytes a `partial` mask may show: a secret's well-known prefix
    /// (`ghp_`, `AKIA`, a PEM header), a JWT's header. Zero for the others,
    /// whose partial form depends only on the entity.
    pub shown: usize,
}

/// Shortest value any detector can match (`a@b.co`, `1.2.3.4` is 7).
const MIN_LEN: usize = 6;

// What may begin a match, by first byte: digits (numbers, IPs), `+` and `(`
// (phones), `-` (PEM blocks), `:` (IPv6), and letters (secrets, JWTs, IBANs
// in either case, IPv6). Each detector rejects a wrong first byte at once.
const fn start_table() -> [bool; 256] {
    let mut t = [false; 256];
    let mut b = 0;
    while b < 256 {
        let c = b as u8;
        t[b] = c.is_ascii_alphanumeric() || matches!(c, b'+' | b'(' | b'-' | b':');
        b += 1;
    }
    t
}
static STARTS: [bool; 256] = start_table();

pub fn is_word(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_'
}

/// Finds the values of the entities in `enabled` (a mask of entity bits) in
/// `text`, in order and without overlaps, into `found` (cleared first).
pub fn scan(text: &[u8], enabled: u64, found: &mut Vec<Found>) {
    found.clear();
    if text.len() < MIN_LEN || enabled == 0 {
        return;
    }
    let email = enabled & Entity::Email.bit() != 0;
    let others = enabled & !Entity::Email.bit() != 0;
    let mut i = 0;
    // End of the previous match: an email's local part never reaches back
    // into it.
    let mut floor = 0;
    while i < text.len() {
        let b = text[i];
        if b == b'@' {
            if email && let Some((start, end)) = email::around(text, i, floor) {
                found.push(Found {
                    start,
                    end,
                    entity: Entity::Email,
                    shown: 0,
                });
                i = end;
                floor = end;
                continue;
            }
        } else if others
            && STARTS[usize::from(b)]
            && (i == 0 || !is_word(text[i - 1]))
            && let Some(f) = at_word_start(text, i, enabled)
        {
            found.push(f);
            i = f.end;
            floor = f.end;
            continue;
        }
        i += 1;
    }
}

/// The match beginning at `i` (a word start), trying the formats `text[i]`
/// can begin, the most specific first.
fn at_word_start(text: &[u8], i: usize, enabled: u64) -> Option<Found> {
    let on = |e: Entity| enabled & e.bit() != 0;
    let found = |entity: Entity, (end, shown): (usize, usize)| Found {
        start: i,
        end,
        entity,
        shown,
    };
    let b = text[i];
    if b.is_ascii_digit() {
        if on(Entity::Card)
            && let Some(end) = numbers::card(text, i)
        {
            return Some(found(Entity::Card, (end, 0)));
        }
        if on(Entity::Ssn)
            && let Some(end) = numbers::ssn(text, i)
        {
            return Some(found(Entity::Ssn, (end, 0)));
        }
        if on(Entity::Ip)
            && let Some(end) = ip::v4(text, i).or_else(|| ip::v6(text, i))
        {
            return Some(found(Entity::Ip, (end, 0)));
        }
        if on(Entity::Phone)
            && let Some(end) = numbers::phone(text, i)
        {
            return Some(found(Entity::Phone, (end, 0)));
        }
        return None;
    }
    match b {
        b'+' | b'(' => {
            return numbers::phone(text, i)
                .filter(|_| on(Entity::Phone))
                .map(|end| found(Entity::Phone, (end, 0)));
        }
        b'-' => {
            return tokens::pem(text, i)
                .filter(|_| on(Entity::Secret))
                .map(|m| found(Entity::Secret, m));
        }
        b':' => {
            return ip::v6(text, i)
                .filter(|_| on(Entity::Ip))
                .map(|end| found(Entity::Ip, (end, 0)));
        }
        _ => {}
    }
    // A letter.
    if on(Entity::Secret) {
        if let Some(m) = tokens::prefixed(text, i) {
            return Some(found(Entity::Secret, m));
        }
        if let Some((start, end)) = tokens::bearer(text, i) {
            return Some(Found {
                start,
                end,
                entity: Entity::Secret,
                shown: 0,
            });
        }
    }
    if on(Entity::Jwt)
        && let Some(m) = tokens::jwt(text, i)
    {
        return Some(found(Entity::Jwt, m));
    }
    if on(Entity::Iban)
        && let Some(end) = iban::iban(text, i)
    {
        return Some(found(Entity::Iban, (end, 0)));
    }
    if on(Entity::Ip)
        && b.is_ascii_hexdigit()
        && let Some(end) = ip::v6(text, i)
    {
        return Some(found(Entity::Ip, (end, 0)));
    }
    None
}

/// `text[i..]` starts with `prefix`.
fn starts_with(text: &[u8], i: usize, prefix: &[u8]) -> bool {
    text.get(i..).is_some_and(|t| t.starts_with(prefix))
}

/// Length of the run of bytes from `i` for which `f` holds.
fn run(text: &[u8], i: usize, f: impl Fn(u8) -> bool) -> usize {
    text.get(i..)
        .map_or(0, |t| t.iter().take_while(|b| f(**b)).count())
}

/// Where `needle` next occurs in `text` at or after `from`.
fn find(text: &[u8], from: usize, needle: &[u8]) -> Option<usize> {
    let hay = text.get(from..)?;
    if needle.is_empty() || hay.len() < needle.len() {
        return None;
    }
    hay.windows(needle.len())
        .position(|w| w == needle)
        .map(|p| from + p)
}
