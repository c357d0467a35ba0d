//! Helpers shared by the gateway's integration tests: test keys and token forging, a tiny
//! counting JWKS server, a real OpenID Provider (oidc-provider on node), a real PostgreSQL,
//! and the built plugin components.
#![allow(dead_code)]

pub mod gateway;
pub mod http;
pub mod jwks_server;
pub mod keys;
pub mod oidc;
/// The gateway as a process the audit suites stop, kill and restart.
pub mod process;
/// A client speaking the PostgreSQL wire protocol itself.
pub mod raw;
/// The HTTPS endpoint the audit-webhook sink posts to.
pub mod webhook;
// The same real-PostgreSQL harness as the `sluice-tests` suites, included by path: the
// suites that need the `sluice` binary live in this package, the only one given it.
#[path = "../../../tests/src/postgres.rs"]
pub mod postgres;

#[allow(unused_imports)] // not every suite that includes this module needs it
pub use postgres::free_port;

use std::path::{Path, PathBuf};

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

/// A component from `target/plugins/`, built by the `sluice-tests` build script (a
/// workspace-wide `cargo test` builds it first) or by `just build-plugins`.
pub fn component(name: &str) -> PathBuf {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../target/plugins")
        .join(format!("{name}.wasm"));
    assert!(
        path.exists(),
        "{} missing: run `just build-plugins` (or the workspace's `cargo test`)",
        path.display()
    );
    path
}
