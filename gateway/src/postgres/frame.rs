//! Protocol 3 message framing: a type byte, a big-endian length that counts
//! itself, and the body. Frames are kept as bytes so that what the gateway
//! allows is forwarded exactly as it arrived.

use bytes::{BufMut, Bytes, BytesMut};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

/// Longest message accepted from either side unless configured otherwise.
/// PostgreSQL itself caps most messages at 1 GiB; a gateway buffering whole
/// messages needs a much smaller bound.
pub const DEFAULT_MAX_FRAME: usize = 64 << 20;

#[derive(Debug, thiserror::Error)]
pub enum FrameError {
    #[error("connection closed")]
    Closed,
    #[error("message length {0} is invalid")]
    BadLength(i64),
    #[error("message of {len} bytes exceeds the {max}-byte limit")]
    TooLarge { len: usize, max: usize },
    #[error("malformed {what}")]
    Malformed { what: &'static str },
    /// A string field without its terminating NUL.
    #[error("malformed {what}: a string is not terminated")]
    Unterminated { what: &'static str },
    /// A field (a count, a length, a value) that runs past the body.
    #[error("malformed {what}: a field runs past the end of the message")]
    Truncated { what: &'static str },
    /// Bytes after the last field.
    #[error("malformed {what}: data after its last field")]
    TrailingData { what: &'static str },
    /// A string field that is not UTF-8, the only encoding sessions use.
    #[error("invalid byte sequence for encoding \"UTF8\" in {what}")]
    NotUtf8 { what: &'static str },
    #[error(transparent)]
    Io(#[from] std::io::Error),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    pub tag: u8,
    pub body: Bytes,
}

impl Frame {
    pub fn new(tag: u8, body: impl Into<Bytes>) -> Self {
        Self {
            tag,
            body: body.into(),
        }
    }

    /// The frame as it goes on the wire.
    pub fn encode(&self, out: &mut BytesMut) {
        out.reserve(5 + self.body.len());
        out.put_u8(self.tag);
        out.put_i32((self.body.len() + 4) as i32);
        out.put_slice(&self.body);
    }

    pub fn to_bytes(&self) -> Bytes {
        let mut out = BytesMut::new();
        self.encode(&mut out);
        out.freeze()
    }
}

/// Reads one tagged message. `Ok(None)` on a clean end of stream between
/// messages; a stream that ends inside a message is an error.
pub async fn read_frame<R: AsyncRead + Unpin>(
    r: &mut R,
    max: usize,
) -> Result<Option<Frame>, FrameError> {
    let mut header = [0u8; 5];
    match r.read(&mut header[..1]).await? {
        0 => return Ok(None),
        _ => r
            .read_exact(&mut header[1..])
            .await
            .map_err(eof_is_closed)?,
    };
    let len = i32::from_be_bytes([header[1], header[2], header[3], header[4]]);
    let body = read_body(r, len, 4, max).await?;
    Ok(Some(Frame::new(header[0], body)))
}

/// Reads the body announced by a length field (which counts itself), after
/// checking it against `min` and `max` so that a hostile length costs nothing.
async fn read_body<R: AsyncRead + Unpin>(
    r: &mut R,
    len: i32,
    min: i32,
    max: usize,
) -> Result<Bytes, FrameError> {
    if len < min {
        return Err(FrameError::BadLength(len.into()));
    }
    let body_len = len as usize - 4;
    if body_len > max {
        return Err(FrameError::TooLarge { len: body_len, max });
    }
    let mut body = vec![0u8; body_len];
    r.read_exact(&mut body).await.map_err(eof_is_closed)?;
    Ok(body.into())
}

/// Reads an untagged startup-phase packet (StartupMessage, SSLRequest,
/// CancelRequest, GSSENCRequest): a length, then the body.
pub async fn read_startup<R: AsyncRead + Unpin>(
    r: &mut R,
    max: usize,
) -> Result<Bytes, FrameError> {
    let len = r.read_i32().await.map_err(eof_is_closed)?;
    read_body(r, len, 8, max).await
}

/// Writes one frame into a buffered writer without assembling it first.
pub async fn write_frame<W: AsyncWrite + Unpin>(w: &mut W, f: &Frame) -> std::io::Result<()> {
    let mut header = [0u8; 5];
    header[0] = f.tag;
    header[1..].copy_from_slice(&((f.body.len() + 4) as i32).to_be_bytes());
    w.write_all(&header).await?;
    w.write_all(&f.body).await
}

pub async fn write_frames<W: AsyncWrite + Unpin>(
    w: &mut W,
    frames: &[Frame],
) -> std::io::Result<()> {
    let mut out = BytesMut::new();
    for f in frames {
        f.encode(&mut out);
    }
    w.write_all(&out).await?;
    w.flush().await
}

fn eof_is_closed(e: std::io::Error) -> FrameError {
    if e.kind() == std::io::ErrorKind::UnexpectedEof {
        FrameError::Closed
    } else {
        FrameError::Io(e)
    }
}

/// Reads the NUL-terminated strings and integers of message bodies.
pub struct BodyReader<'a> {
    buf: &'a [u8],
    what: &'static str,
}

impl<'a> BodyReader<'a> {
    pub fn new(buf: &'a [u8], what: &'static str) -> Self {
        Self { buf, what }
    }

    pub fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }

    /// Bytes not read yet.
    pub fn remaining(&self) -> usize {
        self.buf.len()
    }

    /// Ok when every field has been read, as PostgreSQL requires of the
    /// messages it reads.
    pub fn end(&self) -> Result<(), FrameError> {
        if self.buf.is_empty() {
            Ok(())
        } else {
            Err(FrameError::TrailingData { what: self.what })
        }
    }

    pub fn cstr(&mut self) -> Result<&'a str, FrameError> {
        let what = self.what;
        let bytes = self.cstr_bytes()?;
        std::str::from_utf8(bytes).map_err(|_| FrameError::NotUtf8 { what })
    }

    /// A NUL-terminated field as it arrived, whatever its encoding.
    pub fn cstr_bytes(&mut self) -> Result<&'a [u8], FrameError> {
        let end = self
            .buf
            .iter()
            .position(|&b| b == 0)
            .ok_or(FrameError::Unterminated { what: self.what })?;
        let bytes = &self.buf[..end];
        self.buf = &self.buf[end + 1..];
        Ok(bytes)
    }

    pub fn u8(&mut self) -> Result<u8, FrameError> {
        Ok(self.take(1)?[0])
    }

    /// A count: PostgreSQL reads them unsigned (up to 65535 parameters).
    pub fn u16(&mut self) -> Result<u16, FrameError> {
        let bytes = self.take(2)?;
        Ok(u16::from_be_bytes([bytes[0], bytes[1]]))
    }

    pub fn i16(&mut self) -> Result<i16, FrameError> {
        let bytes = self.take(2)?;
        Ok(i16::from_be_bytes([bytes[0], bytes[1]]))
    }

    pub fn i32(&mut self) -> Result<i32, FrameError> {
        let bytes = self.take(4)?;
        Ok(i32::from_be_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]))
    }

