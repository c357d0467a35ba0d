//! `[identity]` configuration.
//!
//! Every field says its default. None of them can change at runtime: the lead's config
//! reload builds a new [`Verifier`](super::Verifier) from a new `IdentityConfig`.
//!
//! ```toml
//! [identity]
//! production = true          # refuse the embedded dev issuer
//! leeway_secs = 30           # clock skew allowed on exp / nbf / iat
//! max_token_bytes = 16384    # longer tokens are rejected before any parsing
//! exposed_claims = ["client_id", "realm_access.roles"]   # copied into Identity::claims
//!
//! [[identity.issuers]]
//! issuer = "https://idp.example.com"     # OIDC discovery + JWKS, refreshed in the background
//! audiences = ["sluice"]
//! groups_claim = "realm_access.roles"    # dotted path into the claims
//!
//! [[identity.group_mappings]]            # add Sluice groups when all conditions match
//! issuer = "https://idp.example.com"
//! claim = "client_id"
//! value = "billing-agent"
//! groups = ["agents"]
//! ```

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::alg::Alg;
use super::error::IdentityError;
use super::http::check_fetch_url;

/// `[identity]`.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct IdentityConfig {
    /// Refuse to start with the embedded dev issuer (no `[[identity.issuers]]`). Default false.
    #[serde(default)]
    pub production: bool,
    /// Clock skew tolerated on `exp`, `nbf` and `iat`, in seconds. Default 30, at most 300.
    #[serde(default = "default_leeway_secs")]
    pub leeway_secs: u64,
    /// Longest token accepted, in bytes; checked before anything is decoded. Default 16384.
    #[serde(default = "default_max_token_bytes")]
    pub max_token_bytes: usize,
    /// Trusted issuers. Empty = the embedded dev issuer (refused when `production`).
    #[serde(default)]
    pub issuers: Vec<IssuerConfig>,
    /// Extra Sluice groups derived from issuer / subject / claims. Default none.
    #[serde(default)]
    pub group_mappings: Vec<GroupMapping>,
    /// Claims (dotted paths allowed) copied into [`Identity::claims`](super::Identity::claims)
    /// for plugins and audit. Default none: plugins see subject, issuer and groups only.
    #[serde(default)]
    pub exposed_claims: Vec<String>,
    /// The embedded dev issuer, used only when `issuers` is empty.
    #[serde(default)]
    pub dev_issuer: DevIssuerConfig,
}

impl Default for IdentityConfig {
    fn default() -> Self {
        Self {
            production: false,
            leeway_secs: default_leeway_secs(),
            max_token_bytes: default_max_token_bytes(),
            issuers: Vec::new(),
            group_mappings: Vec::new(),
            exposed_claims: Vec::new(),
            dev_issuer: DevIssuerConfig::default(),
        }
    }
}

/// One `[[identity.issuers]]` entry.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct IssuerConfig {
    /// Compared byte for byte with the token's `iss`, and the base of OIDC discovery.
    pub issuer: String,
    /// The token's `aud` must name at least one of these. Required, non-empty.
    pub audiences: Vec<String>,
    /// Claim holding the groups: a string or an array of strings. A dotted path such as
    /// `realm_access.roles` descends into objects (a top-level claim whose name contains dots
    /// wins over the path). Default `"groups"`.
    #[serde(default = "default_groups_claim")]
    pub groups_claim: String,
    /// JWKS URL; skips discovery. Default: the `jwks_uri` of the discovery document.
    #[serde(default)]
    pub jwks_uri: Option<String>,
    /// A JWKS file for offline deployments; re-read on the refresh schedule and on an
    /// unknown `kid`.
    #[serde(default)]
    pub jwks_file: Option<PathBuf>,
    /// A JWKS document inline in the config.
    #[serde(default)]
    pub jwks_inline: Option<String>,
    /// Accepted `alg` values. Default: RS256 RS384 RS512 PS256 PS384 PS512 ES256 ES384 EdDSA.
    /// `none` and HMAC algorithms cannot be enabled.
    #[serde(default)]
    pub allowed_algs: Option<Vec<String>>,
    /// Accepted `typ` header values (case-insensitive, `application/` prefix optional), e.g.
    /// `["at+jwt"]` to accept RFC 9068 access tokens only. When set, `typ` is required.
    /// Default: `typ` absent, `JWT` or `at+jwt`.
    #[serde(default)]
    pub required_typ: Option<Vec<String>>,
    /// Scheduled JWKS refresh, in seconds. Default 300. 0 disables the schedule.
    #[serde(default = "default_refresh_interval_secs")]
    pub refresh_interval_secs: u64,
    /// Minimum time between two refreshes triggered by an unknown `kid`, in seconds, so a
    /// flood of bogus kids cannot hammer the IdP. Default 30, at least 1.
    #[serde(default = "default_refresh_cooldown_secs")]
    pub refresh_cooldown_secs: u64,
    /// Timeout of one discovery or JWKS request, in seconds. Default 10.
    #[serde(default = "default_http_timeout_secs")]
    pub http_timeout_secs: u64,
    /// Refuse tokens whose `exp` is further ahead than this many seconds
    /// (plus the leeway), whatever the issuer signed: a leaked long-lived
    /// token stays usable only so long. Default: no limit.
    #[serde(default)]
    pub max_token_lifetime_secs: Option<u64>,
    /// Extra PEM CA bundle trusted for this issuer's HTTPS endpoints (in addition to the
    /// system and Mozilla roots).
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
}

