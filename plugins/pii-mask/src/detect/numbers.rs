//! Numbers that identify people: payment cards, US social security numbers
//! and phone numbers.
//!
//! Digit runs are everywhere (dates, amounts, order numbers, timestamps), so
//! each format is narrow on purpose:
//!
//! - **card**: 13–19 digits, as one run or in groups (first group of 4)
//!   separated by single spaces, dashes, dots or underscores, Luhn-valid,
//!   with a known issuer prefix and a length that issuer uses;
//! - **ssn**: `AAA-GG-SSSS`, `AAA GG SSSS` or `AAA.GG.SSSS`, without the
//!   never-issued areas (000, 666, 900–999), group 00, serial 0000, nor the
//!   famous samples;
//! - **phone**: `+` and a country code, 8–15 digits (`+1 415 555 2671`,
//!   `+44 (0)20 7946 0958`, `+31612345678`), or `00` instead of the `+`
//!   and then 9–15 digits (`0033612345678`: fewer would take in ids padded
//!   with zeros, such as `0012345678`); North American numbers with
//!   separators or parentheses (`(415) 555-2671`, `1-415-555-2671`,
//!   `415.555.2671`; area and exchange codes start with 2–9); national
//!   numbers with a trunk `0` (`020 7946 0958`, `06-12345678`, `030/1234567`,
//!   `(020) 7946 0958`, or one run `0612345678`): 9–11 digits in groups
//!   joined by one kind of separator, 10–11 as one run.
//!   Bare runs that do not start with `+` or `0`, and shapes such as
//!   `2024-01-15`, `15.01.2024`, `10:30:00`, `1,234.56` never match.
//!
//! Every match must stand alone: not glued to a digit or an `@`, not
//! continued by `.5`, `:30`, `/12` or `-3`, nor preceded by a digit and
//! `-` (`1-536-90-4399`) or a minus sign. A hyphen after a letter is fine
//! (`x-ssn-536-90-4399`), except before a phone that is one bare run of
//! digits, which is more likely an id (`ORD-0612345678`).
//!
//! Letters and `_` glued on (`536-90-4399x`, `x4242424242424242`,
//! `+1 415 555 2671_`) do not hide a number whose shape is its own: a card,
//! a dashed SSN, a phone with `+`, parentheses or separators. They do hide
//! the shapes that letters make ambiguous: an SSN spaced or dotted
//! (`v536.90.4399` reads as a version), a phone that is one bare run of
//! digits (`ORD0612345678` is an id). A digit glued on makes another,
//! longer number (`536-90-43991`), and is never read past. The caller
//! turns glue off inside hexadecimal digests (see [`super::scan`]).
//!
//! Separators are ASCII here: Unicode spaces and dashes (no-break space,
//! non-breaking hyphen, …) reach the detectors as the ASCII ones they look
//! like (see [`super::refs::look_alike`]).

use super::{is_word, run};

const MAX_GROUPS: usize = 8;

/// Runs of digits separated by single separator bytes.
struct Groups {
    /// Byte offset just past each group.
    ends: [usize; MAX_GROUPS],
    /// Digits up to and including each group.
    digits: [usize; MAX_GROUPS],
    len: usize,
}

impl Groups {
    /// Digits in group `k`.
    fn size(&self, k: usize) -> usize {
        match k {
            0 => self.digits[0],
            _ => self.digits[k] - self.digits[k - 1],
        }
    }
}

/// Digit groups from `start`, separated by one byte of `seps`, the same one
/// throughout.
fn groups(text: &[u8], start: usize, seps: &[u8]) -> Groups {
    let mut g = Groups {
        ends: [0; MAX_GROUPS],
        digits: [0; MAX_GROUPS],
        len: 0,
    };
    let (mut i, mut total, mut sep) = (start, 0, None);
    while g.len < MAX_GROUPS {
        let n = run(text, i, |b| b.is_ascii_digit());
        if n == 0 {
            break;
        }
        i += n;
        total += n;
        g.ends[g.len] = i;
        g.digits[g.len] = total;
        g.len += 1;
        let Some(&s) = text.get(i) else { break };
        if !seps.contains(&s)
            || !text.get(i + 1).is_some_and(u8::is_ascii_digit)
            || sep.is_some_and(|prev| prev != s)
        {
            break;
        }
        sep = Some(s);
        i += 1;
    }
    g
}

