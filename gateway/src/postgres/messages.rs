//! Server messages other than rows that carry data, on a connection with
//! maskers. A value reaches the agent without a DataRow in several ways:
//! an error quotes it (`Key (email)=(ann@example.com) already exists`,
//! `invalid input syntax for type integer: "ann@example.com"`, the classic
//! way to read a column through errors), a function raises a notice with
//! it, a trigger or `pg_notify` sends it as a notification's payload, and
//! `set_config('application_name', <a column>, false)` has the server
//! report it as a parameter. So the maskers see:
//!
//! * every field of an ErrorResponse or NoticeResponse except severity,
//!   SQLSTATE, positions and the server's source location;
//! * a NotificationResponse's channel and payload (`pg_notify` takes the
//!   channel from a value as readily as the payload);
//! * a ParameterStatus value, except of the parameters whose values have a
//!   fixed syntax (encodings, date styles, booleans, the server version);
//! * a RowDescription's field names: a name is what the statement made it,
//!   and dynamic SQL makes it from a value (`format('… as %I', email)`).
//!   A session's name lists the maskers left as they were are not shown
//!   again until a masker is reloaded ([`Descriptions`]).
//!
//! Notices below NOTICE (LOG, DEBUG), which the server sends only when the
//! client lowers `client_min_messages`, are withheld ([`debug_notice`]):
//! `debug_print_plan` and its kin print a query's constants as lists of
//! byte values, a form no masker reads.
//!
//! The texts of one message go to the maskers together
//! ([`Chain::mask_texts`]). A masker that changes their number, or returns
//! one the protocol cannot carry (a NUL byte), fails the message; the
//! caller then ends the session rather than send it unmasked.

use bytes::{BufMut, Bytes, BytesMut};

use crate::plugins::bindings::types::{Detection, Session};
use crate::plugins::{Chain, TextsError};

use super::frame::{self, BodyReader, Frame};

/// Error and notice fields maskers do not see: severity (localized and
/// not), SQLSTATE, positions, and the server's file, line and routine.
const FIELDS_NOT_SHOWN: &[u8] = b"SVCPpFLR";

/// Parameters whose reported values have a fixed syntax.
const PARAMETERS_NOT_SHOWN: &[&str] = &[
    "client_encoding",
    "DateStyle",
    "default_transaction_read_only",
    "in_hot_standby",
    "integer_datetimes",
    "IntervalStyle",
    "is_superuser",
    "scram_iterations",
    "server_encoding",
    "server_version",
    "standard_conforming_strings",
];

