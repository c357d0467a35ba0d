//! Outbound HTTP for plugins (`wasi:http/outgoing-handler`): denied unless
//! the gateway config grants the plugin a destination, e.g.
//!
//! ```toml
//! [plugins.grants.audit-webhook]
//! http = ["https://hooks.example.com/sluice"]
//! ```
//!
//! A grant is a scheme, a host, a port and a path prefix. The host checks
//! every request a plugin sends against its grants before anything is
//! dialled ([`send`]); a request outside them gets the guest-visible error
//! `HTTP-request-denied` and never leaves the gateway.

mod send;

use std::fmt;
use std::str::FromStr;

use hyper::Uri;
use hyper::http::uri::Scheme;

pub(crate) use send::OutboundHttp;

/// The environment variable in which a plugin with HTTP grants finds them
/// (space-separated), so that it can refuse at `init` a configuration whose
/// requests the host would refuse anyway.
pub const GRANTS_ENV: &str = "SLUICE_HTTP_GRANTS";

/// One granted destination: requests to this scheme, host and port whose
/// path is the grant's path or below it (`/sluice` covers `/sluice` and
/// `/sluice/x`, not `/sluice-admin`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpDestination {
    /// As written in the config, for messages.
    url: String,
    https: bool,
    /// Lower case; IPv6 without brackets.
    host: String,
    port: u16,
    /// Without a trailing `/`; empty for the whole host.
    path: String,
}

/// Why a grant was not accepted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("HTTP grant {url:?}: {reason}")]
pub struct BadDestination {
    url: String,
    reason: &'static str,
}

/// Why a plugin's request was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HttpRequestDenied {
    #[error("no outbound HTTP is granted to this plugin")]
    NothingGranted,
    #[error("{0} is not under a granted destination")]
    NotGranted(String),
    #[error(
        "{0}: user info, dot segments, encoded slashes, path parameters and doubly escaped \
         characters are not allowed in requests"
    )]
    Ambiguous(String),
}

impl FromStr for HttpDestination {
    type Err = BadDestination;

    fn from_str(s: &str) -> Result<Self, BadDestination> {
        let bad = |reason| BadDestination {
            url: s.to_string(),
            reason,
        };
        let url = url::Url::parse(s).map_err(|_| bad("not a URL"))?;
        let https = match url.scheme() {
            "https" => true,
            "http" => false,
            _ => return Err(bad("the scheme must be http or https")),
        };
        if !url.username().is_empty() || url.password().is_some() {
            return Err(bad(
                "credentials do not belong in a grant; give the plugin an env grant",
            ));
        }
        if url.query().is_some() || url.fragment().is_some() {
            return Err(bad(
                "a grant is a scheme, host, port and path; it takes no query or fragment",
            ));
        }
        let host = url.host_str().ok_or_else(|| bad("no host"))?;
        if host.contains('*') {
            return Err(bad("a grant names one host: wildcards are not supported"));
        }
        let port = url.port_or_known_default().ok_or_else(|| bad("no port"))?;
        // The parser drops dot segments (`/a/../b` is `/b`): check the path
        // as written too, so that a grant means what it says.
        let written = s
            .split_once("://")
            .and_then(|(_, rest)| rest.find('/').map(|i| &rest[i..]))
            .unwrap_or("");
        if ambiguous_path(url.path()) || ambiguous_path(written) {
            return Err(bad(
                "the path must not hold dot segments, encoded slashes, `;` or doubly escaped \
                 characters",
            ));
        }
        Ok(HttpDestination {
            url: s.to_string(),
            https,
            host: normal_host(host),
            port,
            path: url.path().trim_end_matches('/').to_string(),
        })
    }
}

impl<'de> serde::Deserialize<'de> for HttpDestination {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

impl fmt::Display for HttpDestination {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.url)
    }
}

impl HttpDestination {
    /// Whether a request to `uri` (absolute, as the host builds it from the
    /// guest's request) is within this destination.
    fn covers(&self, uri: &Uri) -> bool {
        let https = match uri.scheme() {
            Some(s) if *s == Scheme::HTTPS => true,
            Some(s) if *s == Scheme::HTTP => false,
            _ => return false,
        };
        let Some(host) = uri.host() else { return false };
        let port = uri.port_u16().unwrap_or(if https { 443 } else { 80 });
        let path = uri.path();
        https == self.https
            && normal_host(host) == self.host
            && port == self.port
            && (path == self.path
                || path
                    .strip_prefix(self.path.as_str())
                    .is_some_and(|rest| rest.starts_with('/')))
    }
}

/// Checks a request against a plugin's grants.
pub(crate) fn check(granted: &[HttpDestination], uri: &Uri) -> Result<(), HttpRequestDenied> {
    if granted.is_empty() {
        return Err(HttpRequestDenied::NothingGranted);
    }
    let shown = uri.to_string();
    // A server may decode `%2e%2e` or `%2f` after the prefix was compared,
    // or read `user@` as something else: refuse what could mean two things.
    let userinfo = uri.authority().is_some_and(|a| a.as_str().contains('@'));
    if userinfo || ambiguous_path(uri.path()) {
        return Err(HttpRequestDenied::Ambiguous(shown));
    }
    if granted.iter().any(|g| g.covers(uri)) {
        Ok(())
    } else {
        Err(HttpRequestDenied::NotGranted(shown))
    }
}

fn normal_host(host: &str) -> String {
    host.trim_start_matches('[')
        .trim_end_matches(']')
        .to_ascii_lowercase()
}

/// A path with `.`/`..` segments (also percent-encoded), encoded `/` or
/// `\`, or a raw `\`; with path parameters (`;`, which servlet containers
/// strip, so `/hooks/..;/admin` is `/admin` to them); or with an escaped `%`
/// before two hex digits (`%252e`, a dot to a server that decodes twice).
/// The HTTP data path refuses the same forms in agents' requests.
fn ambiguous_path(path: &str) -> bool {
    let lower = path.to_ascii_lowercase();
    if lower.contains("%2f") || lower.contains("%5c") || lower.contains('\\') {
        return true;
    }
    if lower.contains(';') || lower.contains("%3b") || double_escape(lower.as_bytes()) {
        return true;
    }
    lower
        .split('/')
        .map(|segment| segment.replace("%2e", "."))
        .any(|segment| segment == "." || segment == "..")
}

/// `%25` followed by two hex digits.
fn double_escape(path: &[u8]) -> bool {
    path.windows(5)
        .any(|w| w[..3] == *b"%25" && w[3].is_ascii_hexdigit() && w[4].is_ascii_hexdigit())
}

#[cfg(test)]
mod tests;
