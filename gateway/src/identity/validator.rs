//! [`Verifier`]: turns a bearer token into an [`Identity`], or says precisely why not.
//!
//! The order of checks, top to bottom (each step has its own reject reason):
//!
//! ```text
//! token ─▶ size, segments, base64url, JSON without duplicate keys        (jose, strict_json)
//!       ─▶ header: alg (no none/HMAC), enc/zip, crit, jku/x5u/jwk/x5c, cty, b64
//!       ─▶ iss → one configured issuer (exact match)                    (unknown_issuer)
//!       ─▶ typ and alg allowed for that issuer
//!       ─▶ key by kid from the cached JWKS; unknown kid → one rate-limited refresh
//!       ─▶ alg fits the key (type, curve, the key's own alg)             (alg_key_mismatch)
//!       ─▶ signature                                                     (bad_signature)
//!       ─▶ exp, nbf, iat (leeway), aud, sub                              (claims)
//!       ─▶ groups claim, mapping table, exposed claims ─▶ Identity
//! ```
//!
//! Claims are only trusted after the signature: the issuer lookup before it uses `iss` as a
//! hint to pick the key set, never as a fact.

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::Value;
use tracing::Instrument as _;
use tracing::field::Empty;

use super::alg::Alg;
use super::claims;
use super::config::{GroupMapping, IdentityConfig, IssuerConfig};
use super::dev_issuer::DevIssuer;
use super::error::{AuthError, IdentityError, RejectReason, TokenRejected, reject};
use super::http::{HttpFetcher, is_loopback};
use super::identity_value::Identity;
use super::jose::{self, Header, UnverifiedJws};
use super::jwks::{KeySet, Lookup};
use super::key_cache::{self, ForcedRefresh, IssuerStatus, KeyCache, KeySource, Trigger};
use super::metrics;
use super::policy::ConnectionPolicy;

/// A token without `kid` is tried against at most this many keys, so a key set with many
/// keys cannot turn one bogus token into many signature checks.
const MAX_KEYS_WITHOUT_KID: usize = 4;

/// Verifies tokens against the configured issuers. Cheap to clone; background key refreshes
/// stop when the last clone is dropped.
#[derive(Clone)]
pub struct Verifier {
    inner: Arc<Inner>,
}

struct Inner {
    issuers: HashMap<String, IssuerRules>,
    leeway: i64,
    max_token_bytes: usize,
    mappings: Vec<GroupMapping>,
    exposed_claims: Vec<String>,
    dev: Option<DevIssuer>,
    tasks: Vec<tokio::task::AbortHandle>,
}

impl Drop for Inner {
    fn drop(&mut self) {
        self.tasks.iter().for_each(tokio::task::AbortHandle::abort);
    }
}

struct IssuerRules {
    keys: Arc<KeyCache>,
    audiences: Vec<String>,
    groups_claim: String,
    algs: Vec<Alg>,
    /// Normalised (`jose::media_type`) accepted `typ` values; `None` = the default rule.
    required_typ: Option<Vec<String>>,
    max_lifetime_secs: Option<u64>,
}

impl std::fmt::Debug for Verifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Verifier")
            .field("issuers", &self.inner.issuers.keys().collect::<Vec<_>>())
            .field("dev_issuer", &self.inner.dev.is_some())
            .finish_non_exhaustive()
    }
}

