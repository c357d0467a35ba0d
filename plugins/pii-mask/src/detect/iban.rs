//! International bank account numbers: a country code from the IBAN
//! registry, two check digits and the country's BBAN, written as one run or
//! in groups separated by single spaces (`DE89 3704 0044 0532 0130 00`),
//! exactly as long as the registry says for that country, and passing the
//! ISO 7064 mod-97 check. Letters may be in either case.

/// Country codes and IBAN lengths of the SWIFT IBAN registry.
#[rustfmt::skip]
const LENGTHS: &[(&[u8; 2], usize)] = &[
    (b"AD", 24), (b"AE", 23), (b"AL", 28), (b"AT", 20), (b"AZ", 28), (b"BA", 20),
    (b"BE", 16), (b"BG", 22), (b"BH", 22), (b"BI", 27), (b"BR", 29), (b"BY", 28),
    (b"CH", 21), (b"CR", 22), (b"CY", 28), (b"CZ", 24), (b"DE", 22), (b"DJ", 27),
    (b"DK", 18), (b"DO", 28), (b"EE", 20), (b"EG", 29), (b"ES", 24), (b"FI", 18),
    (b"FK", 18), (b"FO", 18), (b"FR", 27), (b"GB", 22), (b"GE", 22), (b"GI", 23),
    (b"GL", 18), (b"GR", 27), (b"GT", 28), (b"HN", 28), (b"HR", 21), (b"HU", 28),
    (b"IE", 22), (b"IL", 23), (b"IQ", 23), (b"IS", 26), (b"IT", 27), (b"JO", 30),
    (b"KW", 30), (b"KZ", 20), (b"LB", 28), (b"LC", 32), (b"LI", 21), (b"LT", 20),
    (b"LU", 20), (b"LV", 21), (b"LY", 25), (b"MC", 27), (b"MD", 24), (b"ME", 22),
    (b"MK", 19), (b"MN", 20), (b"MR", 27), (b"MT", 31), (b"MU", 30), (b"NI", 28),
    (b"NL", 18), (b"NO", 15), (b"OM", 23), (b"PK", 24), (b"PL", 28), (b"PS", 29),
    (b"PT", 25), (b"QA", 29), (b"RO", 24), (b"RS", 22), (b"RU", 33), (b"SA", 24),
    (b"SC", 31), (b"SD", 18), (b"SE", 24), (b"SI", 19), (b"SK", 24), (b"SM", 27),
    (b"SO", 23), (b"ST", 25), (b"SV", 28), (b"TL", 23), (b"TN", 24), (b"UA", 29),
    (b"VA", 22), (b"VG", 24), (b"XK", 20), (b"YE", 30),
];

const MAX_LEN: usize = 34;

pub fn iban(text: &[u8], start: usize) -> Option<usize> {
    let head = text.get(start..start + 4)?;
    if !(head[0].is_ascii_alphabetic()
        && head[1].is_ascii_alphabetic()
        && head[2].is_ascii_digit()
        && head[3].is_ascii_digit())
    {
        return None;
    }
    let country = [head[0].to_ascii_uppercase(), head[1].to_ascii_uppercase()];
    let len = LENGTHS.iter().find(|(c, _)| **c == country)?.1;
    // Collect `len` characters, allowing single spaces between groups.
    let mut chars = [0u8; MAX_LEN];
    let (mut n, mut i) = (0, start);
    while n < len {
        match text.get(i) {
            Some(b) if b.is_ascii_alphanumeric() => {
                chars[n] = b.to_ascii_uppercase();
                n += 1;
                i += 1;
            }
            Some(b' ') if n % 4 == 0 && text.get(i + 1).is_some_and(u8::is_ascii_alphanumeric) => {
                i += 1;
            }
            _ => return None,
        }
    }
    // A letter or digit glued on makes a longer code; `_` does not
    // (`DE89370400440532013000_old`).
    if text
        .get(i)
        .is_some_and(|b| b.is_ascii_alphanumeric() || *b == b'@')
    {
        return None;
    }
    mod97(&chars[..len]).then_some(i)
}

/// ISO 7064 MOD 97-10: the first four characters moved to the end, letters
/// as 10–35, the number modulo 97 is 1.
fn mod97(chars: &[u8]) -> bool {
    let (head, tail) = chars.split_at(4);
    let mut rest = 0u32;
    for &c in tail.iter().chain(head) {
        rest = match c {
            b'0'..=b'9' => (rest * 10 + u32::from(c - b'0')) % 97,
            b'A'..=b'Z' => (rest * 100 + u32::from(c - b'A') + 10) % 97,
            _ => return false,
        };
    }
    rest == 1
}
