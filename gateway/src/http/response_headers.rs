//! Response headers on a connection with maskers. An upstream can put data
//! in a header as easily as in the body (`Location: /users/ann@example.com`,
//! `X-Owner`, `Content-Disposition: attachment; filename="ann@…"`,
//! `Set-Cookie`), so every header value the agent receives goes through the
//! maskers, except those whose syntax holds no free text (framing, dates,
//! caching directives, media types) and `Server`, which names the upstream's
//! software.
//!
//! The values are shown together ([`Chain::mask_texts`]). A masker that
//! changes their number, or returns a value a header cannot carry, fails
//! the response: which value a text belonged to would be a guess.

use hyper::StatusCode;
use hyper::header::{HeaderMap, HeaderName, HeaderValue};

use crate::plugins::bindings::types::Session;
use crate::plugins::{Chain, TextsError};

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

/// Masks the values of `headers` maskers see, in place and in order;
/// returns what the maskers reported, `None` when no header was shown.
pub async fn mask(
    chain: &Chain,
    session: &Session,
    headers: &mut HeaderMap,
) -> Result<Option<Masking>, Problem> {
    let mut texts = Vec::new();
    for (name, value) in headers.iter().filter(|(n, _)| shown(n)) {
        let text = super::masking::readable_text(value.as_bytes()).map_err(|why| {
            Problem::upstream(
                StatusCode::BAD_GATEWAY,
                "unmaskable_response",
                format!(
                    "the value of response header {name} {why}: maskers read UTF-8 text, \
                     so it is not sent"
                ),
            )
        })?;
        texts.push(text);
    }
    if texts.is_empty() {
        return Ok(None);
    }
    let (masked, report) = chain.mask_texts(session, &texts).await.map_err(|e| {
        let problem = failed(e.to_string());
        match e {
            TextsError::Masker(r) => problem.with("plugin", r.plugin),
            TextsError::Shape => problem,
        }
    })?;
    // `mask_texts` returns one text for each it was given, and the map is
    // walked in the same order.
    for ((name, value), text) in headers.iter_mut().filter(|(n, _)| shown(n)).zip(masked) {
        *value = HeaderValue::from_str(&text).map_err(|_| {
            failed(format!(
                "a masker returned a value response header {name} cannot carry"
            ))
        })?;
    }
    Ok(Some(Masking::from(&report)))
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