#[derive(Debug, thiserror::Error)]
pub enum MessageMaskError {
    #[error("a server message could not be read: {0}")]
    Unreadable(String),
    #[error("a server message is not UTF-8 text, which maskers read")]
    NotUtf8,
    #[error("masking a server message failed: {0}")]
    Masker(#[from] TextsError),
    #[error("a masker returned a NUL byte, which a server message cannot carry")]
    Nul,
}

/// The message as it may reach the agent (`f` itself when no text of it
/// is shown to the maskers or none changed), and what the maskers found in
/// an error or notice, which belongs to the statement it answers.
pub async fn mask(
    chain: &Chain,
    session: &Session,
    f: Frame,
) -> Result<(Frame, Vec<Detection>), MessageMaskError> {
    match f.tag {
        b'E' | b'N' => error_fields(chain, session, f).await,
        b'A' => Ok((notification(chain, session, f).await?, vec![])),
        b'S' => Ok((parameter(chain, session, f).await?, vec![])),
        _ => Ok((f, vec![])),
    }
}

/// A NoticeResponse of severity LOG or DEBUG1–5.
pub fn debug_notice(f: &Frame) -> bool {
    if f.tag != b'N' {
        return false;
    }
    // `V` (not localized) since PostgreSQL 9.6; `S` may be translated.
    let severity = frame::raw_error_fields(&f.body)
        .find(|(code, _)| *code == b'V')
        .or_else(|| frame::raw_error_fields(&f.body).find(|(code, _)| *code == b'S'))
        .map(|(_, v)| v);
    severity.is_some_and(|v| v == b"LOG" || v.starts_with(b"DEBUG"))
}

/// Column names of one session that the maskers left unchanged, under
/// the masker generations they were shown to: a statement's columns are
/// described at each simple Query and each Describe (in text or binary
/// formats), and showing the same names again would cost a masker call
/// each time.
#[derive(Default)]
pub struct Descriptions {
    epoch: u64,
    clean: std::collections::HashSet<Vec<u8>>,
    /// The names of the description at hand, NUL-terminated: reused, so
    /// that a description seen before costs no allocation.
    key: Vec<u8>,
}

/// Name lists remembered per session, at most.
const MAX_DESCRIPTIONS: usize = 256;

impl Descriptions {
    /// A RowDescription as it may reach the agent: its field names masked.
    pub async fn mask(
        &mut self,
        chain: &Chain,
        session: &Session,
        f: Frame,
    ) -> Result<Frame, MessageMaskError> {
        let epoch = chain.masker_epoch();
        if epoch != self.epoch {
            self.clean.clear();
            self.epoch = epoch;
        }
        self.key.clear();
        for_each_field(&f.body, |name, _| {
            self.key.extend_from_slice(name);
            self.key.push(0);
        })?;
        if self.clean.contains(&self.key) {
            return Ok(f);
        }
        let mut fields = Vec::new();
        let (count, rest) = for_each_field(&f.body, |name, after| fields.push((name, after)))?;
        let names: Vec<&[u8]> = fields.iter().map(|(name, _)| *name).collect();
        let Some(masked) = mask_texts(chain, session, &names).await? else {
            if self.clean.len() < MAX_DESCRIPTIONS {
                self.clean.insert(self.key.clone());
            }
            return Ok(f);
        };
        let mut body = BytesMut::with_capacity(f.body.len());
        body.put_i16(count);
        for ((_, after), name) in fields.iter().zip(&masked) {
            put_cstr(&mut body, name);
            body.put_slice(after);
        }
        body.put_slice(rest);
        Ok(Frame::new(b'T', body.freeze()))
    }
}

/// Calls `each` with every field of a RowDescription: its name and the 18
/// bytes after it (table, column number, type, size, modifier, format).
/// Returns the field count and what follows the fields. Read twice for a
/// description not seen before rather than collected for every one.
fn for_each_field<'a>(
    body: &'a [u8],
    mut each: impl FnMut(&'a [u8], &'a [u8]),
) -> Result<(i16, &'a [u8]), MessageMaskError> {
    let read = |e: super::FrameError| MessageMaskError::Unreadable(e.to_string());
    let mut r = BodyReader::new(body, "RowDescription");
    let count = r.i16().map_err(read)?;
    for _ in 0..count {
        let name = r.cstr_bytes().map_err(read)?;
        each(name, r.take(18).map_err(read)?);
    }
    Ok((count, r.rest()))
}

async fn error_fields(
    chain: &Chain,
    session: &Session,
    f: Frame,
) -> Result<(Frame, Vec<Detection>), MessageMaskError> {
    let shown: Vec<&[u8]> = frame::raw_error_fields(&f.body)
        .filter(|(code, _)| shown_field(*code))
        .map(|(_, v)| v)
        .collect();
    match counted_mask_texts(chain, session, &shown).await? {
        None => Ok((f, vec![])),
        Some((masked, found)) => {
            let body = with_shown_fields(&f.body, &masked);
            Ok((Frame::new(f.tag, body), found))
        }
    }
}

fn shown_field(code: u8) -> bool {
    !FIELDS_NOT_SHOWN.contains(&code)
}

/// An error or notice body with the fields maskers see replaced by
/// `masked`, in order ([`Chain::mask_texts`] returns one for each).
fn with_shown_fields(body: &[u8], masked: &[String]) -> Bytes {
    let mut masked = masked.iter();
    let mut out = BytesMut::with_capacity(body.len());
    for (code, value) in frame::raw_error_fields(body) {
        let value = match shown_field(code) {
            true => masked.next().map_or(&b""[..], |m| m.as_bytes()),
            false => value,
        };
        out.put_u8(code);
        out.put_slice(value);
        out.put_u8(0);
    }
    out.put_u8(0);
    out.freeze()
}