impl IssuerConfig {
    /// An issuer with the defaults for everything but `issuer` and `audiences`.
    pub fn new(issuer: impl Into<String>, audiences: Vec<String>) -> Self {
        Self {
            issuer: issuer.into(),
            audiences,
            groups_claim: default_groups_claim(),
            jwks_uri: None,
            jwks_file: None,
            jwks_inline: None,
            allowed_algs: None,
            required_typ: None,
            refresh_interval_secs: default_refresh_interval_secs(),
            refresh_cooldown_secs: default_refresh_cooldown_secs(),
            http_timeout_secs: default_http_timeout_secs(),
            max_token_lifetime_secs: None,
            ca_file: None,
        }
    }

    /// The accepted algorithms, parsed.
    pub(crate) fn algs(&self) -> Result<Vec<Alg>, IdentityError> {
        match &self.allowed_algs {
            None => Ok(Alg::ALL.to_vec()),
            Some(names) => names
                .iter()
                .map(|name| {
                    Alg::from_name(name).ok_or_else(|| {
                        IdentityError::Config(format!(
                            "issuer {}: allowed_algs: {name:?} is not a supported asymmetric \
                             algorithm (supported: {})",
                            self.issuer,
                            Alg::ALL.map(Alg::name).join(", ")
                        ))
                    })
                })
                .collect(),
        }
    }
}

/// One `[[identity.group_mappings]]` entry: when every condition that is set matches, the
/// identity gains `groups`. At least one condition is required.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq, Default)]
#[serde(deny_unknown_fields)]
pub struct GroupMapping {
    /// The token's issuer equals this.
    #[serde(default)]
    pub issuer: Option<String>,
    /// The token's subject equals this.
    #[serde(default)]
    pub subject: Option<String>,
    /// The identity already has this group (from the token's groups claim).
    #[serde(default)]
    pub group: Option<String>,
    /// A claim (dotted path allowed) that must equal `value` (or contain it, for arrays).
    #[serde(default)]
    pub claim: Option<String>,
    /// See `claim`.
    #[serde(default)]
    pub value: Option<String>,
    /// Sluice groups added.
    pub groups: Vec<String>,
}

/// `[identity.dev_issuer]`: the embedded issuer used when no issuer is configured.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct DevIssuerConfig {
    /// The `iss` of dev tokens and of the discovery document; should be the admin
    /// listener's base URL, where the JWKS is served. Default `http://127.0.0.1:9090`.
    #[serde(default = "default_dev_issuer")]
    pub issuer: String,
    /// The `aud` of dev tokens, and the audience the verifier expects. Default `sluice`.
    #[serde(default = "default_dev_audience")]
    pub audience: String,
    /// Longest lifetime `sluice token issue` accepts, in seconds. Default 7 days.
    #[serde(default = "default_dev_max_ttl_secs")]
    pub max_ttl_secs: u64,
}

