//! JSON Web Key Sets: parsing into verification keys bound to their algorithms.
//!
//! A JWKS is parsed strictly (duplicate member names refuse the whole document) and each
//! key leniently (a key Sluice cannot use is skipped with a note, so one exotic key does not
//! break an issuer). A key is usable when it is a public signature key of a supported type:
//! RSA ≥ 2048 bits, EC P-256/P-384, OKP Ed25519. Symmetric (`oct`) keys are never used.

use std::collections::HashMap;
use std::sync::Arc;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ring::signature::{RsaPublicKeyComponents, UnparsedPublicKey};
use serde_json::{Map, Value};

use super::alg::{Alg, KeyKind};
use super::error::JwksError;
use super::strict_json::{self, StrictJsonError};

/// Upper bound on keys per set; a larger document is refused.
const MAX_KEYS: usize = 100;

/// One usable public key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublicKey {
    /// `kid`, when the JWK has one.
    pub kid: Option<String>,
    /// The JWK's own `alg`; when present, the only algorithm this key verifies.
    pub alg: Option<Alg>,
    material: Material,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Material {
    /// Big-endian modulus without leading zeros, and exponent.
    Rsa {
        n: Vec<u8>,
        e: Vec<u8>,
    },
    /// Uncompressed SEC1 point `04 || x || y`.
    Ec {
        kind: KeyKind,
        point: Vec<u8>,
    },
    Ed25519 {
        x: Vec<u8>,
    },
}

impl PublicKey {
    pub fn kind(&self) -> KeyKind {
        match &self.material {
            Material::Rsa { .. } => KeyKind::Rsa,
            Material::Ec { kind, .. } => *kind,
            Material::Ed25519 { .. } => KeyKind::Ed25519,
        }
    }

    /// Whether this key may verify `alg`: same key kind and, when the JWK pins an `alg`,
    /// that very algorithm. Returns the reason it may not.
    pub fn check_fits(&self, alg: Alg) -> Result<(), String> {
        if alg.key_kind() != self.kind() {
            return Err(format!(
                "{alg} needs a {:?} key, key {} is {:?}",
                alg.key_kind(),
                self.kid.as_deref().unwrap_or("(no kid)"),
                self.kind()
            ));
        }
        match self.alg {
            Some(pinned) if pinned != alg => Err(format!(
                "key {} is for {pinned}, the token says {alg}",
                self.kid.as_deref().unwrap_or("(no kid)")
            )),
            _ => Ok(()),
        }
    }

    /// Verifies `signature` over `message` with `alg`. Refuses (returns false) when the key
    /// does not fit the algorithm, so a caller cannot be talked into key confusion.
    pub fn verify(&self, alg: Alg, message: &[u8], signature: &[u8]) -> bool {
        if self.check_fits(alg).is_err() {
            return false;
        }
        match (&self.material, alg.rsa_params(), alg.raw_key_params()) {
            (Material::Rsa { n, e }, Some(params), None) => RsaPublicKeyComponents { n, e }
                .verify(params, message, signature)
                .is_ok(),
            (
                Material::Ec { point: bytes, .. } | Material::Ed25519 { x: bytes },
                None,
                Some(params),
            ) => UnparsedPublicKey::new(params, bytes)
                .verify(message, signature)
                .is_ok(),
            _ => false,
        }
    }
}

/// What looking a key up for a token found.
#[derive(Debug)]
pub(crate) enum Lookup<'a> {
    /// Keys to try, in order (one when the token has a `kid`, normally).
    Candidates(Vec<&'a PublicKey>),
    /// The token's `kid` is not in the set.
    UnknownKid,
    /// The `kid` exists but its key does not fit the token's `alg`.
    Mismatch(String),
    /// No `kid` in the token, and no key fits its `alg`.
    NoSuitableKey,
}

/// A parsed key set.
#[derive(Debug, Default)]
pub struct KeySet {
    keys: Vec<Arc<PublicKey>>,
    by_kid: HashMap<String, Vec<usize>>,
    /// Why keys of the document were skipped, for logs.
    pub(crate) skipped: Vec<String>,
}

impl KeySet {
    /// Parses a JWKS document (`{"keys": [...]}`).
    pub fn parse(bytes: &[u8]) -> Result<KeySet, JwksError> {
        let doc = strict_json::parse_object(bytes).map_err(|e| match e {
            StrictJsonError::DuplicateKey(name) => {
                JwksError::Parse(format!("duplicate member name {name:?}"))
            }
            StrictJsonError::Syntax(msg) => JwksError::Parse(msg),
        })?;
        let Some(Value::Array(jwks)) = doc.get("keys") else {
            return Err(JwksError::Parse("no \"keys\" array".into()));
        };
        if jwks.len() > MAX_KEYS {
            return Err(JwksError::Parse(format!(
                "{} keys, at most {MAX_KEYS} are accepted",
                jwks.len()
            )));
        }
        let mut set = KeySet::default();
        for (i, jwk) in jwks.iter().enumerate() {
            match jwk
                .as_object()
                .ok_or_else(|| "not an object".to_owned())
                .and_then(parse_jwk)
            {
                Ok(key) => set.push(key),
                Err(why) => set.skipped.push(format!("keys[{i}]: {why}")),
            }
        }
        Ok(set)
    }

