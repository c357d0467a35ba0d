//! Responses on a connection with maskers: nothing reaches the agent that
//! the maskers have not seen.
//!
//! * A body is decoded (gzip, deflate, br), buffered up to the connection's
//!   limit, masked whole and sent with its new `Content-Length`, without
//!   `Content-Encoding` or a now-wrong `ETag`.
//! * An event stream (`text/event-stream`) is masked event by event, and
//!   newline-delimited JSON line by line, as they arrive.
//! * Header values go through the maskers too ([`super::response_headers`]).
//! * Whatever cannot be masked (an unknown coding, a body or event over the
//!   limit, a failing masker) is refused with 502 before the head is sent,
//!   or ends the stream with an error after it; it is never passed on.
//! * The connection's credential, wherever the masked body or event holds
//!   it, is replaced ([`super::secrets`]).

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::BodyExt;
use hyper::StatusCode;
use hyper::body::Incoming;
use hyper::header::{self, HeaderMap, HeaderValue};
use hyper::http::response::Parts;
use serde::de::IgnoredAny;

use crate::plugins::bindings::types::Session;
use crate::plugins::{Chain, Refusal};

use super::body::{self, Body, BoxError};
use super::decode::{self, Coding, Decoder};
use super::events::{self, LineSplitter, SseSplitter};
use super::problem::Problem;
use super::record::{self, ExchangeRecord, Masking};
use super::secrets::Needles;

pub struct MaskContext {
    pub chain: Chain,
    pub session: Session,
    /// Largest decoded body, or event, buffered.
    pub limit: usize,
    /// Time to read a body that is buffered whole.
    pub deadline: Duration,
    /// The connection's credential, replaced wherever the masked body (or
    /// unit of a stream) holds it.
    pub secrets: Option<Arc<Needles>>,
}

