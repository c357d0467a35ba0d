//! TLS for the agent-facing listeners (PostgreSQL and HTTP share the same
//! default pair) and the roots the gateway trusts when it dials an upstream.
//!
//! A listener uses a configured certificate, or a self-signed one generated
//! once into the state directory (like a database's dev mode; the file is
//! reused across restarts so clients can pin it).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::ServerConfig;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("{path}: {message}")]
    File { path: PathBuf, message: String },
    #[error("generating a self-signed certificate: {0}")]
    Generate(String),
    #[error("TLS configuration: {0}")]
    Config(String),
}

/// Certificate and key files; `None` means the generated self-signed pair.
pub struct TlsFiles {
    pub cert: PathBuf,
    pub key: PathBuf,
}

/// Loads the configured pair or the state directory's self-signed one,
/// generating it on first use.
pub fn server_config(
    configured: Option<&TlsFiles>,
    state_dir: &Path,
) -> Result<Arc<ServerConfig>, TlsError> {
    server_config_with_alpn(configured, state_dir, Vec::new())
}

/// Like [`server_config`], offering `alpn` protocols (most preferred first).
pub fn server_config_with_alpn(
    configured: Option<&TlsFiles>,
    state_dir: &Path,
    alpn: Vec<Vec<u8>>,
) -> Result<Arc<ServerConfig>, TlsError> {
    let files = match configured {
        Some(f) => TlsFiles {
            cert: f.cert.clone(),
            key: f.key.clone(),
        },
        None => self_signed(state_dir)?,
    };
    let file_err = |path: &Path, e: &dyn std::fmt::Display| TlsError::File {
        path: path.to_path_buf(),
        message: e.to_string(),
    };
    let certs = CertificateDer::pem_file_iter(&files.cert)
        .map_err(|e| file_err(&files.cert, &e))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| file_err(&files.cert, &e))?;
    if certs.is_empty() {
        return Err(file_err(&files.cert, &"no certificate in the file"));
    }
    let key = PrivateKeyDer::from_pem_file(&files.key).map_err(|e| file_err(&files.key, &e))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| TlsError::Config(e.to_string()))?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|e| TlsError::Config(e.to_string()))?;
    config.alpn_protocols = alpn;
    Ok(Arc::new(config))
}

/// The roots an upstream certificate is checked against: only the CAs in
/// `ca_file` when one is configured (a private CA should not be mixed with
/// the public ones), else the system's store, else the bundled Mozilla roots
/// (a minimal container may have no store at all).
pub fn client_roots(ca_file: Option<&Path>) -> Result<rustls::RootCertStore, TlsError> {
    let mut roots = rustls::RootCertStore::empty();
    match ca_file {
        Some(path) => {
            let file_err = |e: &dyn std::fmt::Display| TlsError::File {
                path: path.to_path_buf(),
                message: e.to_string(),
            };
            let certs = CertificateDer::pem_file_iter(path)
                .map_err(|e| file_err(&e))?
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| file_err(&e))?;
            let (added, _) = roots.add_parsable_certificates(certs);
            if added == 0 {
                return Err(file_err(&"no usable CA certificate in the file"));
            }
        }
        None => {
            let native = rustls_native_certs::load_native_certs();
            roots.add_parsable_certificates(native.certs);
            if roots.is_empty() {
                roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
            }
        }
    }
    Ok(roots)
}

/// A client configuration for dialing upstreams, verifying against
/// [`client_roots`].
pub fn client_config(ca_file: Option<&Path>) -> Result<rustls::ClientConfig, TlsError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    Ok(rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| TlsError::Config(e.to_string()))?
        .with_root_certificates(client_roots(ca_file)?)
        .with_no_client_auth())
}

fn self_signed(state_dir: &Path) -> Result<TlsFiles, TlsError> {
    let dir = state_dir.join("tls");
    let files = TlsFiles {
        cert: dir.join("listener-cert.pem"),
        key: dir.join("listener-key.pem"),
    };
    if files.cert.exists() && files.key.exists() {
        return Ok(files);
    }
    let io_err = |path: &Path, e: std::io::Error| TlsError::File {
        path: path.to_path_buf(),
        message: e.to_string(),
    };
    std::fs::create_dir_all(&dir).map_err(|e| io_err(&dir, e))?;
    let names = vec![
        "localhost".to_string(),
        "127.0.0.1".to_string(),
        "::1".to_string(),
    ];
    let generated =
        rcgen::generate_simple_self_signed(names).map_err(|e| TlsError::Generate(e.to_string()))?;
    write_private(&files.key, generated.signing_key.serialize_pem().as_bytes())
        .map_err(|e| io_err(&files.key, e))?;
    std::fs::write(&files.cert, generated.cert.pem()).map_err(|e| io_err(&files.cert, e))?;
    tracing::info!(cert = %files.cert.display(), "generated a self-signed listener certificate");
    Ok(files)
}

/// Writes a file readable by its owner only.
fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    options.open(path)?.write_all(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn self_signed_pair_is_generated_once_and_private() {
        let dir = tempfile::tempdir().unwrap();
        server_config(None, dir.path()).unwrap();
        let cert = dir.path().join("tls/listener-cert.pem");
        let first = std::fs::read(&cert).unwrap();
        server_config(None, dir.path()).unwrap();
        assert_eq!(
            first,
            std::fs::read(&cert).unwrap(),
            "reused, not regenerated"
        );
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(dir.path().join("tls/listener-key.pem"))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o077, 0, "key readable by others: {mode:o}");
        }
    }

    #[test]
    fn a_missing_configured_file_is_a_clear_error() {
        let dir = tempfile::tempdir().unwrap();
        let files = TlsFiles {
            cert: dir.path().join("nope.pem"),
            key: dir.path().join("nope.key"),
        };
        let err = server_config(Some(&files), dir.path()).err().unwrap();
        assert!(err.to_string().contains("nope.pem"), "{err}");
    }
}
