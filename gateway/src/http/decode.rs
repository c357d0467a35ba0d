//! Content codings the gateway can undo before it inspects or masks a body:
//! gzip, deflate and br. Decoding is incremental (so event streams can be
//! masked as they arrive) and bounded: output past the limit is an error,
//! which is what stops a decompression bomb.

use std::io::Write;

use bytes::Bytes;
use hyper::HeaderMap;
use hyper::header::CONTENT_ENCODING;

/// The codings the gateway decodes, as offered upstream on masked connections.
pub const ACCEPTED: &str = "gzip, deflate, br";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Coding {
    Identity,
    Gzip,
    Deflate,
    Br,
}

#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    #[error("content coding {0:?} cannot be decoded by the gateway")]
    Unsupported(String),
    #[error("decoded body larger than {0} bytes")]
    TooLarge(usize),
    #[error("invalid {coding:?} data: {message}")]
    Corrupt { coding: Coding, message: String },
}

/// The body's coding from `Content-Encoding`. Only one coding is
/// supported; a stack of several (`gzip, br`) is refused.
/// The coding a content-coding token names, if the gateway decodes it.
pub fn named(token: &str) -> Option<Coding> {
    [
        ("identity", Coding::Identity),
        ("gzip", Coding::Gzip),
        ("x-gzip", Coding::Gzip),
        ("deflate", Coding::Deflate),
        ("br", Coding::Br),
    ]
    .into_iter()
    .find(|(name, _)| token.eq_ignore_ascii_case(name))
    .map(|(_, c)| c)
}

pub fn coding(headers: &HeaderMap) -> Result<Coding, DecodeError> {
    let mut found = Coding::Identity;
    for value in headers.get_all(CONTENT_ENCODING) {
        let text = value
            .to_str()
            .map_err(|_| DecodeError::Unsupported("<non-ASCII>".into()))?;
        for token in text.split(',').map(str::trim).filter(|t| !t.is_empty()) {
            let c = match named(token) {
                Some(Coding::Identity) => continue,
                Some(c) => c,
                None => return Err(DecodeError::Unsupported(token.to_ascii_lowercase())),
            };
            if found != Coding::Identity {
                // Stacked codings, in one header line or several.
                let all: Vec<&str> = headers
                    .get_all(CONTENT_ENCODING)
                    .iter()
                    .filter_map(|v| v.to_str().ok())
                    .collect();
                return Err(DecodeError::Unsupported(all.join(", ")));
            }
            found = c;
        }
    }
    Ok(found)
}

/// Collects decoded output and refuses to grow past the limit.
struct Sink {
    out: Vec<u8>,
    total: usize,
    limit: usize,
}

impl Write for Sink {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.total = self.total.saturating_add(buf.len());
        if self.total > self.limit {
            return Err(std::io::Error::other(TOO_LARGE));
        }
        self.out.extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

const TOO_LARGE: &str = "sluice: decoded output over the limit";

enum Inner {
    Identity(Sink),
    Gzip(flate2::write::MultiGzDecoder<Sink>),
    Zlib(flate2::write::ZlibDecoder<Sink>),
    RawDeflate(flate2::write::DeflateDecoder<Sink>),
    Br(Box<brotli_decompressor::DecompressorWriter<Sink>>),
    /// `deflate` before its first bytes tell zlib from raw deflate.
    Undecided(Vec<u8>),
}

/// An incremental, bounded decoder for one body.
pub struct Decoder {
    inner: Inner,
    coding: Coding,
    limit: usize,
    /// The limit applies to each `feed` rather than the whole body (an
    /// endless event stream is fine; one chunk inflating to gigabytes is not).
    per_feed: bool,
}

impl Decoder {
    /// At most `limit` decoded bytes per call of `feed`, for streams.
    pub fn streaming(coding: Coding, limit: usize) -> Self {
        Self {
            per_feed: true,
            ..Self::new(coding, limit)
        }
    }

    /// At most `limit` decoded bytes in all.
    pub fn new(coding: Coding, limit: usize) -> Self {
        let sink = Sink {
            out: Vec::new(),
            total: 0,
            limit,
        };
        let inner = match coding {
            Coding::Identity => Inner::Identity(sink),
            Coding::Gzip => Inner::Gzip(flate2::write::MultiGzDecoder::new(sink)),
            Coding::Deflate => Inner::Undecided(Vec::new()),
            Coding::Br => Inner::Br(Box::new(brotli_decompressor::DecompressorWriter::new(
                sink, 4096,
            ))),
        };
        Self {
            inner,
            coding,
            limit,
            per_feed: false,
        }
    }

    fn sink(&mut self) -> Option<&mut Sink> {
        match &mut self.inner {
            Inner::Identity(s) => Some(s),
            Inner::Gzip(d) => Some(d.get_mut()),
            Inner::Zlib(d) => Some(d.get_mut()),
            Inner::RawDeflate(d) => Some(d.get_mut()),
            Inner::Br(d) => Some(d.get_mut()),
            Inner::Undecided(_) => None,
        }
    }

    fn error(&self, e: std::io::Error) -> DecodeError {
        if e.to_string().contains(TOO_LARGE) {
            DecodeError::TooLarge(self.limit)
        } else {
            DecodeError::Corrupt {
                coding: self.coding,
                message: e.to_string(),
            }
        }
    }

