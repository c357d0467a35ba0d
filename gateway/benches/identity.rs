//! Token validations per second with the keys already cached (the steady state of a
//! gateway): RS256 (2048-bit), EdDSA and ES256, through the full `Verifier::verify` path
//! (parsing, header rules, key lookup, signature, claims, metrics with the Prometheus
//! recorder installed), plus the cost of refusing a well-formed token with an unknown kid.
//!
//! cargo bench -p sluice --bench identity

#[path = "../tests/common/keys.rs"]
#[allow(dead_code)]
mod keys;

use std::hint::black_box;
use std::path::Path;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use serde_json::json;
use sluice::identity::{IdentityConfig, IssuerConfig, Verifier};

use keys::{TestKey, jwks};

const ISS: &str = "https://bench.test";

fn bench_verify(c: &mut Criterion) {
    let _ = metrics_exporter_prometheus::PrometheusBuilder::new().install_recorder();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let rsa = TestKey::rsa("rsa-a", "rsa-1");
    let ed = TestKey::ed25519("ed-1");
    let ec = TestKey::es256("ec-1");
    let mut issuer = IssuerConfig::new(ISS, vec!["sluice".into()]);
    issuer.jwks_inline = Some(jwks(&[rsa.jwk(), ed.jwk(), ec.jwk()]));
    let cfg = IdentityConfig {
        issuers: vec![issuer],
        exposed_claims: vec!["client_id".into()],
        ..IdentityConfig::default()
    };
    let verifier = runtime
        .block_on(Verifier::from_config(&cfg, Path::new("/nonexistent")))
        .unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    // Far enough in the future to outlive the benchmark.
    let claims = json!({"iss": ISS, "sub": "agent-1", "aud": "sluice", "iat": now,
                        "exp": now + 3600, "groups": ["agents", "billing"], "client_id": "agent-1",
                        "jti": "bench-token-0001"});
    let tokens = [
        ("rs256", rsa.token("RS256", json!({}), &claims)),
        ("eddsa", ed.token("EdDSA", json!({}), &claims)),
        ("es256", ec.token("ES256", json!({}), &claims)),
    ];

    // The cost of refusing garbage that parses: no signature check, no refresh (inline keys).
    let unknown_kid = rsa.token("RS256", json!({"kid": "no-such-kid"}), &claims);

    let mut group = c.benchmark_group("identity_verify");
    group.throughput(Throughput::Elements(1));
    for (name, token) in &tokens {
        runtime.block_on(verifier.verify(token)).unwrap();
        group.bench_function(*name, |b| {
            b.iter(|| runtime.block_on(verifier.verify(black_box(token))).unwrap())
        });
    }
    group.bench_function("rejected_unknown_kid", |b| {
        b.iter(|| {
            runtime
                .block_on(verifier.verify(black_box(&unknown_kid)))
                .unwrap_err()
        })
    });
    group.finish();
}

criterion_group!(benches, bench_verify);
criterion_main!(benches);
