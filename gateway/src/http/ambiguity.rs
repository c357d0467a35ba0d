//! Requests that the guardrails and the upstream could read differently are
//! refused (paths: see [`super::route`]).
//!
//! - A method that differs from a standard one only by case (`post`):
//!   hyper keeps it as an extension method, so it is not the `POST` rules
//!   and the MCP inspection look for, while upstreams that compare methods
//!   without regard to case run it as one.
//! - Headers that ask the upstream to act on another method or URL than the
//!   request line the guardrails judged (`X-HTTP-Method-Override: DELETE`
//!   on a POST, `X-Original-URL`): honoured by Symfony, Laravel, Express's
//!   method-override, ASP.NET and IIS URL Rewrite.
//! - JSON bodies with a key twice in one object, where keys that differ
//!   only by case count as the same: parsers disagree on which one wins
//!   (serde_json keeps the last, others the first, Go's `encoding/json`
//!   matches field names without regard to case), so a guardrail could
//!   judge `{"name":"read_file","Name":"delete_repo"}` as one tool call and
//!   the upstream run another.
//! - Header names with `_`, which CGI-style upstreams read as `-` (see
//!   [`UnderscoreHeaders`]): dropped by default.

use std::collections::HashSet;

use hyper::{HeaderMap, Method, Uri};

use super::config::UnderscoreHeaders;
use super::headers::hyphenated;
use super::json_keys::{scan_json, wide_json};
use super::problem::Problem;

const OVERRIDE_HEADERS: [&str; 5] = [
    "x-http-method-override",
    "x-http-method",
    "x-method-override",
    "x-original-url",
    "x-rewrite-url",
];

const STANDARD_METHODS: [Method; 9] = [
    Method::GET,
    Method::HEAD,
    Method::POST,
    Method::PUT,
    Method::DELETE,
    Method::CONNECT,
    Method::OPTIONS,
    Method::TRACE,
    Method::PATCH,
];

/// Parameters that frameworks read as the request's method.
pub(super) const OVERRIDE_PARAMETER: &str = "_method";

fn override_parameter(where_: &str) -> String {
    format!(
        "the {OVERRIDE_PARAMETER} parameter in the {where_} asks the upstream to act on another \
         method than the one the gateway checks; it is refused"
    )
}

/// Whether url-encoded pairs (a query string or a form body) name the
/// override parameter as some framework reads names: decoded (`%5Fmethod`),
/// in any case, pairs split at `;` as well as `&` (older Go and Python
/// parsers), and a name read as PHP reads it (leading spaces dropped, ` `
/// and `.` as `_`, `_method[]` an array of `_method`), or as C reads it
/// (up to a NUL). Erring towards refusal is safe: no API needs such names.
fn names_override(encoded: &[u8]) -> bool {
    encoded
        .split(|b| *b == b'&' || *b == b';')
        .filter_map(|pair| url::form_urlencoded::parse(pair).next())
        .any(|(name, _)| read_as_override(&name))
}

fn read_as_override(name: &str) -> bool {
    let name = name.split('\0').next().unwrap_or("");
    let name = name.split('[').next().unwrap_or("");
    let name = name.trim_matches(|c: char| c.is_ascii_whitespace());
    name.len() == OVERRIDE_PARAMETER.len()
        && name
            .bytes()
            .map(|b| match b {
                b' ' | b'.' => b'_',
                b => b.to_ascii_lowercase(),
            })
            .eq(OVERRIDE_PARAMETER.bytes())
}

/// Whether a part of a multipart body is named like the override
/// parameter (`name="_method"`, `name*=UTF-8''%5Fmethod`). Every
/// `Content-Disposition` line is looked at, wherever it is, rather than
/// the parts the boundary delimits: a boundary read differently from the
/// upstream's reading cannot hide a part. A file whose content has such a
/// line is refused too, which errs on the safe side.
fn multipart_names_override(body: &[u8]) -> bool {
    const DISPOSITION: &[u8] = b"content-disposition";
    body.split(|b| *b == b'\n').any(|line| {
        let line = line.trim_ascii_start();
        line.len() > DISPOSITION.len()
            && line[..DISPOSITION.len()].eq_ignore_ascii_case(DISPOSITION)
            && (contains_ignore_case(line, OVERRIDE_PARAMETER.as_bytes())
                || contains_ignore_case(line, b"%5fmethod")
                // PHP reads `.` in a field name as `_`.
                || contains_ignore_case(line, b".method")
                || contains_ignore_case(line, b"%2emethod"))
    })
}