impl Verifier {
    /// Builds the verifier: validates the config, loads inline and file keys (an error is
    /// fatal), discovers and fetches remote keys (an unreachable IdP is NOT fatal: its
    /// tokens are refused with `keys_unavailable` and the fetch is retried in the
    /// background), and starts the refresh schedules. With no issuer configured, uses the
    /// embedded dev issuer from `state_dir`, or refuses when `production = true`.
    ///
    /// Must run inside a Tokio runtime.
    pub async fn from_config(
        cfg: &IdentityConfig,
        state_dir: &Path,
    ) -> Result<Self, IdentityError> {
        cfg.validate()?;
        let mut issuers = HashMap::new();
        let mut dev = None;
        if cfg.issuers.is_empty() {
            let dev_issuer = DevIssuer::load_or_create_with(state_dir, &cfg.dev_issuer)?;
            tracing::warn!(
                issuer = dev_issuer.issuer_url(),
                "no [[identity.issuers]] configured: using the embedded dev issuer (set [identity] production = true to forbid this)"
            );
            let keys = KeySet::from_keys([dev_issuer.public_key()]);
            let cache = KeyCache::new(
                dev_issuer.issuer_url(),
                KeySource::Static,
                Some(keys),
                Duration::ZERO,
            );
            metrics::jwks_refresh(
                dev_issuer.issuer_url(),
                "success",
                Trigger::Startup.as_str(),
            );
            issuers.insert(
                dev_issuer.issuer_url().to_owned(),
                IssuerRules {
                    keys: Arc::new(cache),
                    audiences: vec![dev_issuer.audience().to_owned()],
                    groups_claim: "groups".to_owned(),
                    algs: vec![Alg::EdDSA],
                    required_typ: None,
                    max_lifetime_secs: None,
                },
            );
            dev = Some(dev_issuer);
        }
        for ic in &cfg.issuers {
            issuers.insert(ic.issuer.clone(), IssuerRules::from_config(ic)?);
        }

        // First load of remote keys, all issuers at once.
        let mut loads = tokio::task::JoinSet::new();
        for rules in issuers.values().filter(|r| r.keys.current().is_none()) {
            let cache = Arc::clone(&rules.keys);
            loads.spawn(async move { cache.refresh(Trigger::Startup).await.is_ok() });
        }
        while loads.join_next().await.is_some() {}

        let mut tasks = Vec::new();
        for ic in &cfg.issuers {
            let Some(rules) = issuers.get(&ic.issuer) else {
                continue;
            };
            if rules.keys.refreshable() && ic.refresh_interval_secs > 0 {
                let schedule = key_cache::run_schedule(
                    Arc::downgrade(&rules.keys),
                    Duration::from_secs(ic.refresh_interval_secs),
                );
                tasks.push(tokio::spawn(schedule).abort_handle());
            }
        }

        Ok(Self {
            inner: Arc::new(Inner {
                issuers,
                leeway: i64::try_from(cfg.leeway_secs).unwrap_or(i64::MAX),
                max_token_bytes: cfg.max_token_bytes,
                mappings: cfg.group_mappings.clone(),
                exposed_claims: cfg.exposed_claims.clone(),
                dev,
                tasks,
            }),
        })
    }

    /// The embedded dev issuer, when it is in use (for the admin JWKS route and
    /// `sluice token issue`).
    pub fn dev_issuer(&self) -> Option<&DevIssuer> {
        self.inner.dev.as_ref()
    }

    /// Health of each issuer's keys.
    pub fn issuer_status(&self) -> Vec<IssuerStatus> {
        let mut all: Vec<IssuerStatus> = self
            .inner
            .issuers
            .values()
            .map(|r| r.keys.status())
            .collect();
        all.sort_by(|a, b| a.issuer.cmp(&b.issuer));
        all
    }

    /// Whether every issuer has keys (for `/readyz`).
    pub fn is_ready(&self) -> bool {
        self.inner
            .issuers
            .values()
            .all(|r| r.keys.current().is_some())
    }

    /// Verifies `token` (the bare JWT, without `Bearer `).
    pub async fn verify(&self, token: &str) -> Result<Identity, TokenRejected> {
        let span = tracing::debug_span!(
            "identity.verify",
            issuer = Empty,
            subject = Empty,
            reason = Empty
        );
        let result = async {
            let jws = jose::parse(token, self.inner.max_token_bytes).map_err(|e| ("unknown", e))?;
            let (issuer, rules) = self.issuer_for(&jws).map_err(|e| ("unknown", e))?;
            tracing::Span::current().record("issuer", issuer);
            self.verify_for_issuer(issuer, rules, &jws)
                .await
                .map_err(|e| (issuer, e))
        }
        .instrument(span.clone())
        .await;
        match result {
            Ok(id) => {
                span.record("subject", id.subject.as_str());
                metrics::validation(None, &id.issuer);
                Ok(id)
            }
            Err((issuer, e)) => {
                span.record("reason", e.reason());
                tracing::debug!(parent: &span, issuer, reason = e.reason(), "token rejected: {}", e.message());
                metrics::validation(Some(e.reason()), issuer);
                Err(e)
            }
        }
    }

