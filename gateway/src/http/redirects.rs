//! Redirects pointed back through the gateway. An upstream names its own
//! URLs (`Location: http://10.0.0.7:8080/v1/orders/7`, or `/v1/orders/7`);
//! passed on as they are, the first sends the agent straight to the
//! upstream, past the guardrails, the masking and the audit trail (and
//! shows the agent an internal address), the second resolves against the
//! gateway to a connection that does not exist. Like nginx's default
//! `proxy_redirect`, a `Location` or `Content-Location` naming the
//! upstream below the connection's base path becomes the same URL below
//! `/<connection>`. Others (another host, a path outside the base or with
//! dot segments, which the client would resolve out of the connection, a
//! relative reference, which already resolves against the agent's URL) are
//! left as they are.

use hyper::header::{CONTENT_LOCATION, HeaderMap, HeaderValue, LOCATION};
use hyper::http::uri::{Authority, Scheme};

/// Where a connection's upstream is mounted.
pub struct Mount<'a> {
    pub scheme: &'a Scheme,
    pub authority: &'a Authority,
    /// The upstream URL's path.
    pub base: &'a str,
    pub connection: &'a str,
}

impl Mount<'_> {
    /// Each value of each header on its own, whatever bytes it holds (read
    /// as Latin-1, which keeps every byte: only ASCII is looked at).
    pub fn rewrite(&self, headers: &mut HeaderMap) {
        for name in [LOCATION, CONTENT_LOCATION] {
            let values: Vec<HeaderValue> = headers.get_all(&name).iter().cloned().collect();
            let mut changed = false;
            let values: Vec<HeaderValue> = values
                .into_iter()
                .map(|v| {
                    let text: String = v.as_bytes().iter().map(|&b| char::from(b)).collect();
                    let rewritten = self.agent_url(&text).and_then(|url| {
                        let bytes: Vec<u8> = url.chars().map(|c| c as u8).collect();
                        HeaderValue::from_bytes(&bytes).ok()
                    });
                    match rewritten {
                        Some(r) => {
                            changed = true;
                            r
                        }
                        None => v,
                    }
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

    /// `value` as the agent reaches it, if it names a URL of the upstream
    /// below the base path.
    pub fn agent_url(&self, value: &str) -> Option<String> {
        let target = self.upstream_target(value)?;
        let split = target.find(['?', '#']).unwrap_or(target.len());
        // `/v1/../../admin` below `/api` would climb to another
        // connection once the client resolves it (`\` is `/` to browsers).
        let climbs = target[..split].contains('\\')
            || target[..split].split('/').any(|seg| {
                let seg = seg.replace("%2e", ".").replace("%2E", ".");
                seg == "." || seg == ".."
            });
        if climbs {
            return None;
        }
        let base = self.base.trim_end_matches('/');
        let below = match target[..split].strip_prefix(base) {
            Some(rest) if rest.is_empty() || rest.starts_with('/') => &target[base.len()..],
            _ => return None,
        };
        let slash = if below.starts_with('/') { "" } else { "/" };
        Some(format!("/{}{slash}{below}", self.connection))
    }

    /// The path (with query and fragment) of an absolute-path reference,
    /// or of an absolute or network-path URL naming the upstream.
    fn upstream_target(&self, value: &str) -> Option<String> {
        if value.starts_with('/') && !value.starts_with("//") {
            return Some(value.to_string());
        }
        let rest = match value.strip_prefix("//") {
            Some(rest) => rest,
            None => {
                let (scheme, rest) = value.split_once("://")?;
                if !scheme.eq_ignore_ascii_case(self.scheme.as_str()) {
                    return None;
                }
                rest
            }
        };
        let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
        let (authority, tail) = rest.split_at(end);
        if !self.is_upstream(authority) {
            return None;
        }
        Some(if tail.starts_with('/') {
            tail.to_string()
        } else {
            format!("/{tail}")
        })
    }

    fn is_upstream(&self, authority: &str) -> bool {
        let Ok(named) = authority.parse::<Authority>() else {
            return false;
        };
        let default = if *self.scheme == Scheme::HTTPS {
            443
        } else {
            80
        };
        !authority.contains('@')
            && named.host().eq_ignore_ascii_case(self.authority.host())
            && named.port_u16().unwrap_or(default) == self.authority.port_u16().unwrap_or(default)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rewritten(upstream: &str, location: &str) -> Option<String> {
        let uri: hyper::Uri = upstream.parse().unwrap();
        let mount = Mount {
            scheme: uri.scheme().unwrap(),
            authority: uri.authority().unwrap(),
            base: uri.path(),
            connection: "api",
        };
        mount.agent_url(location)
    }

    #[test]
    fn urls_of_the_upstream_below_its_base_come_back_through_the_gateway() {
        let up = "http://10.0.0.7:8080";
        for (location, agent) in [
            ("http://10.0.0.7:8080/orders/7?x=1#f", "/api/orders/7?x=1#f"),
            ("HTTP://10.0.0.7:8080", "/api/"),
            ("http://10.0.0.7:8080?q", "/api/?q"),
            ("//10.0.0.7:8080/a", "/api/a"),
            ("/orders/7", "/api/orders/7"),
        ] {
            assert_eq!(
                rewritten(up, location).as_deref(),
                Some(agent),
                "{location}"
            );
        }
        assert_eq!(
            rewritten("https://Svc.internal/v1/", "https://svc.internal:443/v1/a").as_deref(),
            Some("/api/a")
        );
        assert_eq!(rewritten("https://svc/v1", "/v1").as_deref(), Some("/api/"));
        assert_eq!(
            rewritten("http://[::1]:81/", "http://[::1]:81/x").as_deref(),
            Some("/api/x")
        );
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
        mount.rewrite(&mut h);
        let locations: Vec<_> = h.get_all(LOCATION).iter().collect();
        assert_eq!(locations, ["https://example.org/", "/api/x"]);
        assert_eq!(h[CONTENT_LOCATION].as_bytes(), b"/api/caf\xe9");
    }

    #[test]
    fn other_urls_are_left_alone() {
        for (up, location) in [
            ("http://10.0.0.7:8080", "http://10.0.0.7:8081/a"),
            ("http://10.0.0.7:8080", "https://10.0.0.7:8080/a"),
            ("http://10.0.0.7:8080", "http://elsewhere/a"),
            ("http://10.0.0.7:8080", "http://u@10.0.0.7:8080/a"),
            ("http://10.0.0.7:8080", "orders/7"),
            ("http://10.0.0.7:8080", "?page=2"),
            ("https://svc/v1", "/v10/a"),
            ("https://svc/v1", "/other"),
            ("https://svc/v1", "https://svc/v2/a"),
            ("http://svc", "mailto:a@b"),
            ("https://svc/v1", "https://svc/v1/../../admin/x"),
            ("https://svc/v1", "/v1/%2e%2E/other"),
            ("https://svc/v1", "/v1/a/./b"),
            ("https://svc/v1", "/v1/a\\..\\..\\b"),
        ] {
            assert_eq!(rewritten(up, location), None, "{up} {location}");
        }
    }
}