fn digit(b: &u8) -> bool {
    b.is_ascii_digit()
}

/// A number may start at `i`: not inside a word, a decimal or a path, nor
/// after a minus sign or the dash of a longer dashed number
/// (`1-536-90-4399`). A hyphen after a letter joins a name to the number
/// (`x-ssn-536-90-4399`, a header name written out), and the number stands
/// alone. With `glue`, a letter or `_` may precede it (see the module
/// comment).
fn start_ok(text: &[u8], i: usize, glue: bool) -> bool {
    let Some(&p) = i.checked_sub(1).and_then(|k| text.get(k)) else {
        return true;
    };
    if p == b'-' {
        return i >= 2 && (text[i - 2].is_ascii_alphabetic() || text[i - 2] >= 0x80);
    }
    if glue && glued(p) {
        return true;
    }
    !(is_word(p) || matches!(p, b'.' | b'/' | b'#' | b'$' | b'+' | b'@'))
}

/// A number may end at `end`: not followed by a word byte, `@`, or a
/// separator and another digit (`.5`, `:30`, `/12`, `-3`). With `glue`, a
/// letter or `_` may follow it.
fn end_ok(text: &[u8], end: usize, glue: bool) -> bool {
    match text.get(end) {
        None => true,
        Some(&b) if glue && glued(b) => true,
        Some(&b) => {
            let glued = is_word(b) || b == b'@';
            let continued =
                matches!(b, b'.' | b':' | b'/' | b'-') && text.get(end + 1).is_some_and(digit);
            !glued && !continued
        }
    }
}

/// Word bytes that are not digits: they cannot lengthen a number.
pub(super) fn glued(b: u8) -> bool {
    b.is_ascii_alphabetic() || b == b'_'
}

// ---------------------------------------------------------------- cards

pub fn card(text: &[u8], start: usize, glue: bool) -> Option<usize> {
    let g = groups(text, start, b" -._");
    // Dots and underscores glued to letters make a version or a name
    // (`v4242.4242.4242.4242`, `x_4242_4242_4242_4242`).
    let glue = glue && (g.len == 1 || matches!(text[g.ends[0]], b' ' | b'-'));
    if !start_ok(text, start, glue) {
        return None;
    }
    // The longest run of groups that is a card: a number followed by other
    // figures ("4242 4242 4242 4242 12 28") is still found.
    (0..g.len).rev().find_map(|k| {
        let end = g.ends[k];
        let grouped_ok = k == 0 || g.size(0) == 4;
        (grouped_ok
            && (13..=19).contains(&g.digits[k])
            && end_ok(text, end, glue)
            && valid_card(&text[start..end]))
        .then_some(end)
    })
}

fn valid_card(text: &[u8]) -> bool {
    let mut digits = [0u8; 19];
    let mut n = 0;
    for &b in text.iter().filter(|b| b.is_ascii_digit()) {
        match digits.get_mut(n) {
            Some(d) => *d = b,
            None => return false,
        }
        n += 1;
    }
    card_digits(&digits[..n])
}

/// `digits` (ASCII digits only) are a card number: a known issuer prefix
/// and length, and a valid Luhn check digit.
pub fn card_digits(digits: &[u8]) -> bool {
    (13..=19).contains(&digits.len())
        && digits.iter().all(u8::is_ascii_digit)
        && issuer_ok(digits)
        && luhn(digits)
}

fn luhn(digits: &[u8]) -> bool {
    let sum: u32 = digits
        .iter()
        .rev()
        .enumerate()
        .map(|(i, d)| {
            let d = u32::from(d - b'0');
            if i % 2 == 1 {
                let x = d * 2;
                if x > 9 { x - 9 } else { x }
            } else {
                d
            }
        })
        .sum();
    sum.is_multiple_of(10)
}

