//! Test signing keys and a token forge that can produce any header and payload.

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use ring::rand::SystemRandom;
use ring::signature::{self, EcdsaKeyPair, Ed25519KeyPair, KeyPair as _, RsaKeyPair};
use serde_json::{Value, json};

pub fn b64(bytes: impl AsRef<[u8]>) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

fn pem_to_der(pem: &str) -> Vec<u8> {
    let body: String = pem.lines().filter(|l| !l.starts_with("-----")).collect();
    STANDARD.decode(body).expect("PEM")
}

enum Inner {
    Rsa(RsaKeyPair),
    Ec(EcdsaKeyPair, &'static str),
    Ed(Ed25519KeyPair),
}

/// A private key with a kid.
pub struct TestKey {
    pub kid: String,
    inner: Inner,
}

impl TestKey {
    /// One of the RSA fixtures: "rsa-a" or "rsa-b".
    pub fn rsa(fixture: &str, kid: &str) -> TestKey {
        let path = format!(
            "{}/tests/fixtures/{fixture}.pem",
            env!("CARGO_MANIFEST_DIR")
        );
        let pem = std::fs::read_to_string(path).expect("fixture");
        let key = RsaKeyPair::from_pkcs8(&pem_to_der(&pem)).expect("RSA key");
        TestKey {
            kid: kid.into(),
            inner: Inner::Rsa(key),
        }
    }

    pub fn es256(kid: &str) -> TestKey {
        Self::ec(&signature::ECDSA_P256_SHA256_FIXED_SIGNING, "P-256", kid)
    }

    pub fn es384(kid: &str) -> TestKey {
        Self::ec(&signature::ECDSA_P384_SHA384_FIXED_SIGNING, "P-384", kid)
    }

    fn ec(alg: &'static signature::EcdsaSigningAlgorithm, crv: &'static str, kid: &str) -> TestKey {
        let rng = SystemRandom::new();
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(alg, &rng).unwrap();
        let key = EcdsaKeyPair::from_pkcs8(alg, pkcs8.as_ref(), &rng).unwrap();
        TestKey {
            kid: kid.into(),
            inner: Inner::Ec(key, crv),
        }
    }

    pub fn ed25519(kid: &str) -> TestKey {
        let pkcs8 = Ed25519KeyPair::generate_pkcs8(&SystemRandom::new()).unwrap();
        let key = Ed25519KeyPair::from_pkcs8(pkcs8.as_ref()).unwrap();
        TestKey {
            kid: kid.into(),
            inner: Inner::Ed(key),
        }
    }

    /// The public JWK (with `kid`, without `alg`).
    pub fn jwk(&self) -> Value {
        match &self.inner {
            Inner::Rsa(k) => {
                let c: signature::RsaPublicKeyComponents<Vec<u8>> = k.public().into();
                json!({"kty": "RSA", "kid": self.kid, "n": b64(&c.n), "e": b64(&c.e)})
            }
            Inner::Ec(k, crv) => {
                let point = k.public_key().as_ref();
                let len = (point.len() - 1) / 2;
                json!({"kty": "EC", "crv": crv, "kid": self.kid,
                       "x": b64(&point[1..1 + len]), "y": b64(&point[1 + len..])})
            }
            Inner::Ed(k) => {
                json!({"kty": "OKP", "crv": "Ed25519", "kid": self.kid, "x": b64(k.public_key().as_ref())})
            }
        }
    }

    /// The public JWK pinned to one algorithm.
    pub fn jwk_with_alg(&self, alg: &str) -> Value {
        let mut jwk = self.jwk();
        jwk["alg"] = json!(alg);
        jwk
    }

    /// The DER SubjectPublicKeyInfo of an RSA key as PEM text (what an HS256-confusion
    /// attacker uses as the HMAC secret).
    pub fn rsa_public_pem(&self) -> String {
        let Inner::Rsa(k) = &self.inner else {
            panic!("not RSA")
        };
        // PKCS#1 RSAPublicKey wrapped as PEM is enough for the attack: any public bytes.
        format!(
            "-----BEGIN RSA PUBLIC KEY-----\n{}\n-----END RSA PUBLIC KEY-----\n",
            STANDARD.encode(k.public().as_ref())
        )
    }

    /// Signs `input` with `alg` (which must fit the key; this is the honest signer).
    pub fn sign(&self, alg: &str, input: &[u8]) -> Vec<u8> {
        let rng = SystemRandom::new();
        match &self.inner {
            Inner::Rsa(k) => {
                let padding: &'static dyn signature::RsaEncoding = match alg {
                    "RS256" => &signature::RSA_PKCS1_SHA256,
                    "RS384" => &signature::RSA_PKCS1_SHA384,
                    "RS512" => &signature::RSA_PKCS1_SHA512,
                    "PS256" => &signature::RSA_PSS_SHA256,
                    "PS384" => &signature::RSA_PSS_SHA384,
                    "PS512" => &signature::RSA_PSS_SHA512,
                    other => panic!("RSA cannot sign {other}"),
                };
                let mut sig = vec![0; k.public().modulus_len()];
                k.sign(padding, &rng, input, &mut sig).unwrap();
                sig
            }
            Inner::Ec(k, _) => k.sign(&rng, input).unwrap().as_ref().to_vec(),
            Inner::Ed(k) => k.sign(input).as_ref().to_vec(),
        }
    }

    /// A signed token: `header` gets `alg` and `kid` unless it sets them itself.
    pub fn token(&self, alg: &str, header: Value, claims: &Value) -> String {
        let mut h = json!({"alg": alg, "kid": self.kid, "typ": "at+jwt"});
        if let (Some(h), Some(extra)) = (h.as_object_mut(), header.as_object()) {
            for (k, v) in extra {
                if v.is_null() {
                    h.remove(k);
                } else {
                    h.insert(k.clone(), v.clone());
                }
            }
        }
        self.token_raw(alg, &h.to_string(), &claims.to_string())
    }

    /// A token from raw header and payload JSON text (for duplicate keys and the like).
    pub fn token_raw(&self, alg: &str, header: &str, payload: &str) -> String {
        let input = format!("{}.{}", b64(header), b64(payload));
        let sig = self.sign(alg, input.as_bytes());
        format!("{input}.{}", b64(sig))
    }
}

/// `{"keys": [...]}`.
pub fn jwks(keys: &[Value]) -> String {
    json!({"keys": keys}).to_string()
}
