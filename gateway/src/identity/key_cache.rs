//! One issuer's verification keys: where they come from, the cached set, and when it is
//! refreshed.
//!
//! * Reads are lock-free (`ArcSwap`); a refresh swaps in a whole new set, so keys removed at
//!   the IdP stop verifying as soon as the new set is in.
//! * A failed refresh keeps the previous set: tokens keep validating while the IdP is down.
//! * Refreshes triggered by an unknown `kid` are single-flight (concurrent requests wait for
//!   one fetch) and at most one per `refresh_cooldown_secs`, so a flood of bogus kids costs
//!   the IdP one request per cooldown.
//! * Scheduled refreshes run in a background task owned by the [`Verifier`](super::Verifier).

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant, SystemTime};

use arc_swap::ArcSwapOption;
use serde::Serialize;

use super::discovery;
use super::error::JwksError;
use super::http::HttpFetcher;
use super::jwks::KeySet;
use super::metrics;

const JWKS_ACCEPT: &str = "application/jwk-set+json, application/json";

/// Where an issuer's keys come from.
pub(crate) enum KeySource {
    /// Inline in the config, or the dev issuer's own key: never refreshed.
    Static,
    /// A JWKS file, re-read on refresh.
    File(PathBuf),
    /// HTTPS: a configured `jwks_uri`, or the one found by discovery (cached; discovery runs
    /// again after a failed fetch).
    Remote {
        fetcher: HttpFetcher,
        configured_jwks_uri: Option<String>,
        discovered_jwks_uri: Mutex<Option<String>>,
    },
}

/// What started a refresh; a label of `sluice_identity_jwks_refresh_total`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Trigger {
    Startup,
    Schedule,
    UnknownKid,
}

impl Trigger {
    pub fn as_str(self) -> &'static str {
        match self {
            Trigger::Startup => "startup",
            Trigger::Schedule => "schedule",
            Trigger::UnknownKid => "unknown_kid",
        }
    }
}

/// The result of asking for a refresh because a key was not found.
#[derive(Debug)]
pub(crate) enum ForcedRefresh {
    /// A new set is in (fetched by this call or by a concurrent one).
    Refreshed,
    /// The last forced refresh was less than the cooldown ago; nothing was fetched.
    RateLimited,
    /// The fetch failed; the previous set stays.
    Failed(String),
    /// Inline keys: nothing to refresh.
    NotRefreshable,
}

/// Health of one issuer's keys, for `/readyz` and the admin API.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct IssuerStatus {
    pub issuer: String,
    /// Whether a key set has ever been loaded.
    pub ready: bool,
    pub kids: Vec<String>,
    /// Unix seconds of the last successful load.
    pub last_success_unix: Option<u64>,
    /// The last refresh error, cleared by a success.
    pub last_error: Option<String>,
}

pub(crate) struct KeyCache {
    issuer: String,
    source: KeySource,
    keys: ArcSwapOption<KeySet>,
    /// Bumped on every successful load; lets a waiter see that someone else refreshed.
    generation: AtomicU64,
    cooldown: Duration,
    /// When the last forced (unknown-kid) refresh started. Also the single-flight lock.
    last_forced: tokio::sync::Mutex<Option<Instant>>,
    last_success: Mutex<Option<SystemTime>>,
    last_error: Mutex<Option<String>>,
}

impl KeyCache {
    pub fn new(
        issuer: &str,
        source: KeySource,
        initial: Option<KeySet>,
        cooldown: Duration,
    ) -> Self {
        let cache = Self {
            issuer: issuer.to_owned(),
            source,
            keys: ArcSwapOption::empty(),
            generation: AtomicU64::new(0),
            cooldown,
            last_forced: tokio::sync::Mutex::new(None),
            last_success: Mutex::new(None),
            last_error: Mutex::new(None),
        };
        if let Some(keys) = initial {
            cache.store(keys);
        }
        cache
    }

    /// The current set, if one was ever loaded.
    pub fn current(&self) -> Option<Arc<KeySet>> {
        self.keys.load_full()
    }

    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    pub fn refreshable(&self) -> bool {
        !matches!(self.source, KeySource::Static)
    }

    fn store(&self, keys: KeySet) {
        metrics::jwks_keys(&self.issuer, keys.len());
        self.keys.store(Some(Arc::new(keys)));
        self.generation.fetch_add(1, Ordering::AcqRel);
        set(&self.last_success, Some(SystemTime::now()));
        set(&self.last_error, None);
    }