    /// A set made of already-parsed keys (the dev issuer's).
    pub fn from_keys(keys: impl IntoIterator<Item = PublicKey>) -> KeySet {
        let mut set = KeySet::default();
        keys.into_iter().for_each(|k| set.push(k));
        set
    }

    fn push(&mut self, key: PublicKey) {
        if let Some(kid) = &key.kid {
            self.by_kid
                .entry(kid.clone())
                .or_default()
                .push(self.keys.len());
        }
        self.keys.push(Arc::new(key));
    }

    pub fn len(&self) -> usize {
        self.keys.len()
    }

    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// The key ids, for logs and the admin API.
    pub fn kids(&self) -> Vec<&str> {
        self.keys.iter().filter_map(|k| k.kid.as_deref()).collect()
    }

    /// Finds the keys that may verify a token with this `kid` and `alg`.
    pub(crate) fn lookup(&self, kid: Option<&str>, alg: Alg) -> Lookup<'_> {
        match kid {
            Some(kid) => {
                let Some(indices) = self.by_kid.get(kid) else {
                    return Lookup::UnknownKid;
                };
                let mut mismatch = String::new();
                let fitting: Vec<&PublicKey> = indices
                    .iter()
                    .map(|&i| &*self.keys[i])
                    .filter(|k| match k.check_fits(alg) {
                        Ok(()) => true,
                        Err(why) => {
                            mismatch = why;
                            false
                        }
                    })
                    .collect();
                if fitting.is_empty() {
                    Lookup::Mismatch(mismatch)
                } else {
                    Lookup::Candidates(fitting)
                }
            }
            None => {
                let fitting: Vec<&PublicKey> = self
                    .keys
                    .iter()
                    .map(|k| &**k)
                    .filter(|k| k.check_fits(alg).is_ok())
                    .collect();
                if fitting.is_empty() {
                    Lookup::NoSuitableKey
                } else {
                    Lookup::Candidates(fitting)
                }
            }
        }
    }
}

fn b64_member(jwk: &Map<String, Value>, name: &str) -> Result<Vec<u8>, String> {
    match jwk.get(name) {
        Some(Value::String(s)) => URL_SAFE_NO_PAD
            .decode(s)
            .map_err(|e| format!("member {name}: {e}")),
        Some(_) => Err(format!("member {name} is not a string")),
        None => Err(format!("member {name} is missing")),
    }
}

fn str_member<'a>(jwk: &'a Map<String, Value>, name: &str) -> Result<Option<&'a str>, String> {
    match jwk.get(name) {
        None => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(_) => Err(format!("member {name} is not a string")),
    }
}

fn strip_leading_zeros(mut bytes: Vec<u8>) -> Vec<u8> {
    let zeros = bytes.iter().take_while(|b| **b == 0).count();
    bytes.drain(..zeros);
    bytes
}

