//! Redirects pointed back through the gateway. An upstream names its own
//! URLs (`Location: http://10.0.0.7:8080/v1/orders/7`, `/v1/orders/7`,
//! `../7`), meant to be read against the URL it was asked for. Passed on as
//! they are, an absolute one sends the agent straight to the upstream,
//! past the guardrails, the masking and the audit trail (and shows it an
//! internal address), and a relative one is read against the gateway's URL
//! instead: `/billing/x` or `../../billing/x` lands on another of the
//! gateway's connections, with the agent's token (a 307 re-sends the body
//! there).
//!
//! So each `Location` and `Content-Location` value is resolved as a client
//! resolves it (WHATWG URL rules: dot segments, `%2e`, `\`), against the
//! upstream URL of the request. Naming the upstream below the connection's
//! base path, it becomes the same URL below `/<connection>`, as nginx's
//! default `proxy_redirect` does; a relative one naming the upstream
//! elsewhere becomes that absolute upstream URL, which leads nowhere on
//! the gateway; a URL of another host is left as it is.

use hyper::Uri;
use hyper::header::{CONTENT_LOCATION, HeaderMap, HeaderValue, LOCATION};
use hyper::http::uri::{Authority, Scheme};
use url::Url;

/// Where a connection's upstream is mounted.
pub struct Mount<'a> {
    pub scheme: &'a Scheme,
    pub authority: &'a Authority,
    /// The upstream URL's path.
    pub base: &'a str,
    pub connection: &'a str,
}

impl Mount<'_> {
    /// Each value of each header on its own. `request`, the upstream URL
    /// of the exchange, is only made when there is a value to read.
    pub fn rewrite(&self, headers: &mut HeaderMap, request: impl FnOnce() -> Option<Uri>) {
        if !headers.contains_key(LOCATION) && !headers.contains_key(CONTENT_LOCATION) {
            return;
        }
        let Some(request) = request().and_then(|uri| Url::parse(&uri.to_string()).ok()) else {
            return;
        };
        for name in [LOCATION, CONTENT_LOCATION] {
            let values: Vec<HeaderValue> = headers.get_all(&name).iter().cloned().collect();
            let mut changed = false;
            let values: Vec<HeaderValue> = values
                .into_iter()
                .map(|v| {
                    let rewritten = self
                        .agent_url(&request, &text_of(v.as_bytes()))
                        .and_then(|url| HeaderValue::from_str(&url).ok());
                    changed |= rewritten.is_some();
                    rewritten.unwrap_or(v)
                })
                .collect();
            if changed {
                headers.remove(&name);
                for v in values {
                    headers.append(name.clone(), v);
                }
            }
        }
    }

    /// `value` as the agent should see it, when it names the upstream;
    /// `None` leaves it as it is.
    pub fn agent_url(&self, request: &Url, value: &str) -> Option<String> {
        let resolved = request.join(value).ok()?;
        if !self.is_upstream(&resolved) {
            return None;
        }
        let base = self.base.trim_end_matches('/');
        let path = resolved.path();
        match path.strip_prefix(base) {
            Some(rest) if rest.is_empty() || rest.starts_with('/') => {
                let mut out = format!("/{}", self.connection);
                out.push_str(if rest.is_empty() { "/" } else { rest });
                if let Some(q) = resolved.query() {
                    out.push('?');
                    out.push_str(q);
                }
                if let Some(f) = resolved.fragment() {
                    out.push('#');
                    out.push_str(f);
                }
                Some(out)
            }
            // Outside the mount: an absolute URL stays as the upstream
            // wrote it; a relative one is made absolute so that it cannot
            // land on the gateway.
            _ if is_relative(value) => Some(resolved.to_string()),
            _ => None,
        }
    }

    fn is_upstream(&self, url: &Url) -> bool {
        let default = if *self.scheme == Scheme::HTTPS {
            443
        } else {
            80
        };
        url.scheme() == self.scheme.as_str()
            && url.username().is_empty()
            && url.password().is_none()
            && url
                .host_str()
                .is_some_and(|h| h.eq_ignore_ascii_case(self.authority.host()))
            && url.port_or_known_default() == Some(self.authority.port_u16().unwrap_or(default))
    }
}

/// A header value as text: UTF-8 where it is (as browsers read
/// `Location`), else each byte as the Latin-1 character it is.
fn text_of(bytes: &[u8]) -> String {
    match std::str::from_utf8(bytes) {
        Ok(s) => s.to_string(),
        Err(_) => bytes.iter().map(|&b| char::from(b)).collect(),
    }
}

