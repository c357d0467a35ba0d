//! Header rules of the proxy: what never crosses it, what it adds.
//!
//! Towards the upstream: hop-by-hop headers (RFC 9110 §7.6.1, and any the
//! `Connection` header names) are dropped, as are the agent's
//! `Authorization`, `Expect` (the gateway has already taken the body) and any
//! forwarding headers the agent wrote itself (an agent is not a trusted
//! proxy: `X-Forwarded-For` is set from the connection, never appended to).
//! The connection's credential is added last, so nothing the agent sends can
//! replace it.

use std::net::SocketAddr;

use hyper::HeaderMap;
use hyper::header::{self, HeaderName, HeaderValue};

// Names as `HeaderName` statics, not strings: removing by `&str` parses
// the name again on every call, several times per exchange.
static HOP_BY_HOP: [HeaderName; 9] = [
    header::CONNECTION,
    HeaderName::from_static("keep-alive"),
    HeaderName::from_static("proxy-connection"),
    header::PROXY_AUTHENTICATE,
    header::PROXY_AUTHORIZATION,
    header::TE,
    header::TRAILER,
    header::TRANSFER_ENCODING,
    header::UPGRADE,
];
static X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");
static X_FORWARDED_PROTO: HeaderName = HeaderName::from_static("x-forwarded-proto");
static X_FORWARDED_HOST: HeaderName = HeaderName::from_static("x-forwarded-host");

/// Client-address headers some upstreams trust as set by their proxy; the
/// gateway sets `X-Forwarded-For` and `Forwarded` instead.
static CLIENT_ADDRESS: [HeaderName; 3] = [
    HeaderName::from_static("x-real-ip"),
    HeaderName::from_static("true-client-ip"),
    HeaderName::from_static("x-client-ip"),
];

/// What a proxy in front says about the original request, which upstream
/// frameworks trust when building links and redirects (Spring's
/// `X-Forwarded-Prefix`, Werkzeug's `ProxyFix`) and some route or
/// authorise by (`X-Original-URI` behind nginx's `auth_request`). The
/// gateway is that proxy: the agent does not get to say.
static ORIGINAL_REQUEST: [HeaderName; 1] = [HeaderName::from_static("x-scheme")];
/// Prefixes of the same: `X-Original-URI`/`-Host`/`-Forwarded-For`, and
/// Envoy's own (`X-Envoy-Original-Path`, `X-Envoy-External-Address`), which
/// a mesh behind the gateway trusts.
const ORIGINAL_REQUEST_PREFIXES: [&str; 3] = ["x-forwarded-", "x-original-", "x-envoy-"];

/// What never goes upstream besides the hop-by-hop headers: the agent's
/// credential, its `Host` (the upstream's is set), `Expect` (the body is
/// already taken) and forwarding, original-request or client-address
/// headers the agent wrote itself.
fn not_forwarded(name: &HeaderName) -> bool {
    [
        header::AUTHORIZATION,
        header::HOST,
        header::EXPECT,
        header::FORWARDED,
    ]
    .contains(name)
        || ORIGINAL_REQUEST_PREFIXES
            .iter()
            .any(|p| name.as_str().starts_with(p))
        || CLIENT_ADDRESS.contains(name)
        || ORIGINAL_REQUEST.contains(name)
}

/// HTTP/2 clients send each cookie as a header of its own; HTTP/1.1
/// allows one `Cookie` line, so they are joined with `; ` (RFC 9113,
/// 8.2.3), which HTTP/2 upstreams accept as well.
fn join_cookies(headers: &mut HeaderMap) {
    let mut cookies = headers.get_all(header::COOKIE).iter();
    if cookies.nth(1).is_none() {
        return;
    }
    let joined: Vec<&[u8]> = headers
        .get_all(header::COOKIE)
        .iter()
        .map(HeaderValue::as_bytes)
        .collect();
    if let Ok(v) = HeaderValue::from_bytes(&joined.join(&b"; "[..])) {
        headers.insert(header::COOKIE, v);
    }
}

/// The name an upstream reading `_` as `-` (CGI, WSGI, Rack) sees, for a
/// name with `_`; `None` for the others, without allocating.
pub(super) fn hyphenated(name: &HeaderName) -> Option<HeaderName> {
    let text = name.as_str();
    if !text.contains('_') {
        return None;
    }
    HeaderName::from_bytes(text.replace('_', "-").as_bytes()).ok()
}

