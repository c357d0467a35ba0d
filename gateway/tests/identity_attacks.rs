//! The attack corpus: forged and malformed tokens, each rejected with a specific reason.
//!
//! One table of (name, token builder, expected reason). The verifier trusts one issuer with
//! inline keys (RSA, P-256, P-384, Ed25519, and the RSA key again pinned to RS256); the
//! attacker has other keys of every type and a JWKS server of its own, which must never be
//! contacted.

mod common;

use ring::hmac;
use serde_json::{Value, json};
use sluice::identity::{IssuerConfig, Verifier};

use common::jwks_server::JwksServer;
use common::keys::{TestKey, b64, jwks};
use common::{now, verifier_for};

const ISS: &str = "https://issuer.test";

struct Keys {
    rsa: TestKey,
    es256: TestKey,
    es384: TestKey,
    ed: TestKey,
    /// The RSA key published a second time with `alg: RS256`.
    rsa_pinned: TestKey,
    /// Attacker keys: same types, not published.
    evil_rsa: TestKey,
    evil_es256: TestKey,
    evil_ed: TestKey,
    /// The attacker's JWKS server (for jku / x5u).
    evil_server: JwksServer,
}

fn claims() -> Value {
    let now = now();
    json!({"iss": ISS, "sub": "agent-1", "aud": "sluice", "iat": now, "exp": now + 300,
           "groups": ["agents"], "client_id": "agent-1"})
}

fn with(changes: Value) -> Value {
    let mut c = claims();
    for (k, v) in changes.as_object().unwrap() {
        if v.is_null() {
            c.as_object_mut().unwrap().remove(k);
        } else {
            c[k] = v.clone();
        }
    }
    c
}

async fn setup() -> (Keys, Verifier) {
    let keys = Keys {
        rsa: TestKey::rsa("rsa-a", "rsa-1"),
        es256: TestKey::es256("ec-1"),
        es384: TestKey::es384("ec384-1"),
        ed: TestKey::ed25519("ed-1"),
        rsa_pinned: TestKey::rsa("rsa-a", "rsa-pinned"),
        evil_rsa: TestKey::rsa("rsa-b", "rsa-1"),
        evil_es256: TestKey::es256("ec-1"),
        evil_ed: TestKey::ed25519("ed-1"),
        evil_server: JwksServer::start(jwks(&[TestKey::rsa("rsa-b", "evil").jwk()])).await,
    };
    let mut issuer = IssuerConfig::new(ISS, vec!["sluice".into()]);
    issuer.max_token_lifetime_secs = Some(3600);
    issuer.jwks_inline = Some(jwks(&[
        keys.rsa.jwk(),
        keys.es256.jwk(),
        keys.es384.jwk(),
        keys.ed.jwk(),
        keys.rsa_pinned.jwk_with_alg("RS256"),
    ]));
    (keys, verifier_for(issuer).await)
}

type Builder = Box<dyn Fn(&Keys) -> String>;

fn case(
    name: &'static str,
    expected: &'static str,
    build: impl Fn(&Keys) -> String + 'static,
) -> (&'static str, Builder, &'static str) {
    (name, Box::new(build), expected)
}

fn unsigned(header: &str, payload: &str, signature: &str) -> String {
    format!("{}.{}.{signature}", b64(header), b64(payload))
}

fn hs256(secret: &[u8], header: &Value, payload: &Value) -> String {
    let input = format!("{}.{}", b64(header.to_string()), b64(payload.to_string()));
    let tag = hmac::sign(&hmac::Key::new(hmac::HMAC_SHA256, secret), input.as_bytes());
    format!("{input}.{}", b64(tag.as_ref()))
}

