//! Against a real OpenID Provider (the `oidc-provider` npm package, started by the test):
//! discovery + JWKS over HTTP, client_credentials JWT access tokens (RFC 9068) for two
//! clients, groups from `extraTokenClaims`, and a key rotation picked up without restarting
//! the verifier.
//!
//! Needs node and npm; `npm ci` runs in tests/oidc-provider when node_modules is missing.

mod common;

use serde_json::json;
use sluice::identity::{ConnectionPolicy, GroupMapping, IdentityConfig, IssuerConfig, Verifier};

use common::oidc::OidcProvider;

fn issuer_config(provider: &OidcProvider) -> IssuerConfig {
    let mut issuer = IssuerConfig::new(provider.issuer.clone(), vec!["sluice".into()]);
    // oidc-provider's JWT access tokens say typ "at+jwt": accept exactly those.
    issuer.required_typ = Some(vec!["at+jwt".into()]);
    issuer
}

async fn verifier(issuer: IssuerConfig) -> Verifier {
    let cfg = IdentityConfig {
        issuers: vec![issuer],
        exposed_claims: vec!["client_id".into(), "realm_access.roles".into()],
        group_mappings: vec![GroupMapping {
            claim: Some("client_id".into()),
            value: Some("agent-b".into()),
            groups: vec!["mapped".into()],
            ..GroupMapping::default()
        }],
        ..IdentityConfig::default()
    };
    Verifier::from_config(&cfg, std::path::Path::new("/nonexistent"))
        .await
        .unwrap()
}

#[tokio::test]
async fn two_clients_are_two_subjects_with_their_groups() {
    let provider = OidcProvider::start(0, 1).await;
    let verifier = verifier(issuer_config(&provider)).await;
    assert!(verifier.is_ready(), "{:?}", verifier.issuer_status());
    let mut kids = verifier.issuer_status()[0].kids.clone();
    kids.sort();
    let mut expected = provider.kids.clone();
    expected.sort();
    assert_eq!(kids, expected, "keys found through discovery");

    let a = verifier
        .verify(&provider.token("agent-a", "secret-a", None).await)
        .await
        .unwrap();
    let b = verifier
        .verify(&provider.token("agent-b", "secret-b", None).await)
        .await
        .unwrap();
    assert_eq!(a.subject, "agent-a");
    assert_eq!(b.subject, "agent-b");
    assert_eq!(a.issuer, provider.issuer);
    assert_eq!(a.groups, ["agents", "billing"]);
    assert_eq!(b.groups, ["readers", "mapped"]);
    assert_eq!(a.claims["client_id"], "agent-a");
    assert_eq!(a.claims["realm_access.roles"], json!(["reader", "writer"]));
    assert!(a.token_id.is_some());

    // Every signature algorithm the provider issues with.
    for resource in ["urn:sluice:es256", "urn:sluice:eddsa"] {
        let token = provider.token("agent-a", "secret-a", Some(resource)).await;
        let id = verifier
            .verify(&token)
            .await
            .unwrap_or_else(|e| panic!("{resource}: {e}"));
        assert_eq!(id.subject, "agent-a");
    }

    // Groups from a dotted path instead.
    let mut by_roles = issuer_config(&provider);
    by_roles.groups_claim = "realm_access.roles".into();
    let roles = verifier_roles(by_roles).await;
    let a = roles
        .verify(&provider.token("agent-a", "secret-a", None).await)
        .await
        .unwrap();
    assert_eq!(a.groups, ["reader", "writer"]);

    // The connection policy tells the two clients apart.
    let billing = ConnectionPolicy {
        allow_groups: vec!["billing".into()],
        ..ConnectionPolicy::default()
    };
    let token_a = provider.token("agent-a", "secret-a", None).await;
    let token_b = provider.token("agent-b", "secret-b", None).await;
    assert!(verifier.authorize(&token_a, &billing).await.is_ok());
    assert_eq!(
        verifier
            .authorize(&token_b, &billing)
            .await
            .unwrap_err()
            .reason(),
        "not_allowed"
    );

    // Another audience is not ours.
    let mut other_aud = issuer_config(&provider);
    other_aud.audiences = vec!["not-sluice".into()];
    let other = verifier_roles(other_aud).await;
    assert_eq!(
        other.verify(&token_a).await.unwrap_err().reason(),
        "audience_mismatch"
    );
}

async fn verifier_roles(issuer: IssuerConfig) -> Verifier {
    common::verifier_for(issuer).await
}

#[tokio::test]
async fn key_rotation_is_picked_up_without_restarting_the_verifier() {
    let provider = OidcProvider::start(0, 1).await;
    let old_kids = provider.kids.clone();
    // Default refresh settings: schedule every 300 s, unknown-kid cooldown 30 s.
    let verifier = verifier(issuer_config(&provider)).await;
    let old_token = provider.token("agent-a", "secret-a", None).await;
    assert_eq!(
        verifier.verify(&old_token).await.unwrap().subject,
        "agent-a"
    );

    // Restart the provider on the same port with a brand-new key set.
    let port = provider.stop().await;
    let provider = OidcProvider::start(port, 2).await;
    assert!(provider.kids.iter().all(|k| !old_kids.contains(k)));
    let new_token = provider.token("agent-b", "secret-b", None).await;

    let id = verifier
        .verify(&new_token)
        .await
        .expect("new key picked up on its unknown kid");
    assert_eq!(id.subject, "agent-b");
    let mut kids = verifier.issuer_status()[0].kids.clone();
    kids.sort();
    let mut expected = provider.kids.clone();
    expected.sort();
    assert_eq!(kids, expected, "the old keys are gone");

    // Tokens signed with the retired key no longer verify (and do not trigger another
    // fetch within the cooldown).
    let err = verifier.verify(&old_token).await.unwrap_err();
    assert_eq!(err.reason(), "unknown_kid", "{err}");
    assert!(err.message().contains("not refreshed again yet"), "{err}");
}