/// `Content-Length` as one number without leading zeros: the parser took
/// `010` (or `10, 010`, or two lines that agree) as ten, and an upstream
/// reading it otherwise (octal, the first line) would take the rest of the
/// body for the next request on a pooled connection.
fn canonical_length(headers: &mut HeaderMap) {
    let mut values = headers.get_all(header::CONTENT_LENGTH).iter().peekable();
    if values.peek().is_none() {
        return;
    }
    let mut lengths = values
        .flat_map(|v| v.as_bytes().split(|b| *b == b','))
        .map(|d| {
            std::str::from_utf8(d.trim_ascii())
                .ok()?
                .parse::<u64>()
                .ok()
        });
    let first = lengths.next().flatten();
    let agreed = first.filter(|n| lengths.all(|m| m == Some(*n)));
    match agreed {
        Some(n) => {
            headers.insert(header::CONTENT_LENGTH, HeaderValue::from(n));
        }
        // The parser has refused lengths that disagree; unreadable here,
        // the forwarded body's own framing counts.
        None => {
            headers.remove(header::CONTENT_LENGTH);
        }
    }
}

/// The header names `Connection` lists (they are hop-by-hop too).
fn connection_named(headers: &HeaderMap) -> Vec<HeaderName> {
    headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|n| HeaderName::from_bytes(n.trim().as_bytes()).ok())
        .collect()
}

fn is_hop_by_hop(name: &HeaderName, named: &[HeaderName]) -> bool {
    HOP_BY_HOP.contains(name) || named.contains(name)
}

/// Removes every header `drop` picks. One pass over the few headers a
/// message has, where removing each name that might be there would hash
/// and probe the map once per candidate (nearly twenty per exchange).
fn remove_where(headers: &mut HeaderMap, drop: impl Fn(&HeaderName) -> bool) {
    let doomed: Vec<HeaderName> = headers.keys().filter(|n| drop(n)).cloned().collect();
    for name in doomed {
        headers.remove(name);
    }
}

/// The media type of a `Content-Type` value, lowercased, without its
/// parameters.
pub fn media_type(content_type: &str) -> String {
    content_type
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase()
}

/// The `charset` parameter of a `Content-Type` value, lowercased and
/// unquoted. `Err` when readers may disagree on it: two different
/// `charset`s (some take the first, Python's `requests` the last) or the
/// extended forms `charset*=`, `charset*0=` (RFC 2231, which
/// `email.message` decodes).
pub fn charset(content_type: &str) -> Result<Option<String>, &'static str> {
    let mut found: Option<String> = None;
    for param in content_type.split(';').skip(1) {
        let Some((key, value)) = param.split_once('=') else {
            continue;
        };
        let key = key.trim();
        if key.len() > 7 && key[..8].eq_ignore_ascii_case("charset*") {
            return Err("declares its charset in the extended form (charset*=)");
        }
        if key.eq_ignore_ascii_case("charset") {
            let value = value.trim().trim_matches('"').to_ascii_lowercase();
            match &found {
                Some(first) if *first != value => return Err("declares two charsets"),
                _ => found = Some(value),
            }
        }
    }
    Ok(found)
}

/// Whether a media type (lowercased, as [`media_type`] gives it) is read
/// as JSON by some framework: `application/json`, `*+json`, and the
/// unregistered `text/json`, `application/x-json` that ASP.NET and others
/// accept.
pub fn is_json(media_type: &str) -> bool {
    media_type.contains("json")
}

/// Whether a charset is UTF-8 or its ASCII subset.
pub fn is_utf8(charset: &str) -> bool {
    matches!(charset, "utf-8" | "utf8" | "us-ascii" | "ascii")
}

/// Removes hop-by-hop headers, including those listed in `Connection`,
/// from a response. A `Content-Length` beside `Transfer-Encoding` goes too:
/// the body was read by its transfer coding, and the stale length would
/// frame it differently for the agent (RFC 9112, 6.3: a proxy removes it).
pub fn strip_hop_by_hop(headers: &mut HeaderMap) {
    if headers.contains_key(header::TRANSFER_ENCODING) {
        headers.remove(header::CONTENT_LENGTH);
    }
    let named = connection_named(headers);
    remove_where(headers, |n| is_hop_by_hop(n, &named));
}