fn corpus() -> Vec<(&'static str, Builder, &'static str)> {
    vec![
        case("empty string", "empty", |_| String::new()),
        case("alg none, empty signature", "alg_none", |_| {
            unsigned(r#"{"alg":"none","typ":"JWT"}"#, &claims().to_string(), "")
        }),
        case("alg NoNe with a signature", "alg_none", |k| {
            let t = k.rsa.token("RS256", json!({}), &claims());
            let sig = t.rsplit('.').next().unwrap().to_owned();
            unsigned(
                r#"{"alg":"NoNe","kid":"rsa-1"}"#,
                &claims().to_string(),
                &sig,
            )
        }),
        case(
            "HS256 signed with the RSA public key (key confusion)",
            "alg_not_allowed",
            |k| {
                hs256(
                    k.rsa.rsa_public_pem().as_bytes(),
                    &json!({"alg": "HS256", "kid": "rsa-1"}),
                    &claims(),
                )
            },
        ),
        case(
            "HS256 signed with the RSA JWK's n",
            "alg_not_allowed",
            |k| {
                hs256(
                    k.rsa.jwk()["n"].as_str().unwrap().as_bytes(),
                    &json!({"alg": "HS256"}),
                    &claims(),
                )
            },
        ),
        case("unsupported alg ES512", "alg_not_allowed", |k| {
            let t = k.es256.token("ES256", json!({}), &claims());
            let (_, rest) = t.split_once('.').unwrap();
            format!("{}.{rest}", b64(r#"{"alg":"ES512","kid":"ec-1"}"#))
        }),
        case("wrong iss", "unknown_issuer", |k| {
            k.rsa.token(
                "RS256",
                json!({}),
                &with(json!({"iss": "https://evil.test"})),
            )
        }),
        case("iss with a trailing slash", "unknown_issuer", |k| {
            k.rsa.token(
                "RS256",
                json!({}),
                &with(json!({"iss": "https://issuer.test/"})),
            )
        }),
        case("no iss", "missing_iss", |k| {
            k.rsa.token("RS256", json!({}), &with(json!({"iss": null})))
        }),
        case("wrong aud", "audience_mismatch", |k| {
            k.rsa
                .token("RS256", json!({}), &with(json!({"aud": "another-api"})))
        }),
        case("aud array without ours", "audience_mismatch", |k| {
            k.rsa
                .token("RS256", json!({}), &with(json!({"aud": ["a", "b"]})))
        }),
        case("no aud", "audience_mismatch", |k| {
            k.rsa.token("RS256", json!({}), &with(json!({"aud": null})))
        }),
        case("expired an hour ago", "expired", |k| {
            k.rsa
                .token("RS256", json!({}), &with(json!({"exp": now() - 3600})))
        }),
        case(
            "exp a year ahead (max lifetime 1 h)",
            "lifetime_too_long",
            |k| {
                k.rsa.token(
                    "RS256",
                    json!({}),
                    &with(json!({"exp": now() + 365 * 86400})),
                )
            },
        ),
        case("exp far beyond any date", "lifetime_too_long", |k| {
            k.rsa
                .token("RS256", json!({}), &with(json!({"exp": 1e300})))
        }),
        case("nbf an hour ahead", "not_yet_valid", |k| {
            k.rsa
                .token("RS256", json!({}), &with(json!({"nbf": now() + 3600})))
        }),
        case("iat an hour ahead", "iat_in_future", |k| {
            k.rsa
                .token("RS256", json!({}), &with(json!({"iat": now() + 3600})))
        }),
        case("no exp", "missing_exp", |k| {
            k.rsa.token("RS256", json!({}), &with(json!({"exp": null})))
        }),
        case("exp as a string", "invalid_claim", |k| {
            k.rsa
                .token("RS256", json!({}), &with(json!({"exp": "9999999999"})))
        }),
        case("unknown kid", "unknown_kid", |k| {
            k.rsa.token("RS256", json!({"kid": "rsa-2"}), &claims())
        }),
        case("kid path traversal", "unknown_kid", |k| {
            k.rsa.token(
                "RS256",
                json!({"kid": "../../../../../../dev/null"}),
                &claims(),
            )
        }),
        case("kid SQL injection", "unknown_kid", |k| {
            k.rsa.token(
                "RS256",
                json!({"kid": "x' UNION SELECT 'secret' --"}),
                &claims(),
            )
        }),
        case("kid as a number", "malformed", |k| {
            k.rsa.token("RS256", json!({"kid": 1}), &claims())
        }),
        case(
            "jku pointing at the attacker's JWKS",
            "untrusted_key_header",
            |k| {
                k.evil_rsa.token(
                    "RS256",
                    json!({"kid": "evil", "jku": k.evil_server.url("/jwks")}),
                    &claims(),
                )
            },
        ),
        case(
            "x5u pointing at the attacker",
            "untrusted_key_header",
            |k| {
                k.evil_rsa.token(
                    "RS256",
                    json!({"kid": "evil", "x5u": k.evil_server.url("/cert.pem")}),
                    &claims(),
                )
            },
        ),
        case(
            "embedded jwk of the attacker",
            "untrusted_key_header",
            |k| {
                k.evil_ed.token(
                    "EdDSA",
                    json!({"kid": null, "jwk": k.evil_ed.jwk()}),
                    &claims(),
                )
            },
        ),
        case("embedded x5c", "untrusted_key_header", |k| {
            k.evil_rsa
                .token("RS256", json!({"x5c": ["MIIB"]}), &claims())
        }),
        case(
            "tampered payload, original signature",
            "bad_signature",
            |k| {
                let t = k.rsa.token("RS256", json!({}), &claims());
                let parts: Vec<&str> = t.split('.').collect();
                format!(
                    "{}.{}.{}",
                    parts[0],
                    b64(with(json!({"sub": "admin"})).to_string()),
                    parts[2]
                )
            },
        ),
        case(
            "tampered header, original signature",
            "bad_signature",
            |k| {
                let t = k.rsa.token("RS256", json!({}), &claims());
                let parts: Vec<&str> = t.split('.').collect();
                format!(
                    "{}.{}.{}",
                    b64(r#"{"alg":"RS256","kid":"rsa-1","typ":"JWT"}"#),
                    parts[1],
                    parts[2]
                )
            },
        ),
        case(
            "RSA signature from another key, our kid",
            "bad_signature",
            |k| k.evil_rsa.token("RS256", json!({}), &claims()),
        ),
        case(
            "ES256 signature from another key, our kid",
            "bad_signature",
            |k| k.evil_es256.token("ES256", json!({}), &claims()),
        ),
        case(
            "EdDSA signature from another key, our kid",
            "bad_signature",
            |k| k.evil_ed.token("EdDSA", json!({}), &claims()),
        ),
        case("no kid, signed by another RSA key", "bad_signature", |k| {
            k.evil_rsa.token("RS256", json!({"kid": null}), &claims())
        }),
        case(
            "ES256 signature in ASN.1 DER instead of r||s",
            "bad_signature",
            |k| {
                let t = k.es256.token("ES256", json!({}), &claims());
                let (input, sig) = t.rsplit_once('.').unwrap();
                let raw =
                    base64::Engine::decode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, sig)
                        .unwrap();
                let int = |b: &[u8]| {
                    let mut v = b.to_vec();
                    if v[0] & 0x80 != 0 {
                        v.insert(0, 0)
                    }
                    let mut out = vec![0x02, v.len() as u8];
                    out.extend(v);
                    out
                };
                let (r, s) = (int(&raw[..32]), int(&raw[32..]));
                let mut der = vec![0x30, (r.len() + s.len()) as u8];
                der.extend(r);
                der.extend(s);
                format!("{input}.{}", b64(der))
            },
        ),
        case(
            "ES256 token with the RSA key's kid",
            "alg_key_mismatch",
            |k| k.es256.token("ES256", json!({"kid": "rsa-1"}), &claims()),
        ),
        case(
            "RS256 token with the EC key's kid",
            "alg_key_mismatch",
            |k| k.rsa.token("RS256", json!({"kid": "ec-1"}), &claims()),
        ),
        case(
            "ES384 token with the P-256 key's kid",
            "alg_key_mismatch",
            |k| k.es384.token("ES384", json!({"kid": "ec-1"}), &claims()),
        ),
        case(
            "EdDSA token with the EC key's kid",
            "alg_key_mismatch",
            |k| k.ed.token("EdDSA", json!({"kid": "ec-1"}), &claims()),
        ),
        case("PS256 on a key pinned to RS256", "alg_key_mismatch", |k| {
            k.rsa_pinned.token("PS256", json!({}), &claims())
        }),
        case("truncated: two segments", "malformed", |k| {
            let t = k.rsa.token("RS256", json!({}), &claims());
            t.rsplit_once('.').unwrap().0.to_owned()
        }),
        case("extra segment", "malformed", |k| {
            format!("{}.AAAA", k.rsa.token("RS256", json!({}), &claims()))
        }),
        case("five segments (JWE)", "encrypted", |k| {
            format!("{}.AAAA.AAAA", k.rsa.token("RS256", json!({}), &claims()))
        }),
        case("enc in a three-segment header", "encrypted", |k| {
            k.rsa.token("RS256", json!({"enc": "A256GCM"}), &claims())
        }),
        case("non-base64url characters", "bad_encoding", |k| {
            let t = k.rsa.token("RS256", json!({}), &claims());
            let (input, sig) = t.rsplit_once('.').unwrap();
            format!("{input}.{}", sig.replace('-', "+").replace('_', "/") + "+/")
        }),
        case("base64 padding", "bad_encoding", |k| {
            format!("{}==", k.rsa.token("RS256", json!({}), &claims()))
        }),
        case("Bearer prefix left on", "bad_encoding", |k| {
            format!("Bearer {}", k.rsa.token("RS256", json!({}), &claims()))
        }),
        case("whitespace inside", "bad_encoding", |k| {
            let t = k.rsa.token("RS256", json!({}), &claims());
            format!("{} {}", &t[..20], &t[20..])
        }),
        case("oversized token (20 KiB)", "too_large", |k| {
            k.rsa.token(
                "RS256",
                json!({}),
                &with(json!({"pad": "x".repeat(20 * 1024)})),
            )
        }),
        case("duplicate sub in the payload", "duplicate_key", |k| {
            let c = claims();
            let payload = format!(
                r#"{{"iss":"{ISS}","sub":"agent-1","aud":"sluice","exp":{},"sub":"admin"}}"#,
                c["exp"]
            );
            k.rsa
                .token_raw("RS256", r#"{"alg":"RS256","kid":"rsa-1"}"#, &payload)
        }),
        case("duplicate alg in the header", "duplicate_key", |k| {
            k.rsa.token_raw(
                "RS256",
                r#"{"alg":"HS256","kid":"rsa-1","alg":"RS256"}"#,
                &claims().to_string(),
            )
        }),
        case("duplicate key in a nested claim", "duplicate_key", |k| {
            let payload = claims().to_string().replacen(
                '{',
                r#"{"realm_access":{"roles":["a"],"roles":["admin"]},"#,
                1,
            );
            k.rsa
                .token_raw("RS256", r#"{"alg":"RS256","kid":"rsa-1"}"#, &payload)
        }),
        case("nested JWT (cty: JWT)", "nested_jwt", |k| {
            let inner = k.evil_rsa.token("RS256", json!({}), &claims());
            let input = format!(
                "{}.{}",
                b64(r#"{"alg":"RS256","kid":"rsa-1","cty":"JWT"}"#),
                b64(inner)
            );
            format!("{input}.{}", b64(k.rsa.sign("RS256", input.as_bytes())))
        }),
        case("crit with an unknown extension", "crit_unsupported", |k| {
            k.rsa.token(
                "RS256",
                json!({"crit": ["exp-ext"], "exp-ext": true}),
                &claims(),
            )
        }),
        case(
            "b64: false (unencoded payload)",
            "unsupported_header",
            |k| k.rsa.token("RS256", json!({"b64": false}), &claims()),
        ),
        case("wrong typ (DPoP proof)", "typ_not_allowed", |k| {
            k.rsa.token("RS256", json!({"typ": "dpop+jwt"}), &claims())
        }),
        case("wrong typ (logout token)", "typ_not_allowed", |k| {
            k.rsa
                .token("RS256", json!({"typ": "logout+jwt"}), &claims())
        }),
        case("header is not JSON", "malformed", |k| {
            k.rsa.token_raw("RS256", "alg=RS256", &claims().to_string())
        }),
        case("payload is a JSON array", "malformed", |k| {
            k.rsa
                .token_raw("RS256", r#"{"alg":"RS256","kid":"rsa-1"}"#, "[1,2]")
        }),
        case("missing sub", "missing_sub", |k| {
            k.rsa.token("RS256", json!({}), &with(json!({"sub": null})))
        }),
        case("non-string sub", "invalid_sub", |k| {
            k.rsa
                .token("RS256", json!({}), &with(json!({"sub": 12345})))
        }),
        case("empty sub", "invalid_sub", |k| {
            k.rsa.token("RS256", json!({}), &with(json!({"sub": ""})))
        }),
        case("groups claim is an object", "invalid_groups", |k| {
            k.rsa.token(
                "RS256",
                json!({}),
                &with(json!({"groups": {"admin": true}})),
            )
        }),
        case("groups array with a number", "invalid_groups", |k| {
            k.rsa
                .token("RS256", json!({}), &with(json!({"groups": ["agents", 1]})))
        }),
    ]
}

#[tokio::test]
async fn attack_corpus_is_rejected_with_specific_reasons() {
    let (keys, verifier) = setup().await;
    let table = corpus();
    assert!(table.len() >= 25);
    let mut failures = Vec::new();
    for (name, build, expected) in &table {
        let token = build(&keys);
        match verifier.verify(&token).await {
            Ok(id) => failures.push(format!("{name}: ACCEPTED as {}", id.subject)),
            Err(e) if e.reason() != *expected => failures.push(format!(
                "{name}: expected {expected}, got {} ({})",
                e.reason(),
                e.message()
            )),
            Err(_) => {}
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} cases wrong:\n{}",
        failures.len(),
        table.len(),
        failures.join("\n")
    );
    assert_eq!(
        keys.evil_server.hits(),
        0,
        "a URL from a token header was fetched"
    );
}

#[tokio::test]
async fn honest_tokens_of_every_algorithm_are_accepted() {
    let (keys, verifier) = setup().await;
    let cases: [(&TestKey, &str); 10] = [
        (&keys.rsa, "RS256"),
        (&keys.rsa, "RS384"),
        (&keys.rsa, "RS512"),
        (&keys.rsa, "PS256"),
        (&keys.rsa, "PS384"),
        (&keys.rsa, "PS512"),
        (&keys.es256, "ES256"),
        (&keys.es384, "ES384"),
        (&keys.ed, "EdDSA"),
        (&keys.rsa_pinned, "RS256"),
    ];
    for (key, alg) in cases {
        let id = verifier
            .verify(&key.token(alg, json!({}), &claims()))
            .await
            .unwrap_or_else(|e| panic!("{alg} with {}: {e}", key.kid));
        assert_eq!(id.subject, "agent-1");
        assert_eq!(id.issuer, ISS);
        assert_eq!(id.groups, ["agents"]);
    }
    // typ absent, JWT, application/at+jwt; no kid; aud in an array; fractional exp.
    for header in [
        json!({"typ": null}),
        json!({"typ": "JWT"}),
        json!({"typ": "application/at+jwt"}),
        json!({"kid": null}),
    ] {
        verifier
            .verify(&keys.ed.token("EdDSA", header.clone(), &claims()))
            .await
            .unwrap_or_else(|e| panic!("{header}: {e}"));
    }
    let c = with(json!({"aud": ["other", "sluice"], "exp": now() as f64 + 60.5}));
    verifier
        .verify(&keys.es256.token("ES256", json!({}), &c))
        .await
        .unwrap();
}