    /// Verifies `token` and checks it against a connection's policy, in that order: the
    /// single call a listener makes before opening anything upstream.
    pub async fn authorize(
        &self,
        token: &str,
        policy: &ConnectionPolicy,
    ) -> Result<Identity, AuthError> {
        let identity = self.verify(token).await.map_err(AuthError::Rejected)?;
        policy.check(&identity).map_err(AuthError::Denied)?;
        Ok(identity)
    }

    /// The configured issuer the (unverified) `iss` names: only a hint to pick keys.
    fn issuer_for(&self, jws: &UnverifiedJws<'_>) -> Result<(&str, &IssuerRules), TokenRejected> {
        let iss = match jws.claims.get("iss") {
            Some(Value::String(iss)) => iss,
            Some(_) => return Err(reject(RejectReason::MissingIssuer, "iss is not a string")),
            None => return Err(reject(RejectReason::MissingIssuer, "no iss claim")),
        };
        match self.inner.issuers.get_key_value(iss.as_str()) {
            Some((issuer, rules)) => Ok((issuer.as_str(), rules)),
            None => {
                let shown: String = iss.chars().take(128).collect();
                Err(reject(
                    RejectReason::UnknownIssuer,
                    format!("iss {shown:?} is not a configured issuer"),
                ))
            }
        }
    }

    async fn verify_for_issuer(
        &self,
        issuer: &str,
        rules: &IssuerRules,
        jws: &UnverifiedJws<'_>,
    ) -> Result<Identity, TokenRejected> {
        rules.check_header(&jws.header)?;
        rules.check_signature(jws).await?;

        let now = claims::now_unix();
        let registered =
            claims::validate_registered(&jws.claims, &rules.audiences, self.inner.leeway, now)?;
        claims::check_lifetime(&registered, rules.max_lifetime_secs, self.inner.leeway, now)?;
        let mut groups = claims::groups(&jws.claims, &rules.groups_claim)?;
        // Mapping conditions and the claims shown to plugins read the
        // same paths: neither may pick one of two claims silently.
        if let Some(path) = self
            .inner
            .mappings
            .iter()
            .filter_map(|m| m.claim.as_deref())
            .chain(self.inner.exposed_claims.iter().map(String::as_str))
            .find(|path| claims::ambiguous(&jws.claims, path))
        {
            return Err(reject(
                RejectReason::InvalidClaim,
                format!("claim {path:?} is both a claim of that name and a different nested claim"),
            ));
        }
        claims::apply_mappings(
            &self.inner.mappings,
            issuer,
            &registered.subject,
            &jws.claims,
            &mut groups,
        );
        Ok(Identity {
            claims: claims::exposed(&jws.claims, &self.inner.exposed_claims),
            subject: registered.subject,
            issuer: issuer.to_owned(),
            groups,
            expires_at: registered.expires_at,
            token_id: registered.token_id,
        })
    }
}

/// What `serve` would refuse in the issuers' offline key sets
/// (`jwks_inline`, `jwks_file`): for `config check`, which reads them the
/// same way without starting anything.
pub fn offline_key_problems(cfg: &IdentityConfig) -> Vec<String> {
    cfg.issuers
        .iter()
        .filter(|ic| ic.jwks_inline.is_some() || ic.jwks_file.is_some())
        .filter_map(|ic| IssuerRules::from_config(ic).err())
        .map(|e| e.to_string())
        .collect()
}