    /// Feeds encoded bytes; returns what they decoded to.
    pub fn feed(&mut self, chunk: &[u8]) -> Result<Bytes, DecodeError> {
        if let Inner::Undecided(pending) = &mut self.inner {
            pending.extend_from_slice(chunk);
            if pending.len() < 2 {
                return Ok(Bytes::new());
            }
            // RFC 9110 says zlib; some servers send raw deflate. A zlib
            // header is CM=8 with a check value divisible by 31.
            let (b0, b1) = (pending[0], pending[1]);
            let zlib = b0 & 0x0f == 8 && (u16::from(b0) << 8 | u16::from(b1)) % 31 == 0;
            let buffered = std::mem::take(pending);
            let sink = Sink {
                out: Vec::new(),
                total: 0,
                limit: self.limit,
            };
            self.inner = if zlib {
                Inner::Zlib(flate2::write::ZlibDecoder::new(sink))
            } else {
                Inner::RawDeflate(flate2::write::DeflateDecoder::new(sink))
            };
            return self.feed(&buffered);
        }
        if self.per_feed
            && let Some(sink) = self.sink()
        {
            sink.total = 0;
        }
        let result = match &mut self.inner {
            Inner::Identity(s) => s.write_all(chunk),
            Inner::Gzip(d) => d.write_all(chunk),
            Inner::Zlib(d) => d.write_all(chunk),
            Inner::RawDeflate(d) => d.write_all(chunk),
            Inner::Br(d) => d.write_all(chunk),
            Inner::Undecided(_) => Ok(()),
        };
        result.map_err(|e| self.error(e))?;
        Ok(self.take())
    }

    fn take(&mut self) -> Bytes {
        self.sink()
            .map(|s| Bytes::from(std::mem::take(&mut s.out)))
            .unwrap_or_default()
    }

    /// Ends the stream: flushes what is left and checks the coding's own
    /// end (a truncated gzip or brotli stream is an error).
    pub fn finish(&mut self) -> Result<Bytes, DecodeError> {
        if let Inner::Undecided(pending) = &self.inner
            && !pending.is_empty()
        {
            return Err(DecodeError::Corrupt {
                coding: Coding::Deflate,
                message: "truncated stream".into(),
            });
        }
        let result = match &mut self.inner {
            Inner::Gzip(d) => d.try_finish(),
            Inner::Zlib(d) => d.try_finish(),
            Inner::RawDeflate(d) => d.try_finish(),
            Inner::Br(d) => d
                .close()
                .map_err(|e| std::io::Error::other(format!("truncated stream ({e:?})"))),
            Inner::Identity(_) | Inner::Undecided(_) => Ok(()),
        };
        result.map_err(|e| self.error(e))?;
        Ok(self.take())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use flate2::Compression;
    use hyper::header::HeaderValue;

    fn gzip(data: &[u8]) -> Vec<u8> {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), Compression::default());
        e.write_all(data).unwrap();
        e.finish().unwrap()
    }

    fn decode_in_pieces(coding: Coding, data: &[u8], limit: usize) -> Result<Vec<u8>, DecodeError> {
        let mut d = Decoder::new(coding, limit);
        let mut out = Vec::new();
        for piece in data.chunks(7) {
            out.extend_from_slice(&d.feed(piece)?);
        }
        out.extend_from_slice(&d.finish()?);
        Ok(out)
    }

    #[test]
    fn gzip_and_both_deflate_flavours_decode_incrementally() {
        let text = b"{\"email\":\"a@example.com\"}".repeat(50);
        assert_eq!(
            decode_in_pieces(Coding::Gzip, &gzip(&text), 1 << 20).unwrap(),
            text
        );
        let mut z = flate2::write::ZlibEncoder::new(Vec::new(), Compression::default());
        z.write_all(&text).unwrap();
        assert_eq!(
            decode_in_pieces(Coding::Deflate, &z.finish().unwrap(), 1 << 20).unwrap(),
            text
        );
        let mut raw = flate2::write::DeflateEncoder::new(Vec::new(), Compression::default());
        raw.write_all(&text).unwrap();
        assert_eq!(
            decode_in_pieces(Coding::Deflate, &raw.finish().unwrap(), 1 << 20).unwrap(),
            text
        );
    }

    #[test]
    fn bombs_and_truncation_are_errors() {
        let zeros = vec![0u8; 1 << 20];
        let bomb = gzip(&zeros);
        assert!(bomb.len() < 4096);
        assert!(matches!(
            decode_in_pieces(Coding::Gzip, &bomb, 64 * 1024),
            Err(DecodeError::TooLarge(_))
        ));
        let whole = gzip(b"hello world, hello world");
        assert!(decode_in_pieces(Coding::Gzip, &whole[..whole.len() - 4], 1024).is_err());
        assert!(decode_in_pieces(Coding::Br, b"\xff\xff\xff\xff", 1024).is_err());
    }

    #[test]
    fn streaming_limits_each_chunk_not_the_stream() {
        let mut d = Decoder::streaming(Coding::Identity, 10);
        for _ in 0..100 {
            assert_eq!(d.feed(b"0123456789").unwrap().len(), 10);
        }
        assert!(matches!(
            d.feed(b"01234567890"),
            Err(DecodeError::TooLarge(10))
        ));
    }

    #[test]
    fn content_encoding_header() {
        let mut h = HeaderMap::new();
        assert_eq!(coding(&h).unwrap(), Coding::Identity);
        h.insert(CONTENT_ENCODING, HeaderValue::from_static("GZIP"));
        assert_eq!(coding(&h).unwrap(), Coding::Gzip);
        h.insert(CONTENT_ENCODING, HeaderValue::from_static("gzip, br"));
        assert!(coding(&h).is_err(), "stacked codings are refused");
        h.insert(CONTENT_ENCODING, HeaderValue::from_static("zstd"));
        assert!(matches!(coding(&h), Err(DecodeError::Unsupported(_))));
    }
}
