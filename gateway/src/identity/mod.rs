//! The identity layer: who is calling, and may they use this connection?
//!
//! ```text
//! bearer token ─▶ Verifier::verify ─▶ Identity{subject, issuer, groups, claims}
//!                    │  keys: inline | file | HTTPS (OIDC discovery → JWKS), cached,
//!                    │        refreshed on a schedule and on an unknown kid (rate-limited)
//!                    └─ no issuer configured → embedded DevIssuer (refused in production)
//! Identity ─▶ ConnectionPolicy::check ─▶ open upstream
//! ```
//!
//! [`Verifier::authorize`] does both steps in that order. See `validator.rs` for the order
//! of token checks, `error.rs` for the reject reason codes, `metrics.rs` for metric names.
//!
//! Wiring (for the gateway):
//! * startup: `Verifier::from_config(&cfg.identity, &state_dir).await?` inside the Tokio
//!   runtime; call [`metrics::describe`] once after installing the metrics recorder;
//! * listeners: `verifier.verify(token)`, then the connection's `policy.check(&identity)`,
//!   before connecting upstream (PostgreSQL looks the connection up between the two, so
//!   only a verified identity learns which exist); answer with `err.reason()` (stable
//!   codes), log `err` (human message);
//! * admin: when `verifier.dev_issuer()` is `Some(dev)`, serve `dev.jwks_json()` at
//!   `/.well-known/jwks.json` and `dev.discovery_document()` at
//!   `/.well-known/openid-configuration`; `/readyz` can use `verifier.is_ready()` and the
//!   admin API `verifier.issuer_status()`;
//! * plugins and audit: [`Identity`] is `Serialize`; `claims_json()` is the exposed claims.

mod alg;
mod claims;
mod config;
mod dev_issuer;
mod discovery;
mod error;
mod http;
mod identity_value;
mod jose;
mod jwks;
mod key_cache;
pub mod metrics;
mod policy;
mod strict_json;
mod validator;

pub use alg::{Alg, KeyKind};
pub use claims::claim_path;
pub use config::{DevIssuerConfig, GroupMapping, IdentityConfig, IssuerConfig};
pub use dev_issuer::DevIssuer;
pub use error::{
    AccessDenied, AuthError, DenyReason, IdentityError, JwksError, RejectReason, TokenRejected,
};
pub use http::check_fetch_url;
pub use identity_value::Identity;
pub use jwks::{KeySet, PublicKey};
pub use key_cache::IssuerStatus;
pub use policy::ConnectionPolicy;
pub use validator::{Verifier, offline_key_problems};