impl IssuerRules {
    fn from_config(ic: &IssuerConfig) -> Result<Self, IdentityError> {
        let keys_err = |source| IdentityError::Keys {
            issuer: ic.issuer.clone(),
            source,
        };
        let nonempty = |set: KeySet| {
            if set.is_empty() {
                Err(keys_err(super::error::JwksError::NoUsableKeys))
            } else {
                Ok(set)
            }
        };
        let cooldown = Duration::from_secs(ic.refresh_cooldown_secs);
        let cache = if let Some(inline) = &ic.jwks_inline {
            let set = nonempty(KeySet::parse(inline.as_bytes()).map_err(keys_err)?)?;
            KeyCache::new(&ic.issuer, KeySource::Static, Some(set), cooldown)
        } else if let Some(path) = &ic.jwks_file {
            let bytes = std::fs::read(path).map_err(|source| {
                keys_err(super::error::JwksError::File {
                    path: path.clone(),
                    source,
                })
            })?;
            let set = nonempty(KeySet::parse(&bytes).map_err(keys_err)?)?;
            KeyCache::new(
                &ic.issuer,
                KeySource::File(path.clone()),
                Some(set),
                cooldown,
            )
        } else {
            let target = ic.jwks_uri.as_deref().unwrap_or(&ic.issuer);
            let loopback = url::Url::parse(target).is_ok_and(|u| is_loopback(&u));
            let fetcher = HttpFetcher::new(
                &ic.issuer,
                Duration::from_secs(ic.http_timeout_secs),
                ic.ca_file.as_deref(),
                loopback,
            )?;
            let source = KeySource::Remote {
                fetcher,
                configured_jwks_uri: ic.jwks_uri.clone(),
                discovered_jwks_uri: Mutex::new(None),
            };
            KeyCache::new(&ic.issuer, source, None, cooldown)
        };
        Ok(Self {
            keys: Arc::new(cache),
            audiences: ic.audiences.clone(),
            groups_claim: ic.groups_claim.clone(),
            algs: ic.algs()?,
            required_typ: ic
                .required_typ
                .as_ref()
                .map(|typs| typs.iter().map(|t| jose::media_type(t)).collect()),
            max_lifetime_secs: ic.max_token_lifetime_secs,
        })
    }

    fn check_header(&self, header: &Header) -> Result<(), TokenRejected> {
        let typ = header.typ.as_deref().map(jose::media_type);
        let typ_ok = match (&self.required_typ, &typ) {
            (None, None) => true,
            (None, Some(t)) => t == "jwt" || t == "at+jwt",
            (Some(_), None) => false,
            (Some(accepted), Some(t)) => accepted.contains(t),
        };
        if !typ_ok {
            return Err(reject(
                RejectReason::TypNotAllowed,
                format!("typ {:?} is not accepted for this issuer", header.typ),
            ));
        }
        if !self.algs.contains(&header.alg) {
            return Err(reject(
                RejectReason::AlgNotAllowed,
                format!("alg {} is not in this issuer's allowed_algs", header.alg),
            ));
        }
        Ok(())
    }

    /// Finds the key and checks the signature; an unknown kid (or, before any key was ever
    /// loaded, any token) triggers one rate-limited refresh and a second look.
    async fn check_signature(&self, jws: &UnverifiedJws<'_>) -> Result<(), TokenRejected> {
        let (alg, kid) = (jws.header.alg, jws.header.kid.as_deref());
        let mut refreshed = false;
        loop {
            // Generation before the set: a refresh in between is then seen as "newer".
            let generation = self.keys.generation();
            let missing = match self.keys.current() {
                None => reject(
                    RejectReason::KeysUnavailable,
                    "the issuer's signing keys have not been loaded yet",
                ),
                Some(set) => match set.lookup(kid, alg) {
                    Lookup::Candidates(keys) => {
                        let ok = keys
                            .iter()
                            .take(MAX_KEYS_WITHOUT_KID)
                            .any(|k| k.verify(alg, jws.signing_input, &jws.signature));
                        return if ok {
                            Ok(())
                        } else {
                            Err(reject(
                                RejectReason::BadSignature,
                                "signature does not verify",
                            ))
                        };
                    }
                    Lookup::Mismatch(why) => {
                        return Err(reject(RejectReason::AlgKeyMismatch, why));
                    }
                    Lookup::UnknownKid => {
                        let shown: String = kid.unwrap_or_default().chars().take(64).collect();
                        reject(
                            RejectReason::UnknownKid,
                            format!("no key with kid {shown:?} in the issuer's key set"),
                        )
                    }
                    Lookup::NoSuitableKey => reject(
                        RejectReason::NoSuitableKey,
                        format!("token has no kid and no key of the issuer fits {alg}"),
                    ),
                },
            };
            if refreshed {
                return Err(missing);
            }
            let note = match self.keys.refresh_for_unknown_kid(generation).await {
                ForcedRefresh::Refreshed => {
                    refreshed = true;
                    continue;
                }
                ForcedRefresh::NotRefreshable => return Err(missing),
                ForcedRefresh::RateLimited => {
                    "key set refreshed recently; not refreshed again yet".to_owned()
                }
                ForcedRefresh::Failed(e) => format!("refreshing the key set failed: {e}"),
            };
            return Err(reject(
                missing.kind(),
                format!("{}; {note}", missing.message()),
            ));
        }
    }
}
