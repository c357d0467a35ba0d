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
//! * a NotificationResponse's payload;
//! * a ParameterStatus value, except of the parameters whose values have a
//!   fixed syntax (encodings, date styles, booleans, the server version).
//!
//! The texts of one message go to the maskers as one JSON array of strings
//! (a field can hold line breaks, which JSON keeps apart). A masker that
//! changes the number of texts, or returns one the protocol cannot carry (a
//! NUL byte), fails the message; the caller then ends the session rather
//! than send it unmasked.

use bytes::{BufMut, BytesMut};

use crate::plugins::Chain;
use crate::plugins::bindings::types::Session;

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
    Masker(String),
    #[error("a masker changed the number of texts of a server message")]
    Shape,
    #[error("a masker returned a NUL byte, which a server message cannot carry")]
    Nul,
}

/// The message as it may reach the agent: `f` itself when no text of it is
/// shown to the maskers or none changed.
pub async fn mask(chain: &Chain, session: &Session, f: Frame) -> Result<Frame, MessageMaskError> {
    match f.tag {
        b'E' | b'N' => error_fields(chain, session, f).await,
        b'A' => notification(chain, session, f).await,
        b'S' => parameter(chain, session, f).await,
        _ => Ok(f),
    }
}

async fn error_fields(
    chain: &Chain,
    session: &Session,
    f: Frame,
) -> Result<Frame, MessageMaskError> {
    let fields: Vec<(u8, &[u8])> = frame::raw_error_fields(&f.body).collect();
    let shown: Vec<&[u8]> = fields
        .iter()
        .filter(|(code, _)| !FIELDS_NOT_SHOWN.contains(code))
        .map(|(_, v)| *v)
        .collect();
    let Some(mut masked) = mask_texts(chain, session, &shown).await? else {
        return Ok(f);
    };
    masked.reverse();
    let mut body = BytesMut::with_capacity(f.body.len());
    for (code, value) in fields {
        body.put_u8(code);
        if FIELDS_NOT_SHOWN.contains(&code) {
            body.put_slice(value);
        } else {
            body.put_slice(masked.pop().ok_or(MessageMaskError::Shape)?.as_bytes());
        }
        body.put_u8(0);
    }
    body.put_u8(0);
    Ok(Frame::new(f.tag, body.freeze()))
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
    let Some(masked) = mask_texts(chain, session, &[payload.as_bytes()]).await? else {
        return Ok(f);
    };
    let mut body = BytesMut::new();
    body.put_i32(pid);
    put_cstr(&mut body, channel);
    put_cstr(&mut body, &masked[0]);
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

/// The texts after the maskers, in order; `None` when there were none or
/// the maskers changed none.
async fn mask_texts(
    chain: &Chain,
    session: &Session,
    texts: &[&[u8]],
) -> Result<Option<Vec<String>>, MessageMaskError> {
    if texts.iter().all(|t| t.is_empty()) {
        return Ok(None);
    }
    let texts = texts
        .iter()
        .map(|t| std::str::from_utf8(t).map_err(|_| MessageMaskError::NotUtf8))
        .collect::<Result<Vec<&str>, _>>()?;
    let json = serde_json::to_vec(&texts).map_err(|e| MessageMaskError::Masker(e.to_string()))?;
    let (masked, _) = chain
        .mask_body(session, "application/json", json)
        .await
        .map_err(|r| MessageMaskError::Masker(r.to_string()))?;
    let masked: Vec<String> =
        serde_json::from_slice(&masked).map_err(|_| MessageMaskError::Shape)?;
    if masked.len() != texts.len() {
        return Err(MessageMaskError::Shape);
    }
    if masked.iter().any(|t| t.contains('\0')) {
        return Err(MessageMaskError::Nul);
    }
    if masked.iter().zip(&texts).all(|(m, t)| m == t) {
        return Ok(None);
    }
    Ok(Some(masked))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn structural_fields_and_parameters_are_not_shown() {
        for code in [b'S', b'V', b'C', b'P', b'F', b'L', b'R'] {
            assert!(FIELDS_NOT_SHOWN.contains(&code));
        }
        for code in [b'M', b'D', b'H', b'W', b'q', b't', b'c', b'n'] {
            assert!(!FIELDS_NOT_SHOWN.contains(&code));
        }
        assert!(!PARAMETERS_NOT_SHOWN.contains(&"application_name"));
    }
}
