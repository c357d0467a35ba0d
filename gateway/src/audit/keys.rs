//! The audit log's Ed25519 key and what it signs.
//!
//! The key is generated on first use into `<state_dir>/audit/signing.key`
//! (PKCS#8, base64, mode 0600); its public half is written beside it as
//! `signing.pub` so that it can be pinned elsewhere (`sluice audit verify
//! --public-key`). Checkpoints sign the chain up to a record; the head file
//! signs the latest checkpoint, so that cutting records off the end of the
//! log is detected too.

use std::fs;
use std::io::Write as _;
use std::os::unix::fs::{OpenOptionsExt as _, PermissionsExt as _};
use std::path::{Path, PathBuf};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use ring::rand::SystemRandom;
use ring::signature::{ED25519, Ed25519KeyPair, KeyPair as _, UnparsedPublicKey};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::error::AuditError;
use super::event::hex;

/// The private key, when a log is written.
pub struct SigningKey {
    pair: Ed25519KeyPair,
    public: PublicKey,
}

/// A public key that signatures are checked against.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublicKey {
    bytes: Vec<u8>,
    /// First 16 hex digits of the SHA-256 of the key: short, for messages.
    pub key_id: String,
}

impl PublicKey {
    pub fn from_bytes(bytes: &[u8]) -> Self {
        Self {
            bytes: bytes.to_vec(),
            key_id: hex(&Sha256::digest(bytes)[..8]),
        }
    }

    /// A key as written in `signing.pub`: base64 of the 32 raw bytes.
    pub fn parse(text: &str) -> Result<Self, String> {
        let bytes = STANDARD
            .decode(text.trim())
            .map_err(|e| format!("not base64: {e}"))?;
        if bytes.len() != 32 {
            return Err(format!(
                "an Ed25519 public key has 32 bytes, this has {}",
                bytes.len()
            ));
        }
        Ok(Self::from_bytes(&bytes))
    }

    pub fn base64(&self) -> String {
        STANDARD.encode(&self.bytes)
    }

    pub fn verify(&self, message: &[u8], signature_b64: &str) -> bool {
        let Ok(signature) = STANDARD.decode(signature_b64) else {
            return false;
        };
        UnparsedPublicKey::new(&ED25519, &self.bytes)
            .verify(message, &signature)
            .is_ok()
    }

    /// The key of a log's state directory: from `signing.pub`, else derived
    /// from `signing.key`.
    pub fn of_state(audit_dir: &Path) -> Result<Self, AuditError> {
        let public = audit_dir.join(PUBLIC_FILE);
        match fs::read_to_string(&public) {
            Ok(text) => Self::parse(&text).map_err(|message| AuditError::Key {
                path: public,
                message,
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                Ok(SigningKey::load(&audit_dir.join(KEY_FILE))?.public)
            }
            Err(e) => Err(AuditError::io(&public, e)),
        }
    }
}

const KEY_FILE: &str = "signing.key";
const PUBLIC_FILE: &str = "signing.pub";

impl SigningKey {
    /// Loads the key of `audit_dir`, creating it (and `signing.pub`) on
    /// first use.
    pub fn load_or_create(audit_dir: &Path) -> Result<Self, AuditError> {
        let path = audit_dir.join(KEY_FILE);
        if !path.exists() {
            create(audit_dir, &path)?;
        }
        let key = Self::load(&path)?;
        let public = audit_dir.join(PUBLIC_FILE);
        if !public.exists() {
            write_atomic(&public, format!("{}\n", key.public.base64()).as_bytes())?;
        }
        Ok(key)
    }

    fn load(path: &Path) -> Result<Self, AuditError> {
        let invalid = |message: String| AuditError::Key {
            path: path.to_path_buf(),
            message,
        };
        let mode = fs::metadata(path)
            .map_err(|e| AuditError::io(path, e))?
            .permissions()
            .mode();
        if mode & 0o077 != 0 {
            return Err(invalid(format!(
                "mode {:o} lets others read the private key; run chmod 600",
                mode & 0o777
            )));
        }
        let text = fs::read_to_string(path).map_err(|e| AuditError::io(path, e))?;
        let der = STANDARD
            .decode(text.trim())
            .map_err(|e| invalid(format!("not base64: {e}")))?;
        let pair = Ed25519KeyPair::from_pkcs8_maybe_unchecked(&der)
            .map_err(|e| invalid(format!("not an Ed25519 PKCS#8 key: {e}")))?;
        let public = PublicKey::from_bytes(pair.public_key().as_ref());
        Ok(Self { pair, public })
    }

    pub fn public(&self) -> &PublicKey {
        &self.public
    }