/// The forwarding headers' part that only depends on the client
/// connection, made once per connection: formatting an address is a
/// costly part of a small exchange.
pub struct ClientOrigin {
    /// `X-Forwarded-For`: the peer's address.
    forwarded_for: Option<HeaderValue>,
    proto: &'static str,
    /// `Forwarded` up to its host: `for=…;proto=…`.
    forwarded: String,
}

impl ClientOrigin {
    pub fn new(peer: SocketAddr, tls: bool) -> Self {
        let ip = peer.ip();
        let proto = if tls { "https" } else { "http" };
        let ip_text = ip.to_string();
        let forwarded = if ip.is_ipv4() {
            format!("for={ip_text};proto={proto}")
        } else {
            format!("for=\"[{ip_text}]\";proto={proto}")
        };
        Self {
            forwarded_for: HeaderValue::from_str(&ip_text).ok(),
            proto,
            forwarded,
        }
    }
}

/// Where the request came from, for the forwarding headers.
pub struct Origin<'a> {
    pub client: &'a ClientOrigin,
    /// `Host` (HTTP/1.1) or `:authority` (HTTP/2) as the agent sent it.
    pub host: Option<&'a str>,
}

/// The agent's `Accept-Encoding` less the codings the gateway cannot
/// decode (`zstd`, `compress`, `*`); `identity` when none is left.
/// The entries of one `Accept-Encoding` line; `None` when it is not ASCII.
fn coding_entries(v: &HeaderValue) -> Option<impl Iterator<Item = &str>> {
    let text = v.to_str().ok()?;
    Some(text.split(',').map(str::trim).filter(|e| !e.is_empty()))
}

fn decodable_codings_only(headers: &mut HeaderMap) {
    // An entry naming a coding the gateway decodes and not refusing it
    // (`;q=0`: leaving that would narrow the list to nothing acceptable,
    // `identity;q=0` alone).
    let kept = |entry: &&str| {
        let mut parts = entry.split(';');
        let coding = parts.next().unwrap_or_default().trim();
        let refused = parts.any(|p| {
            let p = p.trim();
            p.strip_prefix("q=")
                .or_else(|| p.strip_prefix("Q="))
                .and_then(|q| q.trim().parse::<f32>().ok())
                .is_some_and(|q| q <= 0.0)
        });
        !refused && super::decode::named(coding).is_some()
    };
    let values = headers.get_all(header::ACCEPT_ENCODING);
    // The agent's own header, as sent, when it offers nothing else.
    if values
        .iter()
        .all(|v| coding_entries(v).is_some_and(|mut e| e.all(|x| kept(&x))))
    {
        return;
    }
    let offered: Vec<&str> = values
        .iter()
        .filter_map(coding_entries)
        .flatten()
        .filter(kept)
        .collect();
    let value = HeaderValue::from_str(&offered.join(", "))
        .ok()
        .filter(|_| !offered.is_empty())
        .unwrap_or(HeaderValue::from_static("identity"));
    headers.insert(header::ACCEPT_ENCODING, value);
}

/// The headers sent upstream, built from the agent's in place.
pub fn to_upstream(
    headers: &mut HeaderMap,
    origin: &Origin<'_>,
    credential: Option<&(HeaderName, HeaderValue)>,
    masked: bool,
) {
    let named = connection_named(headers);
    let credential_name = credential.map(|(n, _)| n);
    remove_where(headers, |n| {
        is_hop_by_hop(n, &named)
            || not_forwarded(n)
            // A response the maskers must read has to arrive whole.
            || (masked && (n == header::RANGE || n == header::IF_RANGE))
            // With `underscore_headers = "pass"`: `X_Forwarded_For` or
            // `X_Api_Key` is the header it spells to a CGI-style upstream.
            || hyphenated(n).is_some_and(|twin| {
                is_hop_by_hop(&twin, &named)
                    || not_forwarded(&twin)
                    || credential_name == Some(&twin)
            })
    });
    if masked {
        // …and in a coding the gateway can undo.
        headers.insert(
            header::ACCEPT_ENCODING,
            HeaderValue::from_static(super::decode::ACCEPTED),
        );
    } else if credential.is_some() {
        // A response on a connection with a credential is searched for it,
        // in a coding the gateway can undo; the agent still gets it as sent.
        decodable_codings_only(headers);
    }
    join_cookies(headers);
    canonical_length(headers);

    let client = origin.client;
    if let Some(v) = &client.forwarded_for {
        headers.insert(X_FORWARDED_FOR.clone(), v.clone());
    }
    headers.insert(
        X_FORWARDED_PROTO.clone(),
        HeaderValue::from_static(client.proto),
    );
    let forwarded = match origin.host.filter(|h| is_token_host(h)) {
        Some(host) => {
            if let Ok(v) = HeaderValue::from_str(host) {
                headers.insert(X_FORWARDED_HOST.clone(), v);
            }
            let mut text = String::with_capacity(client.forwarded.len() + host.len() + 8);
            text.push_str(&client.forwarded);
            text.push_str(";host=\"");
            text.push_str(host);
            text.push('"');
            HeaderValue::from_str(&text)
        }
        None => HeaderValue::from_str(&client.forwarded),
    };
    if let Ok(v) = forwarded {
        headers.insert(header::FORWARDED, v);
    }

    if let Some((name, value)) = credential {
        headers.insert(name.clone(), value.clone());
    }
}

