//! The embedded dev issuer: issue → accepted → expired after its ttl; refused in
//! production; `sluice token issue` from the real binary; connection policy on top.

mod common;

use std::process::Command;
use std::time::Duration;

use sluice::identity::{
    AuthError, ConnectionPolicy, DevIssuer, IdentityConfig, IdentityError, IssuerConfig, Verifier,
};

fn dev_config(leeway_secs: u64) -> IdentityConfig {
    IdentityConfig {
        leeway_secs,
        ..IdentityConfig::default()
    }
}

#[tokio::test]
async fn issued_token_is_accepted_then_expires_after_its_ttl() {
    let state = tempfile::tempdir().unwrap();
    let verifier = Verifier::from_config(&dev_config(0), state.path())
        .await
        .unwrap();
    let dev = verifier.dev_issuer().expect("dev issuer in use");
    let token = dev
        .issue(
            "agent-1",
            &["agents".into(), "billing".into()],
            Duration::from_secs(1),
        )
        .unwrap();

    let id = verifier.verify(&token).await.unwrap();
    assert_eq!(id.subject, "agent-1");
    assert_eq!(id.issuer, dev.issuer_url());
    assert_eq!(id.groups, ["agents", "billing"]);
    assert!(id.token_id.is_some());
    assert!(id.expires_in() <= Duration::from_secs(1));

    tokio::time::sleep(Duration::from_millis(2100)).await;
    let err = verifier.verify(&token).await.unwrap_err();
    assert_eq!(err.reason(), "expired", "{err}");
}

#[tokio::test]
async fn dev_issuer_is_refused_in_production() {
    let state = tempfile::tempdir().unwrap();
    let cfg = IdentityConfig {
        production: true,
        ..IdentityConfig::default()
    };
    let err = Verifier::from_config(&cfg, state.path()).await.unwrap_err();
    assert!(matches!(err, IdentityError::DevIssuerInProduction), "{err}");
    assert!(
        !state.path().join("identity").exists(),
        "no key may be created"
    );
}

#[tokio::test]
async fn dev_issuer_is_not_used_when_issuers_are_configured() {
    let state = tempfile::tempdir().unwrap();
    let other = DevIssuer::load_or_create(state.path()).unwrap();
    let mut issuer = IssuerConfig::new("https://idp.test", vec!["sluice".into()]);
    issuer.jwks_inline = Some(other.jwks_json().to_string());
    let cfg = IdentityConfig {
        issuers: vec![issuer],
        ..IdentityConfig::default()
    };
    let verifier = Verifier::from_config(&cfg, state.path()).await.unwrap();
    assert!(verifier.dev_issuer().is_none());
    let token = other.issue("x", &[], Duration::from_secs(60)).unwrap();
    assert_eq!(
        verifier.verify(&token).await.unwrap_err().reason(),
        "unknown_issuer"
    );
}

#[tokio::test]
async fn tokens_of_another_state_dir_are_rejected() {
    let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let verifier = Verifier::from_config(&dev_config(30), a.path())
        .await
        .unwrap();
    let foreign = DevIssuer::load_or_create(b.path()).unwrap();
    let token = foreign
        .issue("agent-1", &[], Duration::from_secs(60))
        .unwrap();
    assert_eq!(
        verifier.verify(&token).await.unwrap_err().reason(),
        "unknown_kid"
    );
}

#[tokio::test]
async fn connection_policy_refuses_valid_identities_not_allowed() {
    let state = tempfile::tempdir().unwrap();
    let verifier = Verifier::from_config(&dev_config(30), state.path())
        .await
        .unwrap();
    let dev = verifier.dev_issuer().unwrap();
    let agent = dev
        .issue("agent-1", &["agents".into()], Duration::from_secs(60))
        .unwrap();
    let reader = dev
        .issue("reader-1", &["readers".into()], Duration::from_secs(60))
        .unwrap();
    let policy = ConnectionPolicy {
        allow_groups: vec!["agents".into()],
        deny_subjects: vec!["agent-666".into()],
        ..ConnectionPolicy::default()
    };
    assert_eq!(
        verifier.authorize(&agent, &policy).await.unwrap().subject,
        "agent-1"
    );
    match verifier.authorize(&reader, &policy).await {
        Err(AuthError::Denied(denied)) => assert_eq!(denied.reason(), "not_allowed"),
        other => panic!("expected a denial, got {other:?}"),
    }
    match verifier.authorize("garbage", &policy).await {
        Err(AuthError::Rejected(rejected)) => assert_eq!(rejected.reason(), "malformed"),
        other => panic!("expected a rejection, got {other:?}"),
    }
}

#[tokio::test]
async fn token_issue_command_prints_a_token_the_verifier_accepts() {
    let dir = tempfile::tempdir().unwrap();
    let state_dir = dir.path().join("state");
    let config = dir.path().join("sluice.toml");
    std::fs::write(
        &config,
        format!(
            "[gateway]\nstate_dir = {:?}\n\n[identity]\nleeway_secs = 5\n",
            state_dir.display().to_string()
        ),
    )
    .unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_sluice"))
        .args(["--config", config.to_str().unwrap(), "token", "issue"])
        .args([
            "--subject",
            "agent-7",
            "--group",
            "agents",
            "--group",
            "ops",
            "--ttl",
            "10m",
        ])
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let token = String::from_utf8(output.stdout).unwrap().trim().to_owned();

    let verifier = Verifier::from_config(&dev_config(5), &state_dir)
        .await
        .unwrap();
    let id = verifier.verify(&token).await.unwrap();
    assert_eq!(
        (id.subject.as_str(), id.groups.as_slice()),
        ("agent-7", &["agents".to_owned(), "ops".to_owned()][..])
    );
    let left = id.expires_in().as_secs();
    assert!((590..=600).contains(&left), "ttl 10m, {left}s left");

    // production = true: the command refuses.
    std::fs::write(&config, "[identity]\nproduction = true\n").unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_sluice"))
        .args([
            "--config",
            config.to_str().unwrap(),
            "token",
            "issue",
            "--subject",
            "x",
        ])
        .output()
        .unwrap();
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("production = true"));
}
