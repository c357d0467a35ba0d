//! The embedded dev issuer: an Ed25519 key in `state_dir`, a JWKS and discovery document for
//! the admin listener, and `sluice token issue`.
//!
//! Used only when no `[[identity.issuers]]` is configured, and refused when
//! `[identity] production = true`. The key file is `<state_dir>/identity/dev-issuer.key`
//! (PKCS#8 PEM, mode 0600, directory 0700); it is created atomically on first use, and a
//! file readable by group or others is refused.

use std::fs;
use std::io::Write as _;
use std::os::unix::fs::{OpenOptionsExt as _, PermissionsExt as _};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use ring::rand::{SecureRandom as _, SystemRandom};
use ring::signature::{Ed25519KeyPair, KeyPair as _};
use serde_json::{Value, json};
use sha2::{Digest as _, Sha256};

use super::claims::now_unix;
use super::config::DevIssuerConfig;
use super::error::IdentityError;
use super::jwks::{self, PublicKey};

const KEY_FILE: &str = "dev-issuer.key";
const PEM_LABEL: &str = "PRIVATE KEY";

/// The embedded dev issuer. Cheap to clone.
#[derive(Clone)]
pub struct DevIssuer {
    key: Arc<Ed25519KeyPair>,
    kid: String,
    public_x: Vec<u8>,
    config: DevIssuerConfig,
    key_path: PathBuf,
}

impl std::fmt::Debug for DevIssuer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DevIssuer")
            .field("issuer", &self.config.issuer)
            .field("kid", &self.kid)
            .field("key_path", &self.key_path)
            .finish_non_exhaustive()
    }
}

impl DevIssuer {
    /// Loads the key from `state_dir`, creating it on first use, with the default
    /// `[identity.dev_issuer]` settings.
    pub fn load_or_create(state_dir: &Path) -> Result<Self, IdentityError> {
        Self::load_or_create_with(state_dir, &DevIssuerConfig::default())
    }

    /// Like [`load_or_create`](Self::load_or_create) with explicit settings.
    pub fn load_or_create_with(
        state_dir: &Path,
        config: &DevIssuerConfig,
    ) -> Result<Self, IdentityError> {
        let dir = state_dir.join("identity");
        let io = |path: &Path| {
            let path = path.to_owned();
            move |source| IdentityError::DevKeyIo { path, source }
        };
        fs::create_dir_all(&dir).map_err(io(&dir))?;
        fs::set_permissions(&dir, fs::Permissions::from_mode(0o700)).map_err(io(&dir))?;
        let path = dir.join(KEY_FILE);
        if !path.exists() {
            create_key_file(&dir, &path)?;
        }
        let key = load_key_file(&path)?;
        let public_x = key.public_key().as_ref().to_vec();
        Ok(Self {
            kid: thumbprint(&public_x),
            key: Arc::new(key),
            public_x,
            config: config.clone(),
            key_path: path,
        })
    }

    /// Mints a token for `subject` in `groups`, valid for `ttl` (at most
    /// `dev_issuer.max_ttl_secs`). The token is an RFC 9068 access token (`typ: at+jwt`)
    /// signed with EdDSA.
    pub fn issue(
        &self,
        subject: &str,
        groups: &[String],
        ttl: Duration,
    ) -> Result<String, IdentityError> {
        self.issue_with_claims(subject, groups, ttl, serde_json::Map::new())
    }