fn contains_ignore_case(haystack: &[u8], needle: &[u8]) -> bool {
    haystack
        .windows(needle.len())
        .any(|w| w.eq_ignore_ascii_case(needle))
}

/// The request line and headers, before anything else is looked at.
pub fn check_head(method: &Method, uri: &Uri, headers: &HeaderMap) -> Result<(), Problem> {
    let other_case = if STANDARD_METHODS.contains(method) {
        None
    } else {
        STANDARD_METHODS
            .iter()
            .find(|m| m.as_str().eq_ignore_ascii_case(method.as_str()))
    };
    if let Some(standard) = other_case {
        return Err(Problem::bad_request(
            "ambiguous_method",
            format!(
                "the method {method} is {standard} in another case, which upstreams read differently; send {standard}"
            ),
        ));
    }
    // One pass over the headers present rather than a lookup (which
    // parses the name) per override header; names read as CGI-style
    // upstreams read them (`underscore_headers = "pass"`).
    if let Some(name) = headers.keys().find_map(|k| {
        let twin = hyphenated(k);
        let read = twin.as_ref().unwrap_or(k);
        OVERRIDE_HEADERS.iter().find(|h| **h == read.as_str())
    }) {
        return Err(Problem::bad_request(
            "override_header",
            format!(
                "the {name} header asks the upstream to act on another method or URL than the one the gateway checks; it is refused"
            ),
        ));
    }
    if uri.query().is_some_and(|q| names_override(q.as_bytes())) {
        return Err(Problem::bad_request(
            "override_parameter",
            override_parameter("query string"),
        ));
    }
    // Content-Type is one value (RFC 9110, 8.3): two, or a list in one,
    // and the guardrails may read the body as one type, the upstream as
    // another.
    let mut types = headers.get_all(hyper::header::CONTENT_TYPE).iter();
    if types
        .next()
        .is_some_and(|t| super::masking::lists_types(t.as_bytes()))
        || types.next().is_some()
    {
        return Err(Problem::bad_request(
            "ambiguous_header",
            "the request has more than one Content-Type",
        ));
    }
    // RFC 9112 (3.2): several Host lines are refused, as servers disagree
    // on which one a request is for.
    let mut hosts = headers.get_all(hyper::header::HOST).iter();
    let host = hosts.next();
    if hosts.next().is_some() {
        return Err(Problem::bad_request(
            "ambiguous_host",
            "the request has more than one Host header",
        ));
    }
    // A Host that is no host[:port] (`a@evil:80/x`), or an authority with
    // userinfo: upstreams and the recording's URL would read another host
    // or path into it.
    let bad_authority = |a: &str| match a.parse::<hyper::http::uri::Authority>() {
        Err(_) => true,
        // The parser takes any text after the colon as the port.
        Ok(parsed) => {
            let port = &a[parsed.host().len()..];
            a.contains('@')
                || !(port.is_empty()
                    || port
                        .strip_prefix(':')
                        .is_some_and(|p| p.parse::<u16>().is_ok()))
        }
    };
    if host.is_some_and(|h| !h.is_empty() && h.to_str().map_or(true, bad_authority))
        || uri.authority().is_some_and(|a| bad_authority(a.as_str()))
    {
        return Err(Problem::bad_request(
            "bad_host",
            "the Host header or the request's authority is not a host and port",
        ));
    }
    // HTTP/2's `:authority` (or an absolute request target) naming another
    // host than `Host` (RFC 9113, 8.3.1: malformed): which one an upstream
    // or a rule reads varies.
    if let (Some(authority), Some(host)) = (uri.authority(), host)
        && !same_host(uri, authority, host)
    {
        return Err(Problem::bad_request(
            "ambiguous_host",
            "the request's authority and its Host header name different hosts",
        ));
    }
    // RFC 9113 (8.2.1): a field value may not begin or end with whitespace.
    // HTTP/1.1 parsers trim it, so `x-env: " prod"` sent over HTTP/2 would
    // reach an HTTP/1.1 upstream as `prod`, unseen by a rule on `prod`.
    if let Some((name, _)) = headers.iter().find(|(_, v)| {
        let v = v.as_bytes();
        matches!(v.first(), Some(b' ' | b'\t')) || matches!(v.last(), Some(b' ' | b'\t'))
    }) {
        return Err(Problem::bad_request(
            "bad_header",
            format!(
                "the value of the {name} header begins or ends with whitespace, which upstreams \
                 read without it"
            ),
        ));
    }
    Ok(())
}

