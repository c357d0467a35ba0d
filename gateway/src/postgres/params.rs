//! Bound parameters as guardrails see them.
//!
//! A Bind's values come in text or binary format, as the client chooses;
//! most drivers (tokio-postgres, JDBC, asyncpg) send binary. A binary value
//! means nothing without its type, and the Bind does not say it: the types
//! are those of the statement as the server holds it (see
//! [`super::statements`]), and [`guardrail_text`] decodes the binary values
//! of common types into their text form. Others reach the guardrails as
//! `none`.

use super::frame::{BodyReader, FrameError};

/// A count and that many type OIDs: the end of a Parse (the declared
/// parameter types) and a whole ParameterDescription. The count is unsigned,
/// as the server reads it: read signed, a count the server takes for 65535
/// would hide the types (and the Bind values) that follow from the checks.
pub fn oid_list(r: &mut BodyReader<'_>) -> Result<Vec<u32>, FrameError> {
    let n = r.u16()?;
    (0..n).map(|_| r.i32().map(|oid| oid as u32)).collect()
}

/// A fixed-width big-endian number as text; `None` when the width is wrong.
fn fixed<const N: usize, T: ToString>(value: &[u8], decode: fn([u8; N]) -> T) -> Option<String> {
    <[u8; N]>::try_from(value)
        .ok()
        .map(|b| decode(b).to_string())
}

/// A binary value of type `oid` in its text form, for the types whose binary
/// format is fixed and simple; `None` for any other type or a value that
/// does not fit its type (the server refuses those anyway).
pub fn guardrail_text(oid: u32, value: &[u8]) -> Option<String> {
    match oid {
        // text, varchar, bpchar, name, json, xml, unknown, char
        25 | 1043 | 1042 | 19 | 114 | 142 | 705 | 18 => String::from_utf8(value.to_vec()).ok(),
        // jsonb: a version byte, then the text.
        3802 => match value.split_first() {
            Some((1, text)) => String::from_utf8(text.to_vec()).ok(),
            _ => None,
        },
        16 => match value {
            [0] => Some("f".into()),
            [1] => Some("t".into()),
            _ => None,
        },
        21 => fixed(value, i16::from_be_bytes),
        23 => fixed(value, i32::from_be_bytes),
        20 => fixed(value, i64::from_be_bytes),
        // oid: unsigned
        26 => fixed(value, u32::from_be_bytes),
        700 => fixed(value, f32::from_be_bytes),
        701 => fixed(value, f64::from_be_bytes),
        2950 => <[u8; 16]>::try_from(value).ok().map(|b| {
            let h = crate::audit::event::hex(&b);
            format!(
                "{}-{}-{}-{}-{}",
                &h[..8],
                &h[8..12],
                &h[12..16],
                &h[16..20],
                &h[20..]
            )
        }),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn binary_values_of_common_types_decode() {
        assert_eq!(guardrail_text(25, b"drop it").as_deref(), Some("drop it"));
        assert_eq!(
            guardrail_text(3802, b"\x01{\"a\":1}").as_deref(),
            Some("{\"a\":1}")
        );
        assert_eq!(
            guardrail_text(23, &(-42i32).to_be_bytes()).as_deref(),
            Some("-42")
        );
        assert_eq!(
            guardrail_text(20, &(1i64 << 40).to_be_bytes()).as_deref(),
            Some("1099511627776")
        );
        assert_eq!(
            guardrail_text(21, &7i16.to_be_bytes()).as_deref(),
            Some("7")
        );
        assert_eq!(guardrail_text(16, &[1]).as_deref(), Some("t"));
        assert_eq!(
            guardrail_text(701, &1.5f64.to_be_bytes()).as_deref(),
            Some("1.5")
        );
        assert_eq!(
            guardrail_text(2950, &[0x12; 16]).as_deref(),
            Some("12121212-1212-1212-1212-121212121212")
        );
        // Wrong sizes, unknown types, bad UTF-8.
        assert_eq!(guardrail_text(23, &[0, 1]), None);
        assert_eq!(guardrail_text(17, b"bytes"), None);
        assert_eq!(guardrail_text(0, b"x"), None);
        assert_eq!(guardrail_text(25, &[0xff]), None);
    }
}
