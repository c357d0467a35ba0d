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

/// Removes hop-by-hop headers, including those listed in `Connection`.
pub fn strip_hop_by_hop(headers: &mut HeaderMap) {
    for name in connection_named(headers) {
        headers.remove(name);
    }
    for name in &HOP_BY_HOP {
        headers.remove(name);
    }
}

/// Where the request came from, for the forwarding headers.
pub struct Origin<'a> {
    pub peer: SocketAddr,
    pub tls: bool,
    /// `Host` (HTTP/1.1) or `:authority` (HTTP/2) as the agent sent it.
    pub host: Option<&'a str>,
}

/// The headers sent upstream, built from the agent's in place.
pub fn to_upstream(
    headers: &mut HeaderMap,
    origin: &Origin<'_>,
    credential: Option<&(HeaderName, HeaderValue)>,
    masked: bool,
) {
    strip_hop_by_hop(headers);
    for name in [
        header::AUTHORIZATION,
        header::HOST,
        header::EXPECT,
        header::FORWARDED,
    ] {
        headers.remove(name);
    }
    for name in [&X_FORWARDED_FOR, &X_FORWARDED_PROTO, &X_FORWARDED_HOST] {
        headers.remove(name);
    }
    if masked {
        // A response the maskers must read has to arrive whole and in a
        // coding the gateway can undo.
        headers.remove(header::RANGE);
        headers.remove(header::IF_RANGE);
        headers.insert(
            header::ACCEPT_ENCODING,
            HeaderValue::from_static(super::decode::ACCEPTED),
        );
    }

    let ip = origin.peer.ip();
    let proto = if origin.tls { "https" } else { "http" };
    // The address is formatted once: `Display` of an address is a costly
    // part of a small exchange.
    let ip_text = ip.to_string();
    let mut forwarded = String::with_capacity(64);
    forwarded.push_str("for=");
    if ip.is_ipv4() {
        forwarded.push_str(&ip_text);
    } else {
        forwarded.push_str("\"[");
        forwarded.push_str(&ip_text);
        forwarded.push_str("]\"");
    }
    forwarded.push_str(";proto=");
    forwarded.push_str(proto);
    if let Ok(v) = HeaderValue::from_str(&ip_text) {
        headers.insert(X_FORWARDED_FOR.clone(), v);
    }
    headers.insert(X_FORWARDED_PROTO.clone(), HeaderValue::from_static(proto));
    if let Some(host) = origin.host.filter(|h| is_token_host(h)) {
        if let Ok(v) = HeaderValue::from_str(host) {
            headers.insert(X_FORWARDED_HOST.clone(), v);
        }
        forwarded.push_str(";host=\"");
        forwarded.push_str(host);
        forwarded.push('"');
    }
    if let Ok(v) = HeaderValue::from_str(&forwarded) {
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

/// The agent's headers as guardrails see them: lower-case names, values as
/// text, without hop-by-hop headers and without `Authorization`.
pub fn for_plugins(headers: &HeaderMap) -> Vec<(String, String)> {
    // Filtered while copied, not copied then stripped: one pass, no
    // second map.
    let named = connection_named(headers);
    headers
        .iter()
        .filter(|(n, _)| {
            *n != header::AUTHORIZATION && !HOP_BY_HOP.contains(n) && !named.contains(n)
        })
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
        ]);
        let credential = (
            HeaderName::from_static("x-api-key"),
            HeaderValue::from_static("upstream-secret"),
        );
        let origin = Origin {
            peer: "10.1.2.3:5000".parse().unwrap(),
            tls: true,
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
        ] {
            assert!(!h.contains_key(gone), "{gone} still there");
        }
        assert_eq!(h["x-kept"], "yes");
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
        let origin = Origin {
            peer: "[::1]:5000".parse().unwrap(),
            tls: false,
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