/// Whether `Host` names the host and port of the authority: without regard
/// to case or a trailing dot, and with the scheme's default port implied.
fn same_host(
    uri: &Uri,
    authority: &hyper::http::uri::Authority,
    host: &hyper::header::HeaderValue,
) -> bool {
    let Ok(host) = host
        .to_str()
        .map_err(|_| ())
        .and_then(|h| h.parse::<hyper::http::uri::Authority>().map_err(|_| ()))
    else {
        return false;
    };
    let default = if uri.scheme_str() == Some("https") {
        443
    } else {
        80
    };
    let name =
        |a: &hyper::http::uri::Authority| a.host().trim_end_matches('.').to_ascii_lowercase();
    name(&host) == name(authority)
        && host.port_u16().unwrap_or(default) == authority.port_u16().unwrap_or(default)
}

/// Applies `policy` to the request's header names holding `_`.
pub fn underscored_headers(
    headers: &mut HeaderMap,
    policy: UnderscoreHeaders,
) -> Result<(), Problem> {
    // Names are lower case and few: one scan finds none on nearly every request.
    let underscored: Vec<hyper::header::HeaderName> = headers
        .keys()
        .filter(|k| k.as_str().contains('_'))
        .cloned()
        .collect();
    let Some(first) = underscored.first() else {
        return Ok(());
    };
    match policy {
        UnderscoreHeaders::Drop => {
            // Said once at warn: a client relying on such a header learns
            // why it vanished; after that, only at debug.
            static SAID: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);
            if !SAID.swap(true, std::sync::atomic::Ordering::Relaxed) {
                tracing::warn!(
                    headers = ?underscored,
                    "request headers with '_' in their name are dropped ([http] underscore_headers); \
                     further drops are logged at debug"
                );
            }
            tracing::debug!(headers = ?underscored, "request headers with '_' in their name dropped");
            for name in underscored {
                headers.remove(name);
            }
            Ok(())
        }
        UnderscoreHeaders::Refuse => Err(Problem::bad_request(
            "underscore_header",
            format!(
                "the header {first} has '_' in its name, which many upstreams read as '-'; send \
                 it with '-' instead"
            ),
        )),
        UnderscoreHeaders::Pass => {
            let mut seen = HashSet::new();
            for name in headers.keys() {
                if !seen.insert(hyphenated(name).unwrap_or_else(|| name.clone())) {
                    return Err(Problem::bad_request(
                        "ambiguous_header",
                        format!(
                            "the header {name} reads the same as another header of the request \
                             when '_' is read as '-', as many upstreams do"
                        ),
                    ));
                }
            }
            Ok(())
        }
    }
}