/// Issuer identification number ranges and the lengths each issuer uses.
fn issuer_ok(d: &[u8]) -> bool {
    let n = d.len();
    let prefix = |k: usize| {
        d[..k]
            .iter()
            .fold(0u32, |acc, b| acc * 10 + u32::from(b - b'0'))
    };
    let long = (16..=19).contains(&n);
    let maestro = (12..=19).contains(&n);
    match d[0] {
        // Visa.
        b'4' => matches!(n, 13 | 16 | 19),
        // Mastercard 51–55; Maestro 50, 56–58.
        b'5' => {
            (matches!(prefix(2), 51..=55) && n == 16)
                || (matches!(prefix(2), 50 | 56..=58) && maestro)
        }
        // Mastercard 2221–2720; Mir 2200–2204.
        b'2' => {
            (matches!(prefix(4), 2221..=2720) && n == 16)
                || (matches!(prefix(4), 2200..=2204) && long)
        }
        // Amex 34, 37; Diners 300–305, 3095, 36, 38, 39; JCB 3528–3589.
        b'3' => {
            (matches!(prefix(2), 34 | 37) && n == 15)
                || ((matches!(prefix(3), 300..=305)
                    || prefix(4) == 3095
                    || matches!(prefix(2), 36 | 38 | 39))
                    && (14..=19).contains(&n))
                || (matches!(prefix(4), 3528..=3589) && long)
        }
        // Discover 6011, 644–649, 65; UnionPay 62; Maestro 639, 67.
        b'6' => {
            ((prefix(4) == 6011 || matches!(prefix(3), 644..=649) || matches!(prefix(2), 62 | 65))
                && long)
                || ((prefix(3) == 639 || prefix(2) == 67) && maestro)
        }
        _ => false,
    }
}

// ---------------------------------------------------------------- SSN

pub fn ssn(text: &[u8], start: usize, glue: bool) -> Option<usize> {
    // Only the dashed form is its own shape next to letters.
    let glue = glue && text.get(start + 3) == Some(&b'-');
    if !start_ok(text, start, glue) {
        return None;
    }
    let g = groups(text, start, b"- .");
    if g.len < 3 || g.size(0) != 3 || g.size(1) != 2 || g.size(2) != 4 {
        return None;
    }
    let end = g.ends[2];
    if !end_ok(text, end, glue) {
        return None;
    }
    let num = |a: usize, b: usize| {
        text[a..b]
            .iter()
            .fold(0u32, |acc, x| acc * 10 + u32::from(x - b'0'))
    };
    let area = num(start, start + 3);
    let group = num(start + 4, start + 6);
    let serial = num(start + 7, start + 11);
    let issued = area != 0 && area != 666 && area < 900 && group != 0 && serial != 0;
    // Numbers printed on sample cards and in advertising, never assigned.
    let sample = matches!((area, group, serial), (78, 5, 1120) | (219, 9, 9999));
    (issued && !sample).then_some(end)
}

// ---------------------------------------------------------------- phones

pub fn phone(text: &[u8], start: usize, glue: bool) -> Option<usize> {
    if !start_ok(text, start, glue) {
        return None;
    }
    let end = dialled(text, start, glue)?;
    // After a name and a hyphen, or glued to letters, one bare run of
    // digits is an id (`ORD-0612345678`, `ORD0612345678`); a number with
    // its own separators, `+` or parentheses is still a phone
    // (`x-phone-415-555-2671`, `tel415-555-2671`).
    let bare = text[start..end].iter().all(u8::is_ascii_digit);
    let id = bare
        && ((start > 0 && text[start - 1] == b'-')
            || !start_ok(text, start, false)
            || !end_ok(text, end, false));
    (!id).then_some(end)
}

/// The phone number starting at `start`, whatever precedes it.
fn dialled(text: &[u8], start: usize, glue: bool) -> Option<usize> {
    match text[start] {
        b'+' => international(text, start + 1, 8, glue),
        b'0' if text.get(start + 1) == Some(&b'0') => international(text, start + 2, 9, glue),
        b'(' => parenthesized(text, start, glue),
        b'1' if matches!(text.get(start + 1), Some(b' ' | b'-' | b'.'))
            && text.get(start + 2) == Some(&b'(') =>
        {
            parenthesized(text, start + 2, glue).filter(|_| {
                // "1 (415) 555-2671": only a North American number follows a 1.
                text.get(start + 3)
                    .is_some_and(|b| (b'2'..=b'9').contains(b))
            })
        }
        _ => nanp(text, start, glue).or_else(|| trunk(text, start, glue)),
    }
}

