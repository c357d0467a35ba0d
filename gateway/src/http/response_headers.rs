//! Response headers on a connection with maskers. An upstream can put data
//! in a header as easily as in the body (`Location: /users/ann@example.com`,
//! `X-Owner`, `Content-Disposition: attachment; filename="ann@…"`,
//! `Set-Cookie`), so every header value the agent receives goes through the
//! maskers, except framing and the headers whose value, checked here, is of
//! a syntax that holds no free text (an HTTP date, a number, a bare media
//! type, a short list of tokens). Anything else in those headers is shown
//! too: an `ETag` or a media type's parameters (`text/csv;
//! name="ann@…"`) are the upstream's free text.
//!
//! A name holds data too (`X-SSN-123-45-6789: 1`): a name of letters and
//! dashes alone holds none of what maskers find, any other is shown with
//! the values, and a masker that changes one fails the response, since a
//! header cannot be renamed into the masker's text. Refusals never repeat
//! a shown name.
//!
//! The texts are shown together ([`Chain::mask_texts`]). A masker that
//! changes their number, or returns a value a header cannot carry, fails
//! the response: which value a text belonged to would be a guess.

use hyper::StatusCode;
use hyper::header::{HeaderMap, HeaderName, HeaderValue};

use crate::plugins::bindings::types::Session;
use crate::plugins::{Chain, TextsError};

use super::problem::Problem;
use super::record::Masking;

/// Framing: its values are the gateway's and hyper's to check.
const FRAMING: &[&str] = &[
    "connection",
    "content-encoding",
    "content-length",
    "keep-alive",
    "transfer-encoding",
];

/// Headers of dates (or a delay in seconds).
const DATES: &[&str] = &["date", "expires", "last-modified", "retry-after"];

/// Headers of a number of seconds.
const NUMBERS: &[&str] = &["age", "access-control-max-age"];

/// Headers of directives or product tokens.
const TOKENS: &[&str] = &[
    "accept-ranges",
    "access-control-allow-credentials",
    "access-control-allow-methods",
    "cache-control",
    "content-language",
    "pragma",
    "server",
    "strict-transport-security",
    "vary",
    "x-content-type-options",
    "x-frame-options",
];

fn shown(name: &HeaderName, value: &HeaderValue) -> bool {
    let name = name.as_str();
    let v = value.as_bytes();
    if FRAMING.contains(&name) {
        false
    } else if DATES.contains(&name) {
        !(http_date(v) || digits(v) || v == b"-1")
    } else if NUMBERS.contains(&name) {
        !digits(v)
    } else if name == "content-type" {
        !bare_media_type(v)
    } else if TOKENS.contains(&name) {
        !short_tokens(v)
    } else {
        true
    }
}

/// Whether a header's name goes to the maskers: anything but letters and
/// dashes (header names are lowercase here).
fn name_shown(name: &HeaderName) -> bool {
    !name
        .as_str()
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b == b'-')
}

/// How a refusal names a header: not by a name the maskers see.
fn label(name: &HeaderName) -> &str {
    if name_shown(name) {
        "(its name is masked)"
    } else {
        name.as_str()
    }
}

/// A count of seconds: no leading zero (`0612345678` reads as a phone).
fn digits(v: &[u8]) -> bool {
    v == b"0"
        || (!v.is_empty() && v.len() <= 10 && v[0] != b'0' && v.iter().all(u8::is_ascii_digit))
}

/// IMF-fixdate, `Sun, 06 Nov 1994 08:49:37 GMT`, as servers send dates.
fn http_date(v: &[u8]) -> bool {
    const SHAPE: &[u8] = b"Aaa, 00 Aaa 0000 00:00:00 GMT";
    v.len() == SHAPE.len()
        && v.iter().zip(SHAPE).all(|(c, s)| match s {
            b'A' | b'a' => c.is_ascii_alphabetic(),
            b'0' => c.is_ascii_digit(),
            _ => c == s,
        })
}

/// `type/subtype`, with at most a `charset` parameter.
fn bare_media_type(v: &[u8]) -> bool {
    let Ok(v) = std::str::from_utf8(v) else {
        return false;
    };
    let mut parts = v.split(';');
    let mime = parts.next().unwrap_or_default().trim();
    let token = |s: &str| {
        !s.is_empty()
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"!#$&^_.+-".contains(&b))
    };
    let media = mime
        .split_once('/')
        .is_some_and(|(t, s)| token(t) && token(s));
    let params_ok = parts.all(|p| {
        p.trim()
            .split_once('=')
            .is_some_and(|(k, v)| k.trim().eq_ignore_ascii_case("charset") && token(v.trim()))
    });
    media && params_ok
}

