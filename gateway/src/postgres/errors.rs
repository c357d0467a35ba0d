//! ErrorResponse messages the gateway itself sends, with named SQLSTATEs.

use bytes::{BufMut, BytesMut};

use super::frame::Frame;

/// SQLSTATE codes used by the gateway (PostgreSQL Appendix A).
pub mod sqlstate {
    pub const INVALID_AUTHORIZATION_SPECIFICATION: &str = "28000";
    pub const INVALID_PASSWORD: &str = "28P01";
    pub const INVALID_CATALOG_NAME: &str = "3D000";
    pub const PROTOCOL_VIOLATION: &str = "08P01";
    pub const CHARACTER_NOT_IN_REPERTOIRE: &str = "22021";
    pub const FEATURE_NOT_SUPPORTED: &str = "0A000";
    pub const CONNECTION_FAILURE: &str = "08006";
    pub const SQLCLIENT_UNABLE_TO_ESTABLISH_SQLCONNECTION: &str = "08001";
    pub const INVALID_PARAMETER_VALUE: &str = "22023";
    pub const INSUFFICIENT_PRIVILEGE: &str = "42501";
    pub const INSUFFICIENT_RESOURCES: &str = "53000";
    pub const SYNTAX_ERROR: &str = "42601";
    pub const NAME_TOO_LONG: &str = "42622";
    pub const STATEMENT_TOO_COMPLEX: &str = "54001";
    pub const INVALID_SQL_STATEMENT_NAME: &str = "26000";
    pub const PROGRAM_LIMIT_EXCEEDED: &str = "54000";
    /// The gateway itself cannot serve the session (e.g. cannot record it).
    pub const SYSTEM_ERROR: &str = "58000";
    /// The gateway's own analysis failed (never the statement's fault).
    pub const INTERNAL_ERROR: &str = "XX000";
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Severity {
    /// Ends the statement; the session goes on.
    Error,
    /// Ends the session.
    Fatal,
}

/// An ErrorResponse with severity, SQLSTATE and message.
pub fn error_response(severity: Severity, code: &str, message: &str) -> Frame {
    error_response_at(severity, code, message, None, None)
}

/// An ErrorResponse with a detail (`D`) and a position in the statement
/// text (`position`: 1-based, in characters, as the server's `P` field,
/// for clients that draw a caret under it).
pub fn error_response_at(
    severity: Severity,
    code: &str,
    message: &str,
    detail: Option<&str>,
    position: Option<u32>,
) -> Frame {
    let severity = match severity {
        Severity::Error => "ERROR",
        Severity::Fatal => "FATAL",
    };
    let mut body = BytesMut::new();
    for (field, value) in [
        (b'S', severity),
        (b'V', severity),
        (b'C', code),
        (b'M', message),
    ] {
        body.put_u8(field);
        // A NUL inside a value would end the field early: never forward one.
        body.put_slice(value.replace('\0', " ").as_bytes());
        body.put_u8(0);
    }
    let position = position.map(|p| p.to_string());
    for (field, value) in [(b'D', detail), (b'P', position.as_deref())] {
        if let Some(value) = value {
            body.put_u8(field);
            body.put_slice(value.replace('\0', " ").as_bytes());
            body.put_u8(0);
        }
    }
    body.put_u8(0);
    Frame::new(b'E', body.freeze())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::postgres::frame::error_fields;

    #[test]
    fn builds_fields() {
        let f = error_response(Severity::Fatal, sqlstate::INVALID_PASSWORD, "bad\0token");
        assert_eq!(f.tag, b'E');
        let fields = error_fields(&f.body);
        assert!(fields.contains(&(b'C', "28P01".into())));
        assert!(fields.contains(&(b'M', "bad token".into())));
        assert!(fields.contains(&(b'S', "FATAL".into())));
    }
}