/// After `+` or `00`: a country code and subscriber number, `min`–15
/// digits, with single separators and at most one parenthesised group
/// (`(0)` is the trunk prefix, not dialled from abroad, so not counted).
fn international(text: &[u8], i: usize, min: usize, glue: bool) -> Option<usize> {
    if !text.get(i).is_some_and(|b| (b'1'..=b'9').contains(b)) {
        return None;
    }
    let (mut j, mut digits, mut paren, mut best) = (i, 0, false, None);
    loop {
        if text.get(j) == Some(&b'(') {
            let n = run(text, j + 1, |b| b.is_ascii_digit());
            if paren || n == 0 || n > 4 || text.get(j + 1 + n) != Some(&b')') {
                break;
            }
            if !(n == 1 && text[j + 1] == b'0') {
                digits += n;
            }
            paren = true;
            j += n + 2;
        } else {
            let n = run(text, j, |b| b.is_ascii_digit());
            if n == 0 {
                break;
            }
            digits += n;
            j += n;
        }
        if digits > 15 {
            break;
        }
        if digits >= min && end_ok(text, j, glue) {
            best = Some(j);
        }
        // Grouped numbers reach 11+ digits only in their last group; going
        // on would swallow the next number of a list ("+1 415 555 2671 4242…").
        if digits >= 11 {
            break;
        }
        match text.get(j) {
            Some(b' ' | b'-' | b'.')
                if text
                    .get(j + 1)
                    .is_some_and(|b| b.is_ascii_digit() || *b == b'(') =>
            {
                j += 1;
            }
            Some(b) if b.is_ascii_digit() || *b == b'(' => {}
            _ => break,
        }
    }
    best
}

/// `(415) 555-2671` or `(020) 7946 0958`.
fn parenthesized(text: &[u8], i: usize, glue: bool) -> Option<usize> {
    let n = run(text, i + 1, |b| b.is_ascii_digit());
    if !(2..=5).contains(&n) || text.get(i + 1 + n) != Some(&b')') {
        return None;
    }
    let first = text[i + 1];
    let mut j = i + 2 + n;
    if text.get(j) == Some(&b' ') {
        j += 1;
    }
    let g = groups(text, j, b" -.");
    if first == b'0' {
        return (0..g.len)
            .rev()
            .map(|k| (g.ends[k], n + g.digits[k]))
            .find(|&(end, total)| (9..=11).contains(&total) && end_ok(text, end, glue))
            .map(|(end, _)| end);
    }
    let nanp = n == 3
        && first >= b'2'
        && g.len >= 2
        && g.size(0) == 3
        && g.size(1) == 4
        && text[j] >= b'2';
    (nanp && end_ok(text, g.ends[1], glue)).then_some(g.ends[1])
}

/// `415-555-2671`, `1.415.555.2671`, `415 555 2671`: separators required.
fn nanp(text: &[u8], i: usize, glue: bool) -> Option<usize> {
    let g = groups(text, i, b" -.");
    let off = usize::from(g.len >= 4 && g.size(0) == 1 && text[i] == b'1');
    if g.len < off + 3 || g.size(off) != 3 || g.size(off + 1) != 3 || g.size(off + 2) != 4 {
        return None;
    }
    let area = if off == 0 { i } else { g.ends[0] + 1 };
    let exchange = g.ends[off] + 1;
    let end = g.ends[off + 2];
    (text[area] >= b'2' && text[exchange] >= b'2' && end_ok(text, end, glue)).then_some(end)
}

/// A national number with a trunk `0`, e.g. `020 7946 0958`, `0612345678`.
fn trunk(text: &[u8], i: usize, glue: bool) -> Option<usize> {
    if text[i] != b'0' || !text.get(i + 1).is_some_and(|b| (b'1'..=b'9').contains(b)) {
        return None;
    }
    let g = groups(text, i, b" -./");
    if g.len == 1 {
        let end = g.ends[0];
        return ((10..=11).contains(&g.digits[0]) && end_ok(text, end, glue)).then_some(end);
    }
    (1..g.len)
        .rev()
        .filter(|&k| (0..=k).all(|m| (2..=8).contains(&g.size(m))))
        .map(|k| (g.ends[k], g.digits[k]))
        .find(|&(end, total)| (9..=11).contains(&total) && end_ok(text, end, glue))
        .map(|(end, _)| end)
}
