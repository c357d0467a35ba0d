//! bytea values written out inside other text: PostgreSQL's hex output
//! (`\x6164…`) in an array (`{"\\x6164…"}`, the backslash doubled by the
//! element's quoting, again for each level of nesting), a composite row,
//! a range, a JSON string (`"\\x6164…"` in the document) or a text column
//! (`email::bytea::text`). The hex hides the bytes from the detectors, so
//! each run is decoded and scanned too (see [`crate::mask::Engine::text`]).
//!
//! The escape output format (`\ooo` for non-printable bytes) writes the
//! printable ones as they are, which the detectors read already.

/// Hex digit pairs a run needs: the shortest value a detector finds is
/// six bytes (`a@b.co`); shorter runs are `\x41`-style escapes.
const MIN_PAIRS: usize = 6;

/// One run of bytea hex output in a text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Run {
    /// Its first backslash.
    pub start: usize,
    /// Its first hex digit (after `\x`, `\\x`, …).
    pub digits: usize,
    /// Just past its last whole pair of digits.
    pub end: usize,
}

/// The first run at or after `from`: one or more backslashes, `x`, and at
/// least [`MIN_PAIRS`] pairs of hex digits. An odd last digit is left out.
pub fn next_run(text: &[u8], from: usize) -> Option<Run> {
    let mut i = from;
    while let Some(p) = text.get(i..)?.iter().position(|b| *b == b'x') {
        let x = i + p;
        let slashes = text[..x].iter().rev().take_while(|b| **b == b'\\').count();
        let digits = x + 1;
        let n = text[digits..]
            .iter()
            .take_while(|b| b.is_ascii_hexdigit())
            .count();
        if slashes > 0 && n >= 2 * MIN_PAIRS && x - slashes >= from {
            return Some(Run {
                start: x - slashes,
                digits,
                end: digits + n - n % 2,
            });
        }
        i = digits + n;
    }
    None
}

/// Decodes a text-format bytea cell in the hex output format (`\x6164…`)
/// into `out`; `false` for the escape format, whose printable bytes are
/// already there to scan as they are (or for hex that does not decode).
pub fn whole(value: &[u8], out: &mut Vec<u8>) -> bool {
    out.clear();
    match value.strip_prefix(b"\\x") {
        Some(digits) if digits.len() % 2 == 0 && digits.iter().all(u8::is_ascii_hexdigit) => {
            decode(digits, out);
            true
        }
        _ => false,
    }
}

/// Appends the bytes of the hex digit pairs `hex` to `out`.
pub fn decode(hex: &[u8], out: &mut Vec<u8>) {
    for pair in hex.chunks_exact(2) {
        if let (Some(hi), Some(lo)) = (crate::hex_digit(pair[0]), crate::hex_digit(pair[1])) {
            out.push(hi << 4 | lo);
        }
    }
}

/// Appends `bytes` as lower-case hex digit pairs, as PostgreSQL writes them.
pub fn encode(bytes: &[u8], out: &mut Vec<u8>) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    for b in bytes {
        out.push(HEX[usize::from(b >> 4)]);
        out.push(HEX[usize::from(b & 0xf)]);
    }
}
