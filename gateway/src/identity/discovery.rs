//! OIDC discovery (`/.well-known/openid-configuration`) with the `openidconnect` crate.
//!
//! `openidconnect` fetches and parses the provider metadata, checks that its `issuer` is
//! byte-for-byte the configured one (OpenID Connect Discovery §4.3), and fetches the JWKS
//! it names. Every request goes through Sluice's [`HttpFetcher`] (URL policy, no redirects,
//! body cap). The JWKS bytes fetched during discovery are kept and parsed by Sluice's own
//! strict parser ([`KeySet::parse`]), so discovery costs two requests, not three.

use std::sync::{Arc, Mutex};

use openidconnect::core::CoreProviderMetadata;
use openidconnect::{DiscoveryError, HttpRequest, IssuerUrl};

use super::error::JwksError;
use super::http::HttpFetcher;
use super::jwks::KeySet;

/// Response bodies seen during one discovery, by request URL.
type SeenBodies = Arc<Mutex<Vec<(String, Vec<u8>)>>>;

/// What discovery found.
pub(crate) struct Discovered {
    pub jwks_uri: String,
    pub keys: KeySet,
}

/// Runs discovery for `issuer` and returns its `jwks_uri` with the key set found there.
pub(crate) async fn discover(fetcher: &HttpFetcher, issuer: &str) -> Result<Discovered, JwksError> {
    let fail = |message: String| JwksError::Discovery {
        issuer: issuer.to_owned(),
        message,
    };
    let issuer_url = IssuerUrl::new(issuer.to_owned()).map_err(|e| fail(e.to_string()))?;

    // Bodies seen during discovery, by URL, so the JWKS is parsed from the same bytes.
    let seen: SeenBodies = Arc::default();
    let client = |request: HttpRequest| {
        let fetcher = fetcher.clone();
        let seen = Arc::clone(&seen);
        async move {
            let url = request.uri().to_string();
            let response = fetcher.execute(request).await?;
            if let Ok(mut seen) = seen.lock() {
                seen.push((url, response.body().clone()));
            }
            Ok::<_, JwksError>(response)
        }
    };
    let metadata = CoreProviderMetadata::discover_async(issuer_url, &client)
        .await
        .map_err(|e| {
            // Discovery fetches the metadata, then the key set: a second
            // body seen means the metadata was fine and the JWKS was not.
            let fetched = seen.lock().map(|s| s.len()).unwrap_or(0);
            let what = match fetched {
                0 | 1 => "provider metadata",
                _ => "key set (JWKS)",
            };
            match e {
                // Keep our own error (URL policy, size cap, transport) intact.
                DiscoveryError::Request(inner) => inner,
                DiscoveryError::Response(status, _, message) => {
                    fail(format!("{what}: {message} ({status})"))
                }
                DiscoveryError::Parse(e) => fail(format!("invalid {what}: {e}")),
                other => fail(other.to_string()),
            }
        })?;

    let jwks_uri = metadata.jwks_uri().url().as_str().to_owned();
    // The request URI as openidconnect built it, normalised the way `http` prints it.
    let requested = metadata
        .jwks_uri()
        .to_string()
        .parse::<openidconnect::http::Uri>()
        .map(|uri| uri.to_string())
        .unwrap_or_default();
    let body = seen
        .lock()
        .ok()
        .and_then(|seen| {
            seen.iter()
                .rev()
                .find(|(url, _)| *url == requested)
                .map(|(_, body)| body.clone())
        })
        .ok_or_else(|| fail("the JWKS fetched during discovery was not recorded".into()))?;
    let keys = KeySet::parse(&body)?;
    Ok(Discovered { jwks_uri, keys })
}