/// A reference the URL parser cannot read without a base (`/x`, `../x`,
/// `x`, `?q`), except one naming its own host (`//host/x`, also spelled
/// with backslashes).
fn is_relative(value: &str) -> bool {
    let names_host = value
        .trim_start()
        .get(..2)
        .is_some_and(|two| two.chars().all(|c| c == '/' || c == '\\'));
    matches!(
        Url::parse(value),
        Err(url::ParseError::RelativeUrlWithoutBase)
    ) && !names_host
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rewritten(upstream: &str, request: &str, location: &str) -> Option<String> {
        let uri: hyper::Uri = upstream.parse().unwrap();
        let mount = Mount {
            scheme: uri.scheme().unwrap(),
            authority: uri.authority().unwrap(),
            base: uri.path(),
            connection: "api",
        };
        mount.agent_url(&Url::parse(request).unwrap(), location)
    }

    #[test]
    fn urls_of_the_upstream_below_its_base_come_back_through_the_gateway() {
        let (up, req) = ("http://10.0.0.7:8080", "http://10.0.0.7:8080/orders/7");
        for (location, agent) in [
            ("http://10.0.0.7:8080/orders/7?x=1#f", "/api/orders/7?x=1#f"),
            ("HTTP://10.0.0.7:8080", "/api/"),
            ("http://10.0.0.7:8080?q", "/api/?q"),
            ("//10.0.0.7:8080/a", "/api/a"),
            ("/orders/7", "/api/orders/7"),
            ("8", "/api/orders/8"),
            ("?page=2", "/api/orders/7?page=2"),
            ("/a/./b/../c", "/api/a/c"),
            ("/caf\u{e9}", "/api/caf%C3%A9"),
        ] {
            assert_eq!(
                rewritten(up, req, location).as_deref(),
                Some(agent),
                "{location}"
            );
        }
        let (up, req) = ("https://Svc.internal/v1/", "https://svc.internal/v1/x");
        assert_eq!(
            rewritten(up, req, "https://svc.internal:443/v1/a").as_deref(),
            Some("/api/a")
        );
        assert_eq!(rewritten(up, req, "/v1").as_deref(), Some("/api/"));
        assert_eq!(
            rewritten("http://[::1]:81/", "http://[::1]:81/", "http://[::1]:81/x").as_deref(),
            Some("/api/x")
        );
    }

    #[test]
    fn relative_references_outside_the_base_name_the_upstream() {
        let (up, req) = ("https://svc/v1", "https://svc/v1/orders/7");
        for (location, agent) in [
            ("/billing/x", "https://svc/billing/x"),
            ("../../billing/x", "https://svc/billing/x"),
            ("/v1/%2e%2e/other", "https://svc/other"),
            ("/v1/a\\..\\..\\b", "https://svc/b"),
            ("/v10/a", "https://svc/v10/a"),
        ] {
            assert_eq!(
                rewritten(up, req, location).as_deref(),
                Some(agent),
                "{location}"
            );
        }
    }

    #[test]
    fn other_urls_are_left_alone() {
        let req = "http://10.0.0.7:8080/a";
        for (up, location) in [
            ("http://10.0.0.7:8080", "http://10.0.0.7:8081/a"),
            ("http://10.0.0.7:8080", "https://10.0.0.7:8080/a"),
            ("http://10.0.0.7:8080", "http://elsewhere/a"),
            ("http://10.0.0.7:8080", "//elsewhere/a"),
            ("http://10.0.0.7:8080", "http://u@10.0.0.7:8080/a"),
            ("http://10.0.0.7:8080/v1", "http://10.0.0.7:8080/v2/a"),
            ("http://10.0.0.7:8080", "mailto:a@b"),
        ] {
            assert_eq!(rewritten(up, req, location), None, "{up} {location}");
        }
    }

    #[test]
    fn every_value_is_rewritten_whatever_its_bytes() {
        let uri: hyper::Uri = "http://up:8080/v1".parse().unwrap();
        let mount = Mount {
            scheme: uri.scheme().unwrap(),
            authority: uri.authority().unwrap(),
            base: uri.path(),
            connection: "api",
        };
        let mut h = HeaderMap::new();
        h.append(LOCATION, HeaderValue::from_static("https://example.org/"));
        h.append(LOCATION, HeaderValue::from_static("http://up:8080/v1/x"));
        h.append(
            CONTENT_LOCATION,
            HeaderValue::from_bytes(b"http://up:8080/v1/caf\xe9").unwrap(),
        );
        mount.rewrite(&mut h, || Some("http://up:8080/v1/y".parse().unwrap()));
        let locations: Vec<_> = h.get_all(LOCATION).iter().collect();
        assert_eq!(locations, ["https://example.org/", "/api/x"]);
        assert_eq!(h[CONTENT_LOCATION], "/api/caf%C3%A9");
    }
}
