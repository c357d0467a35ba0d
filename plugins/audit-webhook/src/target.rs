//! The endpoint URL, and whether the gateway granted it.
//!
//! The gateway is what enforces the grant: it checks every request this
//! plugin sends and refuses anything outside `[plugins.grants.NAME] http`.
//! The same check at `init` only turns a request that would be refused on
//! every delivery into a configuration error at load time.

/// The environment variable in which the gateway lists the granted
/// destinations, space-separated.
pub const GRANTS_ENV: &str = "SLUICE_HTTP_GRANTS";

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Url {
    pub https: bool,
    /// `host[:port]` as written.
    pub authority: String,
    /// Lower case, IPv6 without brackets.
    pub host: String,
    pub port: u16,
    /// Path and query, at least `/`.
    pub path_and_query: String,
}

impl Url {
    pub fn parse(url: &str) -> Result<Url, String> {
        let bad = |why: &str| format!("url {url:?}: {why}");
        let (https, rest) = if let Some(rest) = url.strip_prefix("https://") {
            (true, rest)
        } else if let Some(rest) = url.strip_prefix("http://") {
            (false, rest)
        } else {
            return Err(bad("must start with https:// or http://"));
        };
        let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
        let (authority, path) = rest.split_at(end);
        if authority.is_empty() {
            return Err(bad("has no host"));
        }
        if authority.contains('@') {
            return Err(bad(
                "credentials do not belong in the URL; use `headers` with a value from `env`",
            ));
        }
        if path.contains('#') {
            return Err(bad("takes no fragment"));
        }
        if authority
            .chars()
            .any(|c| c.is_whitespace() || c.is_control())
        {
            return Err(bad("the host holds spaces or control characters"));
        }
        let (host, port) = split_port(authority).ok_or_else(|| bad("has a bad port"))?;
        let path_and_query = match path {
            "" => "/".to_string(),
            p if p.starts_with('?') => format!("/{p}"),
            p => p.to_string(),
        };
        Ok(Url {
            https,
            authority: authority.to_string(),
            host: host
                .trim_start_matches('[')
                .trim_end_matches(']')
                .to_ascii_lowercase(),
            port: port.unwrap_or(if https { 443 } else { 80 }),
            path_and_query,
        })
    }

    pub fn path(&self) -> &str {
        self.path_and_query
            .split_once('?')
            .map_or(self.path_and_query.as_str(), |(p, _)| p)
    }

    /// Whether this URL is within `grant`: same scheme, host and port, and a
    /// path at or below the grant's.
    pub fn is_under(&self, grant: &Url) -> bool {
        let prefix = grant.path().trim_end_matches('/');
        let path = self.path();
        self.https == grant.https
            && self.host == grant.host
            && self.port == grant.port
            && (path == prefix
                || path
                    .strip_prefix(prefix)
                    .is_some_and(|rest| rest.starts_with('/')))
    }
}

/// `host[:port]`, IPv6 hosts in brackets.
fn split_port(authority: &str) -> Option<(&str, Option<u16>)> {
    let port_at = match authority.rfind(':') {
        Some(i) if !authority[i..].contains(']') => i,
        _ => return Some((authority, None)),
    };
    let port = authority[port_at + 1..].parse().ok()?;
    Some((&authority[..port_at], Some(port)))
}

/// Checks `url` against the destinations the gateway lists in
/// [`GRANTS_ENV`] (`None`: the variable is not set, nothing is granted).
pub fn check_granted(url: &Url, shown: &str, granted: Option<&str>) -> Result<(), String> {
    let grant_hint = format!(
        "grant it in the gateway config: [plugins.grants.<this plugin>] http = [\"{shown}\"]"
    );
    let Some(granted) = granted else {
        return Err(format!(
            "url {shown:?}: no outbound HTTP is granted to this plugin; {grant_hint}"
        ));
    };
    let covered = granted
        .split_whitespace()
        .filter_map(|g| Url::parse(g).ok())
        .any(|g| url.is_under(&g));
    if covered {
        Ok(())
    } else {
        Err(format!(
            "url {shown:?} is not under a destination granted to this plugin ({granted}); {grant_hint}"
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_what_the_gateway_accepts() {
        let u = Url::parse("https://Hooks.example.com/sluice?x=1").unwrap();
        assert!(u.https);
        assert_eq!(u.host, "hooks.example.com");
        assert_eq!(u.port, 443);
        assert_eq!(u.path_and_query, "/sluice?x=1");
        assert_eq!(u.path(), "/sluice");
        let u = Url::parse("http://[::1]:9000").unwrap();
        assert_eq!((u.host.as_str(), u.port), ("::1", 9000));
        assert_eq!(u.path_and_query, "/");
        for bad in [
            "ftp://x/",
            "https://",
            "https://u:p@x/",
            "https://x:99999/",
            "https://x/#f",
            "hooks.example.com",
        ] {
            assert!(Url::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn the_url_must_be_under_a_grant() {
        let grants = Some("https://hooks.example.com/sluice http://127.0.0.1:9000");
        for (url, ok) in [
            ("https://hooks.example.com/sluice", true),
            ("https://hooks.example.com/sluice/events?k=1", true),
            ("https://hooks.example.com/sluice-admin", false),
            ("http://hooks.example.com/sluice", false),
            ("https://hooks.example.com:8443/sluice", false),
            ("http://127.0.0.1:9000/anything", true),
            ("http://127.0.0.1:9001/", false),
        ] {
            let u = Url::parse(url).unwrap();
            assert_eq!(check_granted(&u, url, grants).is_ok(), ok, "{url}");
        }
        let u = Url::parse("https://hooks.example.com/sluice").unwrap();
        let err = check_granted(&u, "https://hooks.example.com/sluice", None).unwrap_err();
        assert!(err.contains("no outbound HTTP is granted"), "{err}");
    }
}