/// Parses one JWK; `Err` says why it is not usable.
pub(crate) fn parse_jwk(jwk: &Map<String, Value>) -> Result<PublicKey, String> {
    let kid = str_member(jwk, "kid")?.map(str::to_owned);
    if let Some(use_) = str_member(jwk, "use")?
        && use_ != "sig"
    {
        return Err(format!("use {use_:?} is not \"sig\""));
    }
    if let Some(ops) = jwk.get("key_ops") {
        let verifies = ops
            .as_array()
            .is_some_and(|ops| ops.iter().any(|op| op == "verify"));
        if !verifies {
            return Err("key_ops does not include \"verify\"".into());
        }
    }
    let alg = match str_member(jwk, "alg")? {
        None => None,
        Some(name) => Some(
            Alg::from_name(name)
                .ok_or_else(|| format!("alg {name:?} is not a supported signature algorithm"))?,
        ),
    };
    let kty = str_member(jwk, "kty")?.ok_or("member kty is missing")?;
    let material = match kty {
        "RSA" => {
            let n = strip_leading_zeros(b64_member(jwk, "n")?);
            let e = strip_leading_zeros(b64_member(jwk, "e")?);
            let bits =
                (n.len() * 8).saturating_sub(n.first().map_or(8, |b| b.leading_zeros() as usize));
            if !(2048..=8192).contains(&bits) {
                return Err(format!(
                    "RSA modulus of {bits} bits (2048 to 8192 accepted)"
                ));
            }
            if e.is_empty() || e.len() > 4 {
                return Err("RSA exponent out of range".into());
            }
            Material::Rsa { n, e }
        }
        "EC" => {
            let (kind, len) = match str_member(jwk, "crv")? {
                Some("P-256") => (KeyKind::EcP256, 32),
                Some("P-384") => (KeyKind::EcP384, 48),
                other => return Err(format!("EC curve {other:?} is not supported")),
            };
            let (x, y) = (b64_member(jwk, "x")?, b64_member(jwk, "y")?);
            if x.len() != len || y.len() != len {
                return Err(format!("EC coordinates must be {len} bytes"));
            }
            let mut point = Vec::with_capacity(1 + 2 * len);
            point.push(0x04);
            point.extend_from_slice(&x);
            point.extend_from_slice(&y);
            Material::Ec { kind, point }
        }
        "OKP" => {
            match str_member(jwk, "crv")? {
                Some("Ed25519") => {}
                other => return Err(format!("OKP curve {other:?} is not supported")),
            }
            let x = b64_member(jwk, "x")?;
            if x.len() != 32 {
                return Err("Ed25519 public key must be 32 bytes".into());
            }
            Material::Ed25519 { x }
        }
        "oct" => return Err("symmetric (oct) keys are never used".into()),
        other => return Err(format!("key type {other:?} is not supported")),
    };
    let key = PublicKey { kid, alg, material };
    if let Some(alg) = alg {
        key.check_fits(alg)
            .map_err(|why| format!("inconsistent key: {why}"))?;
    }
    Ok(key)
}

/// The JWK of an Ed25519 public key (used by the dev issuer).
pub fn ed25519_public_key(kid: &str, x: &[u8]) -> PublicKey {
    PublicKey {
        kid: Some(kid.to_owned()),
        alg: Some(Alg::EdDSA),
        material: Material::Ed25519 { x: x.to_vec() },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn set(doc: Value) -> KeySet {
        KeySet::parse(doc.to_string().as_bytes()).unwrap()
    }

    const X32: &str = "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo";

    #[test]
    fn skips_unusable_keys_and_keeps_the_rest() {
        let ks = set(json!({"keys": [
            {"kty": "OKP", "crv": "Ed25519", "x": X32, "kid": "ed"},
            {"kty": "oct", "k": "c2VjcmV0", "kid": "hmac"},
            {"kty": "OKP", "crv": "Ed25519", "x": X32, "kid": "enc", "use": "enc"},
            {"kty": "OKP", "crv": "X25519", "x": X32, "kid": "x"},
            {"kty": "OKP", "crv": "Ed25519", "x": X32, "kid": "hs", "alg": "HS256"},
            {"kty": "OKP", "crv": "Ed25519", "x": X32, "kid": "rs", "alg": "RS256"},
            {"kty": "RSA", "n": "AQAB", "e": "AQAB", "kid": "tiny"},
            {"kty": "EC", "crv": "P-256", "x": X32, "y": "AA", "kid": "short"},
            "not an object",
        ]}));
        assert_eq!(set_kids(&ks), vec!["ed"]);
        assert_eq!(ks.skipped.len(), 8, "{:?}", ks.skipped);
    }

    fn set_kids(ks: &KeySet) -> Vec<&str> {
        ks.kids()
    }

    #[test]
    fn lookup_binds_alg_to_key_type() {
        let ks = set(json!({"keys": [{"kty": "OKP", "crv": "Ed25519", "x": X32, "kid": "ed"}]}));
        assert!(matches!(ks.lookup(Some("ed"), Alg::EdDSA), Lookup::Candidates(c) if c.len() == 1));
        assert!(matches!(
            ks.lookup(Some("ed"), Alg::ES256),
            Lookup::Mismatch(_)
        ));
        assert!(matches!(
            ks.lookup(Some("nope"), Alg::EdDSA),
            Lookup::UnknownKid
        ));
        assert!(matches!(ks.lookup(None, Alg::RS256), Lookup::NoSuitableKey));
        assert!(matches!(ks.lookup(None, Alg::EdDSA), Lookup::Candidates(_)));
    }

    #[test]
    fn refuses_bad_documents() {
        for doc in [
            &b"[]"[..],
            b"{}",
            br#"{"keys": {}}"#,
            br#"{"keys":[],"keys":[]}"#,
        ] {
            assert!(
                KeySet::parse(doc).is_err(),
                "{}",
                String::from_utf8_lossy(doc)
            );
        }
    }
}