    pub fn sign(&self, message: &[u8]) -> String {
        STANDARD.encode(self.pair.sign(message).as_ref())
    }
}

fn create(dir: &Path, path: &Path) -> Result<(), AuditError> {
    let pkcs8 =
        Ed25519KeyPair::generate_pkcs8(&SystemRandom::new()).map_err(|_| AuditError::Key {
            path: path.to_path_buf(),
            message: "key generation failed".into(),
        })?;
    let tmp = dir.join(format!(".{KEY_FILE}.{}.tmp", std::process::id()));
    let _ = fs::remove_file(&tmp);
    let written = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&tmp)
        .and_then(|mut f| {
            f.write_all(format!("{}\n", STANDARD.encode(pkcs8.as_ref())).as_bytes())?;
            f.sync_all()
        });
    if let Err(e) = written {
        let _ = fs::remove_file(&tmp);
        return Err(AuditError::io(&tmp, e));
    }
    // A hard link never replaces an existing key: two gateways starting at
    // once end up with the same one.
    let linked = fs::hard_link(&tmp, path);
    let _ = fs::remove_file(&tmp);
    match linked {
        Ok(()) => {
            tracing::info!(path = %path.display(), "created the audit log signing key");
            sync_dir(dir)
        }
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(AuditError::io(path, e)),
    }
}

/// What a checkpoint at sequence `covers + 1` signs: the log and the hash of
/// its record `covers`, which by the chain commits to every record up to it.
pub fn checkpoint_message(log_id: &str, covers: u64, covers_hash: &str) -> Vec<u8> {
    format!("sluice-audit-checkpoint-v1\n{log_id}\n{covers}\n{covers_hash}\n").into_bytes()
}

fn head_message(log_id: &str, seq: u64, hash: &str) -> Vec<u8> {
    format!("sluice-audit-head-v1\n{log_id}\n{seq}\n{hash}\n").into_bytes()
}

/// `head.json`: the latest checkpoint record, signed. The log must contain
/// it: a log that ends before it was cut.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Head {
    pub log_id: String,
    pub seq: u64,
    pub hash: String,
    pub key_id: String,
    pub signature: String,
}

impl Head {
    pub fn new(key: &SigningKey, log_id: &str, seq: u64, hash: &str) -> Self {
        Self {
            log_id: log_id.to_string(),
            seq,
            hash: hash.to_string(),
            key_id: key.public.key_id.clone(),
            signature: key.sign(&head_message(log_id, seq, hash)),
        }
    }

    pub fn verify(&self, key: &PublicKey) -> bool {
        key.verify(
            &head_message(&self.log_id, self.seq, &self.hash),
            &self.signature,
        )
    }

    pub fn read(path: &Path) -> Result<Option<Head>, AuditError> {
        match fs::read(path) {
            Ok(bytes) => serde_json::from_slice(&bytes)
                .map(Some)
                .map_err(|e| AuditError::Corrupt(format!("{}: {e}", path.display()))),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(AuditError::io(path, e)),
        }
    }

    pub fn write(&self, path: &Path) -> Result<(), AuditError> {
        let json = serde_json::to_vec(self).map_err(|e| AuditError::Corrupt(e.to_string()))?;
        write_atomic(path, &json)
    }
}

/// Write to a temporary file, sync, rename over, sync the directory: the
/// file is the old or the new version after any crash.
pub(crate) fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), AuditError> {
    let dir = path.parent().unwrap_or_else(|| Path::new("."));
    let tmp: PathBuf = dir.join(format!(
        ".{}.tmp",
        path.file_name().and_then(|n| n.to_str()).unwrap_or("file")
    ));
    fs::File::create(&tmp)
        .and_then(|mut f| {
            f.write_all(bytes)?;
            f.sync_data()
        })
        .map_err(|e| AuditError::io(&tmp, e))?;
    fs::rename(&tmp, path).map_err(|e| AuditError::io(path, e))?;
    sync_dir(dir)
}

pub(crate) fn sync_dir(dir: &Path) -> Result<(), AuditError> {
    fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| AuditError::io(dir, e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_is_created_once_and_signs_heads() {
        let dir = tempfile::tempdir().unwrap();
        let key = SigningKey::load_or_create(dir.path()).unwrap();
        let again = SigningKey::load_or_create(dir.path()).unwrap();
        assert_eq!(key.public(), again.public());
        assert_eq!(&PublicKey::of_state(dir.path()).unwrap(), key.public());

        let head = Head::new(&key, "log", 9, "ab");
        assert!(head.verify(key.public()));
        let other = tempfile::tempdir().unwrap();
        let other = SigningKey::load_or_create(other.path()).unwrap();
        assert!(!head.verify(other.public()));
        let mut moved = head.clone();
        moved.seq = 8;
        assert!(!moved.verify(key.public()));
    }
}
