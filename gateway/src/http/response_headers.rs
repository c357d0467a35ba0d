//! Response headers on a connection with maskers. An upstream can put data
//! in a header as easily as in the body (`Location: /users/ann@example.com`,
//! `X-Owner`, `Content-Disposition: attachment; filename="ann@…"`,
//! `Set-Cookie`), so every header value the agent receives goes through the
//! maskers, except those whose syntax holds no free text (framing, dates,
//! caching directives, media types) and `Server`, which names the upstream's
//! software.
//!
//! The values are shown as one `text/plain` text, one value per line (a
//! header value cannot hold a line break). A masker that changes the number
//! of lines, or returns a value a header cannot carry, fails the response:
//! which value a line belonged to would be a guess.

use hyper::StatusCode;
use hyper::header::{HeaderMap, HeaderName, HeaderValue};

use crate::plugins::Chain;
use crate::plugins::bindings::types::Session;

use super::problem::Problem;
use super::record::Masking;

/// Headers whose values maskers do not see.
const NOT_SHOWN: &[&str] = &[
    "accept-ranges",
    "access-control-allow-credentials",
    "access-control-allow-methods",
    "access-control-max-age",
    "age",
    "cache-control",
    "connection",
    "content-encoding",
    "content-language",
    "content-length",
    "content-type",
    "date",
    "etag",
    "expires",
    "keep-alive",
    "last-modified",
    "pragma",
    "retry-after",
    "server",
    "strict-transport-security",
    "transfer-encoding",
    "vary",
    "x-content-type-options",
    "x-frame-options",
];

fn shown(name: &HeaderName) -> bool {
    !NOT_SHOWN.contains(&name.as_str())
}

fn failed(detail: impl Into<String>) -> Problem {
    Problem::upstream(StatusCode::BAD_GATEWAY, "masking_failed", detail)
}

/// Masks the values of `headers` maskers see, in place; returns what the
/// maskers reported, `None` when no header was shown.
pub async fn mask(
    chain: &Chain,
    session: &Session,
    headers: &mut HeaderMap,
) -> Result<Option<Masking>, Problem> {
    let shown: Vec<(HeaderName, HeaderValue)> = headers
        .iter()
        .filter(|(name, _)| shown(name))
        .map(|(n, v)| (n.clone(), v.clone()))
        .collect();
    if shown.is_empty() {
        return Ok(None);
    }
    let mut text = Vec::new();
    for (i, (name, value)) in shown.iter().enumerate() {
        let bytes = value.as_bytes();
        if std::str::from_utf8(bytes).is_err() || bytes.contains(&0) {
            return Err(Problem::upstream(
                StatusCode::BAD_GATEWAY,
                "unmaskable_response",
                format!(
                    "the value of response header {name} is not UTF-8 text: maskers read UTF-8 \
                     text, so it is not sent"
                ),
            ));
        }
        if i > 0 {
            text.push(b'\n');
        }
        text.extend_from_slice(bytes);
    }
    let (masked, report) = chain
        .mask_body(session, "text/plain", text)
        .await
        .map_err(|r| failed(r.to_string()).with("plugin", r.plugin.clone()))?;
    let lines: Vec<&[u8]> = masked.split(|b| *b == b'\n').collect();
    if lines.len() != shown.len() {
        return Err(failed(
            "a masker changed the number of lines of the response's header values",
        ));
    }
    let mut values = Vec::with_capacity(lines.len());
    for ((name, _), line) in shown.iter().zip(lines) {
        let value = HeaderValue::from_bytes(line).map_err(|_| {
            failed(format!(
                "a masker returned a value response header {name} cannot carry"
            ))
        })?;
        values.push((name, value));
    }
    // Every value of a shown name is replaced, in its original order.
    for (name, _) in &shown {
        headers.remove(name);
    }
    for (name, value) in values {
        headers.append(name.clone(), value);
    }
    Ok(Some(Masking {
        replaced: report.cells_changed,
        detections: report
            .detections
            .iter()
            .map(|d| (d.entity.clone(), d.count))
            .collect(),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn free_text_headers_are_shown_and_framing_is_not() {
        for name in [
            "location",
            "x-owner",
            "set-cookie",
            "link",
            "content-disposition",
        ] {
            assert!(shown(&HeaderName::from_static(name)), "{name}");
        }
        for name in ["content-type", "content-length", "date", "server", "vary"] {
            assert!(!shown(&HeaderName::from_static(name)), "{name}");
        }
    }
}