impl Default for DevIssuerConfig {
    fn default() -> Self {
        Self {
            issuer: default_dev_issuer(),
            audience: default_dev_audience(),
            max_ttl_secs: default_dev_max_ttl_secs(),
        }
    }
}

/// Upper bound of `leeway_secs`.
const MAX_LEEWAY_SECS: u64 = 300;

fn default_leeway_secs() -> u64 {
    30
}
fn default_max_token_bytes() -> usize {
    16 * 1024
}
fn default_groups_claim() -> String {
    "groups".to_owned()
}
fn default_refresh_interval_secs() -> u64 {
    300
}
fn default_refresh_cooldown_secs() -> u64 {
    30
}
fn default_http_timeout_secs() -> u64 {
    10
}
fn default_dev_issuer() -> String {
    "http://127.0.0.1:9090".to_owned()
}
fn default_dev_audience() -> String {
    "sluice".to_owned()
}
fn default_dev_max_ttl_secs() -> u64 {
    7 * 24 * 3600
}

impl IdentityConfig {
    /// Checks everything that can be checked without the network: at most one key source
    /// per issuer, URLs that may be fetched, algorithms, mappings. `sluice config check`
    /// calls this; [`Verifier::from_config`](super::Verifier::from_config) does too.
    pub fn validate(&self) -> Result<(), IdentityError> {
        let err = |msg: String| Err(IdentityError::Config(msg));
        if self.max_token_bytes < 64 {
            return err(format!(
                "max_token_bytes = {} is too small",
                self.max_token_bytes
            ));
        }
        if self.leeway_secs > MAX_LEEWAY_SECS {
            return err(format!(
                "leeway_secs = {} is more than {MAX_LEEWAY_SECS}: that would keep expired tokens alive",
                self.leeway_secs
            ));
        }
        if self.production && self.issuers.is_empty() {
            return Err(IdentityError::DevIssuerInProduction);
        }
        let mut seen = std::collections::HashSet::new();
        for issuer in &self.issuers {
            issuer.validate()?;
            if !seen.insert(issuer.issuer.as_str()) {
                return err(format!("issuer {} is configured twice", issuer.issuer));
            }
        }
        for (i, mapping) in self.group_mappings.iter().enumerate() {
            mapping
                .validate()
                .or_else(|m| err(format!("group_mappings[{i}]: {m}")))?;
        }
        for claim in &self.exposed_claims {
            if claim.is_empty() {
                return err("exposed_claims: empty claim name".to_owned());
            }
        }
        if self.issuers.is_empty()
            && (self.dev_issuer.issuer.is_empty() || self.dev_issuer.audience.is_empty())
        {
            return err("dev_issuer: issuer and audience must not be empty".to_owned());
        }
        Ok(())
    }
}

impl IssuerConfig {
    fn validate(&self) -> Result<(), IdentityError> {
        let name = &self.issuer;
        let err = |msg: String| Err(IdentityError::Config(format!("issuer {name}: {msg}")));
        if name.is_empty() {
            return Err(IdentityError::Config(
                "an issuer has an empty `issuer`".into(),
            ));
        }
        if self.audiences.is_empty() || self.audiences.iter().any(String::is_empty) {
            return err("`audiences` must list at least one non-empty audience".into());
        }
        if self.groups_claim.is_empty() {
            return err("`groups_claim` must not be empty".into());
        }
        let sources = [
            self.jwks_uri.is_some(),
            self.jwks_file.is_some(),
            self.jwks_inline.is_some(),
        ];
        if sources.iter().filter(|s| **s).count() > 1 {
            return err("set at most one of jwks_uri, jwks_file, jwks_inline".into());
        }
        let remote = self.jwks_file.is_none() && self.jwks_inline.is_none();
        if remote {
            let target = self.jwks_uri.as_deref().unwrap_or(name);
            let url = match url::Url::parse(target) {
                Ok(url) => url,
                Err(e) => return err(format!("{target}: {e}")),
            };
            if let Err(why) = check_fetch_url(&url) {
                return err(format!("{target}: {why}"));
            }
        }
        let algs = self.algs()?;
        if algs.is_empty() {
            return err("`allowed_algs` is empty".into());
        }
        if let Some(typs) = &self.required_typ
            && (typs.is_empty() || typs.iter().any(String::is_empty))
        {
            return err("`required_typ` must list non-empty values".into());
        }
        if self.max_token_lifetime_secs == Some(0) {
            return err("`max_token_lifetime_secs` must be at least 1".into());
        }
        if self.refresh_cooldown_secs == 0 {
            return err("`refresh_cooldown_secs` must be at least 1 (it protects the IdP)".into());
        }
        if self.http_timeout_secs == 0 {
            return err("`http_timeout_secs` must be at least 1".into());
        }
        Ok(())
    }
}