/// A host that can be quoted into `Forwarded` as it is.
fn is_token_host(host: &str) -> bool {
    !host.is_empty()
        && host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-._:[]".contains(&b))
}

/// The request head's size as HTTP/1.1 spells it (request line, each
/// header as `name: value` and its line end, the blank line), whichever
/// version carried it, so that one limit means the same on both.
pub fn head_bytes(method: &hyper::Method, uri: &hyper::Uri, headers: &HeaderMap) -> usize {
    let target = uri.path_and_query().map_or(1, |pq| pq.as_str().len())
        + uri.scheme_str().map_or(0, |s| s.len() + "://".len())
        + uri.authority().map_or(0, |a| a.as_str().len());
    let line = method.as_str().len() + 1 + target + " HTTP/1.1\r\n".len();
    let fields: usize = headers
        .iter()
        .map(|(name, value)| name.as_str().len() + 2 + value.len() + 2)
        .sum();
    line + fields + 2
}

/// The agent's headers as guardrails see them: lower-case names, values as
/// text, without hop-by-hop headers and without `Authorization`.
pub fn for_plugins(headers: &HeaderMap) -> Vec<(String, String)> {
    // Filtered while copied, not copied then stripped: one pass, no
    // second map.
    let named = connection_named(headers);
    headers
        .iter()
        .filter(|(n, _)| *n != header::AUTHORIZATION && !is_hop_by_hop(n, &named))
        .map(|(n, v)| {
            (
                n.as_str().to_string(),
                String::from_utf8_lossy(v.as_bytes()).into_owned(),
            )
        })
        .collect()
}

