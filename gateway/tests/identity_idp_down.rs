//! The IdP goes down: cached keys keep validating, an unknown kid fails closed with a clear
//! reason, and unknown-kid refreshes are rate-limited (requests counted at a local JWKS
//! server). Also: an IdP down at startup is not fatal, and metrics record it all.

mod common;

use std::sync::OnceLock;
use std::time::{Duration, Instant};

use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use serde_json::json;
use sluice::identity::{IssuerConfig, Verifier};

use common::jwks_server::JwksServer;
use common::keys::{TestKey, jwks};
use common::{now, verifier_for};

fn prometheus() -> &'static PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE.get_or_init(|| {
        PrometheusBuilder::new()
            .install_recorder()
            .expect("recorder")
    })
}

/// The value of one counter/gauge line whose labels contain all of `labels`.
fn metric(name: &str, labels: &[(&str, &str)]) -> f64 {
    let text = prometheus().render();
    text.lines()
        .filter(|l| l.starts_with(name) && !l.starts_with('#'))
        .filter(|l| {
            labels
                .iter()
                .all(|(k, v)| l.contains(&format!("{k}=\"{v}\"")))
        })
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

fn claims(iss: &str) -> serde_json::Value {
    json!({"iss": iss, "sub": "agent-1", "aud": "sluice", "exp": now() + 300})
}

/// An issuer whose keys come from `server`'s `/jwks`; the issuer name is the server URL,
/// which keeps each test's metric labels apart.
fn issuer(
    server: &JwksServer,
    refresh_interval_secs: u64,
    refresh_cooldown_secs: u64,
) -> IssuerConfig {
    let mut issuer = IssuerConfig::new(server.base.clone(), vec!["sluice".into()]);
    issuer.jwks_uri = Some(server.url("/jwks"));
    issuer.refresh_interval_secs = refresh_interval_secs;
    issuer.refresh_cooldown_secs = refresh_cooldown_secs;
    issuer.http_timeout_secs = 2;
    issuer
}

#[tokio::test]
async fn cached_keys_keep_validating_while_the_idp_is_down() {
    prometheus();
    let key = TestKey::ed25519("a1");
    let server = JwksServer::start(jwks(&[key.jwk()])).await;
    let verifier = verifier_for(issuer(&server, 1, 60)).await;
    let token = key.token("EdDSA", json!({}), &claims(&server.base));
    verifier.verify(&token).await.unwrap();

    server.set_up(false);
    let hits_before = server.hits();
    tokio::time::sleep(Duration::from_millis(3200)).await;
    assert!(
        server.hits() >= hits_before + 2,
        "scheduled refreshes kept trying"
    );

    let id = verifier
        .verify(&token)
        .await
        .expect("cached key still validates");
    assert_eq!(id.subject, "agent-1");
    let status = &verifier.issuer_status()[0];
    assert!(status.ready);
    assert_eq!(status.kids, ["a1"]);
    assert!(
        status
            .last_error
            .as_deref()
            .unwrap_or_default()
            .contains("503"),
        "{status:?}"
    );

    let iss = server.base.as_str();
    assert!(
        metric(
            "sluice_identity_jwks_refresh_total",
            &[
                ("issuer", iss),
                ("outcome", "failure"),
                ("trigger", "schedule")
            ]
        ) >= 2.0
    );
    assert_eq!(
        metric(
            "sluice_identity_jwks_refresh_total",
            &[
                ("issuer", iss),
                ("outcome", "success"),
                ("trigger", "startup")
            ]
        ),
        1.0
    );
    assert_eq!(
        metric(
            "sluice_identity_validations_total",
            &[("issuer", iss), ("outcome", "accepted")]
        ),
        2.0
    );
    assert_eq!(metric("sluice_identity_jwks_keys", &[("issuer", iss)]), 1.0);
}

#[tokio::test]
async fn unknown_kid_fails_closed_and_refreshes_are_rate_limited() {
    prometheus();
    const COOLDOWN: u64 = 4;
    let key = TestKey::ed25519("a1");
    let server = JwksServer::start(jwks(&[key.jwk()])).await;
    // No schedule: every request at the server is an unknown-kid refresh.
    let verifier = verifier_for(issuer(&server, 0, COOLDOWN)).await;
    assert_eq!(server.hits(), 1, "startup fetch");
    server.set_up(false);

    let stranger = TestKey::ed25519("b1");
    let bogus: Vec<String> = (0..200)
        .map(|i| {
            stranger.token(
                "EdDSA",
                json!({"kid": format!("bogus-{i}")}),
                &claims(&server.base),
            )
        })
        .collect();

    // First unknown kid: one refresh, which fails; the token is refused, saying why.
    let started = Instant::now();
    let err = verifier
        .verify(&stranger.token("EdDSA", json!({}), &claims(&server.base)))
        .await
        .unwrap_err();
    assert_eq!(err.reason(), "unknown_kid");
    assert!(
        err.message().contains("refreshing the key set failed"),
        "{}",
        err.message()
    );
    assert_eq!(server.hits(), 2);

    // A flood of bogus kids, concurrently: no further request reaches the IdP.
    let mut flood = tokio::task::JoinSet::new();
    for token in bogus {
        let verifier = verifier.clone();
        flood.spawn(async move { verifier.verify(&token).await });
    }
    while let Some(result) = flood.join_next().await {
        let err = result.unwrap().unwrap_err();
        assert_eq!(err.reason(), "unknown_kid");
        assert!(
            err.message().contains("not refreshed again yet"),
            "{}",
            err.message()
        );
    }
    assert!(
        started.elapsed() < Duration::from_secs(COOLDOWN),
        "flood took too long to test the cooldown"
    );
    assert_eq!(server.hits(), 2, "the flood was rate-limited");
    // The cached key still works throughout.
    verifier
        .verify(&key.token("EdDSA", json!({}), &claims(&server.base)))
        .await
        .unwrap();

    let iss = server.base.as_str();
    assert_eq!(
        metric(
            "sluice_identity_jwks_refresh_total",
            &[("issuer", iss), ("outcome", "rate_limited")]
        ),
        200.0
    );
    assert_eq!(
        metric(
            "sluice_identity_validations_total",
            &[("issuer", iss), ("reason", "unknown_kid")]
        ),
        201.0
    );

    // After the cooldown the IdP is back with a rotated set: one refresh picks it up.
    server.set_body(jwks(&[key.jwk(), stranger.jwk()]));
    server.set_up(true);
    tokio::time::sleep(Duration::from_secs(COOLDOWN) + Duration::from_millis(200)).await;
    let id = verifier
        .verify(&stranger.token("EdDSA", json!({}), &claims(&server.base)))
        .await
        .unwrap();
    assert_eq!(id.subject, "agent-1");
    assert_eq!(server.hits(), 3);
}

#[tokio::test]
async fn idp_down_at_startup_is_not_fatal_and_recovers() {
    prometheus();
    let key = TestKey::es256("k1");
    let server = JwksServer::start(jwks(&[key.jwk()])).await;
    server.set_up(false);
    let verifier: Verifier = verifier_for(issuer(&server, 300, 60)).await;
    assert!(!verifier.is_ready());
    let token = key.token("ES256", json!({}), &claims(&server.base));
    let err = verifier.verify(&token).await.unwrap_err();
    assert_eq!(err.reason(), "keys_unavailable", "{err}");

    // The background retry (backoff from 1 s) loads the keys once the IdP is back.
    server.set_up(true);
    let deadline = Instant::now() + Duration::from_secs(10);
    while !verifier.is_ready() {
        assert!(Instant::now() < deadline, "keys never loaded");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    verifier.verify(&token).await.unwrap();
}

#[tokio::test]
async fn dropping_the_verifier_stops_its_refresh_task() {
    let key = TestKey::ed25519("a1");
    let server = JwksServer::start(jwks(&[key.jwk()])).await;
    let verifier = verifier_for(issuer(&server, 1, 60)).await;
    drop(verifier);
    let hits = server.hits();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(server.hits(), hits);
}