impl GroupMapping {
    fn validate(&self) -> Result<(), String> {
        if self.claim.is_some() != self.value.is_some() {
            return Err("`claim` and `value` go together".into());
        }
        let conditions = [
            self.issuer.is_some(),
            self.subject.is_some(),
            self.group.is_some(),
            self.claim.is_some(),
        ];
        if !conditions.contains(&true) {
            return Err(
                "needs at least one condition (issuer, subject, group, claim+value)".into(),
            );
        }
        if self.groups.is_empty() || self.groups.iter().any(String::is_empty) {
            return Err("`groups` must list at least one non-empty group".into());
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(toml_text: &str) -> Result<IdentityConfig, toml::de::Error> {
        toml::from_str(toml_text)
    }

    #[test]
    fn defaults() {
        let cfg = parse("").unwrap();
        assert_eq!(cfg, IdentityConfig::default());
        assert_eq!(cfg.leeway_secs, 30);
        assert_eq!(cfg.max_token_bytes, 16384);
        cfg.validate().unwrap();
    }

    #[test]
    fn full_issuer_parses() {
        let cfg = parse(
            r#"
            production = true
            exposed_claims = ["client_id"]
            [[issuers]]
            issuer = "https://idp.example.com"
            audiences = ["sluice"]
            groups_claim = "realm_access.roles"
            allowed_algs = ["RS256", "EdDSA"]
            required_typ = ["at+jwt"]
            [[group_mappings]]
            claim = "client_id"
            value = "billing"
            groups = ["agents"]
            "#,
        )
        .unwrap();
        cfg.validate().unwrap();
        assert_eq!(cfg.issuers[0].refresh_interval_secs, 300);
        assert_eq!(cfg.issuers[0].algs().unwrap(), vec![Alg::RS256, Alg::EdDSA]);
    }

    #[test]
    fn unknown_fields_are_refused() {
        assert!(parse("leeway = 3").is_err());
        assert!(parse("[[issuers]]\nissuer='x'\naudiences=['a']\nkid='k'").is_err());
    }

    #[test]
    fn invalid_configs_are_refused() {
        let cases = [
            // HMAC and none can never be enabled
            r#"[[issuers]]
               issuer = "https://idp"
               audiences = ["a"]
               allowed_algs = ["HS256"]"#,
            r#"[[issuers]]
               issuer = "https://idp"
               audiences = ["a"]
               allowed_algs = ["none"]"#,
            // plain HTTP to a non-loopback host
            r#"[[issuers]]
               issuer = "http://idp.example.com"
               audiences = ["a"]"#,
            r#"[[issuers]]
               issuer = "https://idp"
               audiences = []"#,
            r#"[[issuers]]
               issuer = "https://idp"
               audiences = ["a"]
               jwks_inline = "{}"
               jwks_file = "/x""#,
            r#"[[group_mappings]]
               groups = ["everyone"]"#,
            r#"[[group_mappings]]
               claim = "x"
               groups = ["g"]"#,
            "production = true",
            "leeway_secs = 3600",
            r#"[[issuers]]
               issuer = "https://idp"
               audiences = ["a"]
               refresh_cooldown_secs = 0"#,
        ];
        for case in cases {
            let cfg = parse(case).unwrap();
            assert!(cfg.validate().is_err(), "accepted: {case}");
        }
    }

    #[test]
    fn loopback_http_and_offline_keys_are_fine() {
        let cfg = parse(
            r#"[[issuers]]
               issuer = "http://127.0.0.1:8080"
               audiences = ["a"]
               [[issuers]]
               issuer = "http://idp.internal"
               audiences = ["a"]
               jwks_inline = '{"keys":[]}'"#,
        )
        .unwrap();
        cfg.validate().unwrap();
    }
}
