//! Helpers shared by the identity integration tests: test keys and token forging, a tiny
//! counting JWKS server, and a real OpenID Provider (oidc-provider on node).
#![allow(dead_code)]

pub mod jwks_server;
pub mod keys;
pub mod oidc;

use std::path::Path;

use sluice::identity::{IdentityConfig, IssuerConfig, Verifier};

/// Seconds since the epoch.
pub fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// A verifier for one issuer.
pub async fn verifier_for(issuer: IssuerConfig) -> Verifier {
    let cfg = IdentityConfig {
        issuers: vec![issuer],
        ..IdentityConfig::default()
    };
    Verifier::from_config(&cfg, Path::new("/nonexistent-state-dir"))
        .await
        .expect("verifier")
}