/// A request body the guardrails are shown: a JSON body with a key twice
/// in one object (`ambiguous_json`), or a body that carries the override
/// parameter, as a form (url-encoded) field or a key of the top-level JSON
/// object (`override_parameter`). JSON is read once for both.
pub fn check_body(content_type: Option<&str>, body: &[u8]) -> Result<(), Problem> {
    let media_type = content_type.map(super::headers::media_type);
    let form = match media_type.as_deref() {
        Some("application/x-www-form-urlencoded") if names_override(body) => Some("form body"),
        Some(m) if m.starts_with("multipart/") && multipart_names_override(body) => {
            Some("multipart form body")
        }
        _ => None,
    };
    if let Some(form) = form {
        return Err(Problem::bad_request(
            "override_parameter",
            override_parameter(form),
        ));
    }
    // What the scan below could not read, a framework may: JSON is UTF-8
    // (RFC 8259) and readers that take another charset (body-parser takes
    // UTF-16) would see keys the gateway did not.
    let json_typed = media_type.as_deref().is_some_and(super::headers::is_json);
    if json_typed {
        match content_type.map(super::headers::charset) {
            Some(Err(why)) => return Err(unreadable_json(format!("its Content-Type {why}"))),
            Some(Ok(Some(c))) if !super::headers::is_utf8(&c) => {
                return Err(unreadable_json(format!(
                    "it is declared as {c}; JSON is UTF-8"
                )));
            }
            _ => {}
        }
    }
    // Express's body-parser and others skip a byte-order mark.
    let body = body.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(body);
    // Jackson tells UTF-16 and UTF-32 JSON from UTF-8 by its first bytes
    // (a byte-order mark, or NULs beside the first ASCII characters).
    if json_typed && wide_json(body) {
        return Err(unreadable_json(
            "it is UTF-16 or UTF-32; JSON is UTF-8".into(),
        ));
    }
    match scan_json(body) {
        Err(why) => Err(Problem::bad_request("ambiguous_json", why)),
        Ok(json) if json.names_override => Err(Problem::bad_request(
            "override_parameter",
            override_parameter("JSON body"),
        )),
        Ok(_) => Ok(()),
    }
}