/// Directives and product names: letters, few digits, no quoted strings,
/// addresses or escapes. Anything longer or richer is shown.
fn short_tokens(v: &[u8]) -> bool {
    // Three dots between digits may be an IPv4 address (`Server: 10.0.0.5`).
    let dotted = v
        .windows(3)
        .filter(|w| w[0].is_ascii_digit() && w[1] == b'.' && w[2].is_ascii_digit())
        .count();
    v.len() <= 128
        && dotted < 3
        && v.iter().filter(|b| b.is_ascii_digit()).count() <= 6
        && v.iter()
            .all(|b| b.is_ascii_alphanumeric() || b" ,;=._/*+-".contains(b))
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
    for (name, value) in headers.iter().filter(|(n, v)| shown(n, v)) {
        let text = super::masking::readable_text(value.as_bytes()).map_err(|why| {
            Problem::upstream(
                StatusCode::BAD_GATEWAY,
                "unmaskable_response",
                format!(
                    "the value of response header {} {why}: maskers read UTF-8 text, \
                     so it is not sent",
                    label(name)
                ),
            )
        })?;
        texts.push(text);
    }
    let values = texts.len();
    // Names are ASCII: `HeaderName` holds nothing else.
    let named: Vec<&HeaderName> = headers.keys().filter(|n| name_shown(n)).collect();
    texts.extend(named.iter().map(|n| n.as_str()));
    if texts.is_empty() {
        return Ok(None);
    }
    let (masked, report) = chain.mask_texts(session, &texts).await.map_err(|e| {
        let problem = failed(e.to_string());
        match e {
            TextsError::Masker(r) => problem.with("plugin", r.plugin),
            TextsError::Shape { .. } => problem,
        }
    })?;
    if named
        .iter()
        .zip(&masked[values..])
        .any(|(name, text)| name.as_str() != text)
    {
        return Err(failed(
            "a masker changed the name of a response header, which cannot be renamed",
        ));
    }
    // `mask_texts` returns one text for each it was given, and the map is
    // walked in the same order; each value is judged before it is replaced.
    for ((name, value), text) in headers.iter_mut().filter(|(n, v)| shown(n, v)).zip(masked) {
        *value = HeaderValue::from_str(&text).map_err(|_| {
            failed(format!(
                "a masker returned a value response header {} cannot carry",
                label(name)
            ))
        })?;
    }
    Ok(Some(Masking::from(&report)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn is_shown(name: &'static str, value: &'static str) -> bool {
        shown(
            &HeaderName::from_static(name),
            &HeaderValue::from_static(value),
        )
    }

    #[test]
    fn free_text_is_shown_and_framing_dates_numbers_and_tokens_are_not() {
        for name in [
            "location",
            "x-owner",
            "set-cookie",
            "link",
            "content-disposition",
            "etag",
        ] {
            assert!(is_shown(name, "x"), "{name}");
        }
        for (name, value) in [
            ("content-type", "application/json"),
            ("content-type", "text/html; charset=utf-8"),
            ("content-length", "42"),
            ("transfer-encoding", "chunked"),
            ("date", "Sun, 06 Nov 1994 08:49:37 GMT"),
            ("expires", "0"),
            ("age", "120"),
            ("server", "nginx/1.22.1"),
            ("vary", "Accept-Encoding, Origin"),
            ("cache-control", "no-cache, max-age=0"),
        ] {
            assert!(!is_shown(name, value), "{name}: {value}");
        }
    }

    #[test]
    fn free_text_in_syntax_bound_headers_is_shown() {
        for (name, value) in [
            ("content-type", "text/csv; name=\"ann@example.com.csv\""),
            ("content-type", "ann@example.com"),
            ("date", "ann@example.com"),
            (
                "last-modified",
                "Sun, 06 Nov 1994 08:49:37 GMT ann@example.com",
            ),
            ("age", "555-0100"),
            ("expires", "0612345678"),
            ("server", "10.0.0.5"),
            ("server", "backend (ann@example.com)"),
            ("server", "support 415 555 2671"),
            ("vary", "X-Owner-ann%40example.com"),
            ("cache-control", "private=\"ann@example.com\""),
        ] {
            assert!(is_shown(name, value), "{name}: {value}");
        }
    }
}