    /// Like [`issue`](Self::issue) with extra claims (they cannot override the registered
    /// claims).
    pub fn issue_with_claims(
        &self,
        subject: &str,
        groups: &[String],
        ttl: Duration,
        extra: serde_json::Map<String, Value>,
    ) -> Result<String, IdentityError> {
        if subject.is_empty() {
            return Err(IdentityError::Issue("the subject must not be empty".into()));
        }
        if ttl.is_zero() || ttl.as_secs() > self.config.max_ttl_secs {
            return Err(IdentityError::Issue(format!(
                "ttl must be between 1s and {}s (dev_issuer.max_ttl_secs)",
                self.config.max_ttl_secs
            )));
        }
        let now = now_unix();
        let ttl_secs = i64::try_from(ttl.as_secs()).unwrap_or(i64::MAX);
        let mut jti = [0u8; 16];
        SystemRandom::new()
            .fill(&mut jti)
            .map_err(|_| IdentityError::Issue("no randomness available".into()))?;
        let mut claims = extra;
        for (name, value) in [
            ("iss", json!(self.config.issuer)),
            ("sub", json!(subject)),
            ("aud", json!(self.config.audience)),
            ("groups", json!(groups)),
            ("iat", json!(now)),
            ("nbf", json!(now)),
            ("exp", json!(now.saturating_add(ttl_secs))),
            ("jti", json!(URL_SAFE_NO_PAD.encode(jti))),
        ] {
            claims.insert(name.to_owned(), value);
        }
        let header = json!({"alg": "EdDSA", "typ": "at+jwt", "kid": self.kid});
        let signing_input = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(header.to_string()),
            URL_SAFE_NO_PAD.encode(Value::Object(claims).to_string())
        );
        let signature = self.key.sign(signing_input.as_bytes());
        Ok(format!(
            "{signing_input}.{}",
            URL_SAFE_NO_PAD.encode(signature.as_ref())
        ))
    }

    /// The JWKS to serve at `/.well-known/jwks.json`.
    pub fn jwks_json(&self) -> Value {
        json!({"keys": [{
            "kty": "OKP",
            "crv": "Ed25519",
            "x": URL_SAFE_NO_PAD.encode(&self.public_x),
            "kid": self.kid,
            "alg": "EdDSA",
            "use": "sig",
        }]})
    }

    /// The discovery document to serve at `/.well-known/openid-configuration`, pointing at
    /// `<issuer>/.well-known/jwks.json`.
    pub fn discovery_document(&self) -> Value {
        let base = self.config.issuer.trim_end_matches('/');
        json!({
            "issuer": self.config.issuer,
            "jwks_uri": format!("{base}/.well-known/jwks.json"),
            "response_types_supported": ["token"],
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": ["EdDSA"],
            "token_endpoint_auth_methods_supported": ["none"],
            "grant_types_supported": [],
        })
    }

    /// The `iss` of dev tokens.
    pub fn issuer_url(&self) -> &str {
        &self.config.issuer
    }

    /// The `aud` of dev tokens.
    pub fn audience(&self) -> &str {
        &self.config.audience
    }

    /// The key id (RFC 7638 thumbprint of the public key).
    pub fn kid(&self) -> &str {
        &self.kid
    }

    /// Where the private key lives.
    pub fn key_path(&self) -> &Path {
        &self.key_path
    }

    /// The verification key.
    pub(crate) fn public_key(&self) -> PublicKey {
        jwks::ed25519_public_key(&self.kid, &self.public_x)
    }
}

/// RFC 7638 JWK thumbprint of an Ed25519 public key.
fn thumbprint(x: &[u8]) -> String {
    let canonical = format!(
        r#"{{"crv":"Ed25519","kty":"OKP","x":"{}"}}"#,
        URL_SAFE_NO_PAD.encode(x)
    );
    URL_SAFE_NO_PAD.encode(Sha256::digest(canonical.as_bytes()))
}

/// Writes a fresh key to a temporary file (0600) and links it into place, so a crash never
/// leaves a half-written key and two processes starting at once end up with the same key.
fn create_key_file(dir: &Path, path: &Path) -> Result<(), IdentityError> {
    let invalid = |message: String| IdentityError::DevKeyInvalid {
        path: path.to_owned(),
        message,
    };
    let pkcs8 = Ed25519KeyPair::generate_pkcs8(&SystemRandom::new())
        .map_err(|_| invalid("key generation failed".into()))?;
    let pem = to_pem(pkcs8.as_ref());
    let tmp = dir.join(format!(".{KEY_FILE}.{}.tmp", std::process::id()));
    let io = |source| IdentityError::DevKeyIo {
        path: tmp.clone(),
        source,
    };
    let _ = fs::remove_file(&tmp);
    let mut file = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&tmp)
        .map_err(io)?;
    file.write_all(pem.as_bytes()).map_err(io)?;
    file.sync_all().map_err(io)?;
    drop(file);
    let linked = fs::hard_link(&tmp, path);
    let _ = fs::remove_file(&tmp);
    match linked {
        Ok(()) => {
            tracing::info!(path = %path.display(), "created the dev issuer key");
            Ok(())
        }
        // Another process won the race; use its key.
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(source) => Err(IdentityError::DevKeyIo {
            path: path.to_owned(),
            source,
        }),
    }
}

