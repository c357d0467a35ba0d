//! What the relay hands the session recording beyond the audit trail's
//! facts: a Bind's parameters, and result rows as the client received them.

use crate::recording::entry::{ResultRows, cell_text};

use super::frame::{BodyReader, Frame, FrameError};
use super::params::guardrail_text;
use super::rows;

/// A parsed Bind message.
pub struct Bind<'a> {
    pub portal: &'a str,
    pub statement: &'a str,
    param_formats: Vec<i16>,
    params: Vec<Option<&'a [u8]>>,
    pub result_formats: Vec<i16>,
}

impl<'a> Bind<'a> {
    /// The Bind as the server reads it (unsigned counts, -1 alone for NULL,
    /// nothing after the last field), or why the server would refuse it:
    /// what the guardrails see must be what the server binds.
    pub fn parse(body: &'a [u8]) -> Result<Self, FrameError> {
        let mut r = BodyReader::new(body, "Bind");
        let portal = r.cstr()?;
        let statement = r.cstr()?;
        let n = r.u16()?;
        let param_formats = (0..n).map(|_| r.i16()).collect::<Result<_, _>>()?;
        let n = r.u16()?;
        let mut params = Vec::with_capacity(usize::from(n).min(r.remaining() / 4));
        for _ in 0..n {
            let len = r.i32()?;
            params.push(match usize::try_from(len) {
                Ok(len) => Some(r.take(len)?),
                Err(_) if len == -1 => None,
                Err(_) => return Err(FrameError::Truncated { what: "Bind" }),
            });
        }
        let n = r.u16()?;
        let result_formats = (0..n).map(|_| r.i16()).collect::<Result<_, _>>()?;
        r.end()?;
        Ok(Self {
            portal,
            statement,
            param_formats,
            params,
            result_formats,
        })
    }

    pub fn parameter_count(&self) -> usize {
        self.params.len()
    }

    fn is_binary(&self, i: usize) -> bool {
        match self.param_formats.as_slice() {
            [] => false,
            [one] => *one == 1,
            all => all.get(i) == Some(&1),
        }
    }

    /// Whether a binary value is bound to a parameter whose type `types`
    /// does not give (0 or missing): it could not be decoded.
    pub fn binary_of_unknown_type(&self, types: &[u32]) -> bool {
        self.params.iter().enumerate().any(|(i, p)| {
            p.is_some() && self.is_binary(i) && types.get(i).copied().unwrap_or(0) == 0
        })
    }

    /// Parameters as the guardrails see them: text-format values whole,
    /// binary ones decoded by `types` (the statement's parameter types) where
    /// [`guardrail_text`] can, else `None`, as for NULL.
    pub fn guardrail_parameters(&self, types: &[u32]) -> Vec<Option<String>> {
        self.params
            .iter()
            .enumerate()
            .map(|(i, p)| {
                let bytes = (*p)?;
                if self.is_binary(i) {
                    guardrail_text(types.get(i).copied().unwrap_or(0), bytes)
                } else {
                    Some(cell_text(bytes))
                }
            })
            .collect()
    }

    /// Parameters as text, each cut to `max` bytes; binary ones as `\x`
    /// hex.
    pub fn parameters(&self, max: usize) -> Vec<Option<String>> {
        self.params
            .iter()
            .enumerate()
            .map(|(i, p)| {
                p.map(|bytes| {
                    let kept = &bytes[..bytes.len().min(max)];
                    let mut text = if self.is_binary(i) {
                        format!("\\x{}", crate::audit::event::hex(kept))
                    } else {
                        cell_text(kept)
                    };
                    if kept.len() < bytes.len() {
                        text.push('…');
                    }
                    text
                })
            })
            .collect()
    }
}

/// The first result set of a round, as sent to the client, up to a cap.
#[derive(Default)]
pub struct RowsCapture {
    columns: Option<Vec<String>>,
    rows: Vec<Vec<Option<String>>>,
    truncated: bool,
    /// Rows of a later result set are not kept.
    later_set: bool,
}

impl RowsCapture {
    pub fn observe(&mut self, f: &Frame, cap: usize) {
        match f.tag {
            b'T' => {
                // A statement's description and then its portal's (asyncpg
                // prepares and executes in one batch; the gateway describes
                // the portal on a masked connection) name the same rows:
                // the later one stands. After rows, a second result begins.
                if self.columns.is_some() && (!self.rows.is_empty() || self.later_set) {
                    self.later_set = true;
                    self.truncated = true;
                    return;
                }
                let names = rows::parse_row_description(&f.body)
                    .map(|cols| cols.into_iter().map(|c| c.name).collect())
                    .unwrap_or_default();
                self.columns = Some(names);
            }
            b'D' if !self.later_set => {
                if self.rows.len() >= cap {
                    self.truncated = true;
                    return;
                }
                if let Ok(cells) = rows::parse_data_row(&f.body) {
                    self.rows
                        .push(cells.iter().map(|c| c.as_deref().map(shown)).collect());
                }
            }
            _ => {}
        }
    }

    pub fn into_result(self) -> Option<ResultRows> {
        Some(ResultRows {
            columns: self.columns?,
            rows: self.rows,
            truncated: self.truncated,
        })
    }
}

/// A cell as text when it reads as text, else `\x` hex (binary-format
/// numbers, timestamps, …).
fn shown(bytes: &[u8]) -> String {
    match std::str::from_utf8(bytes) {
        Ok(s)
            if !s
                .chars()
                .any(|c| c.is_control() && !matches!(c, '\t' | '\n' | '\r')) =>
        {
            s.to_string()
        }
        _ => format!("\\x{}", crate::audit::event::hex(bytes)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A Bind of statement `s` with these parameter format codes, raw
    /// parameter count and values, and `tail` after them.
    fn bind(formats: &[i16], count: u16, values: &[i32], tail: &[u8]) -> Vec<u8> {
        let mut b = b"\0s\0".to_vec();
        b.extend_from_slice(&(formats.len() as u16).to_be_bytes());
        for f in formats {
            b.extend_from_slice(&f.to_be_bytes());
        }
        b.extend_from_slice(&count.to_be_bytes());
        for len in values {
            b.extend_from_slice(&len.to_be_bytes());
            if *len > 0 {
                b.extend(std::iter::repeat_n(b'x', *len as usize));
            }
        }
        b.extend_from_slice(tail);
        b
    }

    #[test]
    fn binds_are_read_as_the_server_reads_them() {
        let ok = bind(&[0], 2, &[3, -1], &[0, 0]);
        let parsed = Bind::parse(&ok).unwrap();
        assert_eq!(parsed.params, [Some(&b"xxx"[..]), None]);

        let malformed = |body: &[u8]| Bind::parse(body).err().map(|e| e.to_string());
        // A value past the end, a length below -1, bytes after the result
        // formats.
        let mut short = bind(&[], 1, &[], &[]);
        short.extend_from_slice(&5i32.to_be_bytes());
        short.extend_from_slice(b"ab");
        assert!(malformed(&short).is_some_and(|e| e.contains("past the end")));
        assert!(malformed(&bind(&[], 1, &[-2], &[0, 0])).is_some());
        assert!(malformed(&bind(&[], 0, &[], &[0, 0, 9])).is_some_and(|e| e.contains("after")));
        // A count of 65535 is not -1: the server reads that many values.
        let mut huge = b"\0s\0\0\0".to_vec();
        huge.extend_from_slice(&[0xff, 0xff, 0, 0, 0, 0]);
        assert!(malformed(&huge).is_some());
    }
}
