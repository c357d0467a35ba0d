//! `/<connection>/<path>`: which connection a request is for, and the path
//! below it in one canonical form.
//!
//! Guardrails match on the path, so the path they see must be the path the
//! upstream acts on. The gateway therefore normalises it (dot segments
//! resolved, repeated slashes collapsed, percent-escapes of unreserved
//! characters decoded, the others upper-cased) and forwards exactly the
//! normalised form: `/admin/./x`, `//admin/x` and `/%61dmin/x` all reach
//! plugins and upstream as `/admin/x`. A path that climbs above the
//! connection (`/c/../other`) or carries a malformed escape is refused, and
//! so is a path that upstreams read in more than one way: an encoded slash
//! or backslash (`%2F`, `%5C`: decoded before routing by some frameworks,
//! not by others), a backslash (a `/` to some servers), a `;` (path
//! parameters, which Java servlet containers strip before routing, so that
//! `/admin;x/users` and `/..;/admin` are `/admin/users` and `/admin` to
//! them), bytes outside ASCII, and escapes of what upstreams may read as
//! something else (see [`check_escapes`]).

use unicode_normalization::UnicodeNormalization;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    pub connection: String,
    /// The path below the connection, starting with `/`.
    pub path: String,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RouteError {
    #[error("the path names no connection: use /<connection>/<path>")]
    NoConnection,
    #[error("the path has a malformed percent-escape")]
    BadEscape,
    #[error("the path climbs above its connection with `..`")]
    Escapes,
    #[error("the path must start with `/`")]
    NotOrigin,
    #[error("the path {0}, which upstreams read in different ways")]
    Ambiguous(&'static str),
}

fn is_unreserved(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~')
}

pub(super) fn hex(b: u8) -> Option<u8> {
    (b as char).to_digit(16).map(|d| d as u8)
}

/// One segment in canonical escaping.
fn canonical_segment(raw: &str) -> Result<String, RouteError> {
    let bytes = raw.as_bytes();
    let mut out = String::with_capacity(raw.len());
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        if b == b'%' {
            let (Some(hi), Some(lo)) = (
                bytes.get(i + 1).copied().and_then(hex),
                bytes.get(i + 2).copied().and_then(hex),
            ) else {
                return Err(RouteError::BadEscape);
            };
            let decoded = hi << 4 | lo;
            if matches!(decoded, b'/' | b'\\') {
                return Err(RouteError::Ambiguous(
                    "has an encoded slash or backslash (%2F, %5C)",
                ));
            }
            if is_unreserved(decoded) {
                out.push(decoded as char);
            } else {
                out.push('%');
                out.push_str(&format!("{decoded:02X}"));
            }
            i += 3;
        } else {
            match b {
                b'\\' => return Err(RouteError::Ambiguous("has a backslash")),
                b';' => return Err(RouteError::Ambiguous("has a `;` (path parameters)")),
                // The URI parser admits these unescaped.
                0x80.. => {
                    return Err(RouteError::Ambiguous(
                        "has bytes outside ASCII (percent-encode them)",
                    ));
                }
                _ => out.push(b as char),
            }
            i += 1;
        }
    }
    check_escapes(&out)?;
    Ok(out)
}

/// Escapes of characters outside ASCII stay escaped, but not those an
/// upstream may take for other characters: one comparing paths with Unicode
/// case folding reads `/u%C5%BFers` (`ſ`, which Java's `equalsIgnoreCase`
/// matches to `s`) as `/users`, one with compatibility mapping (NFKC,
/// Windows' best fit) reads fullwidth `%EF%BD%81` as `a` or the two-dot
/// leader `%E2%80%A5` as `..`, while the guardrails
/// judged another path. Control characters (`%00` ends a C string) and
/// bytes that are not UTF-8 are refused for the same reason.
fn check_escapes(segment: &str) -> Result<(), RouteError> {
    if !segment.contains('%') {
        return Ok(());
    }
    // `%25` (an escaped `%`) before two hex digits is an escape once more to
    // an upstream that decodes twice: `%252e%252e` is `..` there.
    let raw = segment.as_bytes();
    let double = raw
        .windows(5)
        .any(|w| w[..3].eq_ignore_ascii_case(b"%25") && hex(w[3]).is_some() && hex(w[4]).is_some());
    if double {
        return Err(RouteError::Ambiguous(
            "has a doubly escaped character (%25XX)",
        ));
    }
    // Canonical: every `%` is followed by two hex digits.
    let raw = segment.as_bytes();
    let mut bytes = Vec::with_capacity(raw.len());
    let mut i = 0;
    while i < raw.len() {
        let escaped = (raw[i] == b'%')
            .then(|| Some(hex(*raw.get(i + 1)?)? << 4 | hex(*raw.get(i + 2)?)?))
            .flatten();
        match escaped {
            Some(b) => {
                bytes.push(b);
                i += 3;
            }
            None => {
                bytes.push(raw[i]);
                i += 1;
            }
        }
    }
    let text = std::str::from_utf8(&bytes)
        .map_err(|_| RouteError::Ambiguous("has escaped bytes that are not UTF-8"))?;
    for c in text.chars() {
        if c.is_control() {
            return Err(RouteError::Ambiguous("has an escaped control character"));
        }
        let ascii_alike = !c.is_ascii()
            && (c.to_lowercase().any(|l| l.is_ascii())
                || c.to_uppercase().any(|u| u.is_ascii())
                || std::iter::once(c).nfkc().any(|n| n.is_ascii()));
        if ascii_alike {
            return Err(RouteError::Ambiguous(
                "has an escaped character that upstreams may read as an ASCII one (case folding, fullwidth forms)",
            ));
        }
    }
    Ok(())
}