    /// Fetches the key set and swaps it in; on failure keeps the previous one.
    pub async fn refresh(&self, trigger: Trigger) -> Result<(), JwksError> {
        let result = self.fetch().await.and_then(|keys| {
            if keys.is_empty() {
                Err(JwksError::NoUsableKeys)
            } else {
                Ok(keys)
            }
        });
        match result {
            Ok(keys) => {
                for note in &keys.skipped {
                    tracing::debug!(issuer = %self.issuer, "skipped a key: {note}");
                }
                let old: Vec<String> = self
                    .current()
                    .map(|k| k.kids().into_iter().map(str::to_owned).collect())
                    .unwrap_or_default();
                let new: Vec<String> = keys.kids().into_iter().map(str::to_owned).collect();
                if old != new {
                    tracing::info!(issuer = %self.issuer, trigger = trigger.as_str(), kids = ?new, "loaded signing keys");
                }
                self.store(keys);
                metrics::jwks_refresh(&self.issuer, "success", trigger.as_str());
                Ok(())
            }
            Err(e) => {
                let cached = self.current().is_some();
                tracing::warn!(
                    issuer = %self.issuer,
                    trigger = trigger.as_str(),
                    serving_cached_keys = cached,
                    "refreshing signing keys failed: {e}"
                );
                set(&self.last_error, Some(e.to_string()));
                metrics::jwks_refresh(&self.issuer, "failure", trigger.as_str());
                Err(e)
            }
        }
    }

    async fn fetch(&self) -> Result<KeySet, JwksError> {
        match &self.source {
            KeySource::Static => Err(JwksError::Parse("inline keys are never re-read".into())),
            KeySource::File(path) => {
                let bytes = tokio::fs::read(path)
                    .await
                    .map_err(|source| JwksError::File {
                        path: path.clone(),
                        source,
                    })?;
                KeySet::parse(&bytes)
            }
            KeySource::Remote {
                fetcher,
                configured_jwks_uri,
                discovered_jwks_uri,
            } => {
                let known = configured_jwks_uri
                    .clone()
                    .or_else(|| discovered_jwks_uri.lock().ok().and_then(|u| u.clone()));
                match known {
                    Some(uri) => {
                        let result =
                            async { KeySet::parse(&fetcher.get(&uri, JWKS_ACCEPT).await?) }.await;
                        if result.is_err() && configured_jwks_uri.is_none() {
                            // The IdP may have moved its JWKS: discover again next time.
                            set(discovered_jwks_uri, None);
                        }
                        result
                    }
                    None => {
                        let found = discovery::discover(fetcher, &self.issuer).await?;
                        tracing::debug!(issuer = %self.issuer, jwks_uri = %found.jwks_uri, "discovered");
                        set(discovered_jwks_uri, Some(found.jwks_uri));
                        Ok(found.keys)
                    }
                }
            }
        }
    }

    /// Refresh because `observed_generation`'s set had no key for a token. Single-flight and
    /// rate-limited: see the module docs.
    pub async fn refresh_for_unknown_kid(&self, observed_generation: u64) -> ForcedRefresh {
        if !self.refreshable() {
            return ForcedRefresh::NotRefreshable;
        }
        let mut last = self.last_forced.lock().await;
        if self.generation() != observed_generation {
            return ForcedRefresh::Refreshed;
        }
        if last.is_some_and(|t| t.elapsed() < self.cooldown) {
            metrics::jwks_refresh(&self.issuer, "rate_limited", Trigger::UnknownKid.as_str());
            return ForcedRefresh::RateLimited;
        }
        *last = Some(Instant::now());
        let result = self.refresh(Trigger::UnknownKid).await;
        // The cooldown runs from the end of the attempt: tokens that queued
        // behind a slow fetch (up to the fetch timeout, which may exceed the
        // cooldown) share its outcome instead of each starting another.
        *last = Some(Instant::now());
        match result {
            Ok(()) => ForcedRefresh::Refreshed,
            Err(e) => ForcedRefresh::Failed(e.to_string()),
        }
    }

    pub fn status(&self) -> IssuerStatus {
        let current = self.current();
        IssuerStatus {
            issuer: self.issuer.clone(),
            ready: current.is_some(),
            kids: current
                .map(|k| k.kids().into_iter().map(str::to_owned).collect())
                .unwrap_or_default(),
            last_success_unix: get(&self.last_success)
                .and_then(|t| t.duration_since(SystemTime::UNIX_EPOCH).ok())
                .map(|d| d.as_secs()),
            last_error: get(&self.last_error),
        }
    }
}

/// The background refresh loop: every `interval` once keys are loaded; while none are,
/// retries with a backoff from 1 s up to `interval`. Ends when the cache is dropped.
pub(crate) async fn run_schedule(cache: Weak<KeyCache>, interval: Duration) {
    let mut backoff = Duration::from_secs(1);
    loop {
        let delay = match cache.upgrade() {
            None => return,
            Some(c) if c.current().is_some() => {
                backoff = Duration::from_secs(1);
                interval
            }
            Some(_) => {
                let delay = backoff.min(interval);
                backoff = (backoff * 2).min(interval);
                delay
            }
        };
        tokio::time::sleep(delay).await;
        let Some(c) = cache.upgrade() else { return };
        // Failures are logged and counted inside; the cached keys keep serving.
        let _ = c.refresh(Trigger::Schedule).await;
    }
}

fn set<T>(slot: &Mutex<T>, value: T) {
    if let Ok(mut guard) = slot.lock() {
        *guard = value;
    }
}

fn get<T: Clone + Default>(slot: &Mutex<T>) -> T {
    slot.lock().map(|g| g.clone()).unwrap_or_default()
}