fn load_key_file(path: &Path) -> Result<Ed25519KeyPair, IdentityError> {
    let invalid = |message: String| IdentityError::DevKeyInvalid {
        path: path.to_owned(),
        message,
    };
    let io = |source| IdentityError::DevKeyIo {
        path: path.to_owned(),
        source,
    };
    let mode = fs::metadata(path).map_err(io)?.permissions().mode();
    if mode & 0o077 != 0 {
        return Err(invalid(format!(
            "mode {:o} lets others read the private key; run chmod 600",
            mode & 0o777
        )));
    }
    let text = fs::read_to_string(path).map_err(io)?;
    let der = from_pem(&text).ok_or_else(|| invalid(format!("not a PEM \"{PEM_LABEL}\"")))?;
    Ed25519KeyPair::from_pkcs8_maybe_unchecked(&der)
        .map_err(|e| invalid(format!("not an Ed25519 PKCS#8 key: {e}")))
}

fn to_pem(der: &[u8]) -> String {
    let b64 = STANDARD.encode(der);
    let mut out = format!("-----BEGIN {PEM_LABEL}-----\n");
    for line in b64.as_bytes().chunks(64) {
        out.push_str(&String::from_utf8_lossy(line));
        out.push('\n');
    }
    out.push_str(&format!("-----END {PEM_LABEL}-----\n"));
    out
}

fn from_pem(text: &str) -> Option<Vec<u8>> {
    let begin = format!("-----BEGIN {PEM_LABEL}-----");
    let end = format!("-----END {PEM_LABEL}-----");
    let body = text.split_once(&begin)?.1.split_once(&end)?.0;
    let b64: String = body.chars().filter(|c| !c.is_whitespace()).collect();
    STANDARD.decode(b64).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_is_created_once_with_mode_0600_and_reloaded() {
        let dir = tempfile::tempdir().unwrap();
        let a = DevIssuer::load_or_create(dir.path()).unwrap();
        let mode = fs::metadata(a.key_path()).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        let dir_mode = fs::metadata(dir.path().join("identity"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(dir_mode & 0o777, 0o700);
        let b = DevIssuer::load_or_create(dir.path()).unwrap();
        assert_eq!(a.kid(), b.kid());
        assert_eq!(a.jwks_json(), b.jwks_json());
    }

    #[test]
    fn readable_key_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let a = DevIssuer::load_or_create(dir.path()).unwrap();
        fs::set_permissions(a.key_path(), fs::Permissions::from_mode(0o644)).unwrap();
        let err = DevIssuer::load_or_create(dir.path()).unwrap_err();
        assert!(err.to_string().contains("chmod 600"), "{err}");
    }

    #[test]
    fn documents() {
        let dir = tempfile::tempdir().unwrap();
        let dev = DevIssuer::load_or_create(dir.path()).unwrap();
        let jwks = dev.jwks_json();
        assert_eq!(jwks["keys"][0]["kid"], dev.kid());
        let keys = super::super::jwks::KeySet::parse(jwks.to_string().as_bytes()).unwrap();
        assert_eq!(keys.kids(), vec![dev.kid()]);
        let disco = dev.discovery_document();
        assert_eq!(disco["issuer"], "http://127.0.0.1:9090");
        assert_eq!(
            disco["jwks_uri"],
            "http://127.0.0.1:9090/.well-known/jwks.json"
        );
        assert!(dev.issue("", &[], Duration::from_secs(5)).is_err());
        assert!(dev.issue("s", &[], Duration::ZERO).is_err());
        assert!(
            dev.issue("s", &[], Duration::from_secs(365 * 86400))
                .is_err()
        );
    }

    #[test]
    fn thumbprint_matches_rfc8037_example() {
        // RFC 8037 appendix A.3
        let x = URL_SAFE_NO_PAD
            .decode("11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo")
            .unwrap();
        assert_eq!(
            thumbprint(&x),
            "kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k"
        );
    }
}
