use std::path::{Path, PathBuf};

/// Why the audit log could not open, or could not take a record.
#[derive(Debug, Clone, thiserror::Error)]
pub enum AuditError {
    #[error("{path}: {message}")]
    Io { path: PathBuf, message: String },
    #[error("audit signing key {path}: {message}")]
    Key { path: PathBuf, message: String },
    #[error("the audit log is corrupt: {0}")]
    Corrupt(String),
    #[error("another process holds the audit log in {0}")]
    Locked(PathBuf),
    #[error("the audit log could not write: {0}")]
    Write(String),
    #[error("the audit log has {0} events waiting; refusing more until it catches up")]
    Overloaded(usize),
    #[error("the audit log did not record within {0} ms")]
    Timeout(u64),
    #[error("the audit log is closed")]
    Closed,
}

impl AuditError {
    pub(crate) fn io(path: &Path, e: std::io::Error) -> Self {
        AuditError::Io {
            path: path.to_path_buf(),
            message: e.to_string(),
        }
    }
}
