//! Shared helpers of the end-to-end suites: where the built plugin
//! components are, a plugin directory to play with, and requests to send.

pub mod postgres;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use sluice::config::{Config, PluginsConfig};
use sluice::plugins::PluginHost;
use sluice::plugins::bindings::types::{
    Column, Identity, Protocol, Request, Session, SqlPhase, SqlRequest, ValueFormat,
};

/// Directory holding every first-party plugin and test guest as
/// `<crate-name>.wasm`, built by this crate's build script.
pub fn built_plugins_dir() -> PathBuf {
    PathBuf::from(env!("SLUICE_PLUGIN_DIR"))
}

pub fn built(name: &str) -> PathBuf {
    let path = built_plugins_dir().join(format!("{name}.wasm"));
    assert!(path.exists(), "{} was not built", path.display());
    path
}

/// A temporary plugin directory plus the config that points at it.
pub struct PluginDir {
    pub dir: tempfile::TempDir,
}

impl Default for PluginDir {
    fn default() -> Self {
        Self::new()
    }
}

impl PluginDir {
    pub fn new() -> Self {
        Self {
            dir: tempfile::tempdir().expect("temp dir"),
        }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Installs a built component as `name.wasm` the way operators should:
    /// write a temporary file beside it, then rename over the old one.
    pub fn install(&self, name: &str, built_name: &str) {
        self.install_bytes(
            name,
            &std::fs::read(built(built_name)).expect("read component"),
        );
    }

    pub fn install_bytes(&self, name: &str, bytes: &[u8]) {
        let tmp = self.dir.path().join(format!(".{name}.wasm.tmp"));
        std::fs::write(&tmp, bytes).expect("write component");
        std::fs::rename(&tmp, self.dir.path().join(format!("{name}.wasm"))).expect("rename");
    }

    pub fn remove(&self, name: &str) {
        std::fs::remove_file(self.dir.path().join(format!("{name}.wasm"))).expect("remove");
    }

    /// A `[plugins]` config for this directory with `extra` TOML appended
    /// (e.g. `[plugins.config.deny-word]` tables).
    pub fn config(&self, extra: &str) -> PluginsConfig {
        let text = format!(
            "[plugins]\ndir = {:?}\n{extra}",
            self.dir.path().display().to_string()
        );
        Config::parse(&text, Path::new("/"))
            .expect("valid test config")
            .plugins
    }

    /// A plugin host over this directory, after its first scan.
    pub async fn host(&self, extra: &str) -> Arc<PluginHost> {
        let host = PluginHost::new(self.config(extra)).expect("plugin host");
        host.rescan().await;
        host
    }
}

pub fn session(subject: &str, groups: &[&str]) -> Session {
    Session {
        id: "test-session".into(),
        connection: "appdb".into(),
        protocol: Protocol::Postgres,
        identity: Identity {
            subject: subject.into(),
            issuer: "https://issuer.test".into(),
            groups: groups.iter().map(|g| g.to_string()).collect(),
            claims_json: "{}".into(),
        },
        client_addr: "127.0.0.1:50000".into(),
    }
}

/// A simple-query request as the PostgreSQL layer would send it, with a
/// realistic single-statement summary.
pub fn sql(text: &str) -> Request {
    use sluice::plugins::bindings::types::{SqlStatement, StatementFlags, StatementKind, TableRef};
    Request::Sql(SqlRequest {
        text: text.into(),
        phase: SqlPhase::SimpleQuery,
        statements: vec![SqlStatement {
            text: text.into(),
            node: "SelectStmt".into(),
            kind: StatementKind::Query,
            command_tag: "SELECT".into(),
            tables_read: vec![TableRef {
                schema: Some("public".into()),
                name: "customers".into(),
            }],
            tables_written: vec![],
            functions: vec![],
            has_where: true,
            flags: StatementFlags::empty(),
            setting: None,
            prepared_name: None,
        }],
        parameters: vec![],
        statement_name: None,
    })
}

/// Polls `f` until it returns true or `limit` passes; returns the time it took.
pub async fn eventually(limit: Duration, mut f: impl AsyncFnMut() -> bool) -> Option<Duration> {
    let start = Instant::now();
    while start.elapsed() < limit {
        if f().await {
            return Some(start.elapsed());
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    None
}

/// A text-format `text` column of `public.customers`, as RowDescription
/// would describe it.
pub fn text_column(name: &str) -> Column {
    Column {
        name: name.into(),
        table_oid: 16384,
        table: Some("public.customers".into()),
        column_id: 1,
        type_oid: 25,
        type_name: Some("text".into()),
        format: ValueFormat::Text,
    }
}