    pub fn take(&mut self, n: usize) -> Result<&'a [u8], FrameError> {
        if self.buf.len() < n {
            return Err(FrameError::Truncated { what: self.what });
        }
        let (head, rest) = self.buf.split_at(n);
        self.buf = rest;
        Ok(head)
    }

    pub fn rest(&mut self) -> &'a [u8] {
        std::mem::take(&mut self.buf)
    }
}

/// One field of an ErrorResponse or NoticeResponse (`b'M'`: the message),
/// empty when absent. Reads only up to that field: the relay asks this of
/// every ErrorResponse.
pub fn error_field(body: &[u8], code: u8) -> String {
    raw_error_fields(body)
        .find(|(c, _)| *c == code)
        .map(|(_, v)| String::from_utf8_lossy(v).into_owned())
        .unwrap_or_default()
}

/// The fields of an ErrorResponse or NoticeResponse, by field code.
pub fn error_fields(body: &[u8]) -> Vec<(u8, String)> {
    raw_error_fields(body)
        .map(|(c, v)| (c, String::from_utf8_lossy(v).into_owned()))
        .collect()
}

/// The fields as they are on the wire: a code byte, then the value up to
/// its NUL (or the end); a zero code ends them.
pub(crate) fn raw_error_fields(body: &[u8]) -> impl Iterator<Item = (u8, &[u8])> {
    let mut rest = body;
    std::iter::from_fn(move || {
        let (&code, tail) = rest.split_first()?;
        if code == 0 {
            return None;
        }
        let end = tail.iter().position(|&b| b == 0).unwrap_or(tail.len());
        rest = tail.get(end + 1..).unwrap_or(&[]);
        Some((code, &tail[..end]))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn frames_round_trip() {
        let f = Frame::new(b'Q', &b"select 1\0"[..]);
        let bytes = f.to_bytes();
        let mut r = &bytes[..];
        assert_eq!(read_frame(&mut r, 1024).await.unwrap(), Some(f));
        assert_eq!(read_frame(&mut r, 1024).await.unwrap(), None);
    }

    #[tokio::test]
    async fn hostile_lengths_are_refused_before_allocating() {
        let mut r: &[u8] = &[b'Q', 0x40, 0, 0, 0];
        assert!(matches!(
            read_frame(&mut r, 1024).await,
            Err(FrameError::TooLarge { .. })
        ));
        let mut r: &[u8] = &[b'Q', 0xff, 0xff, 0xff, 0xff];
        assert!(matches!(
            read_frame(&mut r, 1024).await,
            Err(FrameError::BadLength(-1))
        ));
        let mut r: &[u8] = &[b'Q', 0, 0, 0, 9, b'x'];
        assert!(matches!(
            read_frame(&mut r, 1024).await,
            Err(FrameError::Closed)
        ));
    }

    #[test]
    fn error_fields_parse() {
        let body = b"SERROR\0C42501\0Mdenied\0\0";
        assert_eq!(
            error_fields(body),
            vec![
                (b'S', "ERROR".into()),
                (b'C', "42501".into()),
                (b'M', "denied".into())
            ]
        );
        assert_eq!(error_fields(b"Sx"), vec![(b'S', "x".into())]);
    }
}
