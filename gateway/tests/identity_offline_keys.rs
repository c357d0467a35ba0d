//! Offline deployments: keys from a `jwks_file` (re-read on an unknown kid) or inline, and
//! per-issuer rules (`allowed_algs`, `required_typ`, `groups_claim`) read from TOML.

mod common;

use serde_json::json;
use sluice::identity::{IdentityConfig, Verifier};

use common::keys::{TestKey, jwks};
use common::now;

fn claims(iss: &str) -> serde_json::Value {
    json!({"iss": iss, "sub": "svc", "aud": ["sluice"], "exp": now() + 60,
           "realm_access": {"roles": ["ops"]}})
}

async fn from_toml(text: &str) -> Verifier {
    let cfg: IdentityConfig = toml::from_str(text).unwrap();
    Verifier::from_config(&cfg, std::path::Path::new("/nonexistent"))
        .await
        .unwrap()
}

#[tokio::test]
async fn jwks_file_is_reread_when_an_unknown_kid_shows_up() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("jwks.json");
    let (old, new) = (TestKey::ed25519("old"), TestKey::rsa("rsa-a", "new"));
    std::fs::write(&file, jwks(&[old.jwk()])).unwrap();
    let verifier = from_toml(&format!(
        r#"
        [[issuers]]
        issuer = "https://offline.test"
        audiences = ["sluice"]
        jwks_file = {file:?}
        groups_claim = "realm_access.roles"
        refresh_interval_secs = 0
        "#
    ))
    .await;
    let id = verifier
        .verify(&old.token("EdDSA", json!({}), &claims("https://offline.test")))
        .await
        .unwrap();
    assert_eq!(id.groups, ["ops"]);

    // Rotate the file: the new kid is found by re-reading it, the old key is gone.
    std::fs::write(&file, jwks(&[new.jwk()])).unwrap();
    verifier
        .verify(&new.token("RS256", json!({}), &claims("https://offline.test")))
        .await
        .unwrap();
    let err = verifier
        .verify(&old.token("EdDSA", json!({}), &claims("https://offline.test")))
        .await
        .unwrap_err();
    assert_eq!(err.reason(), "unknown_kid");
}

#[tokio::test]
async fn per_issuer_algorithms_and_typ() {
    let (ec, ed) = (TestKey::es256("ec"), TestKey::ed25519("ed"));
    let verifier = from_toml(&format!(
        r#"
        [[issuers]]
        issuer = "https://strict.test"
        audiences = ["sluice"]
        jwks_inline = '{}'
        allowed_algs = ["ES256"]
        required_typ = ["at+jwt"]
        "#,
        jwks(&[ec.jwk(), ed.jwk()])
    ))
    .await;
    let iss = "https://strict.test";
    verifier
        .verify(&ec.token("ES256", json!({}), &claims(iss)))
        .await
        .unwrap();
    verifier
        .verify(&ec.token("ES256", json!({"typ": "application/AT+JWT"}), &claims(iss)))
        .await
        .unwrap();
    let reason = |t: String| {
        let v = verifier.clone();
        async move { v.verify(&t).await.unwrap_err().reason() }
    };
    assert_eq!(
        reason(ed.token("EdDSA", json!({}), &claims(iss))).await,
        "alg_not_allowed"
    );
    assert_eq!(
        reason(ec.token("ES256", json!({"typ": "JWT"}), &claims(iss))).await,
        "typ_not_allowed"
    );
    assert_eq!(
        reason(ec.token("ES256", json!({"typ": null}), &claims(iss))).await,
        "typ_not_allowed"
    );
}

#[tokio::test]
async fn bad_offline_keys_are_fatal_at_startup() {
    for source in [
        "jwks_file = \"/nonexistent/jwks.json\"".to_owned(),
        "jwks_inline = '{\"keys\": []}'".to_owned(),
        "jwks_inline = '{\"keys\": [{\"kty\": \"oct\", \"k\": \"c2VjcmV0\"}]}'".to_owned(),
        "jwks_inline = 'not json'".to_owned(),
    ] {
        let cfg: IdentityConfig = toml::from_str(&format!(
            "[[issuers]]\nissuer = \"https://x.test\"\naudiences = [\"a\"]\n{source}\n"
        ))
        .unwrap();
        let result = Verifier::from_config(&cfg, std::path::Path::new("/nonexistent")).await;
        assert!(result.is_err(), "{source}");
    }
}

#[tokio::test]
async fn two_issuers_are_kept_apart() {
    let (k1, k2) = (TestKey::ed25519("same-kid"), TestKey::ed25519("same-kid"));
    let verifier = from_toml(&format!(
        r#"
        [[issuers]]
        issuer = "https://one.test"
        audiences = ["sluice"]
        jwks_inline = '{}'
        [[issuers]]
        issuer = "https://two.test"
        audiences = ["sluice"]
        jwks_inline = '{}'
        "#,
        jwks(&[k1.jwk()]),
        jwks(&[k2.jwk()])
    ))
    .await;
    assert_eq!(
        verifier
            .verify(&k1.token("EdDSA", json!({}), &claims("https://one.test")))
            .await
            .unwrap()
            .issuer,
        "https://one.test"
    );
    assert_eq!(
        verifier
            .verify(&k2.token("EdDSA", json!({}), &claims("https://two.test")))
            .await
            .unwrap()
            .issuer,
        "https://two.test"
    );
    // Issuer one's key cannot speak for issuer two, even with the same kid.
    let err = verifier
        .verify(&k1.token("EdDSA", json!({}), &claims("https://two.test")))
        .await
        .unwrap_err();
    assert_eq!(err.reason(), "bad_signature");
}