impl MaskContext {
    /// What the maskers returned, without the connection's credential: the
    /// bytes the agent gets, so checked last.
    fn without_credential(&self, masked: Vec<u8>) -> Vec<u8> {
        match self.secrets.as_ref().and_then(|s| s.replace(&masked)) {
            Some(clean) => {
                tracing::warn!(
                    connection = %self.session.connection,
                    "the upstream's response held the connection's credential; replaced"
                );
                clean
            }
            None => masked,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Framing {
    Whole,
    Events,
    Lines,
}

fn media_type(headers: &HeaderMap) -> String {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string()
}

/// Whether a Content-Type value is a list (a comma outside quotes), which
/// HTTP reads as that many header lines (RFC 9110, 5.3).
pub(super) fn lists_types(value: &[u8]) -> bool {
    let mut quoted = false;
    let mut escaped = false;
    for &b in value {
        match b {
            _ if escaped => escaped = false,
            b'\\' if quoted => escaped = true,
            b'"' => quoted = !quoted,
            b',' if !quoted => return true,
            _ => {}
        }
    }
    false
}

fn framing(content_type: &str) -> Framing {
    match super::headers::media_type(content_type).as_str() {
        "text/event-stream" => Framing::Events,
        "application/x-ndjson" | "application/jsonl" | "application/jsonlines" => Framing::Lines,
        _ => Framing::Whole,
    }
}

fn unmaskable(detail: String) -> Problem {
    Problem::upstream(StatusCode::BAD_GATEWAY, "unmaskable_response", detail)
}

fn masking_failed(refusal: &Refusal) -> Problem {
    Problem::upstream(
        StatusCode::BAD_GATEWAY,
        "masking_failed",
        refusal.to_string(),
    )
    .with("plugin", refusal.plugin.clone())
}

/// The coding of a response the maskers can read, or why none can: a
/// coding the gateway cannot undo, more than one Content-Type (maskers
/// are told one type; a client may read the body as another: Fetch takes
/// the last of several), or a part of a representation (Content-Range:
/// a value may be cut at either edge, and the range would no longer
/// describe the masked bytes; the gateway drops the agent's Range, so only
/// an upstream that sends one unasked gets here). A HEAD is judged as the
/// GET would be.
pub fn maskable(headers: &hyper::HeaderMap) -> Result<Coding, Problem> {
    if headers.contains_key(header::CONTENT_RANGE) {
        return Err(unmaskable(
            "the response is part of a representation (Content-Range): a value may be cut at \
             its edges"
                .into(),
        ));
    }
    let coding = decode::coding(headers).map_err(|e| unmaskable(e.to_string()))?;
    let types = headers.get_all(header::CONTENT_TYPE);
    if types.iter().count() > 1 || types.iter().any(|v| lists_types(v.as_bytes())) {
        return Err(unmaskable(
            "the response names more than one Content-Type, so what its body is is ambiguous"
                .into(),
        ));
    }
    Ok(coding)
}

/// The headers that describe the upstream's body, not the masked one the
/// agent gets: its coding (the masked body is sent decoded), length,
/// validators and digests, and the ranges of a body that will differ. A
/// masked response without a body (HEAD, 304) loses them too, so that it
/// says what a GET would.
pub fn upstream_representation_removed(h: &mut hyper::HeaderMap) {
    for name in [
        header::CONTENT_ENCODING,
        header::CONTENT_LENGTH,
        header::ETAG,
        header::ACCEPT_RANGES,
    ] {
        h.remove(name);
    }
    h.remove("content-md5");
    h.remove("digest");
}

/// Masks an upstream response; `parts` are adjusted to the body returned.
pub async fn mask(
    ctx: MaskContext,
    parts: &mut Parts,
    upstream: Incoming,
    record: &mut ExchangeRecord,
) -> Result<Body, Problem> {
    let coding = maskable(&parts.headers)?;
    let content_type = media_type(&parts.headers);
    upstream_representation_removed(&mut parts.headers);
    match framing(&content_type) {
        Framing::Whole => {
            let bytes = whole(&ctx, coding, &content_type, upstream, record).await?;
            parts
                .headers
                .insert(header::CONTENT_LENGTH, HeaderValue::from(bytes.len()));
            record.response_body = Some(record::capture(&bytes));
            Ok(body::full(bytes))
        }
        framing => Ok(stream(ctx, coding, framing, upstream)),
    }
}

async fn whole(
    ctx: &MaskContext,
    coding: Coding,
    content_type: &str,
    mut upstream: Incoming,
    record: &mut ExchangeRecord,
) -> Result<Bytes, Problem> {
    let too_large = || {
        unmaskable(format!(
            "the response is larger than the {} bytes the gateway buffers for masking",
            ctx.limit
        ))
    };
    if coding == Coding::Identity
        && hyper::body::Body::size_hint(&upstream)
            .exact()
            .is_some_and(|n| n > ctx.limit as u64)
    {
        return Err(too_large());
    }
    let mut decoder = Decoder::new(coding, ctx.limit);
    let read = async {
        let mut decoded = Vec::new();
        while let Some(frame) = upstream.frame().await {
            let frame = frame.map_err(|e| unmaskable(format!("reading the response: {e}")))?;
            if let Ok(data) = frame.into_data() {
                decoded
                    .extend_from_slice(&decoder.feed(&data).map_err(|e| decode_problem(e, ctx))?);
            }
        }
        decoded.extend_from_slice(&decoder.finish().map_err(|e| decode_problem(e, ctx))?);
        Ok::<_, Problem>(decoded)
    };
    let decoded = tokio::time::timeout(ctx.deadline, read)
        .await
        .map_err(|_| {
            Problem::upstream(
                StatusCode::GATEWAY_TIMEOUT,
                "upstream_timeout",
                format!(
                    "the upstream did not finish its response within {} ms",
                    ctx.deadline.as_millis()
                ),
            )
        })??;
    if decoded.len() > ctx.limit {
        return Err(too_large());
    }
    if let Some(why) = unreadable(content_type, &decoded) {
        return Err(unmaskable(format!(
            "{why}: maskers read UTF-8 text, so it is not sent"
        )));
    }
    let (masked, report) = ctx
        .chain
        .mask_body(&ctx.session, content_type, decoded)
        .await
        .map_err(|r| masking_failed(&r))?;
    Masking::add(&mut record.masking, Masking::from(&report));
    Ok(Bytes::from(ctx.without_credential(masked)))
}

/// Why maskers could not read a body, if they could not: bytes that are not
/// UTF-8 (an image, msgpack, protobuf, an archive), NUL bytes (UTF-16 text
/// is valid UTF-8 byte for byte, with a NUL beside each ASCII letter, and
/// no detector would match it), or a declared charset other than UTF-8 or
/// ASCII. An agent chooses the format with `Accept` and `Accept-Charset`,
/// so anything maskers cannot read is withheld rather than passed through.
fn unreadable(content_type: &str, body: &[u8]) -> Option<String> {
    match super::headers::charset(content_type) {
        Err(why) => return Some(format!("the response's Content-Type {why}")),
        Ok(Some(charset)) if !super::headers::is_utf8(&charset) => {
            return Some(format!("the response's charset is {charset}"));
        }
        Ok(_) => {}
    }
    let media_type = super::headers::media_type(content_type);
    if (media_type.starts_with("multipart/") || media_type.starts_with("message/"))
        && let Some(why) = unreadable_parts(body)
    {
        return Some(why);
    }
    readable_text(body)
        .err()
        .map(|why| format!("the response body {why}"))
}

/// A multipart body whose parts maskers cannot read as sent: a part in
/// base64 or quoted-printable (`ann=40example.com`), or in another
/// charset, which clients (Python's `email`) decode. Every line that reads
/// as a part header counts, wherever it is: reading one too many costs a
/// refusal, one too few an address.
fn unreadable_parts(body: &[u8]) -> Option<String> {
    // Python's `email` ends a line at a bare CR too.
    for line in body.split(|&b| b == b'\n' || b == b'\r') {
        let Ok(line) = std::str::from_utf8(line) else {
            continue;
        };
        let Some((name, value)) = line.split_once(':') else {
            continue;
        };
        let name = name.trim();
        let value = value.trim();
        if name.eq_ignore_ascii_case("content-transfer-encoding")
            && !["7bit", "8bit", "binary"]
                .iter()
                .any(|ok| value.eq_ignore_ascii_case(ok))
        {
            return Some(format!("a part of the response is encoded ({value})"));
        }
        if name.eq_ignore_ascii_case("content-type") {
            match super::headers::charset(value) {
                Err(why) => return Some(format!("a part's Content-Type {why}")),
                Ok(Some(c)) if !super::headers::is_utf8(&c) => {
                    return Some(format!("a part of the response is in {c}"));
                }
                Ok(_) => {}
            }
        }
    }
    None
}

/// Bytes as text maskers can read: UTF-8 without NUL bytes (see
/// [`unreadable`]), or what is wrong with them.
pub(super) fn readable_text(bytes: &[u8]) -> Result<&str, &'static str> {
    let text = std::str::from_utf8(bytes).map_err(|_| "is not UTF-8 text")?;
    if text.contains('\0') {
        return Err("holds NUL bytes");
    }
    Ok(text)
}

fn decode_problem(e: decode::DecodeError, ctx: &MaskContext) -> Problem {
    match e {
        decode::DecodeError::TooLarge(_) => unmaskable(format!(
            "the decoded response is larger than the {} bytes the gateway buffers for masking",
            ctx.limit
        )),
        other => unmaskable(other.to_string()),
    }
}

#[derive(Debug, thiserror::Error)]
enum StreamError {
    #[error("reading the upstream stream: {0}")]
    Read(BoxError),
    #[error(transparent)]
    Decode(#[from] decode::DecodeError),
    #[error(transparent)]
    TooLong(#[from] events::TooLong),
    #[error("{0}")]
    Masking(String),
    #[error("a masker returned a line break inside a JSON line")]
    BrokenLine,
}

/// Masks a stream unit by unit in a task feeding the response body.
fn stream(ctx: MaskContext, coding: Coding, framing: Framing, upstream: Incoming) -> Body {
    let (tx, body) = body::channel(8);
    tokio::spawn(async move {
        let result = pump(&ctx, coding, framing, upstream, &tx).await;
        if let Err(e) = result {
            tracing::warn!(connection = %ctx.session.connection, "masked stream ended: {e}");
            settle(&tx).await;
            let _ = tx.send(Err(BoxError::from(e))).await;
        }
    });
    body.boxed_unsync()
}

type Tx = tokio::sync::mpsc::Sender<Result<Bytes, BoxError>>;

async fn pump(
    ctx: &MaskContext,
    coding: Coding,
    framing: Framing,
    mut upstream: Incoming,
    tx: &Tx,
) -> Result<(), StreamError> {
    let mut decoder = Decoder::streaming(coding, ctx.limit);
    let mut sse = SseSplitter::new(ctx.limit);
    let mut lines = LineSplitter::new(ctx.limit);
    loop {
        let (decoded, ended) = match upstream.frame().await {
            Some(frame) => match frame.map_err(|e| StreamError::Read(e.into()))?.into_data() {
                Ok(data) => (decoder.feed(&data)?, false),
                Err(_) => continue,
            },
            None => (decoder.finish()?, true),
        };
        let mut out = Vec::new();
        // Units masked before one that cannot be are still sent: the
        // stream ends at the failing unit, wherever the upstream's reads
        // happened to split the stream.
        let mut failed = None;
        match framing {
            Framing::Events => {
                for event in sse.push(&decoded)? {
                    match mask_event(ctx, event).await {
                        Ok(masked) => out.extend_from_slice(&masked),
                        Err(e) => {
                            failed = Some(e);
                            break;
                        }
                    }
                }
            }
            _ => {
                let mut units = lines.push(&decoded)?;
                if ended {
                    units.extend(lines.finish());
                }
                for line in units {
                    match mask_line(ctx, line).await {
                        Ok(masked) => out.extend_from_slice(&masked),
                        Err(e) => {
                            failed = Some(e);
                            break;
                        }
                    }
                }
            }
        }
        if !out.is_empty() && tx.send(Ok(Bytes::from(out))).await.is_err() {
            // The agent is gone.
            return Ok(());
        }
        if let Some(e) = failed {
            return Err(e);
        }
        if ended {
            // An unfinished last event is dropped, as an event-stream
            // client would drop it.
            return Ok(());
        }
    }
}

/// Gives what was sent time to leave before the error that follows it:
/// hyper drops the data it holds when a body fails (an HTTP/2 reset, an
/// HTTP/1.1 close), so an error right behind a chunk can take the chunk
/// with it. Waits until the chunks are taken, then briefly for the write;
/// a client that stops reading bounds it.
async fn settle(tx: &Tx) {
    for _ in 0..100 {
        if tx.capacity() == tx.max_capacity() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    tokio::time::sleep(Duration::from_millis(20)).await;
}

async fn mask_text(
    ctx: &MaskContext,
    data: Vec<u8>,
    content_type: &str,
) -> Result<Vec<u8>, StreamError> {
    ctx.chain
        .mask_body(&ctx.session, content_type, data)
        .await
        .map(|(body, _)| body)
        .map_err(|r| StreamError::Masking(r.to_string()))
}

fn json_or_text(data: &[u8]) -> &'static str {
    if serde_json::from_slice::<IgnoredAny>(data).is_ok() {
        "application/json"
    } else {
        "text/plain"
    }
}

/// A unit of a stream maskers cannot read ends the stream (see
/// [`unreadable`]; an event stream is UTF-8 by definition).
fn readable_unit(unit: &[u8]) -> Result<(), StreamError> {
    match unreadable("", unit) {
        Some(why) => Err(StreamError::Masking(format!("{why} (in a streamed unit)"))),
        None => Ok(()),
    }
}

/// An event's data, and the values of its `id` and `event` lines (which
/// clients read as well), go through the maskers.
async fn mask_event(ctx: &MaskContext, event: events::Event) -> Result<Vec<u8>, StreamError> {
    let mut parsed = events::parse_event(event);
    let masked = match &parsed.data {
        Some(data) if !data.is_empty() => {
            readable_unit(data)?;
            Some(mask_text(ctx, data.clone(), json_or_text(data)).await?)
        }
        other => other.clone(),
    };
    let values = parsed.values();
    if !values.is_empty() {
        let texts = values
            .iter()
            .map(|v| readable_text(v))
            .collect::<Result<Vec<&str>, _>>()
            .map_err(|why| StreamError::Masking(format!("an event's id or event {why}")))?;
        let (masked_values, _) = ctx
            .chain
            .mask_texts(&ctx.session, &texts)
            .await
            .map_err(|e| StreamError::Masking(e.to_string()))?;
        let masked_values: Vec<&[u8]> = masked_values.iter().map(|v| v.as_bytes()).collect();
        if !parsed.set_values(&masked_values) {
            return Err(StreamError::Masking(
                "a masker returned a line break in an event's id or event".into(),
            ));
        }
    }
    Ok(ctx.without_credential(events::write_event(&parsed, masked.as_deref())))
}

async fn mask_line(ctx: &MaskContext, line: Vec<u8>) -> Result<Vec<u8>, StreamError> {
    if line.iter().all(u8::is_ascii_whitespace) {
        let mut out = line;
        out.push(b'\n');
        return Ok(out);
    }
    readable_unit(&line)?;
    let masked = mask_text(ctx, line, "application/json").await?;
    let mut masked = ctx.without_credential(masked);
    if masked.contains(&b'\n') {
        return Err(StreamError::BrokenLine);
    }
    masked.push(b'\n');
    Ok(masked)
}

#[cfg(test)]
mod tests {
    #[test]
    fn bodies_maskers_cannot_read_are_named() {
        assert_eq!(unreadable("application/json", br#"{"a":"x@y.z"}"#), None);
        assert_eq!(unreadable("text/plain; charset=UTF-8", b"hi"), None);
        assert!(unreadable("application/octet-stream", b"\xff\x00ann@example.com").is_some());
        assert!(unreadable("application/json; charset=utf-16", b"{}").is_some());
        // Readers disagree on which charset these declare.
        assert!(unreadable("text/plain; charset=utf-8; charset=utf-7", b"hi").is_some());
        assert!(unreadable("text/plain; charset*=utf-8''utf-7", b"hi").is_some());
        assert!(unreadable("text/plain; CHARSET*0=utf-7", b"hi").is_some());
        assert_eq!(
            unreadable("text/plain; charset=utf-8; charset=\"UTF-8\"", b"hi"),
            None
        );
        assert!(unreadable("text/plain", "a\0n\0n\0".as_bytes()).is_some());
        let mixed = "multipart/mixed; boundary=b";
        let part =
            |headers: &str| format!("--b\r\n{headers}\r\n\r\nYW5uQGV4YW1wbGUuY29t\r\n--b--\r\n");
        for headers in [
            "Content-Transfer-Encoding: base64",
            "content-transfer-encoding:QUOTED-PRINTABLE",
            "Content-Type: text/plain; charset=utf-7",
        ] {
            assert!(
                unreadable(mixed, part(headers).as_bytes()).is_some(),
                "{headers}"
            );
            let bare_cr = part(headers).replace("\r\n", "\r");
            assert!(
                unreadable(mixed, bare_cr.as_bytes()).is_some(),
                "{headers} (CR)"
            );
        }
        let rfc822 = "Content-Transfer-Encoding: base64\r\n\r\nYW5uQGV4YW1wbGUuY29t\r\n";
        assert!(unreadable("message/rfc822", rfc822.as_bytes()).is_some());
        let plain =
            part("Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit");
        assert_eq!(unreadable(mixed, plain.as_bytes()), None);
    }

    use super::*;

    #[test]
    fn content_type_lists_are_found_outside_quotes() {
        assert!(lists_types(b"application/octet-stream, application/json"));
        assert!(lists_types(b"text/plain,application/json"));
        assert!(!lists_types(b"application/json; charset=utf-8"));
        assert!(!lists_types(br#"multipart/mixed; boundary="a,b""#));
        assert!(!lists_types(br#"multipart/mixed; boundary="a\",b""#));
    }

    #[test]
    fn framing_by_media_type() {
        assert_eq!(framing("text/event-stream; charset=utf-8"), Framing::Events);
        assert_eq!(framing("application/x-ndjson"), Framing::Lines);
        assert_eq!(framing("application/json"), Framing::Whole);
        assert_eq!(framing(""), Framing::Whole);
        assert_eq!(json_or_text(br#"{"a":1}"#), "application/json");
        assert_eq!(json_or_text(b"hello a@b.c"), "text/plain");
    }
}