/// The agent's headers as recorded: all of them, in order, with the
/// credentials it presented to the gateway replaced by `[redacted]`.
pub fn for_record(headers: &HeaderMap) -> Vec<(String, String)> {
    headers
        .iter()
        .map(|(n, v)| {
            let value = if n == header::AUTHORIZATION || n == header::PROXY_AUTHORIZATION {
                "[redacted]".to_string()
            } else {
                String::from_utf8_lossy(v.as_bytes()).into_owned()
            };
            (n.as_str().to_string(), value)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(
                HeaderName::from_bytes(k.as_bytes()).unwrap(),
                HeaderValue::from_str(v).unwrap(),
            );
        }
        h
    }

    #[test]
    fn only_codings_the_gateway_decodes_are_offered() {
        for (sent, offered) in [
            ("zstd, br;q=0.9, gzip, *;q=0.1", "br;q=0.9, gzip"),
            ("zstd", "identity"),
            ("identity;q=0, zstd", "identity"),
            ("gzip;q=0, br", "br"),
            ("GZIP", "GZIP"),
        ] {
            let mut h = map(&[("accept-encoding", sent)]);
            decodable_codings_only(&mut h);
            assert_eq!(h["accept-encoding"], offered, "{sent}");
        }
        let mut h = HeaderMap::new();
        decodable_codings_only(&mut h);
        assert!(h.is_empty(), "nothing asked, nothing offered");
    }

    /// [`to_upstream`] for a plain-HTTP client with no Host, unmasked.
    fn forward(h: &mut HeaderMap, credential: Option<&(HeaderName, HeaderValue)>) {
        let client = ClientOrigin::new("10.1.2.3:5000".parse().unwrap(), false);
        let origin = Origin {
            client: &client,
            host: None,
        };
        to_upstream(h, &origin, credential, false);
    }

    #[test]
    fn content_length_goes_upstream_without_leading_zeros() {
        for (sent, forwarded) in [
            (&["010"][..], "10"),
            (&["0"], "0"),
            (&["10"], "10"),
            (&["000"], "0"),
            (&["10, 010"], "10"),
            (&["10", "010"], "10"),
        ] {
            let pairs: Vec<(&str, &str)> = sent.iter().map(|v| ("content-length", *v)).collect();
            let mut h = map(&pairs);
            forward(&mut h, None);
            let all: Vec<_> = h.get_all("content-length").iter().collect();
            assert_eq!(all, [forwarded], "{sent:?}");
        }
    }

    #[test]
    fn underscored_twins_of_what_the_gateway_sets_never_go_upstream() {
        let mut h = map(&[
            ("x_api_key", "forged"),
            ("x_forwarded_for", "6.6.6.6"),
            ("x_real_ip", "6.6.6.6"),
            ("proxy_authorization", "x"),
            ("x_trace", "kept"),
        ]);
        let credential = (
            HeaderName::from_static("x-api-key"),
            HeaderValue::from_static("upstream-secret"),
        );
        forward(&mut h, Some(&credential));
        for gone in [
            "x_api_key",
            "x_forwarded_for",
            "x_real_ip",
            "proxy_authorization",
        ] {
            assert!(!h.contains_key(gone), "{gone} still there");
        }
        assert_eq!(h["x_trace"], "kept");
        assert_eq!(h["x-api-key"], "upstream-secret");
    }

    #[test]
    fn upstream_headers_drop_the_agents_secrets_and_hops() {
        let mut h = map(&[
            ("authorization", "Bearer agent-token"),
            ("connection", "keep-alive, x-private"),
            ("x-private", "1"),
            ("keep-alive", "timeout=5"),
            ("te", "trailers"),
            ("x-forwarded-for", "6.6.6.6"),
            ("forwarded", "for=6.6.6.6"),
            ("x-kept", "yes"),
            ("host", "gw.example"),
            ("x-real-ip", "6.6.6.6"),
            ("x-forwarded-prefix", "/admin"),
            ("x-forwarded-port", "1"),
            ("x-original-uri", "/admin/x"),
            ("x-original-host", "admin.internal"),
            ("x-envoy-external-address", "1.2.3.4"),
            ("cookie", "a=1"),
            ("cookie", "b=2"),
        ]);
        let credential = (
            HeaderName::from_static("x-api-key"),
            HeaderValue::from_static("upstream-secret"),
        );
        let client = ClientOrigin::new("10.1.2.3:5000".parse().unwrap(), true);
        let origin = Origin {
            client: &client,
            host: Some("gw.example"),
        };
        to_upstream(&mut h, &origin, Some(&credential), false);
        for gone in [
            "authorization",
            "connection",
            "x-private",
            "keep-alive",
            "te",
            "host",
            "x-real-ip",
            "x-forwarded-prefix",
            "x-forwarded-port",
            "x-original-uri",
            "x-original-host",
            "x-envoy-external-address",
        ] {
            assert!(!h.contains_key(gone), "{gone} still there");
        }
        assert_eq!(h["x-kept"], "yes");
        let cookies: Vec<_> = h.get_all("cookie").iter().collect();
        assert_eq!(cookies, ["a=1; b=2"], "HTTP/2 cookie crumbs joined");
        assert_eq!(h["x-api-key"], "upstream-secret");
        assert_eq!(h["x-forwarded-for"], "10.1.2.3");
        assert_eq!(h["x-forwarded-proto"], "https");
        assert_eq!(h["x-forwarded-host"], "gw.example");
        assert_eq!(
            h["forwarded"],
            "for=10.1.2.3;proto=https;host=\"gw.example\""
        );
    }

    #[test]
    fn masked_connections_ask_for_decodable_whole_bodies() {
        let mut h = map(&[("range", "bytes=0-10"), ("accept-encoding", "zstd")]);
        let client = ClientOrigin::new("[::1]:5000".parse().unwrap(), false);
        let origin = Origin {
            client: &client,
            host: None,
        };
        to_upstream(&mut h, &origin, None, true);
        assert!(!h.contains_key("range"));
        assert_eq!(h["accept-encoding"], "gzip, deflate, br");
        assert_eq!(h["forwarded"], "for=\"[::1]\";proto=http");
    }

    #[test]
    fn plugins_never_see_the_token() {
        let h = map(&[("Authorization", "Bearer t"), ("X-Env", "prod")]);
        assert_eq!(
            for_plugins(&h),
            vec![("x-env".to_string(), "prod".to_string())]
        );
    }
}