/// Splits and normalises an origin-form path.
pub fn split(path: &str) -> Result<Route, RouteError> {
    if !path.starts_with('/') {
        return Err(RouteError::NotOrigin);
    }
    let trailing_slash = path.len() > 1 && path.ends_with('/');
    let mut segments: Vec<String> = Vec::new();
    for raw in path.split('/').filter(|s| !s.is_empty()) {
        let seg = canonical_segment(raw)?;
        // IIS and .NET drop a segment's trailing dots and spaces: `admin./x`
        // and `admin%20/x` are `admin/x` to them.
        if seg != "." && seg != ".." && (seg.ends_with('.') || seg.ends_with("%20")) {
            return Err(RouteError::Ambiguous(
                "has a segment ending in `.` or a space, which some servers drop",
            ));
        }
        match seg.as_str() {
            "." => {}
            ".." => {
                // The connection segment itself may not be popped.
                if segments.len() <= 1 {
                    return Err(RouteError::Escapes);
                }
                segments.pop();
            }
            _ => segments.push(seg),
        }
    }
    let mut it = segments.into_iter();
    let connection = it.next().ok_or(RouteError::NoConnection)?;
    let rest: Vec<String> = it.collect();
    let mut path = String::with_capacity(64);
    for s in &rest {
        path.push('/');
        path.push_str(s);
    }
    if path.is_empty() || trailing_slash {
        path.push('/');
    }
    Ok(Route { connection, path })
}

/// The upstream path: the connection's base path, then the path below the
/// connection.
pub fn join(base: &str, path: &str) -> String {
    let base = base.trim_end_matches('/');
    if base.is_empty() {
        path.to_string()
    } else {
        format!("{base}{path}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(path: &str) -> (String, String) {
        let r = split(path).unwrap();
        (r.connection, r.path)
    }

    #[test]
    fn splits_and_normalises() {
        let cases = [
            ("/api/v1/items", "api", "/v1/items"),
            ("/api", "api", "/"),
            ("/api/", "api", "/"),
            ("/api/v1/", "api", "/v1/"),
            ("/api//admin///x", "api", "/admin/x"),
            ("/api/./admin/x", "api", "/admin/x"),
            ("/api/v1/../admin/x", "api", "/admin/x"),
            ("/api/%61dmin/x", "api", "/admin/x"),
            ("/api/v1/%2e%2E/x", "api", "/x"),
            ("/api/a%20b", "api", "/a%20b"),
            ("/api/caf%C3%A9", "api", "/caf%C3%A9"),
            ("/%61pi/x", "api", "/x"),
        ];
        for (input, conn, path) in cases {
            assert_eq!(ok(input), (conn.to_string(), path.to_string()), "{input}");
        }
    }

    #[test]
    fn refuses_what_cannot_be_made_canonical() {
        assert_eq!(split("/"), Err(RouteError::NoConnection));
        assert_eq!(split("//"), Err(RouteError::NoConnection));
        assert_eq!(split("/api/.."), Err(RouteError::Escapes));
        assert_eq!(split("/api/../other/x"), Err(RouteError::Escapes));
        assert_eq!(split("/api/%zz"), Err(RouteError::BadEscape));
        assert_eq!(split("/api/%4"), Err(RouteError::BadEscape));
        assert_eq!(split("*"), Err(RouteError::NotOrigin));
        for ambiguous in [
            "/api/admin%2Fusers",
            "/api/admin%2fusers",
            "/api/admin%5Cusers",
            "/api/admin\\users",
            "/api/admin;x/users",
            "/api/v1/..;/admin",
            "/api/caf\u{e9}",
            "/api/u%C5%BFers/1",
            "/api/u%c5%bfers/1",
            "/api/%E2%84%AAey",
            "/api/%C4%B0d",
            "/api/%EF%BD%81dmin",
            "/api/admin%00/x",
            "/api/admin%0A",
            "/api/%FF",
            "/api/%E2%80%A5/admin",
            "/api/%EF%B9%92%EF%B9%92/admin",
            "/api/%EF%AC%81le",
            "/api/%252e%252e/admin",
            "/api/admin./x",
            "/api/admin%2e/x",
            "/api/admin%20/x",
            "/api/admin.../x",
            "/api/v1/refunds.",
        ] {
            assert!(
                matches!(split(ambiguous), Err(RouteError::Ambiguous(_))),
                "{ambiguous}"
            );
        }
    }

    #[test]
    fn joins_base_paths() {
        assert_eq!(join("/", "/x"), "/x");
        assert_eq!(join("", "/x"), "/x");
        assert_eq!(join("/base/", "/x"), "/base/x");
        assert_eq!(join("/base", "/"), "/base/");
    }
}