fn unreadable_json(why: String) -> Problem {
    Problem::bad_request(
        "ambiguous_json",
        format!("the JSON body cannot be checked: {why}"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header_map(names: &[&str]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for n in names {
            h.append(
                hyper::header::HeaderName::from_bytes(n.as_bytes()).unwrap(),
                hyper::header::HeaderValue::from_static("v"),
            );
        }
        h
    }

    #[test]
    fn underscored_header_names_are_dropped_refused_or_checked() {
        let mut h = header_map(&["x-env", "X_Env", "accept", "x_api_key"]);
        underscored_headers(&mut h, UnderscoreHeaders::Drop).unwrap();
        let left: Vec<&str> = h.keys().map(|k| k.as_str()).collect();
        assert_eq!(left, ["x-env", "accept"]);

        let mut h = header_map(&["accept", "x_trace"]);
        let p = underscored_headers(&mut h, UnderscoreHeaders::Refuse).unwrap_err();
        assert_eq!(p.reason, "underscore_header");
        assert!(p.to_string().contains("x_trace"), "{p}");

        let mut h = header_map(&["accept", "x_trace"]);
        underscored_headers(&mut h, UnderscoreHeaders::Pass).unwrap();
        assert_eq!(h.len(), 2);
        for names in [
            &["x-env", "x_env"][..],
            &["x_env", "x-env"],
            &["a_b-c", "a-b_c"],
        ] {
            let mut h = header_map(names);
            let p = underscored_headers(&mut h, UnderscoreHeaders::Pass).unwrap_err();
            assert_eq!(p.reason, "ambiguous_header", "{names:?}");
        }

        // Nothing to do: the map is left alone under every policy.
        for policy in [
            UnderscoreHeaders::Drop,
            UnderscoreHeaders::Refuse,
            UnderscoreHeaders::Pass,
        ] {
            let mut h = header_map(&["accept", "x-env"]);
            underscored_headers(&mut h, policy).unwrap();
            assert_eq!(h.len(), 2);
        }
    }

    #[test]
    fn override_header_names_are_lower_case() {
        // check_head compares them with HeaderName::as_str, which is.
        for name in OVERRIDE_HEADERS {
            assert_eq!(name, name.to_ascii_lowercase());
        }
    }

    #[test]
    fn methods_in_another_case_and_override_headers_are_refused() {
        let none = HeaderMap::new();
        let uri: Uri = "/r/x?a=1".parse().unwrap();
        assert!(check_head(&Method::POST, &uri, &none).is_ok());
        let custom = Method::from_bytes(b"PROPFIND").unwrap();
        assert!(check_head(&custom, &uri, &none).is_ok());
        let lower = Method::from_bytes(b"post").unwrap();
        assert!(check_head(&lower, &uri, &none).is_err());
        let mut headers = HeaderMap::new();
        headers.insert("X-HTTP-Method-Override", "DELETE".parse().unwrap());
        assert!(check_head(&Method::POST, &uri, &headers).is_err());
        let mut underscored = HeaderMap::new();
        underscored.insert("X_HTTP_Method_Override", "DELETE".parse().unwrap());
        let p = check_head(&Method::POST, &uri, &underscored).unwrap_err();
        assert_eq!(p.reason, "override_header");
    }

    #[test]
    fn the_method_parameter_is_refused_in_the_query_and_the_body() {
        let none = HeaderMap::new();
        for refused in [
            "/r/x?_method=DELETE",
            "/r/x?a=1&%5Fmethod=DELETE",
            "/r/x?_METHOD=put",
            "/r/x?%20_method=DELETE",
            "/r/x?a=1;_method=DELETE",
            "/r/x?_method[]=DELETE",
            "/r/x?_method%00=DELETE",
            "/r/x?.method=DELETE",
        ] {
            let uri: Uri = refused.parse().unwrap();
            let problem = check_head(&Method::POST, &uri, &none).unwrap_err();
            assert_eq!(problem.reason, "override_parameter", "{refused}");
        }
        let fine: Uri = "/r/x?method=DELETE&x_method=1".parse().unwrap();
        assert!(check_head(&Method::POST, &fine, &none).is_ok());
        let mut hosts = HeaderMap::new();
        hosts.append("host", "a.example".parse().unwrap());
        hosts.append("host", "b.example".parse().unwrap());
        assert_eq!(
            check_head(&Method::GET, &fine, &hosts).unwrap_err().reason,
            "ambiguous_host"
        );
        let mut host = HeaderMap::new();
        host.append("host", "A.example:8443".parse().unwrap());
        let same: Uri = "https://a.example:8443/r/x".parse().unwrap();
        assert!(check_head(&Method::GET, &same, &host).is_ok());
        for (target, host) in [
            ("https://gw.example/r/x", "gw.example:443"),
            ("https://gw.example:443/r/x", "GW.example"),
            ("http://gw.example/r/x", "gw.example:80"),
            ("http://gw.example./r/x", "gw.example"),
            ("http://[::1]:8443/r/x", "[::1]:8443"),
        ] {
            let uri: Uri = target.parse().unwrap();
            let mut h = HeaderMap::new();
            h.append("host", host.parse().unwrap());
            assert!(
                check_head(&Method::GET, &uri, &h).is_ok(),
                "{target} {host}"
            );
        }
        let other: Uri = "https://b.example/r/x".parse().unwrap();
        assert_eq!(
            check_head(&Method::GET, &other, &host).unwrap_err().reason,
            "ambiguous_host"
        );
        for value in [
            "a@evil:80/x",
            "evil/x",
            "a b",
            "evil:80:80",
            "gw:abc",
            "gw:99999",
            "gw:",
        ] {
            let mut h = HeaderMap::new();
            h.append("host", value.parse().unwrap());
            assert_eq!(
                check_head(&Method::GET, &fine, &h).unwrap_err().reason,
                "bad_host",
                "{value}"
            );
        }
        for types in [
            &["text/plain", "application/json"][..],
            &["text/plain, application/json"],
        ] {
            let mut h = HeaderMap::new();
            for t in types {
                h.append("content-type", t.parse().unwrap());
            }
            assert_eq!(
                check_head(&Method::POST, &fine, &h).unwrap_err().reason,
                "ambiguous_header",
                "{types:?}"
            );
        }
        let userinfo: Uri = "https://a@gw.example/r/x".parse().unwrap();
        assert_eq!(
            check_head(&Method::GET, &userinfo, &HeaderMap::new())
                .unwrap_err()
                .reason,
            "bad_host"
        );
        for value in [" prod", "prod ", "\tprod", "prod\t"] {
            let mut h = HeaderMap::new();
            h.append("x-env", value.parse().unwrap());
            assert_eq!(
                check_head(&Method::GET, &fine, &h).unwrap_err().reason,
                "bad_header",
                "{value:?}"
            );
        }
        let mut inner = HeaderMap::new();
        inner.append("x-env", "a b".parse().unwrap());
        inner.append("x-empty", "".parse().unwrap());
        assert!(check_head(&Method::GET, &fine, &inner).is_ok());

        let reason = |t: Option<&str>, body: &[u8]| check_body(t, body).err().map(|p| p.reason);
        let form = Some("application/x-www-form-urlencoded; charset=utf-8");
        assert_eq!(
            reason(form, b"name=a&_method=DELETE"),
            Some("override_parameter")
        );
        assert_eq!(reason(form, b"name=a&method=DELETE"), None);
        // JSON the scan cannot read but a framework would.
        let json = Some("application/json");
        let deep = format!(
            "{{\"_method\":\"DELETE\",\"x\":{}{}}}",
            "[".repeat(200),
            "]".repeat(200)
        );
        assert_eq!(reason(json, deep.as_bytes()), Some("ambiguous_json"));
        assert_eq!(reason(None, deep.as_bytes()), Some("ambiguous_json"));
        assert_eq!(
            reason(json, b"\xEF\xBB\xBF{\"_method\":\"DELETE\"}"),
            Some("override_parameter")
        );
        for declared in [
            "application/json; charset=utf-16",
            "application/vnd.api+json; charset=utf-8; charset=utf-16",
            "application/json; charset*=utf-8''utf-16",
        ] {
            assert_eq!(
                reason(Some(declared), b"{}"),
                Some("ambiguous_json"),
                "{declared}"
            );
        }
        assert_eq!(reason(Some("application/json; charset=UTF-8"), b"{}"), None);
        assert_eq!(
            reason(Some("text/json; charset=utf-16"), b"{}"),
            Some("ambiguous_json")
        );
        let utf16: Vec<u8> = "{\"_method\":\"DELETE\"}"
            .encode_utf16()
            .flat_map(u16::to_le_bytes)
            .collect();
        assert_eq!(reason(json, &utf16), Some("ambiguous_json"));
        assert_eq!(reason(Some("text/plain; charset=utf-16"), b"hi"), None);
        assert_eq!(
            reason(form, b"name=a&+_method=DELETE"),
            Some("override_parameter")
        );
        let multipart = Some("multipart/form-data; boundary=b");
        assert_eq!(
            reason(
                multipart,
                b"--b\r\nContent-Disposition: form-data; name=\".method\"\r\n\r\nDELETE\r\n--b--\r\n"
            ),
            Some("override_parameter")
        );
        let json = br#"{"_Method":"DELETE","id":1}"#;
        assert_eq!(reason(None, json), Some("override_parameter"));
        // Only the top-level object is read as parameters.
        assert_eq!(reason(None, br#"{"item":{"_method":"x"}}"#), None);
        assert_eq!(reason(Some("text/plain"), b"_method=DELETE"), None);
        assert_eq!(reason(None, br#"{"a":1,"A":2}"#), Some("ambiguous_json"));
        assert_eq!(
            reason(
                None,
                "{\"status\":\"dev\",\"\u{17f}tatus\":\"prod\"}".as_bytes()
            ),
            Some("ambiguous_json")
        );
        assert_eq!(
            reason(None, "{\"key\":1,\"\u{212a}ey\":2}".as_bytes()),
            Some("ambiguous_json")
        );

        let multipart = Some("multipart/form-data; boundary=XyZ");
        for body in [
            &b"--XyZ\r\nContent-Disposition: form-data; name=\"_method\"\r\n\r\nDELETE\r\n--XyZ--\r\n"[..],
            b"--XyZ\r\ncontent-disposition: form-data; name=_METHOD\r\n\r\nDELETE\r\n--XyZ--",
            b"--XyZ\nContent-Disposition: form-data; name*=UTF-8''%5Fmethod\n\nPUT\n--XyZ--",
            // A boundary that does not match the header's still hides nothing.
            b"--other\r\nContent-Disposition: form-data; name=\"_method\"\r\n\r\nPUT\r\n",
        ] {
            assert_eq!(
                reason(multipart, body),
                Some("override_parameter"),
                "{}",
                String::from_utf8_lossy(body)
            );
        }
        let upload = b"--XyZ\r\nContent-Disposition: form-data; name=\"file\"; filename=\"m.txt\"\r\n\r\n_method is a word\r\n--XyZ--\r\n";
        assert_eq!(reason(multipart, upload), None);
        assert_eq!(reason(Some("application/octet-stream"), &upload[..]), None);
    }
}
