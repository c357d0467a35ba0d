//! The untagged packets a client may open with: SSLRequest, GSSENCRequest,
//! CancelRequest and StartupMessage (protocol 3.0, or 3.2 with its longer
//! cancel keys).

use bytes::{BufMut, Bytes, BytesMut};

use super::frame::{BodyReader, Frame, FrameError};

const SSL_REQUEST: i32 = 80_877_103;
const GSSENC_REQUEST: i32 = 80_877_104;
const CANCEL_REQUEST: i32 = 80_877_102;
/// Newest minor version of protocol 3 the gateway speaks.
pub const NEWEST_MINOR: u16 = 2;

/// Startup keys the server reads as more than a setting: the session's
/// addressing, `options` (more settings), `replication` (a walsender) and
/// protocol options. None of them reaches the upstream from a client.
pub fn is_reserved_key(key: &str) -> bool {
    ["user", "database", "options", "replication"].contains(&key) || key.starts_with("_pq_.")
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StartupPacket {
    Ssl,
    Gssenc,
    Cancel { pid: i32, secret: Bytes },
    Startup(StartupMessage),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StartupMessage {
    pub major: u16,
    pub minor: u16,
    /// Every parameter as sent, in order (`user`, `database`, `options`,
    /// `application_name`, `_pq_.*` protocol options, …).
    pub params: Vec<(String, String)>,
}

impl StartupMessage {
    pub fn get(&self, key: &str) -> Option<&str> {
        self.params
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// The database name, which names the gateway connection; like
    /// PostgreSQL, it defaults to the user name.
    pub fn database(&self) -> Option<&str> {
        self.get("database").or_else(|| self.get("user"))
    }

    /// The version to answer with, and the NegotiateProtocolVersion message
    /// to send first when the client asked for more than the gateway speaks
    /// (a newer minor version, or `_pq_.` protocol options).
    pub fn negotiate(&self) -> (u16, Option<Frame>) {
        let minor = self.minor.min(NEWEST_MINOR);
        let options: Vec<&str> = self
            .params
            .iter()
            .filter(|(k, _)| k.starts_with("_pq_."))
            .map(|(k, _)| k.as_str())
            .collect();
        if minor == self.minor && options.is_empty() {
            return (minor, None);
        }
        let mut body = BytesMut::new();
        body.put_i32(i32::from(minor));
        body.put_i32(options.len() as i32);
        for o in options {
            body.put_slice(o.as_bytes());
            body.put_u8(0);
        }
        (minor, Some(Frame::new(b'v', body.freeze())))
    }
}

pub fn parse(body: &[u8]) -> Result<StartupPacket, FrameError> {
    let mut r = BodyReader::new(body, "startup packet");
    let code = r.i32()?;
    match code {
        SSL_REQUEST if r.is_empty() => Ok(StartupPacket::Ssl),
        GSSENC_REQUEST if r.is_empty() => Ok(StartupPacket::Gssenc),
        CANCEL_REQUEST => {
            let pid = r.i32()?;
            let secret = Bytes::copy_from_slice(r.rest());
            // 3.0 keys are 4 bytes; 3.2 allows up to 256.
            if secret.len() < 4 || secret.len() > 256 {
                return Err(FrameError::Malformed {
                    what: "CancelRequest",
                });
            }
            Ok(StartupPacket::Cancel { pid, secret })
        }
        _ => {
            let major = (code >> 16) as u16;
            let minor = (code & 0xffff) as u16;
            if major != 3 {
                return Err(FrameError::Malformed {
                    what: "startup packet (unsupported protocol version)",
                });
            }
            let mut params = Vec::new();
            loop {
                let key = r.cstr()?;
                if key.is_empty() {
                    break;
                }
                let value = r.cstr()?;
                params.push((key.to_string(), value.to_string()));
            }
            if !r.is_empty() {
                return Err(FrameError::Malformed {
                    what: "StartupMessage (data after the terminator)",
                });
            }
            Ok(StartupPacket::Startup(StartupMessage {
                major,
                minor,
                params,
            }))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn startup(version: i32, params: &[(&str, &str)]) -> Vec<u8> {
        let mut b = version.to_be_bytes().to_vec();
        for (k, v) in params {
            b.extend_from_slice(k.as_bytes());
            b.push(0);
            b.extend_from_slice(v.as_bytes());
            b.push(0);
        }
        b.push(0);
        b
    }

    #[test]
    fn startup_messages() {
        let p = parse(&startup(
            196_608,
            &[("user", "agent-1"), ("database", "appdb")],
        ))
        .unwrap();
        let StartupPacket::Startup(m) = p else {
            panic!()
        };
        assert_eq!(m.database(), Some("appdb"));
        assert_eq!(m.negotiate(), (0, None));

        let p = parse(&startup(196_608, &[("user", "appdb")])).unwrap();
        let StartupPacket::Startup(m) = p else {
            panic!()
        };
        assert_eq!(m.database(), Some("appdb"), "database defaults to the user");
    }

    #[test]
    fn newer_minor_versions_and_protocol_options_are_negotiated() {
        let p = parse(&startup(196_608 + 7, &[("user", "u"), ("_pq_.magic", "1")])).unwrap();
        let StartupPacket::Startup(m) = p else {
            panic!()
        };
        let (minor, frame) = m.negotiate();
        assert_eq!(minor, NEWEST_MINOR);
        let frame = frame.unwrap();
        assert_eq!(frame.tag, b'v');
        assert_eq!(&frame.body[..8], &[0, 0, 0, 2, 0, 0, 0, 1]);
        assert_eq!(&frame.body[8..], b"_pq_.magic\0");
    }

    #[test]
    fn requests_and_garbage() {
        assert_eq!(
            parse(&SSL_REQUEST.to_be_bytes()).unwrap(),
            StartupPacket::Ssl
        );
        assert_eq!(
            parse(&GSSENC_REQUEST.to_be_bytes()).unwrap(),
            StartupPacket::Gssenc
        );
        let mut cancel = CANCEL_REQUEST.to_be_bytes().to_vec();
        cancel.extend_from_slice(&42i32.to_be_bytes());
        cancel.extend_from_slice(&[1, 2, 3, 4]);
        assert_eq!(
            parse(&cancel).unwrap(),
            StartupPacket::Cancel {
                pid: 42,
                secret: Bytes::from_static(&[1, 2, 3, 4])
            }
        );
        assert!(
            parse(&startup(2 << 16, &[])).is_err(),
            "protocol 2 is refused"
        );
        assert!(parse(&[0, 3, 0, 0, b'u', b's']).is_err(), "unterminated");
        assert!(parse(&[0, 3]).is_err(), "short");
        let mut bad_utf8 = 196_608i32.to_be_bytes().to_vec();
        bad_utf8.extend_from_slice(&[0xff, 0, b'x', 0, 0]);
        assert!(parse(&bad_utf8).is_err());
    }
}
