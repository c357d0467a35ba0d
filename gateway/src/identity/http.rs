//! Fetching discovery documents and key sets.
//!
//! One client per issuer (its own CA bundle and timeout). Every request, including one to a
//! `jwks_uri` an IdP advertised, goes through [`check_fetch_url`]: HTTPS, or plain HTTP to a
//! loopback address only. Redirects are not followed (a redirect is an error), bodies are
//! capped, and nothing a token says is ever fetched.

use std::net::IpAddr;
use std::path::Path;
use std::time::Duration;

use openidconnect::http;
use openidconnect::{HttpRequest, HttpResponse};
use url::Url;

use super::error::{IdentityError, JwksError};

/// Largest discovery document or key set accepted.
pub(crate) const MAX_BODY_BYTES: usize = 1024 * 1024;

/// Whether Sluice may fetch keys from `url`: `https`, or `http` to 127.0.0.0/8, `::1` or
/// `localhost` (test and sidecar IdPs). Returns why not.
pub fn check_fetch_url(url: &Url) -> Result<(), &'static str> {
    match url.scheme() {
        "https" => {}
        "http" if is_loopback(url) => {}
        "http" => return Err("plain HTTP is only allowed for loopback issuers; use https"),
        _ => return Err("only https URLs can be fetched"),
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err("credentials in URLs are not allowed");
    }
    if url.host().is_none() {
        return Err("URL has no host");
    }
    Ok(())
}

/// Whether the URL's host is a loopback address or `localhost`.
pub(crate) fn is_loopback(url: &Url) -> bool {
    match url.host() {
        Some(url::Host::Ipv4(ip)) => IpAddr::V4(ip).is_loopback(),
        Some(url::Host::Ipv6(ip)) => IpAddr::V6(ip).is_loopback(),
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        None => false,
    }
}

/// An HTTP client for one issuer.
#[derive(Clone, Debug)]
pub(crate) struct HttpFetcher {
    client: reqwest::Client,
}

impl HttpFetcher {
    /// `loopback` disables proxies (a proxy from the environment must not see requests meant
    /// for a local IdP).
    pub fn new(
        issuer: &str,
        timeout: Duration,
        ca_file: Option<&Path>,
        loopback: bool,
    ) -> Result<Self, IdentityError> {
        let fail = |message: String| IdentityError::HttpClient {
            issuer: issuer.to_owned(),
            message,
        };
        let mut builder = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(timeout)
            .connect_timeout(timeout)
            // Key fetches are minutes apart: no idle connections to go stale across IdP restarts.
            .pool_max_idle_per_host(0)
            .user_agent(concat!("sluice/", env!("CARGO_PKG_VERSION")));
        if loopback {
            builder = builder.no_proxy();
        }
        if let Some(path) = ca_file {
            let pem = std::fs::read(path)
                .map_err(|e| fail(format!("ca_file {}: {e}", path.display())))?;
            let certs = reqwest::Certificate::from_pem_bundle(&pem)
                .map_err(|e| fail(format!("ca_file {}: {e}", path.display())))?;
            if certs.is_empty() {
                return Err(fail(format!("ca_file {}: no certificate", path.display())));
            }
            for cert in certs {
                builder = builder.add_root_certificate(cert);
            }
        }
        let client = builder.build().map_err(|e| fail(e.to_string()))?;
        Ok(Self { client })
    }

    /// GET `url` and return the body of a 200 response, at most [`MAX_BODY_BYTES`].
    pub async fn get(&self, url: &str, accept: &str) -> Result<Vec<u8>, JwksError> {
        let request = http_get(url, accept)?;
        let response = self.execute(request).await?;
        if response.status() != reqwest::StatusCode::OK {
            return Err(JwksError::Status {
                url: url.to_owned(),
                status: response.status().as_u16(),
            });
        }
        Ok(response.into_body())
    }

    /// Runs one request for `openidconnect` (and for [`get`](Self::get)), enforcing the URL
    /// policy and the body cap.
    pub async fn execute(&self, request: HttpRequest) -> Result<HttpResponse, JwksError> {
        let url_text = request.uri().to_string();
        let url = Url::parse(&url_text).map_err(|_| JwksError::UrlNotAllowed {
            url: url_text.clone(),
            why: "not a valid URL",
        })?;
        check_fetch_url(&url).map_err(|why| JwksError::UrlNotAllowed {
            url: url_text.clone(),
            why,
        })?;
        let http_err = |source| JwksError::Http {
            url: url_text.clone(),
            source,
        };
        let request = reqwest::Request::try_from(request).map_err(http_err)?;
        let mut response = self.client.execute(request).await.map_err(http_err)?;
        if response
            .content_length()
            .is_some_and(|len| len > MAX_BODY_BYTES as u64)
        {
            return Err(JwksError::TooLarge {
                url: url_text,
                limit: MAX_BODY_BYTES,
            });
        }
        let mut body = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(http_err)? {
            if body.len() + chunk.len() > MAX_BODY_BYTES {
                return Err(JwksError::TooLarge {
                    url: url_text,
                    limit: MAX_BODY_BYTES,
                });
            }
            body.extend_from_slice(&chunk);
        }
        let mut out = http::Response::new(body);
        *out.status_mut() = response.status();
        *out.headers_mut() = response.headers().clone();
        Ok(out)
    }
}

fn http_get(url: &str, accept: &str) -> Result<HttpRequest, JwksError> {
    http::Request::get(url)
        .header(http::header::ACCEPT, accept)
        .body(Vec::new())
        .map_err(|_| JwksError::UrlNotAllowed {
            url: url.to_owned(),
            why: "not a valid URL",
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fetch_policy() {
        let ok = [
            "https://idp.example.com/",
            "http://127.0.0.1:8080/jwks",
            "http://127.9.9.9/",
            "http://[::1]:9000/",
            "http://localhost:1/",
        ];
        let refused = [
            "http://idp.example.com/",
            "http://10.0.0.1/",
            "http://127.0.0.1.nip.io/",
            "ftp://127.0.0.1/",
            "file:///etc/passwd",
            "https://user:pw@idp.example.com/",
        ];
        for u in ok {
            assert_eq!(check_fetch_url(&Url::parse(u).unwrap()), Ok(()), "{u}");
        }
        for u in refused {
            assert!(check_fetch_url(&Url::parse(u).unwrap()).is_err(), "{u}");
        }
    }
}