async fn notification(
    chain: &Chain,
    session: &Session,
    f: Frame,
) -> Result<Frame, MessageMaskError> {
    let mut r = BodyReader::new(&f.body, "NotificationResponse");
    let read = |e: super::FrameError| MessageMaskError::Unreadable(e.to_string());
    let pid = r.i32().map_err(read)?;
    let channel = r.cstr().map_err(read)?;
    let payload = r.cstr().map_err(read)?;
    let Some(masked) =
        mask_texts(chain, session, &[channel.as_bytes(), payload.as_bytes()]).await?
    else {
        return Ok(f);
    };
    let mut body = BytesMut::new();
    body.put_i32(pid);
    put_cstr(&mut body, &masked[0]);
    put_cstr(&mut body, &masked[1]);
    Ok(Frame::new(b'A', body.freeze()))
}

async fn parameter(chain: &Chain, session: &Session, f: Frame) -> Result<Frame, MessageMaskError> {
    let mut r = BodyReader::new(&f.body, "ParameterStatus");
    let read = |e: super::FrameError| MessageMaskError::Unreadable(e.to_string());
    let name = r.cstr().map_err(read)?;
    let value = r.cstr().map_err(read)?;
    if PARAMETERS_NOT_SHOWN.contains(&name) {
        return Ok(f);
    }
    let Some(masked) = mask_texts(chain, session, &[value.as_bytes()]).await? else {
        return Ok(f);
    };
    let mut body = BytesMut::new();
    put_cstr(&mut body, name);
    put_cstr(&mut body, &masked[0]);
    Ok(Frame::new(b'S', body.freeze()))
}

fn put_cstr(out: &mut BytesMut, s: &str) {
    out.put_slice(s.as_bytes());
    out.put_u8(0);
}

/// The texts after the maskers ([`Chain::mask_texts`]), in order; `None`
/// when there were none or the maskers changed none.
async fn mask_texts(
    chain: &Chain,
    session: &Session,
    texts: &[&[u8]],
) -> Result<Option<Vec<String>>, MessageMaskError> {
    Ok(counted_mask_texts(chain, session, texts)
        .await?
        .map(|(masked, _)| masked))
}

/// [`mask_texts`], with what the maskers reported finding.
async fn counted_mask_texts(
    chain: &Chain,
    session: &Session,
    texts: &[&[u8]],
) -> Result<Option<(Vec<String>, Vec<Detection>)>, MessageMaskError> {
    if texts.iter().all(|t| t.is_empty()) {
        return Ok(None);
    }
    let texts = texts
        .iter()
        .map(|t| std::str::from_utf8(t).map_err(|_| MessageMaskError::NotUtf8))
        .collect::<Result<Vec<&str>, _>>()?;
    let (masked, report) = chain.mask_texts(session, &texts).await?;
    if masked.iter().any(|t| t.contains('\0')) {
        return Err(MessageMaskError::Nul);
    }
    if masked.iter().zip(&texts).all(|(m, t)| m == t) {
        return Ok(None);
    }
    Ok(Some((masked, report.detections)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_and_debug_notices_are_told_apart() {
        let notice = |severity: &str| {
            Frame::new(
                b'N',
                format!("S{severity}\0V{severity}\0C00000\0Mx\0\0").into_bytes(),
            )
        };
        for severity in ["LOG", "DEBUG1", "DEBUG5"] {
            assert!(debug_notice(&notice(severity)), "{severity}");
        }
        for severity in ["NOTICE", "WARNING", "INFO"] {
            assert!(!debug_notice(&notice(severity)), "{severity}");
        }
        // Translated `S`, no `V`: a server before 9.6 speaking English.
        assert!(debug_notice(&Frame::new(b'N', &b"SLOG\0Mx\0\0"[..])));
    }

    #[test]
    fn shown_fields_are_replaced_in_order_and_the_rest_kept() {
        let body =
            b"SERROR\0C23505\0Mduplicate key\0DKey (email)=(ann@example.com)\0Lnbtinsert.c\0\0";
        let masked = [
            "duplicate key".to_string(),
            "Key (email)=([EMAIL])".to_string(),
        ];
        let out = with_shown_fields(body, &masked);
        assert_eq!(
            &out[..],
            b"SERROR\0C23505\0Mduplicate key\0DKey (email)=([EMAIL])\0Lnbtinsert.c\0\0"
        );
    }
}
