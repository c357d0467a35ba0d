//! Finding personal data and secrets in a value.
//!
//! Every detector works on bytes: all the formats are ASCII, so a match
//! starts and ends on ASCII bytes, replacing it keeps UTF-8 text valid, and
//! text in another encoding is still scanned.
//!
//! Two passes over the value. The first ORs together the classes of its
//! bytes (letter or digit, `@`, `:`, `.`, `-`), so that detectors whose
//! format needs a byte the value does not have are not tried at all: text
//! without a digit is never looked at for cards, phones, SSNs, IBANs or IPs.
//! The second walks the words: an `@` triggers the email check (which looks
//! back for the local part); the other detectors are tried only where a word
//! starts, each after a check of the first bytes; in the rest of a word
//! only the numbers glued to letters or `_` and the tokens after a `_` are
//! looked for (see [`numbers`]). Nothing is allocated unless something is
//! found.

pub(crate) mod email;
pub(crate) mod escapes;
mod iban;
mod ip;
mod numbers;
pub(crate) mod refs;
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

// Byte classes.
const WORD: u8 = 1;
const DIGIT: u8 = 2;
const AT: u8 = 4;
const COLON: u8 = 8;
const DOT: u8 = 16;
const DASH: u8 = 32;
/// `%` and `&`, which may begin an encoded `@` (see [`email::encoded_at`]).
const ESCAPE: u8 = 64;

const fn class_table() -> [u8; 256] {
    let mut t = [0u8; 256];
    let mut b = 0;
    while b < 256 {
        let c = b as u8;
        t[b] = if c.is_ascii_digit() {
            WORD | DIGIT
        } else if c.is_ascii_alphabetic() || c == b'_' {
            WORD
        } else {
            match c {
                b'@' => AT,
                b':' => COLON,
                b'.' => DOT,
                b'-' => DASH,
                b'%' | b'&' => ESCAPE,
                _ => 0,
            }
        };
        b += 1;
    }
    t
}
static CLASS: [u8; 256] = class_table();

pub fn is_word(b: u8) -> bool {
    CLASS[usize::from(b)] & WORD != 0
}

// What the first byte of a word can begin.
const K_NUMBER: u8 = 1;
const K_SECRET: u8 = 2;
const K_JWT: u8 = 4;
const K_HEX: u8 = 8;

const fn kind_table() -> [u8; 256] {
    let mut t = [0u8; 256];
    let mut b = 0;
    while b < 256 {
        let c = b as u8;
        let mut k = 0;
        if c.is_ascii_digit() {
            k |= K_NUMBER | K_HEX;
        }
        if matches!(c, b'A' | b'g' | b'x' | b's' | b'r' | b'n' | b'b' | b'B') {
            k |= K_SECRET;
        }
        if c == b'e' {
            k |= K_JWT;
        }
        if matches!(c, b'a'..=b'f' | b'A'..=b'F') {
            k |= K_HEX;
        }
        t[b] = k;
        b += 1;
    }
    t
}
static KIND: [u8; 256] = kind_table();

/// Which detectors can match in a value, from the byte classes it has.
#[derive(Clone, Copy)]
struct Plan {
    entities: u64,
    /// IPv6 needs a `:`.
    colon: bool,
    /// PEM blocks need a `-`.
    dash: bool,
    /// The `K_` kinds of word starts worth a closer look (IBANs aside).
    starts: u8,
}

impl Plan {
    fn on(&self, e: Entity) -> bool {
        self.entities & e.bit() != 0
    }
}

