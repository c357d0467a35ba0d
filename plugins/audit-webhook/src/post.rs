//! One POST through `wasi:http/outgoing-handler`: the gateway checks the
//! destination against this plugin's grants and sends it.

use std::io::{Read, Write as _};
use std::time::Duration;

use wasip2::http::outgoing_handler;
use wasip2::http::types::{
    ErrorCode, Fields, Method, OutgoingBody, OutgoingRequest, RequestOptions, Scheme,
};

use crate::target::Url;

/// Bytes of an error response kept for the message.
const ERROR_BODY_BYTES: usize = 256;

/// How one attempt ended, other than with a 2xx.
#[derive(Debug)]
pub enum Failure {
    /// The gateway refused the destination: retrying cannot help.
    Denied,
    /// The endpoint answered with this status (and the start of its body).
    Status(u16, String),
    /// No answer: connection refused, timeout, TLS, a response cut short.
    Transport(String),
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Failure::Denied => f.write_str(
                "the gateway refused the request (HTTP-request-denied): the URL is not under a \
                 destination granted to this plugin",
            ),
            Failure::Status(code, body) if body.is_empty() => write!(f, "HTTP {code}"),
            Failure::Status(code, body) => write!(f, "HTTP {code}: {body}"),
            Failure::Transport(why) => f.write_str(why),
        }
    }
}

fn transport(code: ErrorCode) -> Failure {
    match code {
        ErrorCode::HttpRequestDenied => Failure::Denied,
        other => Failure::Transport(format!("{other:?}")),
    }
}

/// POSTs `body`; `Ok` only for a 2xx answer.
pub fn post(
    url: &Url,
    headers: &[(String, Vec<u8>)],
    body: &[u8],
    timeout: Duration,
) -> Result<u16, Failure> {
    let invalid = |what: &str| Failure::Transport(format!("invalid request: {what}"));
    let fields = Fields::from_list(headers).map_err(|e| invalid(&format!("headers: {e:?}")))?;
    let request = OutgoingRequest::new(fields);
    request
        .set_method(&Method::Post)
        .map_err(|()| invalid("method"))?;
    let scheme = if url.https {
        Scheme::Https
    } else {
        Scheme::Http
    };
    request
        .set_scheme(Some(&scheme))
        .map_err(|()| invalid("scheme"))?;
    request
        .set_authority(Some(&url.authority))
        .map_err(|()| invalid("authority"))?;
    request
        .set_path_with_query(Some(&url.path_and_query))
        .map_err(|()| invalid("path"))?;
    let outgoing = request.body().map_err(|()| invalid("body"))?;

    let nanos = u64::try_from(timeout.as_nanos()).unwrap_or(u64::MAX);
    let options = RequestOptions::new();
    // A host may not support some timeouts; the gateway bounds the whole
    // call by its deadline anyway.
    let _ = options.set_connect_timeout(Some(nanos));
    let _ = options.set_first_byte_timeout(Some(nanos));
    let _ = options.set_between_bytes_timeout(Some(nanos));

    // Sent first, written after: the body streams to the connection the
    // host opened, so writing it before would fill the stream's buffer and
    // wait forever.
    let pending = outgoing_handler::handle(request, Some(options)).map_err(transport)?;
    {
        let mut stream = outgoing.write().map_err(|()| invalid("body stream"))?;
        stream
            .write_all(body)
            .map_err(|e| Failure::Transport(format!("sending the body: {e}")))?;
        stream
            .blocking_flush()
            .map_err(|e| Failure::Transport(format!("sending the body: {e:?}")))?;
    }
    OutgoingBody::finish(outgoing, None).map_err(transport)?;

    pending.subscribe().block();
    let response = match pending.get() {
        Some(Ok(Ok(response))) => response,
        Some(Ok(Err(code))) => return Err(transport(code)),
        Some(Err(())) | None => return Err(Failure::Transport("no response".into())),
    };
    let status = response.status();
    if (200..300).contains(&status) {
        return Ok(status);
    }
    Err(Failure::Status(status, error_body(&response)))
}

/// The start of an error response's body, as text on one line.
fn error_body(response: &wasip2::http::types::IncomingResponse) -> String {
    let Ok(body) = response.consume() else {
        return String::new();
    };
    let Ok(stream) = body.stream() else {
        return String::new();
    };
    let mut bytes = Vec::new();
    let _ = stream.take(ERROR_BODY_BYTES as u64).read_to_end(&mut bytes);
    String::from_utf8_lossy(&bytes)
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
}