/// Finds the values of the entities in `enabled` (a mask of entity bits) in
/// `text`, in order and without overlaps, into `found` (cleared first).
pub fn scan(text: &[u8], enabled: u64, found: &mut Vec<Found>) {
    found.clear();
    if text.len() < MIN_LEN || enabled == 0 {
        return;
    }
    let seen = text
        .iter()
        .fold(0u8, |seen, b| seen | CLASS[usize::from(*b)]);
    let mut entities = enabled;
    if seen & (AT | ESCAPE) == 0 {
        entities &= !Entity::Email.bit();
    }
    if seen & DIGIT == 0 {
        // Cards, phones, SSNs, IBANs and IPs all have digits (IPv6 ones by
        // this plugin's definition).
        for e in [
            Entity::Card,
            Entity::Phone,
            Entity::Ssn,
            Entity::Iban,
            Entity::Ip,
        ] {
            entities &= !e.bit();
        }
    }
    if seen & DOT == 0 {
        entities &= !Entity::Jwt.bit();
    }
    if entities == 0 {
        return;
    }
    let on = |e: Entity| entities & e.bit() != 0;
    let mut starts = 0;
    if on(Entity::Card) || on(Entity::Ssn) || on(Entity::Phone) || on(Entity::Ip) {
        starts |= K_NUMBER;
    }
    if on(Entity::Secret) {
        starts |= K_SECRET;
    }
    if on(Entity::Jwt) {
        starts |= K_JWT;
    }
    if on(Entity::Ip) && seen & COLON != 0 {
        starts |= K_HEX;
    }
    let plan = Plan {
        entities,
        colon: seen & COLON != 0,
        dash: seen & DASH != 0,
        starts,
    };
    let iban = on(Entity::Iban);
    let email = plan.on(Entity::Email);
    let others = entities & !Entity::Email.bit() != 0;
    let mut i = 0;
    // End of the previous match: an email's local part never reaches back
    // into it.
    let mut floor = 0;
    while i < text.len() {
        let b = text[i];
        let class = CLASS[usize::from(b)];
        let word_start = i == 0 || !is_word(text[i - 1]);
        if class & WORD != 0 {
            // Two letters and a digit may begin an IBAN.
            let iban_head = || {
                b.is_ascii_alphabetic()
                    && text.get(i + 1).is_some_and(u8::is_ascii_alphabetic)
                    && text.get(i + 2).is_some_and(u8::is_ascii_digit)
            };
            let word_end = i + run(text, i, is_word);
            // Letters glued to a number do not hide it (see
            // [`numbers`]), except in a hexadecimal digest or id, where
            // digit runs are noise.
            let glue = others && !hex_word(text, i, word_end);
            if word_start
                && (KIND[usize::from(b)] & plan.starts != 0 || (iban && iban_head()))
                && let Some(f) = at_word_start(text, i, plan, glue)
            {
                found.push(f);
                i = f.end;
                floor = f.end;
                continue;
            }
            if glue && let Some(f) = glued_in(text, i + 1, word_end, plan) {
                found.push(f);
                i = f.end;
                floor = f.end;
                continue;
            }
            i = word_end;
            continue;
        }
        if b == b'@' || class & ESCAPE != 0 {
            let at = match b {
                b'@' => Some(1),
                _ => email::encoded_at(text, i),
            };
            if email
                && let Some(width) = at
                && let Some((start, end)) = email::around(text, i, width, floor)
            {
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
            && (word_start || (matches!(b, b'+' | b'(') && i > 0 && numbers::glued(text[i - 1])))
            && matches!(b, b'+' | b'(' | b'-' | b':')
            && let Some(f) = at_word_start(text, i, plan, true)
        {
            found.push(f);
            i = f.end;
            floor = f.end;
            continue;
        }
        i += 1;
    }
}

/// Bytes of a word made of hexadecimal digits only from which it is read
/// as a digest or an id (an SHA-1, a MongoDB ObjectId) rather than as
/// words and numbers glued together.
const HEX_WORD: usize = 24;

/// The word around `text[i..end]` (`end` its end) is a hexadecimal digest.
fn hex_word(text: &[u8], i: usize, end: usize) -> bool {
    let start = text[..i]
        .iter()
        .rposition(|b| !is_word(*b))
        .map_or(0, |p| p + 1);
    end - start >= HEX_WORD && text[start..end].iter().all(u8::is_ascii_hexdigit)
}

/// The first value glued inside the word `text[from..end]` (its first
/// byte excluded): a number after a letter or `_` (`x536-90-4399`,
/// `card_4242424242424242`), a token or IBAN after `_`
/// (`iban_DE89…`, `key_AKIA…`). IP addresses are not looked for there
/// (`v1.2.3.4` is a version).
fn glued_in(text: &[u8], from: usize, end: usize, plan: Plan) -> Option<Found> {
    let plan = Plan {
        entities: plan.entities & !Entity::Ip.bit(),
        starts: plan.starts & !K_HEX,
        ..plan
    };
    (from..end).find_map(|j| {
        let (p, b) = (text[j - 1], text[j]);
        let start = if b.is_ascii_digit() {
            numbers::glued(p) && plan.starts & K_NUMBER != 0
        } else {
            p == b'_'
                && b.is_ascii_alphabetic()
                && (KIND[usize::from(b)] & plan.starts != 0 || plan.on(Entity::Iban))
        };
        if start {
            at_word_start(text, j, plan, true)
        } else {
            None
        }
    })
}

/// The match beginning at `i` (a word start, or a value glued to a word
/// when `glue`), trying the formats `text[i]` can begin, the most specific
/// first, each only if its first bytes fit.
fn at_word_start(text: &[u8], i: usize, plan: Plan, glue: bool) -> Option<Found> {
    let found = |entity: Entity, (end, shown): (usize, usize)| Found {
        start: i,
        end,
        entity,
        shown,
    };
    let b = text[i];
    if b.is_ascii_digit() {
        // The first run of digits and what follows it decide which number
        // formats are possible.
        let n = run(text, i, |b| b.is_ascii_digit());
        let next = text.get(i + n).copied();
        if plan.on(Entity::Card)
            && (n == 4 || (13..=19).contains(&n))
            && let Some(end) = numbers::card(text, i, glue)
        {
            return Some(found(Entity::Card, (end, 0)));
        }
        if plan.on(Entity::Ssn)
            && n == 3
            && matches!(next, Some(b'-' | b' ' | b'.'))
            && let Some(end) = numbers::ssn(text, i, glue)
        {
            return Some(found(Entity::Ssn, (end, 0)));
        }
        if plan.on(Entity::Ip) {
            let v4 = (n <= 3 && next == Some(b'.')).then(|| ip::v4(text, i));
            let v6 = || plan.colon.then(|| ip::v6(text, i)).flatten();
            if let Some(end) = v4.flatten().or_else(v6) {
                return Some(found(Entity::Ip, (end, 0)));
            }
        }
        let phone_shape = n == 3 || (n == 1 && b == b'1') || (b == b'0' && n >= 2);
        if plan.on(Entity::Phone)
            && phone_shape
            && let Some(end) = numbers::phone(text, i, glue)
        {
            return Some(found(Entity::Phone, (end, 0)));
        }
        return None;
    }
    match b {
        b'+' | b'(' => {
            let phone = plan
                .on(Entity::Phone)
                .then(|| numbers::phone(text, i, glue));
            return phone.flatten().map(|end| found(Entity::Phone, (end, 0)));
        }
        b'-' => {
            let pem = (plan.dash && plan.on(Entity::Secret)).then(|| tokens::pem(text, i));
            return pem.flatten().map(|m| found(Entity::Secret, m));
        }
        b':' => {
            let v6 = (plan.colon && plan.on(Entity::Ip)).then(|| ip::v6(text, i));
            return v6.flatten().map(|end| found(Entity::Ip, (end, 0)));
        }
        _ => {}
    }
    // A letter: each format is tried only if the first bytes fit.
    let second = text.get(i + 1).copied().unwrap_or(0);
    if plan.on(Entity::Secret) && matches!(b, b'A' | b'g' | b'x' | b's' | b'r' | b'n' | b'b' | b'B')
    {
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
    if plan.on(Entity::Jwt)
        && b == b'e'
        && second == b'y'
        && let Some(m) = tokens::jwt(text, i)
    {
        return Some(found(Entity::Jwt, m));
    }
    if plan.on(Entity::Iban)
        && second.is_ascii_alphabetic()
        && text.get(i + 2).is_some_and(u8::is_ascii_digit)
        && let Some(end) = iban::iban(text, i)
    {
        return Some(found(Entity::Iban, (end, 0)));
    }
    if plan.on(Entity::Ip)
        && plan.colon
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
pub(crate) fn find(text: &[u8], from: usize, needle: &[u8]) -> Option<usize> {
    let hay = text.get(from..)?;
    if needle.is_empty() || hay.len() < needle.len() {
        return None;
    }
    hay.windows(needle.len())
        .position(|w| w == needle)
        .map(|p| from + p)
}
